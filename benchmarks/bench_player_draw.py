"""The epoch player's move, Explore and Compare in one run, with where the page spends it.

A move is a slider key press in the player's frame; it ends when ``nnvizPlayer.drawnEpoch``
(every visible chart drawn, then one paint) is stamped. Moves alternate Explore, Compare,
Explore ... on one server, so load hits both alike. Besides the wall time per move (press ->
painted, page-side) it prints the in-page breakdown: the milliseconds spent inside each Plotly
call per chart (``performance.now()`` around every ``Plotly.*`` the player makes, wrapped from
outside, so the player's code is measured as it is), which depends little on the machine's load.

    python3 benchmarks/bench_player_draw.py [--reps 15] [--runs-dir DIR] [--baseline DIR]

Without ``--runs-dir`` it trains tutorial_cnn and its Xavier twin first (about 20 s).
``--baseline DIR``: another checkout of nnviz (say ``git archive main | tar -x -C DIR``) served
beside this one over the same runs, its moves interleaved with this tree's, so "before" and
"after" share the machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_app_latency import ARM, acted, pct, train, until, uptime  # noqa: E402
from tests.browser.harness import (  # noqa: E402
    PLAYER_IFRAME,
    chromium_path,
    launch_browser,
    player,
    run_app,
)

# Wraps every Plotly function the player calls: per call, the chart's index among the shown
# charts and the ms spent synchronously inside it (plotly's drawing is synchronous).
WRAP = """() => {
  if (window.__wrapped) return; window.__wrapped = true; window.__calls = [];
  const charts = () => [...document.querySelectorAll('.payload:not([hidden]) .chart')];
  for (const name of ['react', 'restyle', 'relayout', 'update', 'newPlot']) {
    const f = Plotly[name];
    Plotly[name] = function (div, ...rest) {
      const t0 = performance.now();
      const out = f.call(this, div, ...rest);
      const t1 = performance.now();
      window.__calls.push({name, chart: charts().indexOf(div), ms: t1 - t0,
                           at: performance.timeOrigin + t1});
      return out;
    };
  }
}"""


def move(frame, page) -> dict:
    """One slider step in the player: ms until the charts on screen are drawn ("ms") and until
    every chart is ("all", where the player says so), and the Plotly calls of each part."""
    n = int(frame.evaluate("document.getElementById('slider').max")) + 1
    at = int(frame.evaluate("window.nnvizPlayer.frame"))
    want = at + 1 if at < n - 1 else at - 1
    slider = frame.locator("#slider")
    slider.focus()
    frame.evaluate("() => { window.__calls = []; }")
    frame.evaluate(ARM)
    slider.press("ArrowRight" if want > at else "ArrowLeft")
    until(frame, f"window.nnvizPlayer.frame === {want}")
    act = acted(frame)
    drawn = float(frame.evaluate("window.nnvizPlayer.drawnEpoch"))
    if frame.evaluate("'allFrame' in window.nnvizPlayer"):
        until(frame, f"window.nnvizPlayer.allFrame === {want}")
        all_ms = float(frame.evaluate("window.nnvizPlayer.allDrawnEpoch")) - act
    else:  # the player before the on-screen-first drawing: every chart is in "ms"
        all_ms = drawn - act
    calls = frame.evaluate("window.__calls")
    # the move goes back to Python a moment later: let that rerun end before the next move
    until(page, f"new URLSearchParams(location.search).get('epoch') === '{want}' && "
                "!document.querySelector('[data-testid=\"stStatusWidget\"]')")
    return {"act": act, "ms": drawn - act, "all": all_ms,
            "calls": [c for c in calls if c["at"] <= drawn],
            "later": [c for c in calls if c["at"] > drawn]}


def summary(name: str, moves: list[dict]) -> None:
    for label, key, calls in (("charts on screen", "ms", "calls"),
                              ("every chart", "all", "later")):
        wall = [m[key] for m in moves]
        print(f"{name}, {label} drawn: median {statistics.median(wall):.0f} ms, "
              f"p95 {pct(wall, 0.95):.0f} ms; "
              f"{statistics.median(len(m[calls]) for m in moves):.0f} Plotly calls taking "
              f"{statistics.median(sum(c['ms'] for c in m[calls]) for m in moves):.0f} ms"
              + (" (after the on-screen ones)" if calls == "later" else ""))
    per_chart: dict[int, list[float]] = {}
    names: dict[int, set[str]] = {}
    for m in moves:
        spent: dict[int, float] = {}
        for c in m["calls"] + m["later"]:
            spent[c["chart"]] = spent.get(c["chart"], 0.0) + c["ms"]
            names.setdefault(c["chart"], set()).add(c["name"])
        for chart, ms in spent.items():
            per_chart.setdefault(chart, []).append(ms)
    print("  ms in Plotly per chart (median over the moves that drew it, calls):")
    print("  " + "  ".join(f"#{k}: {statistics.median(v):.1f} ({'/'.join(sorted(names[k]))}, "
                           f"{len(v)}x)" for k, v in sorted(per_chart.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="moves per page")
    parser.add_argument("--runs-dir", type=Path, help="holding the two runs (newest two used)")
    parser.add_argument("--baseline", type=Path, help="a checkout to compare with")
    parser.add_argument("--width", type=int, default=1400, help="viewport width (px)")
    parser.add_argument("--json", type=Path, help="write every move's figures here")
    args = parser.parse_args()
    print("load before:", uptime())
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="nnviz-player-"))
    if args.runs_dir:
        run_a, run_b = sorted(p.name for p in runs.iterdir() if (p / "run.json").exists())[-2:]
    else:
        run_a, run_b = train(runs), train(runs, "--init", "xavier_uniform")
    from playwright.sync_api import sync_playwright

    trees = {"": ROOT} | ({"baseline ": args.baseline} if args.baseline else {})
    with sync_playwright() as p, contextlib.ExitStack() as stack:
        browser = launch_browser(p, chromium_path())
        pages = {}
        for tag, tree in trees.items():
            log = Path(tempfile.mkstemp(suffix=".log")[1])
            app = stack.enter_context(run_app(runs, log, script=tree.resolve() / "app.py"))
            for name, url in ((f"{tag}Explore", f"{app.url}/Explore?run={run_a}&layer=conv1"),
                              (f"{tag}Compare", f"{app.url}/Compare?run={run_a}&run_b={run_b}"
                                                "&layer=conv1")):
                page = browser.new_context(
                    viewport={"width": args.width, "height": 1000}).new_page()
                page.goto(url)
                frame = player(page, timeout_ms=120_000)
                # scrubbing as a reader does: the player's bar at the top of the window
                page.locator(PLAYER_IFRAME).evaluate("f => f.scrollIntoView({block: 'start'})")
                frame.evaluate(WRAP)
                move(frame, page)  # warm: the first move builds plotly's caches
                pages[name] = (page, frame)
        out: dict[str, list[dict]] = {name: [] for name in pages}
        for _ in range(args.reps):
            for name, (page, frame) in pages.items():
                out[name].append(move(frame, page))
        browser.close()
    print("load after:", uptime())
    for name, moves in out.items():
        summary(name, moves)
    if args.json:
        args.json.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
