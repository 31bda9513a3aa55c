"""Recording overhead: a 3-epoch simple_cnn run with recording vs the same loop without it.

Target (engine issue): recording every epoch costs at most 5% wall time. Runs alternate
(record, plain, record, ...) in one process so that machine load affects both alike; the
medians and their ratio are printed.

    python benchmarks/bench_recording.py [--repeats 5] [--n-samples 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from nnviz.config import PRESETS  # noqa: E402
from nnviz.storage import RunStore  # noqa: E402
from nnviz.training import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = PRESETS["tutorial_cnn"].config().replace(n_samples=args.n_samples, epochs=3,
                                                   device=args.device)
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root)
        train(cfg.replace(epochs=1), store)  # warm-up: imports, allocator, data generation
        for _ in range(args.repeats):
            for record in (True, False):
                t0 = time.perf_counter()
                train(cfg, store, record=record)
                times[record].append(time.perf_counter() - t0)
    rec, plain = statistics.median(times[True]), statistics.median(times[False])
    print(f"config: simple_cnn, {cfg.n_samples} samples, batch {cfg.batch_size}, 3 epochs, "
          f"device {args.device}, {args.threads} threads, {args.repeats} repeats")
    rows = (("with recording   ", True, rec), ("without recording", False, plain))
    for label, record, median in rows:
        runs = ", ".join(f"{t:.3f}" for t in times[record])
        print(f"{label} median {median:.3f} s  (all: {runs})")
    print(f"overhead ratio    {rec / plain:.4f}  ({(rec / plain - 1) * 100:+.2f}% wall time; "
          "target <= +5%)")


if __name__ == "__main__":
    main()
