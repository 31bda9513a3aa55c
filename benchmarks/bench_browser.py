"""App speed in a real browser (headless Debian Chromium), for simple_cnn.

Targets (app issue):
  * slider move -> every Explore chart re-rendered: median <= 300 ms
  * Train clicked -> first snapshot visible: <= 3 s on CPU

    python benchmarks/bench_browser.py [--moves 20] [--trains 5]

Explore's "This epoch" view is the epoch player: its charts hold every snapshot and are
redrawn in the browser. A slider move is timed inside the player's frame from the key press
(a capturing keydown listener) until every chart has been redrawn by Plotly.react and the
browser has painted once after (the player's own ``nnvizPlayer.drawnAt``), and also from
Playwright's side (press -> drawn frame observed), which adds the automation round trip.
It is measured on conv1 (5 charts), on conv1 with "More views" (7 charts) and on fc (5 charts,
two of 10 x 8192 weights drawn as tiles).

"Train clicked" is timed from the click on the Train page until its "Open in Explore" link
(shown once the run's first snapshot is on disk) is visible, each click on an idle server
(the previous run finished: with one training slot a click would otherwise queue); the first
click is the first thing the server does after its start page was opened.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import (  # noqa: E402
    SHOWN,
    chromium_path,
    launch_browser,
    player,
    run_app,
    wait_for_app_idle,
    wait_for_frame,
)

KEY_WATCH = """() => { window.__key = null;
  document.addEventListener('keydown', () => { window.__key = performance.now(); },
                            {capture: true}); }"""


def wait_idle(runs: Path, timeout: float = 300.0) -> None:
    """Until no run in the folder is still training."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        statuses = [json.loads(p.read_text()).get("status") for p in runs.glob("*/run.json")]
        if "running" not in statuses:
            return
        time.sleep(0.2)
    raise TimeoutError("a run is still training")


def label(index: int) -> str:
    return "init" if index == 0 else f"epoch {index}"


def pct(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))]


def scrub(page, moves: int) -> tuple[list[float], list[float], int]:
    """(in-browser ms, playwright ms, charts) for ``moves`` slider key presses."""
    frame = player(page)
    n = frame.evaluate("window.nnvizPlayer && document.getElementById('slider').max")
    n = int(n) + 1
    frame.evaluate(KEY_WATCH)
    slider = frame.locator("#slider")
    slider.focus()
    at = frame.evaluate("window.nnvizPlayer.frame")
    inside, outside = [], []
    for i in range(moves + 2):
        step = -1 if at > 0 and (i // 3) % 2 == 0 else 1
        step = 1 if at == 0 else (-1 if at == n - 1 else step)
        at += step
        t0 = time.perf_counter()
        slider.press("ArrowLeft" if step < 0 else "ArrowRight")
        wait_for_frame(frame, at)
        wall = (time.perf_counter() - t0) * 1000
        ms = frame.evaluate("window.nnvizPlayer.drawnAt - window.__key")
        if i >= 2:  # the first two moves warm the charts
            inside.append(ms)
            outside.append(wall)
    charts = frame.evaluate(f"document.querySelectorAll('{SHOWN}').length")
    return inside, outside, charts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--trains", type=int, default=5)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="nnviz-bench-"))
    out = subprocess.run([sys.executable, "-m", "nnviz", "--runs-dir", str(runs), "train",
                          "--preset", "tutorial_cnn", "--json", "--quiet"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    run_id = re.search(r'"run_id": "([^"]+)"', out).group(1)
    from playwright.sync_api import sync_playwright

    results = []
    with run_app(runs, runs / "streamlit.log") as app, sync_playwright() as p:
        browser = launch_browser(p, chromium_path())
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        trains = []
        for seed in range(args.trains):
            wait_idle(runs)  # one training slot: a click on a busy server would queue
            page.goto(f"{app.url}/Train?seed={1000 + seed}&epochs=1")
            wait_for_app_idle(page)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text(re.compile("Open in Explore")).first.wait_for(timeout=120_000)
            trains.append(time.perf_counter() - t0)

        wait_idle(runs)
        for name, query in (("conv1", "layer=conv1"), ("conv1 + More views", "layer=conv1"),
                            ("fc", "layer=fc")):
            page.goto(f"{app.url}/Explore?run={run_id}&{query}")
            wait_for_app_idle(page)
            if "More" in name:
                page.get_by_text("More views", exact=True).click()
                wait_for_app_idle(page)
                player(page).wait_for_function(  # the charts rebuilt with the extra views
                    "() => (window.nnvizPlayer.key || '').includes('|False|True|')",
                    timeout=60_000)
            results.append((name, *scrub(page, args.moves)))
        browser.close()

    print(f"Explore 'This epoch' (epoch player), simple_cnn run, {args.moves} slider moves each")
    for name, inside, outside, charts in results:
        print(f"  {name:<19} {charts} charts: key press -> every chart redrawn and painted: "
              f"median {statistics.median(inside):.0f} ms, p90 {pct(inside, 0.9):.0f} ms, "
              f"max {max(inside):.0f} ms; seen from Playwright: median "
              f"{statistics.median(outside):.0f} ms (target: median <= 300 ms)")
    print(f"Train page, simple_cnn (2000 examples), {len(trains)} clicks, the first right after "
          "the server started")
    print(f"  Train clicked -> first snapshot visible: median {statistics.median(trains):.2f} s, "
          f"max {max(trains):.2f} s (target <= 3 s); all: {', '.join(f'{t:.2f}' for t in trains)}")


if __name__ == "__main__":
    main()
