"""Scrubbing a ResNet-18 recorded with nnviz.watch in Explore's epoch player (headless Chromium).

Target (issue "Your own model"): one layer's redraw per slider move <= 500 ms. A ResNet-18
(torchvision's, 11.7 M parameters) is watched over a few SGD steps per snapshot; Explore opens
three of its layers (the first conv, the largest conv: 512x512x3x3, stored as a sample, and the
1000x512 classifier) and each is scrubbed with the slider's arrow keys, timed as in
``bench_browser.py`` (key press -> every chart redrawn by Plotly.react and painted).

    python benchmarks/bench_watch_browser.py [--moves 10] [--snapshots 4] [--port 8681]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nnviz  # noqa: E402
from benchmarks.bench_browser import pct, scrub  # noqa: E402
from tests.browser import harness  # noqa: E402
from tests.fixtures.resnet import resnet18  # noqa: E402

LAYERS = ("conv1", "layer4.1.conv2", "fc")


def watched_resnet(runs: Path, snapshots: int) -> str:
    torch.manual_seed(0)
    model = resnet18()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 1000, (4,))
    with nnviz.watch(model, opt, probe=x, name="resnet18", runs_dir=runs) as rec:
        for epoch in range(1, snapshots):
            for _ in range(2):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            rec.snapshot(epoch=epoch)
    return rec.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--port", type=int, default=8681, help="the app's loopback port")
    args = parser.parse_args()
    harness.free_port = lambda: args.port  # a fixed port (this machine's port plan)
    runs = Path(tempfile.mkdtemp(prefix="nnviz-bench-watch-"))
    run_id = watched_resnet(runs, args.snapshots)
    from playwright.sync_api import sync_playwright

    results = []
    with harness.run_app(runs, runs / "streamlit.log", timeout=180) as app, \
            sync_playwright() as p:
        browser = harness.launch_browser(p, harness.chromium_path())
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for layer in LAYERS:
            page.goto(f"{app.url}/Explore?run={run_id}&layer={layer}")
            harness.wait_for_app_idle(page, timeout_ms=180_000)
            harness.player(page, timeout_ms=180_000)
            results.append((layer, *scrub(page, args.moves)))
        browser.close()
    print(f"Explore 'This epoch', ResNet-18 recorded with nnviz.watch, {args.snapshots} "
          f"snapshots, {args.moves} slider moves per layer")
    for layer, inside, outside, charts in results:
        print(f"  {layer:<15} {charts} charts: key press -> redrawn and painted: median "
              f"{statistics.median(inside):.0f} ms, p90 {pct(inside, 0.9):.0f} ms, max "
              f"{max(inside):.0f} ms; from Playwright: median {statistics.median(outside):.0f} "
              "ms (target <= 500 ms)")


if __name__ == "__main__":
    main()
