"""Start the app on 127.0.0.1 and drive Debian's Chromium with Playwright (no browser download).

Used by the browser tests, the screenshot script and the browser benchmark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_path() -> str | None:
    """Debian's chromium, if installed."""
    for candidate in (os.environ.get("NNVIZ_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    runs_dir: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_app(runs_dir: Path, log_path: Path, timeout: float = 90.0,
            port: int | None = None, script: Path | None = None,
            poll_s: float = 0.3) -> Iterator[AppServer]:
    """Streamlit serving ``script`` (app.py) on a loopback port (``port``, or a free one),
    its health checked every ``poll_s``; stopped (whole process group) on exit."""
    port = port or free_port()
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(runs_dir), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(script or ROOT / "app.py"),
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"streamlit did not start in {timeout:.0f} s")
            time.sleep(poll_s)
        yield AppServer(url, runs_dir, proc, log_path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def launch_browser(playwright, executable: str):
    return playwright.chromium.launch(executable_path=executable, headless=True,
                                      args=CHROMIUM_ARGS)


def wait_for_app_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' status widget)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
                 && !document.querySelector('[data-testid="stSkeleton"]')
                 && document.querySelectorAll(
                        '[data-testid="stMainBlockContainer"] *').length > 5""",
        timeout=timeout_ms)
    # plotly draws after the script finishes: every chart container must hold an SVG
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                 .every(c => c.querySelector('.main-svg'))""",
        timeout=timeout_ms)


PLAYER_IFRAME = 'iframe[title*="epoch_player"]'


def player(page, timeout_ms: int = 60_000):
    """The epoch player's frame (Explore's "This epoch" view), once its charts are drawn."""
    page.wait_for_selector(PLAYER_IFRAME, timeout=timeout_ms)
    deadline = time.time() + timeout_ms / 1000
    while time.time() < deadline:
        frame = next((f for f in page.frames if "epoch_player" in f.url), None)
        if frame is not None:
            frame.wait_for_function("() => window.nnvizPlayer && window.nnvizPlayer.frame >= 0",
                                    timeout=timeout_ms, polling="raf")
            return frame
        time.sleep(0.1)
    raise TimeoutError("the epoch player did not appear")


def pick_view(page, label: str, timeout_ms: int = 60_000):
    """Click ``label`` (as shown, in the page's language) in Explore's view control, which the
    player's frame draws; returns the frame once the view is painted and the rerun it starts has
    ended (Health and Tables are drawn by Python below the frame)."""
    frame = player(page, timeout_ms)
    frame.get_by_role("radio", name=label, exact=True).click()
    frame.wait_for_function("""(l) => {
        const b = [...document.querySelectorAll('#views [role=radio]')]
          .find((e) => e.textContent === l);
        return b && window.nnvizPlayer.view === b.dataset.view; }""", arg=label,
                            timeout=timeout_ms, polling="raf")
    page.wait_for_timeout(300)  # the rerun the switch starts
    wait_for_app_idle(page, timeout_ms)
    return frame


def wait_for_frame(frame, want: int, timeout_ms: int = 10_000) -> None:
    """Until the player has drawn frame ``want`` into every chart, off screen too, then painted
    (``nnvizPlayer.frame`` says that of the charts on screen)."""
    frame.wait_for_function("(k) => window.nnvizPlayer.allFrame === k", arg=want,
                            timeout=timeout_ms, polling="raf")


# What the player's frame holds and has asked for: said when a wait for it times out.
ASK_STATE = """() => ({
  shown: state.key, cache: [...state.cache.keys()], needed: [...state.needed],
  asks: Object.fromEntries(state.asks), askSeqs: Object.fromEntries(state.askSeqs),
  askedMsAgo: Object.fromEntries([...state.askedAt].map(([k, t]) => [k, performance.now() - t])),
  came: [...state.came], aheadPending: state.aheadPending, heard: state.heard, seq: state.seq,
  instance: state.instance, hidden: state.hidden, playing: state.timer !== null,
  named: state.views ? [...state.views.options, ...(state.views.ahead || [])]
    .map((o) => o.key).filter(Boolean) : null,
  player: window.nnvizPlayer })"""


# The frame holds every payload Python names (its chart views' and the layers' asked for ahead)
# and asks for none.
HOLDS_NAMED = """() => state.views && state.needed.size === 0
  && [...state.views.options, ...(state.views.ahead || [])]
    .every((o) => !o.key || state.cache.has(o.key))"""


def wait_for_holding(frame, condition: str, timeout_ms: int = 60_000, arg=None) -> None:
    """Until ``condition`` (a JS function of the frame's ``state``, given ``arg``) holds; on a
    timeout the error says what the frame holds and has asked for (ASK_STATE)."""
    try:
        frame.wait_for_function(condition, arg=arg, timeout=timeout_ms)
    except Exception as exc:  # noqa: BLE001 - re-raised with the frame's state
        try:
            held = frame.evaluate(ASK_STATE)
        except Exception as inner:  # noqa: BLE001 - the frame itself is gone
            held = f"(unreadable: {inner})"
        raise AssertionError(f"the player's frame never held {condition!r}: {held}") from exc


# The charts of the payload the player shows (it keeps other layers' charts built, hidden).
SHOWN = ".payload:not([hidden]) .chart"


def chart_data(frame, chart: int, key: str) -> list:
    """``_fullData[0][key]`` of the player's ``chart``-th plotly chart as drawn (typed arrays
    decoded), as a flat list."""
    return frame.evaluate(
        """([i, key, shown]) => { const v = document.querySelectorAll(shown)[i]._fullData[0][key];
                                  return Array.from(v, r => (r && r.length !== undefined)
                                                              ? Array.from(r) : r).flat(); }""",
        [chart, key, SHOWN])


def chart_titles(frame) -> list[str]:
    """The titles of the player's charts, as drawn."""
    return frame.eval_on_selector_all(f"{SHOWN} .gtitle", "els => els.map(e => e.textContent)")
