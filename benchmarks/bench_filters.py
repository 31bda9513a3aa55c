"""The filters lesson on CPU: conv1's structure score per epoch and the wall time.

Trains the ``filters`` preset exactly as Home's button does (a 2-block CNN on 16x16 oriented
edges under pixel noise, Adam 2e-3, 6 epochs) into a temporary runs folder, then prints, per
snapshot, the structure score of conv1's filters (the correlation of neighbouring taps, see
``nnviz.analysis.filters``: about 0 for random taps, 0.5 for an ideal [-1, 0, 1] edge filter,
1 for a flat one), the validation accuracy, and the training wall time.

    python benchmarks/bench_filters.py [--threads 2] [--epochs 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from nnviz.analysis.filters import structure_scores  # noqa: E402
from nnviz.engine.training import train  # noqa: E402
from nnviz.presets import PRESETS  # noqa: E402
from nnviz.store.runs import RunStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs (default: the preset's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = PRESETS["filters"].config()
    if args.epochs:
        cfg = cfg.replace(epochs=args.epochs)
    cfg = cfg.replace(threads=args.threads)
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root)
        t0 = time.perf_counter()
        run = store.load(train(cfg, store).run_id)
        wall = time.perf_counter() - t0
        scores = structure_scores(run, "conv1.weight")
    acc = {h.epoch: h.val_acc for h in run.record.history}
    print(f"filters lesson: {cfg.model} depth {cfg.depth} width {cfg.width} on {cfg.dataset} "
          f"(noise {cfg.noise}), {cfg.n_samples} examples, {cfg.optimizer} lr {cfg.lr:g}, "
          f"{args.threads} threads")
    print(f"{'epoch':>5}  {'structure score':>15}  {'val accuracy':>12}")
    for epoch, score in scores:
        a = acc.get(int(epoch))
        print(f"{epoch:>5g}  {score:>15.3f}  {'—' if a is None else f'{a:.1%}':>12}")
    print(f"score rose by {scores[-1][1] - scores[0][1]:.3f}; training wall time {wall:.1f} s "
          f"(recording included)")


if __name__ == "__main__":
    main()
