"""What the server does between requests so that a class leaves it near its idle size.

Started once per server process (``ui.shell.start``):

- **Closed sessions are let go.** A closed tab's session is kept for
  ``server.disconnectedSessionTTL`` seconds (a reload within that time gets its state back).
  Streamlit drops an expired one only when another session disconnects, and never shuts it
  down (streamlit/streamlit#12506): after a class had left, the thirty sessions' state (their
  widgets, player keys, script-run leftovers) stayed in the server for good. Every REAP_EVERY_S
  seconds, on Streamlit's event loop (the thread that owns its session storage), the expired
  ones are removed and shut down, exactly as Streamlit closes a session itself; then a garbage
  collection (the session objects are cycles, and ``runner.postScriptGC`` is off). The
  parsed runs stay (``ui.state.RUNS``, bounded by size): dropping them once the last session
  had gone was tried and returned nothing measurable (374 vs 375 MB), at the price of a
  re-read.
- **Freed heap goes back to the OS** every REAP_EVERY_S (``release_memory``: ``malloc_trim``),
  and no malloc arenas are made past SERVER_MALLOC_ARENAS from the first page on
  (``limit_malloc_arenas``; those made before it stay: 5 in bench_load instead of glibc's 8 per
  core, 16 here; glibc cannot trim the free top of any arena but the main one).

Only what has already expired is removed, so reconnecting within the TTL works as before. The
session store is Streamlit's internal object: should a Streamlit release rename it, reaping is
skipped with one log line (``tests/test_housekeeping.py`` notices) and the rest goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import nullcontext
from typing import Any

from nnviz.backends.base import limit_malloc_arenas, release_memory

log = logging.getLogger(__name__)

REAP_EVERY_S = 10.0         # how often expired sessions are reaped and the heap is trimmed
SERVER_MALLOC_ARENAS = 2    # most arenas: by its first page the server has more, so none new

_STARTED: list[bool] = []
_LOCK = threading.Lock()


def start() -> None:
    """Limit the server's malloc arenas and start the periodic reaping (once per process;
    a no-op outside a running Streamlit server, e.g. under AppTest)."""
    with _LOCK:
        if _STARTED:
            return
        _STARTED.append(True)
    limit_malloc_arenas(SERVER_MALLOC_ARENAS)
    loop = _event_loop()
    if loop is None:
        return
    loop.call_soon_threadsafe(_schedule, loop)


def reap_expired_sessions(session_manager: Any) -> int:
    """Remove the sessions whose disconnected-session TTL has passed from Streamlit's session
    store and shut them down; how many. Call it on the Streamlit event loop."""
    storage = getattr(session_manager, "_session_storage", None)
    expire = getattr(getattr(storage, "_cache", None), "expire", None)
    if expire is None:
        if not _WARNED:
            _WARNED.append(True)
            log.warning("Streamlit's session store has changed: closed sessions are not reaped")
        return 0
    with getattr(session_manager, "_storage_lock", None) or nullcontext():
        expired = expire()  # [(session id, SessionInfo)]
    for _, info in expired:
        try:
            info.session.shutdown()  # its uploaded and media files, its script runner
        except Exception:  # noqa: BLE001 - one odd session must not stop the others
            log.exception("could not shut down an expired session")
    return len(expired)


_WARNED: list[bool] = []


def _event_loop() -> asyncio.AbstractEventLoop | None:
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return None
        return Runtime.instance()._get_async_objs().eventloop  # noqa: SLF001 - no public API
    except Exception:  # noqa: BLE001 - AppTest, or a Runtime that has not started
        return None


def _schedule(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_later(REAP_EVERY_S, _tick, loop)


def _tick(loop: asyncio.AbstractEventLoop) -> None:
    """On the event loop: reap, collect if anything went, trim; then again later."""
    try:
        from streamlit.runtime import Runtime

        reaped = reap_expired_sessions(Runtime.instance()._session_mgr)  # noqa: SLF001
        release_memory(collect=reaped > 0)
        if reaped:
            log.info("let go of %d closed sessions", reaped)
    except Exception:  # noqa: BLE001 - housekeeping must never stop the server
        log.exception("housekeeping failed")
    if not loop.is_closed():
        _schedule(loop)
