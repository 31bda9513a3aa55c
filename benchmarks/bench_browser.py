"""App speed in a real browser (headless Debian Chromium), for simple_cnn.

Targets (app issue):
  * slider move -> every Explore chart re-rendered: median <= 300 ms
  * Train clicked -> first snapshot visible: <= 3 s on CPU

Three measurements: the "This epoch" view's Streamlit slider (a server round trip, with
Streamlit's own ~200 ms slider debounce), the "Scrub in browser" view's plotly slider (every
panel of the layer redrawn in the browser), and Train -> first snapshot.

    python benchmarks/bench_browser.py [--moves 20] [--trains 5]

A slider move is timed from the key press until the script run has finished, no element is
stale, every plotly chart holds its drawing, and the histogram title names the new epoch.
"Train clicked" is timed from the click on the Train page until its "Open in Explore" link
(shown once the run's first snapshot is on disk) is visible, each click on an idle server
(the previous run finished: with one training slot a click would otherwise queue).
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
    chromium_path,
    launch_browser,
    run_app,
    wait_for_app_idle,
)

GD = "[...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout && g.layout.sliders)"
SCRUB_WATCH = """() => { window.__down = null;
  document.addEventListener('mousedown', () => { window.__down = performance.now(); },
                            {capture: true}); }"""
# resolves once the chart shows frame `want` (its histogram data is that frame's) and painted
SCRUB_DONE = """(want) => new Promise(res => {
  const gd = GD_EXPR;
  const frameY = JSON.stringify(Array.from(gd._transitionData._frameHash[String(want)]
                                            .data[0].y).slice(0, 80));
  const check = () => {
    const ok = gd.layout.sliders[0].active === want
      && JSON.stringify(Array.from(gd.data[0].y).slice(0, 80)) === frameY;
    if (ok) requestAnimationFrame(() => res(performance.now() - window.__down));
    else requestAnimationFrame(check);
  };
  check(); })""".replace("GD_EXPR", GD)

SETTLED = """(want) => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  if (!charts.length || !charts.every(c => c.querySelector('.main-svg'))) return false;
  return [...document.querySelectorAll('[data-testid="stPlotlyChart"] .gtitle')]
    .some(t => t.textContent.includes(want));
}"""


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

    with run_app(runs, runs / "streamlit.log") as app, sync_playwright() as p:
        browser = launch_browser(p, chromium_path())
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{app.url}/Explore?run={run_id}")
        wait_for_app_idle(page)
        slider = page.get_by_role("slider").first
        index, n = 3, 4
        moves = []
        for i in range(args.moves + 2):
            step = -1 if index > 0 and (i // 3) % 2 == 0 else 1
            step = 1 if index == 0 else (-1 if index == n - 1 else step)
            index += step
            slider.focus()
            t0 = time.perf_counter()
            slider.press("ArrowLeft" if step < 0 else "ArrowRight")
            page.wait_for_function(SETTLED, arg=f"conv1.weight · {label(index)}",
                                   timeout=60_000, polling="raf")
            if i >= 2:  # the first two moves warm the server's figure cache
                moves.append((time.perf_counter() - t0) * 1000)
        n_charts = page.locator('[data-testid="stPlotlyChart"]').count()

        page.get_by_text("Scrub in browser", exact=True).click()
        page.wait_for_function(f"() => !!({GD})", timeout=60_000)
        wait_for_app_idle(page)
        page.evaluate(SCRUB_WATCH)
        labels = page.locator(".slider-group .slider-label")  # [current value, step 0, ...]
        rail = page.locator(".slider-group .slider-rail-touch-rect").bounding_box()
        boxes = [labels.nth(i + 1).bounding_box() for i in range(labels.count() - 1)]
        scrubs = []
        for i in ([2, 1, 0, 1, 2, 3] * 4)[: args.moves + 2]:
            page.mouse.click(boxes[i]["x"] + boxes[i]["width"] / 2,
                             rail["y"] + rail["height"] / 2)
            scrubs.append(page.evaluate(SCRUB_DONE, i))
        scrubs = scrubs[2:]

        trains = []
        for seed in range(args.trains):
            wait_idle(runs)  # one training slot: a click on a busy server would queue
            page.goto(f"{app.url}/Train?seed={1000 + seed}&epochs=1")
            wait_for_app_idle(page)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text(re.compile("Open in Explore")).first.wait_for(timeout=120_000)
            trains.append(time.perf_counter() - t0)
        browser.close()

    print(f"Explore, simple_cnn run, {n_charts} charts on the page, {len(moves)} slider moves")
    print(f"  slider move -> all charts re-rendered: median {statistics.median(moves):.0f} ms, "
          f"p90 {sorted(moves)[int(0.9 * (len(moves) - 1))]:.0f} ms, "
          f"max {max(moves):.0f} ms (target: median <= 300 ms)")
    print(f"Explore 'Scrub in browser', layer conv1 (histogram, filters, biases in one chart), "
          f"{len(scrubs)} slider clicks")
    print(f"  slider click -> every panel shows the new snapshot: median "
          f"{statistics.median(scrubs):.0f} ms, max {max(scrubs):.0f} ms "
          "(target: median <= 300 ms)")
    print(f"Train page, simple_cnn (2000 examples), {len(trains)} clicks")
    print(f"  Train clicked -> first snapshot visible: median {statistics.median(trains):.2f} s, "
          f"max {max(trains):.2f} s (target <= 3 s); all: {', '.join(f'{t:.2f}' for t in trains)}")


if __name__ == "__main__":
    main()
