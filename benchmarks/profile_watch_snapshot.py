"""CPU time of one ``nnviz.watch`` snapshot's statistics on ResNet-18 (torchvision's, 11.7 M
parameters): ``Watcher.compute``, the background thread's work per snapshot (statistics,
histograms, spectral norms, drift), after a few SGD steps between snapshots so the weights move
as in training and the spectral norms' warm starts are those of a real run.

Prints the median process CPU (``time.process_time``, one thread) of ``--repeats`` snapshots
after a warm-up; with ``--profile`` the top functions by own time (cProfile); with ``--parts``
the CPU of each part of the statistics over all 62 parameters, timed apart on the same
weights: the sorts, the float64 sums, np.partition at the percentiles' ranks (the
alternative to the sort), the spectral norms' exact Gram path (float64 Gram product and
eigvalsh) and their Lanczos path, and the value samples.

    python benchmarks/profile_watch_snapshot.py [--repeats 5] [--profile] [--parts]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import nnviz  # noqa: E402
from nnviz.analysis import stats  # noqa: E402
from tests.fixtures.resnet import resnet18  # noqa: E402


def _clock(parts: dict[str, float], key: str, fn, *args):
    t0 = time.process_time()
    out = fn(*args)
    parts[key] = parts.get(key, 0.0) + time.process_time() - t0
    return out


def _sums(srt: np.ndarray) -> tuple[float, float]:
    t = torch.from_numpy(srt.astype(np.float64))
    return float(torch.dot(t, t)), float(t.mean())


def _gram(m: torch.Tensor) -> torch.Tensor:
    return m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m


def parts_of(weights: list[torch.Tensor], hints: list[dict]) -> dict[str, float]:
    """CPU seconds of each part of the statistics of these weights (see the docstring)."""
    parts: dict[str, float] = {}
    pct = np.asarray(stats.PERCENTILES) / 100.0
    for w, hint in zip(weights, hints, strict=True):
        a = w.numpy().reshape(-1)
        srt = _clock(parts, "sort (np.sort, own dtype)", np.sort, a)
        lo = np.floor((a.size - 1) * pct).astype(np.intp)
        kth = np.unique(np.concatenate([lo, np.minimum(lo + 1, a.size - 1)]))
        _clock(parts, "np.partition at the ranks (not used)", np.partition, a, kth)
        _clock(parts, "float64 copy + dot + mean", _sums, srt)
        _clock(parts, "value sample", stats.sample_values, w, 65_536, 0)
        if w.ndim < 2:
            continue
        rows = w.shape[0]
        cols = w.numel() // rows
        if min(rows, cols) == 1:
            continue
        if min(rows, cols) <= stats.SPECTRAL_EXACT_MAX_DIM:
            m = torch.from_numpy(a.astype(np.float64)).reshape(rows, cols)
            g = _clock(parts, "spectral, exact: float64 Gram", _gram, m)
            _clock(parts, "spectral, exact: eigvalsh", torch.linalg.eigvalsh, g)
        else:
            _clock(parts, "spectral, Lanczos", stats._spectral_norm_of, w, tuple(w.shape),
                   float(np.sqrt(np.dot(a.astype(np.float64), a))), hint)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--parts", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = resnet18()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    profiler = cProfile.Profile() if args.profile else None
    times = []
    parts: list[dict[str, float]] = []
    part_hints = [{} for _ in model.parameters()]
    with tempfile.TemporaryDirectory() as runs:
        rec = nnviz.watch(model, opt, probe=x[:2], name="profile", runs_dir=runs)
        for k in range(args.repeats + 1):
            for _ in range(2):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            moment = rec.capture(float(k + 1))
            if profiler is not None and k:
                profiler.enable()
            t0 = time.process_time()
            rec.compute(moment)
            times.append(time.process_time() - t0)
            if profiler is not None and k:
                profiler.disable()
            if args.parts:
                with torch.no_grad():
                    parts.append(parts_of([w.clone() for w in moment.weights], part_hints))
        rec.close()
    steady = times[1:]
    print(f"ResNet-18 snapshot statistics (Watcher.compute), CPU s: median "
          f"{statistics.median(steady):.4f}, all {[round(t, 4) for t in steady]}, "
          f"first (cold) {times[0]:.4f}; load {os.getloadavg()[0]:.2f}")
    for key in parts[0] if parts else []:
        print(f"  {key:40s} {statistics.median(p[key] for p in parts[1:]) * 1e3:7.1f} ms")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
