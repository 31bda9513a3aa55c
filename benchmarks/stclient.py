"""A Streamlit browser session without the browser: Streamlit's own websocket protocol.

What the browser does, read from Streamlit's source (``web/server/starlette/starlette_websocket.py``
and the frontend's ``WebsocketConnection`` / ``App``):

- it opens ``ws://HOST/_stcore/stream`` with ``Sec-WebSocket-Protocol: streamlit, XSRF, SESSION``
  (first entry selected; the XSRF token only matters for auth cookies, which nnviz has none of)
  and an ``Origin`` of the app's own address;
- it sends a ``BackMsg`` with ``rerun_script`` = ``ClientState`` (query string, page script hash,
  widget states, fragment id) for the first run, each widget change and page switch;
- the server streams ``ForwardMsg``s: ``new_session``, ``navigation`` (the app's pages and their
  script hashes), ``page_info_changed`` (the script set ``st.query_params``: the browser puts it
  in its URL and sends it with the next rerun), ``delta``s (elements: a custom component's
  ``ComponentInstance`` carries its widget id and arguments), ``auto_rerun`` /
  ``stop_auto_rerun`` (a fragment's ``run_every``: the browser reruns that fragment on a timer,
  kept across that fragment's own runs: only a full run's ``new_session``, whose
  ``metadata.run.fragment_ids`` is empty, clears the timers),
  and ``script_finished`` for every run;
- a widget inside a fragment (the epoch player is one) reruns only that fragment: the
  ``ClientState`` names the fragment (the element's ``delta.fragment_id``);
- a request is done when a run that started after it sends ``script_finished`` (every message
  carries its run's ``script_run_id``): FINISHED_SUCCESSFULLY for a whole page (a run that ends
  in ``st.rerun()`` says FINISHED_EARLY_FOR_RERUN, and the user waits for the run after it),
  FINISHED_FRAGMENT_RUN_SUCCESSFULLY for a fragment's run.

- large elements (``metadata.cacheable``) are kept by the browser under their hash and listed in
  ``ClientState.cached_message_hashes``; the server then sends only a ``ref_hash`` for them.

A ``Session`` does all of that: it answers ``auto_rerun`` timers like the browser, keeps the
query string the script set, keeps the message cache, and times every request from sending the
``BackMsg`` to its ``script_finished``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

FULL_RUN_DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}
FRAGMENT_DONE = ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY


@dataclass
class Timing:
    """One request: what it was, when it was sent, how long until its script finished."""

    kind: str          # "open", "scrub", "page", "fragment" (a timer rerun), ...
    seconds: float
    started: float = 0.0  # time.monotonic() when it was sent
    page: str = ""        # the page it asked for (the session's page for a fragment)


@dataclass
class Session:
    """One browser session of a Streamlit app at ``base`` (``http://127.0.0.1:PORT``)."""

    base: str
    name: str = ""
    pages: dict[str, str] = field(default_factory=dict)     # url path -> page script hash
    page_hash: str = ""
    query: str = ""
    components: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> id, args
    timings: list[Timing] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)           # st.error texts
    widget_states: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ws: Any = None
        self._reader: asyncio.Task | None = None
        self._finished = asyncio.Event()
        self._timers: dict[str, asyncio.Task] = {}
        self._intervals: dict[str, float] = {}  # fragment id -> its timer's seconds
        self._pending: tuple[str, float] | None = None
        self._fragment_runs = 0
        self._cache: dict[str, ForwardMsg] = {}  # hash -> cacheable message (the browser's)
        self._this_run: dict[str, dict[str, Any]] = {}  # components of the run under way
        self._seen_runs: set[str] = set()   # script run ids seen so far
        self._before: set[str] = set()      # ... when the pending request was sent
        self._want_fragment = ""
        self._waiting = False
        self.finished_runs = 0
        self.closed = False

    # --- connection ---

    async def connect(self) -> None:
        url = self.base.replace("http://", "ws://") + "/_stcore/stream"
        self._ws = await websockets.connect(
            url, subprotocols=["streamlit"], origin=self.base, max_size=2**28,
            open_timeout=60, ping_interval=None)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        self.closed = True
        for task in self._timers.values():
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()

    # --- requests ---

    async def rerun(self, kind: str, *, query: str | None = None, page: str | None = None,
                    widgets: dict[str, Any] | None = None, fragment_id: str = "",
                    timeout: float = 120.0) -> float:
        """Send a rerun and wait for its script to finish; its seconds (also recorded)."""
        if query is not None:
            self.query = query
        if page is not None:
            self.page_hash = self.pages.get(page, self.page_hash)
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_script_hash = self.page_hash
        cs.cached_message_hashes.extend(self._cache)
        if page is not None and page not in self.pages:
            cs.page_name = page  # first request: the server resolves the page by its URL name
        if fragment_id:
            cs.fragment_id = fragment_id
            cs.is_auto_rerun = kind == "fragment"
        if widgets:
            self.widget_states.update(widgets)
        for wid, value in self.widget_states.items():
            state = cs.widget_states.widgets.add()
            state.id = wid
            if isinstance(value, dict):
                state.json_value = json.dumps(value)
            elif isinstance(value, bool):
                state.trigger_value = value
            else:
                state.string_value = str(value)
        self._finished.clear()
        self._before = set(self._seen_runs)
        self._want_fragment = fragment_id
        self._waiting = True
        start, sent = time.perf_counter(), time.monotonic()
        self._pending = (kind, start)
        await self._ws.send(msg.SerializeToString())
        try:
            await asyncio.wait_for(self._finished.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.name}: a {kind!r} request's script did not finish within "
                               f"{timeout:.0f} s (errors {self.errors[-2:]}; exceptions "
                               f"{self.exceptions[-2:]})") from None
        finally:
            self._waiting = False
        seconds = time.perf_counter() - start
        here = next((name for name, h in self.pages.items() if h == self.page_hash), "")
        self.timings.append(Timing(kind, seconds, sent, here))
        return seconds

    async def wait_for_component(self, name: str, timeout: float) -> dict[str, Any]:
        """Wait until the page shows a component (e.g. the epoch player); its id and args."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name in self.components:
                return self.components[name]
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name}: no {name} within {timeout:.0f} s (page query "
                           f"{self.query!r}; errors {self.errors[-2:]}; exceptions "
                           f"{self.exceptions[-2:]})")

    # --- messages ---

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._on(msg)
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass

    def _on(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.run.script_run_id and kind != "script_finished":
            self._seen_runs.add(msg.metadata.run.script_run_id)
        if kind == "ref_hash":  # an element the browser has cached: use its copy
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.errors.append(f"unknown ref_hash {msg.ref_hash}")
                return
            msg, kind = cached, cached.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = msg
            while len(self._cache) > 200:  # bounded, like the browser's cache
                del self._cache[next(iter(self._cache))]
        if kind == "navigation":
            for page in msg.navigation.app_pages:
                self.pages[page.url_pathname or page.page_name] = page.page_script_hash
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "delta":
            self._on_delta(msg)
        elif kind == "auto_rerun":
            fid, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if self._intervals.get(fid) == interval and fid in self._timers:
                return  # the browser keeps a timer that is asked for again unchanged
            old = self._timers.pop(fid, None)
            if old is not None:
                old.cancel()
            self._intervals[fid] = interval
            self._timers[fid] = asyncio.create_task(self._auto(fid, interval))
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                task = self._timers.pop(fid, None)
                if task is not None:
                    task.cancel()
        elif kind == "new_session":
            if not msg.metadata.run.fragment_ids:  # a full run: its fragments register again
                for task in self._timers.values():
                    task.cancel()
                self._timers.clear()
                self._this_run = {}  # like the browser, the old elements stay until it ends
        elif kind == "script_finished":
            self.finished_runs += 1
            # only a run that started after the request answers it (not one it interrupted)
            if msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                self.components = dict(self._this_run)  # elements the finished run drew
            if self._waiting and msg.metadata.run.script_run_id not in self._before and (
                    msg.script_finished in FULL_RUN_DONE
                    or (self._want_fragment and msg.script_finished == FRAGMENT_DONE)):
                self._finished.set()
            self._seen_runs.add(msg.metadata.run.script_run_id)

    def _on_delta(self, msg: ForwardMsg) -> None:
        delta = msg.delta
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        which = element.WhichOneof("type")
        if which == "component_instance":
            ci = element.component_instance
            try:
                args = json.loads(ci.json_args) if ci.json_args else {}
            except ValueError:
                args = {}
            name = ci.component_name.rsplit(".", 1)[-1]
            self.components[name] = self._this_run[name] = {
                "id": ci.id, "args": args, "fragment_id": delta.fragment_id}
        elif which == "exception":
            self.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif which == "alert" and element.alert.format == element.alert.ERROR:
            self.errors.append(element.alert.body)

    async def _auto(self, fragment_id: str, interval: float) -> None:
        """The browser's fragment timer: rerun the fragment every ``interval`` seconds."""
        try:
            while not self.closed:
                await asyncio.sleep(interval)
                msg = BackMsg()
                cs = msg.rerun_script
                cs.query_string, cs.page_script_hash = self.query, self.page_hash
                cs.fragment_id, cs.is_auto_rerun = fragment_id, True
                cs.cached_message_hashes.extend(self._cache)
                self._fragment_runs += 1
                await self._ws.send(msg.SerializeToString())
        except (asyncio.CancelledError, websockets.ConnectionClosed):
            pass

    @property
    def fragment_runs(self) -> int:
        """Timer reruns this session sent (a browser's polling)."""
        return self._fragment_runs
