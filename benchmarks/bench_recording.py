"""Recording overhead: a 3-epoch simple_cnn run with recording vs the same loop without it.

Target (engine issue): recording every epoch costs at most 5% wall time. Runs alternate
(record, plain, record, ...) in one process so that machine load affects both alike; the
medians and their ratio are printed for each data set size. A snapshot costs about 16 ms on
CPU (statistics, probe forward pass, fsync'd write), whatever the epoch's length, so the ratio
shrinks as epochs grow.

    python benchmarks/bench_recording.py [--repeats 5] [--n-samples 2000 10000] [--threads 2]
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

from nnviz.engine.recorder import Recorder  # noqa: E402
from nnviz.engine.training import train  # noqa: E402
from nnviz.presets import PRESETS  # noqa: E402
from nnviz.store.runs import RunStore, RunWriter  # noqa: E402


class RecordingTimer:
    """Adds up the wall time spent inside the recorder and the snapshot writes of a run."""

    METHODS = ((Recorder, ("after_backward", "before_step", "after_step", "snapshot")),
               (RunWriter, ("add_snapshot",)))

    def __init__(self) -> None:
        self.seconds = 0.0
        self._saved: list[tuple[type, str, object]] = []

    def __enter__(self) -> RecordingTimer:
        for cls, names in self.METHODS:
            for name in names:
                original = getattr(cls, name)
                self._saved.append((cls, name, original))
                setattr(cls, name, self._wrap(original))
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, original in self._saved:
            setattr(cls, name, original)

    def _wrap(self, fn):  # noqa: ANN001, ANN202
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
        return timed


def measure(n_samples: int, repeats: int, device: str
            ) -> tuple[list[float], list[float], list[float]]:
    """Wall times of alternating recorded and plain 3-epoch runs, and the in-run share."""
    cfg = PRESETS["tutorial_cnn"].config().replace(n_samples=n_samples, epochs=3,
                                                   device=device)
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root)
        train(cfg.replace(epochs=1), store)  # warm-up: imports, allocator, data generation
        shares = []
        for _ in range(repeats):
            for record in (True, False):
                with RecordingTimer() as timer:
                    t0 = time.perf_counter()
                    train(cfg, store, record=record)
                    total = time.perf_counter() - t0
                times[record].append(total)
                if record:
                    shares.append(timer.seconds / (total - timer.seconds))
    return times[True], times[False], shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-samples", type=int, nargs="+", default=[2000, 10000],
                        help="data set sizes (2000 is the tutorial preset; 80%% train)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"simple_cnn, batch 64, 3 epochs, device {args.device}, {args.threads} threads, "
          f"{args.repeats} repeats, 4 snapshots per run (init + 3 epochs)")
    for n in args.n_samples:
        rec, plain, shares = measure(n, args.repeats, args.device)
        r, p = statistics.median(rec), statistics.median(plain)
        share = statistics.median(shares)
        print(f"{n:>6} examples: with recording {r:.3f} s, without {p:.3f} s, "
              f"ratio {r / p:.4f} ({(r / p - 1) * 100:+.1f}% wall time; target <= +5%)")
        print(f"        time inside recording code, same run: {share * 100:.1f}% of the rest "
              "of the run (less noisy than the A/B ratio)")
        print(f"        all runs: recorded {', '.join(f'{t:.2f}' for t in rec)}; "
              f"plain {', '.join(f'{t:.2f}' for t in plain)}")


if __name__ == "__main__":
    main()
