"""The filters lesson on CPU: conv1's structure and orientation scores per epoch, wall time.

Trains the ``filters`` preset exactly as Home's button does (a 1-block CNN with eight 7x7
filters, N(0, 0.01^2) init, on 16x16 images of parallel oriented edges under pixel noise, Adam
1e-3, 4 epochs) into
a temporary runs folder, then prints, per snapshot, two scores of conv1's filters (see
``nnviz.analysis.filters``): the structure score (correlation of neighbouring taps: about 0
for random taps, 0.5 for an ideal [-1, 0, 1] edge filter, 1 for a flat one) and the
orientation score (structure-tensor coherence: about 0.22 for random 7x7 taps, 1 for a straight
edge, 0 for a blob), the validation accuracy, and the training wall time and CPU time.

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

from nnviz.analysis.filters import orientation_scores, structure_scores  # noqa: E402
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
        t0, c0 = time.perf_counter(), time.process_time()
        run = store.load(train(cfg, store).run_id)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        scores = structure_scores(run, "conv1.weight")
        orient = orientation_scores(run, "conv1.weight")
    acc = {h.epoch: h.val_acc for h in run.record.history}
    print(f"filters lesson: {cfg.model} depth {cfg.depth} width {cfg.width} kernel "
          f"{cfg.kernel_size}x{cfg.kernel_size} on {cfg.dataset} (noise {cfg.noise}), "
          f"{cfg.n_samples} examples, {cfg.optimizer} lr {cfg.lr:g}, {args.threads} threads")
    print(f"{'epoch':>5}  {'structure score':>15}  {'orientation score':>17}  "
          f"{'val accuracy':>12}")
    for (epoch, score), (_, o) in zip(scores, orient, strict=True):
        a = acc.get(int(epoch))
        print(f"{epoch:>5g}  {score:>15.3f}  {o:>17.3f}  {'—' if a is None else f'{a:.1%}':>12}")
    print(f"structure score rose by {scores[-1][1] - scores[0][1]:.3f}, orientation score by "
          f"{orient[-1][1] - orient[0][1]:.3f}; training wall time {wall:.1f} s, CPU time "
          f"{cpu:.1f} s (recording included)")


if __name__ == "__main__":
    main()
