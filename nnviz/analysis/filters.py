"""How much spatial structure conv filters have: the correlation of neighbouring taps, and how
much of each filter's pattern runs in one orientation.

``neighbour_correlation(w)`` takes a conv weight (out, in, kh, kw) and returns

    r = Σ_pairs a_p · a_q / (n_pairs · mean(a²))

over every pair of horizontally or vertically adjacent taps (p, q) of every 2-D kernel a (one
per filter and input channel), pooled over all kernels. It is the lag-1 autocorrelation of the
taps about 0, the mean every standard initializer draws them around: about 0 for independent
random taps (any init), near +1 for smooth kernels and about +0.5 for an oriented edge filter
such as [[-1, 0, 1]] × 3, negative for checkerboards. Edge cases: kernels of one tap have no
neighbours and all-zero (or non-finite) weights have no scale: both give None.

``orientation_coherence(w)`` says whether that structure is oriented (an edge or stripe
detector) or not (a blob, noise). Per 2-D kernel it takes the gradient g = (∂x, ∂y) of the
taps (differences of each 2×2 block of neighbours, averaged over its two rows or columns), the
structure tensor J = Σ g gᵀ over the kernel, and its coherence

    c = (λ₁ − λ₂) / (λ₁ + λ₂) = √((Jxx − Jyy)² + 4 Jxy²) / (Jxx + Jyy)

(Bigün & Granlund 1987): 1 when every change of brightness across the kernel runs the same way
(a straight edge or stripes of any orientation), 0 when no direction is preferred (a round blob,
a flat patch); independent random taps give about 0.22 for 7×7 kernels and 0.57 for 3×3 ones
(few taps, few directions). The score is the mean over kernels. A kernel whose 2×2 gradients
are all 0 (constant, or a one-pixel checkerboard) has no orientation and counts 0; all-zero or
non-finite weights, or kernels of one tap, give None.

``structure_scores(run, param)`` is the neighbour correlation at every snapshot of a run, and
``orientation_scores(run, param)`` the orientation coherence, from the stored values.
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


def orientation_coherence(weight: np.ndarray) -> float | None:
    """Mean coherence of each kernel's gradient structure tensor: 1 for straight edges or
    stripes, 0 for blobs, about 0.22 for random 7×7 taps."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] < 2 or w.shape[3] < 2 or not np.all(np.isfinite(w)):
        return None
    if not np.any(w):
        return None
    k = w.reshape(-1, w.shape[2], w.shape[3])  # (out * in, kh, kw)
    gx = 0.5 * (k[:, 1:, 1:] - k[:, 1:, :-1] + k[:, :-1, 1:] - k[:, :-1, :-1])  # (K, kh-1, kw-1)
    gy = 0.5 * (k[:, 1:, 1:] - k[:, :-1, 1:] + k[:, 1:, :-1] - k[:, :-1, :-1])
    jxx, jyy = (gx * gx).sum(axis=(1, 2)), (gy * gy).sum(axis=(1, 2))  # (K,)
    jxy = (gx * gy).sum(axis=(1, 2))
    trace = jxx + jyy
    spread = np.sqrt((jxx - jyy) ** 2 + 4.0 * jxy ** 2)
    coherence = np.divide(spread, trace, out=np.zeros_like(trace), where=trace > 0)
    return float(coherence.mean())


def _per_snapshot(run: Run, param: str, score) -> list[tuple[float, float | None]]:
    """(epoch, score(weight)) of a conv weight stored whole, at every snapshot; a parameter
    that is not a 4-D conv weight, or is stored only as a sample, scores None."""
    info = run.record.params.get(param)
    shape = info.shape if info is not None else ()
    whole = info is not None and info.stored_whole
    out: list[tuple[float, float | None]] = []
    for snap in run.snapshots():
        if len(shape) != 4 or not whole:
            out.append((snap.epoch, None))
            continue
        out.append((snap.epoch, score(snap.values(param).reshape(shape))))
    return out


def structure_scores(run: Run, param: str) -> list[tuple[float, float | None]]:
    """(epoch, neighbour correlation) of a conv weight stored whole, at every snapshot."""
    return _per_snapshot(run, param, neighbour_correlation)


def orientation_scores(run: Run, param: str) -> list[tuple[float, float | None]]:
    """(epoch, orientation coherence) of a conv weight stored whole, at every snapshot."""
    return _per_snapshot(run, param, orientation_coherence)
