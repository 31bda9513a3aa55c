"""What the trainer's image layout buys: channels_last against NCHW for nnviz's CNNs on the CPU.

``training.image_layout`` gives SimpleCNN and CNNs of 2+ blocks their colour images channels_last
on the CPU (PyTorch's CPU max-pool is several times faster in that layout; a 1-block CNN with ReLU
measured slower there, so it keeps NCHW). This prints, per model, the median time of one
training step (batch 64, SGD with momentum) with NCHW and with channels_last input, interleaved,
and whether the weights after those steps and the eval outputs are bit for bit the same; then
the CNN lessons as the app trains them (``train()``, recording on), with the layout and with it
turned off, interleaved, medians over ``--repeats`` runs after a warm-up.

    python benchmarks/bench_layout.py [--steps 24] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from nnviz.config import RunConfig  # noqa: E402
from nnviz.engine import training  # noqa: E402
from nnviz.engine.models import CNN, SimpleCNN  # noqa: E402
from nnviz.presets import PRESETS  # noqa: E402
from nnviz.store.runs import RunStore  # noqa: E402

MODELS = {
    "SimpleCNN": lambda: SimpleCNN(),
    "CNN 1 block": lambda: CNN((3, 32, 32), 10, 1, 16, "relu", False, 0.0),
    "CNN 1 block, tanh": lambda: CNN((3, 32, 32), 10, 1, 16, "tanh", False, 0.0),
    "CNN 2 blocks": lambda: CNN((3, 32, 32), 10, 2, 16, "relu", False, 0.0),
    "CNN 2 blocks + BatchNorm": lambda: CNN((3, 32, 32), 10, 2, 16, "relu", True, 0.0),
    "CNN 4 blocks + BatchNorm": lambda: CNN((3, 32, 32), 10, 4, 16, "relu", True, 0.0),
}
LESSONS = ("tutorial_cnn", "healthy", "filters")  # filters: grey images


def steps(model0: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int
          ) -> tuple[list[float], list[torch.Tensor], torch.Tensor]:
    """n SGD steps on batches of 64 from the same order: each step's seconds, the weights after
    them and the eval outputs on x."""
    model = copy.deepcopy(model0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    took = []
    for i in range(n):
        idx = order[(i * 64) % len(x):(i * 64) % len(x) + 64]
        t0 = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        took.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        out = model(x)
    return took, [p.detach() for p in model.parameters()], out


def bench_steps(n: int) -> None:
    print(f"one training step, batch 64 of (3, 32, 32), median of {n} after 4 (ms):\n")
    print("| model | NCHW | channels_last | speed-up | same bits | the trainer uses |")
    print("| --- | --- | --- | --- | --- | --- |")
    x, y = torch.randn(512, 3, 32, 32), torch.randint(0, 10, (512,))
    for name, make in MODELS.items():
        torch.manual_seed(0)
        model = make()
        last = x.contiguous(memory_format=torch.channels_last)
        uses = "channels_last" if training.image_layout(x, model) is not x else "NCHW"
        runs = {"NCHW": [], "channels_last": []}
        results = {}
        for r in range(2):  # interleaved: NCHW, CL, CL, NCHW
            for label in (("NCHW", "channels_last") if r == 0 else ("channels_last", "NCHW")):
                took, weights, out = steps(model, last if label == "channels_last" else x, y,
                                           n + 4)
                runs[label] += took[4:]
                results[label] = (weights, out)
        a, b = (statistics.median(runs[k]) * 1e3 for k in ("NCHW", "channels_last"))
        (wa, oa), (wb, ob) = results["NCHW"], results["channels_last"]
        same = all(torch.equal(u, v) for u, v in zip(wa, wb, strict=True)) and \
            torch.equal(oa, ob)
        diff = max(float((u - v).abs().max()) for u, v in zip(wa, wb, strict=True))
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f}x | "
              f"{'yes' if same else f'no (weights up to {diff:.1e} apart)'} | {uses} |")


def bench_lessons(repeats: int) -> None:
    print(f"\nthe CNN lessons as the app trains them (train(), recording on), s per run, median "
          f"of {repeats} interleaved:\n")
    print("| lesson | model, data | NCHW | channels_last | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    real = training.image_layout
    with tempfile.TemporaryDirectory(prefix="nnviz-layout-") as tmp:
        store = RunStore(Path(tmp))
        for name in LESSONS:
            cfg = RunConfig.from_dict({**PRESETS[name].overrides, "device": "cpu"})
            took: dict[str, list[float]] = {"NCHW": [], "channels_last": []}
            try:
                for r in range(repeats + 1):  # round 0: the warm-up
                    for label in (("NCHW", "channels_last") if r % 2 else
                                  ("channels_last", "NCHW")):
                        training.image_layout = real if label == "channels_last" else \
                            (lambda x, _model: x)
                        t0 = time.perf_counter()
                        training.train(cfg.replace(seed=100 + r), store)
                        if r:
                            took[label].append(time.perf_counter() - t0)
            finally:
                training.image_layout = real
            a, b = (statistics.median(took[k]) for k in ("NCHW", "channels_last"))
            print(f"| {name} | {cfg.model}, {cfg.dataset} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores\n")
    bench_steps(args.steps)
    bench_lessons(args.repeats)
    print("\nload after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
