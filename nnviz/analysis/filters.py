"""How much spatial structure conv filters have: the correlation of neighbouring taps.

``neighbour_correlation(w)`` takes a conv weight (out, in, kh, kw) and returns

    r = Σ_pairs a_p · a_q / (n_pairs · mean(a²))

over every pair of horizontally or vertically adjacent taps (p, q) of every 2-D kernel a (one
per filter and input channel), pooled over all kernels. It is the lag-1 autocorrelation of the
taps about 0, the mean every standard initializer draws them around: about 0 for independent
random taps (any init), near +1 for smooth kernels and about +0.5 for an oriented edge filter
such as [[-1, 0, 1]] × 3, negative for checkerboards. Edge cases: kernels of one tap have no
neighbours and all-zero (or non-finite) weights have no scale: both give None.

``structure_scores(run, param)`` is that score at every snapshot of a run, from the stored
values.
"""

from __future__ import annotations

import numpy as np

from nnviz.store.runs import Run


def neighbour_correlation(weight: np.ndarray) -> float | None:
    """Lag-1 autocorrelation (about 0) of neighbouring taps of a conv weight (out, in, kh, kw)."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4 or (w.shape[2] < 2 and w.shape[3] < 2) or not np.all(np.isfinite(w)):
        return None
    k = w.reshape(-1, w.shape[2], w.shape[3])  # (out * in, kh, kw)
    products = (k[:, :, 1:] * k[:, :, :-1]).sum() + (k[:, 1:, :] * k[:, :-1, :]).sum()
    n_pairs = k.shape[0] * (k.shape[1] * (k.shape[2] - 1) + k.shape[2] * (k.shape[1] - 1))
    mean_sq = float((k * k).mean())
    if mean_sq == 0.0:
        return None
    return float(products / n_pairs / mean_sq)


def structure_scores(run: Run, param: str) -> list[tuple[float, float | None]]:
    """(epoch, neighbour correlation) of a conv weight stored whole, at every snapshot.

    A parameter that is not a 4-D conv weight, or is stored only as a sample, scores None.
    """
    info = run.record.params.get(param)
    shape = info.shape if info is not None else ()
    whole = info is not None and info.stored_whole
    out: list[tuple[float, float | None]] = []
    for snap in run.snapshots():
        if len(shape) != 4 or not whole:
            out.append((snap.epoch, None))
            continue
        out.append((snap.epoch, neighbour_correlation(snap.values(param).reshape(shape))))
    return out
