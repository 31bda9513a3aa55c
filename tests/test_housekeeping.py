"""What lets a class's memory go: closed sessions reaped once their TTL passed (on Streamlit's
own session store, so a Streamlit release that changes it fails here), and malloc arenas
limited in the server and in every training worker (glibc only)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.runtime.memory_session_storage import MemorySessionStorage
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.runtime.session_manager import SessionInfo
from streamlit.runtime.websocket_session_manager import WebsocketSessionManager

from ui.housekeeping import reap_expired_sessions

ROOT = Path(__file__).resolve().parents[1]


def _glibc() -> bool:
    try:
        ctypes.CDLL("libc.so.6").mallopt  # noqa: B018
        return True
    except (OSError, AttributeError):
        return False


class FakeSession:
    """What the store keeps of a session: its id, and whether it was shut down."""

    def __init__(self, session_id: str) -> None:
        self.id, self.shut_down = session_id, 0

    def shutdown(self) -> None:
        self.shut_down += 1


def _manager(ttl: float) -> WebsocketSessionManager:
    return WebsocketSessionManager(
        session_storage=MemorySessionStorage(ttl_seconds=ttl),  # type: ignore[arg-type]
        uploaded_file_manager=MemoryUploadedFileManager("/_stcore/upload_file"),
        script_cache=ScriptCache(), message_enqueued_callback=None)


def _store(manager: WebsocketSessionManager, session: FakeSession) -> None:
    manager._session_storage.save(SessionInfo(client=None, session=session,  # type: ignore
                                              script_run_count=1))


def test_expired_closed_sessions_are_removed_and_shut_down():
    manager = _manager(ttl=0.05)
    gone = FakeSession("closed-tab")
    _store(manager, gone)
    time.sleep(0.15)
    assert len(manager._session_storage._cache._data) == 1  # Streamlit still holds it
    assert reap_expired_sessions(manager) == 1
    assert gone.shut_down == 1
    assert len(manager._session_storage._cache._data) == 0
    assert reap_expired_sessions(manager) == 0  # nothing twice


def test_a_session_within_its_ttl_stays_for_its_reconnect():
    manager = _manager(ttl=60)
    tab = FakeSession("reloading-tab")
    _store(manager, tab)
    assert reap_expired_sessions(manager) == 0
    assert tab.shut_down == 0
    assert manager.get_session_info("reloading-tab").session is tab


def test_a_changed_session_store_is_skipped_not_fatal(caplog):
    assert reap_expired_sessions(object()) == 0
    assert "session store has changed" in caplog.text


ARENAS = r"""
import ctypes, os, sys, tempfile, threading
sys.path.insert(0, sys.argv[1])
mode = sys.argv[2]
from nnviz.backends.base import limit_malloc_arenas
if mode == "worker":
    from nnviz.backends.local import _init_worker
    _init_worker(None, 1)          # what every training worker runs first
elif mode == "limit":
    print("set", limit_malloc_arenas(1))

def churn():
    for _ in range(200):
        blocks = [bytearray(20000) for _ in range(20)]  # malloc, not Python's small-object pool
        del blocks

threads = [threading.Thread(target=churn) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w"); libc.malloc_info(0, fp); libc.fclose(fp)
print("arenas", open(path).read().count("<heap nr="))
"""


def _arenas(mode: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", ARENAS, str(ROOT), mode], capture_output=True,
                          text=True, timeout=120, env=environ)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(not _glibc(), reason="malloc arenas are glibc's")
def test_the_arena_limit_holds_and_a_deployers_setting_wins():
    assert int(_arenas("none")[-1]) > 1       # glibc's default: threads get arenas of their own
    assert _arenas("limit") == ["set", "True", "arenas", "1"]
    assert _arenas("limit", MALLOC_ARENA_MAX="3")[:2] == ["set", "False"]


@pytest.mark.skipif(not _glibc(), reason="malloc arenas are glibc's")
def test_a_training_worker_allocates_from_one_arena():
    assert _arenas("worker")[-2:] == ["arenas", "1"]
