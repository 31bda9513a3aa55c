"""Is bench_load.py honest? The same figures from real Chromium tabs, then from its own sessions.

Starts the app (as bench_load.py does), opens the lesson link in ``--tabs`` Chromium tabs
(separate browser contexts: separate Streamlit sessions), then clicks the epoch player's "next"
button a few times in each tab (the player reports the epoch; Streamlit reruns the player's
fragment). The browser's own websocket frames are read with Playwright and decoded with
Streamlit's protobuf classes, so a request's time is measured exactly as bench_load.py measures
it: from the BackMsg that asks for a run to the ``script_finished`` of a run that started after
it. Then as many stclient sessions do the same on the same server, then the tabs once more (the
run now exists for both, so the link -> player figures compare too). Printed per round:
sessions failed, link -> player, scrub p50 / max; and trainings started for the link.

    python benchmarks/bench_load_browser.py --tabs 3 --port 8670
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests" / "browser")]

from bench_load import count_trainings, link, open_link, scrub, start_server, uptime  # noqa: E402
from harness import chromium_path, launch_browser  # noqa: E402
from stclient import FRAGMENT_DONE, FULL_RUN_DONE, Session  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from nnviz.presets import PRESETS  # noqa: E402


class WireClock:
    """Times a tab's requests from its websocket frames (the same rule as stclient.Session)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.pending: tuple[float, set[str], str] | None = None
        self.timings: list[float] = []

    def sent(self, payload: bytes | str, at: float | None = None) -> None:
        """A frame the tab sent, ``at`` the browser's own timestamp of it (else now)."""
        if isinstance(payload, str):
            return
        msg = BackMsg()
        msg.ParseFromString(payload)
        if msg.WhichOneof("type") == "rerun_script" and not msg.rerun_script.is_auto_rerun:
            when = time.perf_counter() if at is None else at
            self.pending = (when, set(self.seen), msg.rerun_script.fragment_id)

    def received(self, payload: bytes | str, at: float | None = None) -> None:
        if isinstance(payload, str):
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        rid = msg.metadata.run.script_run_id
        if msg.WhichOneof("type") == "script_finished" and self.pending is not None:
            start, before, fragment = self.pending
            if rid not in before and (msg.script_finished in FULL_RUN_DONE or (
                    fragment and msg.script_finished == FRAGMENT_DONE)):
                self.timings.append((time.perf_counter() if at is None else at) - start)
                self.pending = None
        if rid:
            self.seen.add(rid)

    def listen(self, page) -> None:  # noqa: ANN001 - a Playwright page
        """Read the tab's websocket frames with the browser's timestamps (Chrome DevTools
        protocol): Playwright delivers its own frame events only while the script waits, up
        to tens of ms late on a busy machine."""
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")

        def frame(params: dict, into) -> None:  # noqa: ANN001
            response = params.get("response", {})
            if response.get("opcode") == 2:  # binary: base64 in payloadData
                into(base64.b64decode(response.get("payloadData", "")), params["timestamp"])

        cdp.on("Network.webSocketFrameSent", lambda p: frame(p, self.sent))
        cdp.on("Network.webSocketFrameReceived", lambda p: frame(p, self.received))


def browser_tabs(base: str, query: str, tabs: int, clicks: int, timeout: float) -> dict:
    from playwright.sync_api import sync_playwright

    out = {"open": [], "scrub": [], "failed": 0, "first": []}
    with sync_playwright() as pw:
        browser = launch_browser(pw, chromium_path())
        pages, clocks = [], []
        for _ in range(tabs):
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            clock = WireClock()
            clock.listen(page)
            pages.append(page)
            clocks.append(clock)
        starts = []
        for page in pages:  # the tabs load together: each goto returns before the page runs
            starts.append(time.perf_counter())
            page.goto(f"{base}/Explore?{query}", wait_until="commit")
        for page, start in zip(pages, starts, strict=True):
            frame = page.frame_locator('iframe[title*="epoch_player"]')
            try:
                frame.locator("#next").wait_for(state="visible", timeout=timeout * 1000)
                out["open"].append(time.perf_counter() - start)
            except Exception:
                out["failed"] += 1
        for page, clock in zip(pages, clocks, strict=True):
            out["first"] += clock.timings[:1]  # the page's first request, on the wire
            clock.timings.clear()
            frame = page.frame_locator('iframe[title*="epoch_player"]')
            for i in range(clicks):  # it opens on the last epoch: back, back, forward, ...
                done = len(clock.timings)
                try:
                    frame.locator("#next" if i % 3 == 2 else "#prev").click()
                except Exception:
                    out["failed"] += 1
                    break
                deadline = time.monotonic() + 30  # the player reports after a short debounce
                while len(clock.timings) == done and time.monotonic() < deadline:
                    page.wait_for_timeout(50)
                page.wait_for_timeout(random.uniform(400, 900))
            out["scrub"] += clock.timings
        browser.close()
    return out


async def stclient_sessions(base: str, query: str, n: int, clicks: int, timeout: float) -> dict:
    sessions = [Session(base, f"st-{i}") for i in range(n)]
    opened = await asyncio.gather(*(open_link(s, query, timeout) for s in sessions),
                                  return_exceptions=True)
    out = {"open": [o for o in opened if not isinstance(o, BaseException)], "scrub": [],
           "failed": sum(isinstance(o, BaseException) for o in opened)}
    rng = random.Random(1)
    for s in sessions:
        if s.components:
            s.timings.clear()
            for _ in range(clicks):
                await scrub(s, rng, timeout)
                await asyncio.sleep(rng.uniform(0.4, 0.9))
            out["scrub"] += [t.seconds for t in s.timings]
        await s.close()
    return out


def line(name: str, r: dict) -> str:
    def fmt(v: list[float]) -> str:
        return f"p50 {statistics.median(v):.3f} s, max {max(v):.3f} s (n={len(v)})" if v else "-"
    first = f" (its first request -> script finished {fmt(r['first'])})" if r.get("first") \
        else ""
    return (f"{name:9s} failed {r['failed']}; link -> player {fmt(r['open'])}{first}; scrub "
            f"request -> script finished {fmt(r['scrub'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=4)
    parser.add_argument("--port", type=int, default=8670)
    parser.add_argument("--lesson", default="symmetry", choices=list(PRESETS))
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()
    if chromium_path() is None:
        raise SystemExit("needs Debian's chromium (/usr/bin/chromium)")
    work = Path(tempfile.mkdtemp(prefix="nnviz-bench-browser-"))
    runs = work / "runs"
    runs.mkdir()
    cfg = PRESETS[args.lesson].config()
    query = link(cfg)
    base = f"http://127.0.0.1:{args.port}"
    print(f"server 127.0.0.1:{args.port} | {uptime()}", flush=True)
    proc = start_server(args.port, runs, {}, ttl=15)
    try:
        chromium = browser_tabs(base, query, args.tabs, args.clicks, args.timeout)
        print(line("chromium", chromium), f"| {uptime()}", flush=True)
        print(f"trainings started for the link after the tabs: {count_trainings(runs, cfg)}")
        own = asyncio.run(stclient_sessions(base, query, args.tabs, args.clicks,
                                            args.timeout))
        print(line("stclient", own), f"| {uptime()}", flush=True)
        # once more, now that the link's run exists for both: their opens compare too
        again = browser_tabs(base, query, args.tabs, args.clicks, args.timeout)
        print(line("chromium", again), f"(again, the run trained) | {uptime()}", flush=True)
        print(f"trainings started for the link after all three: {count_trainings(runs, cfg)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
