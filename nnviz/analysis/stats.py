"""Statistics of weights and activations: the numbers behind every nnviz figure.

Plain numpy/torch; results are plain Python ``int`` / ``float`` / ``None`` (and lists of them),
ready for ``json.dumps``. Inputs may be on any device, of any real dtype (float16, bfloat16,
float32, float64; ints and bools work too) and may require grad: everything is detached, copied
to the CPU and computed in float64. Complex tensors raise ``TypeError``.

``tensor_stats(t)`` returns a dict with exactly these keys::

    numel          int          all elements, NaN and Inf included
    finite_count   int          elements that are neither NaN nor +-Inf
    nan_count      int          NaN elements
    inf_count      int          +Inf and -Inf elements together
    zero_frac      float        elements == 0.0 (-0.0 included) / numel
    mean           float        mean of the finite elements
    std            float        unbiased sample std of the finite elements (torch.std default,
                                correction=1, as Karpathy's makemore prints it)
    min, max       float        of the finite elements
    percentiles    list[float]  9 values at PERCENTILES of the finite elements, linear
                                interpolation (numpy's default method, torch.quantile's default)
    l2             float        Frobenius norm of the finite elements
    spectral_norm  float        largest singular value of t.reshape(shape[0], -1) with the
                                non-finite entries set to 0; |t| for 0-D and l2 for 1-D tensors
    stable_rank    float        l2**2 / spectral_norm**2, always >= 1

Edge cases of ``tensor_stats``:

* empty (numel == 0): the four counts are 0, every other value is None.
* single finite value: std is 0.0 (not NaN); mean == min == max == every percentile;
  spectral_norm == l2 == |value|; stable_rank 1.0.
* all values equal to c: mean exactly c, std exactly 0.0, every percentile c; stable_rank 1.0
  (rank one, up to rounding) when c != 0.
* all zeros: spectral_norm 0.0 and stable_rank None (0/0); zero_frac 1.0.
* NaN / Inf present: never raises, never silently dropped: they are counted in nan_count and
  inf_count and left out of every other statistic.
* no finite value at all: mean, std, min, max, percentiles, l2, spectral_norm and stable_rank
  are None; zero_frac is 0.0.
* huge or tiny float64 values (beyond 2**+-300): computed on values scaled by a power of two,
  so nothing overflows; only l2 / std / spectral_norm of values near the float64 limit
  (~1.8e308) can be inf, when the true result itself is beyond it.
* spectral_norm: exact (eigenvalues of the smaller Gram matrix, correct to rounding) when
  min(rows, cols) <= SPECTRAL_EXACT_MAX_DIM; above that, up to LANCZOS_STEPS steps of Golub-
  Kahan-Lanczos bidiagonalisation (a Krylov refinement of power iteration, same two mat-vecs
  per step, deterministic fixed start vector, stopped once converged): a lower bound, typically
  within 1e-5 relative on random matrices and exact when the rank is at most LANCZOS_STEPS;
  the flat spectrum of a conv weight at PyTorch's default init is the slow case (a cold
  start can end 1e-4 low; warm-started from the last snapshot's vector, within ~3e-7).

``Histogram`` (from ``histogram(values, edges)``)::

    edges      float64 (n_bins + 1,)  finite, strictly increasing
    counts     int64 (n_bins,)        bin i counts edges[i] <= x < edges[i + 1]; the last bin also
                                      counts x == edges[-1] (numpy's convention)
    underflow  int                    finite x < edges[0]
    overflow   int                    finite x > edges[-1]
    nan, posinf, neginf  int          NaN, +Inf and -Inf elements

Nothing is dropped: ``total() == counts.sum() + underflow + overflow + nan + posinf + neginf
== numel`` for every input. ``to_dict()`` gives ``{"edges": [float], "counts": [int],
"underflow": int, "overflow": int, "nan": int, "posinf": int, "neginf": int}`` and ``from_dict``
inverts it exactly (also after a JSON round trip). Edge cases: empty input gives all-zero
counts; a single value or all values equal land in one bin (or under/overflow); fewer than 2
edges (zero bins), non-finite or non-increasing edges raise ``ValueError``.

Bin edges: ``weight_edges`` (fixed per parameter for a run, from its initial values) are
symmetric about 0 exactly (``edges[i] == -edges[n_bins - i]``) with half-width
``max(max|finite| * (1 + margin), 4 * theory_std, WEIGHT_EDGE_FLOOR)``, capped at EDGE_LIMIT.
Empty, all-zero and all-non-finite inputs get the floor or 4 * theory_std. ``run_edges`` (fixed
across all snapshots of a run) cover [min, max] of the finite lows and highs, padded on each
side by RUN_EDGE_PAD of the width; a degenerate range (all equal up to 1e-9 relative, or no
finite entry) becomes value +- 5 % of |value|, or +- 0.5 around 0 when the value is 0 / absent.
Both raise ``ConfigError`` (a ``ValueError``) for n_bins < 1 (zero bins) or a non-integer.

``activation_stats(a, kind)`` returns ``mean, std, zero_frac, dead_frac, saturated_frac,
nan_count, inf_count``; mean/std as in ``tensor_stats``; zero_frac over all elements; a unit
is dim 1 (features of (B, F), channels of (B, C, H, W)), the whole tensor for ndim < 2;
dead_frac (relu, leaky_relu only, else None) is the fraction of units with no element > 0 in
the whole batch (a NaN is not > 0); saturated_frac (tanh, sigmoid only, else None) is over all
elements (NaN is not saturated). Empty input: counts 0, everything else None. An unknown kind
raises ``ConfigError`` (a ``ValueError``) naming the valid ones.

``update_ratio(before, after)`` / ``drift(w0, wt)``: ||after - before||_2 / ||before||_2; None when
both are zero (0/0), inf when only before is zero, NaN when either holds a NaN or Inf; shapes
must match (else ``ValueError``).

``sample_values(t, k, seed)``: a flat float32 copy of all values (NaN / Inf kept) when
numel <= k, else exactly k values at k distinct positions drawn uniformly without replacement by
``np.random.default_rng(seed)`` (the global numpy / torch RNGs are untouched) and returned in
their original order; the positions depend only on (seed, numel, k). k == 0 gives an empty
array, k < 0 raises ``ValueError``.

``tensor_stats_and_histogram(t, edges)`` returns ``(tensor_stats(t), histogram(t, edges))``
(the histogram None without edges), the same numbers from one sort. ``sum_of_squares(t,
minus=None)`` is the float64-accumulated sum of (t - minus)^2 used for large-tensor norms.

Performance (the recorder calls these at every snapshot; ``benchmarks/bench_recording.py``
measures it). The common case (a float tensor, all finite, ordinary magnitudes) sorts one copy
in the tensor's own dtype (the same order as its float64 values): min, max, the percentiles and
the exact-zero count come from the sorted copy (exactly as np.percentile and ``== 0``), and the
histogram by bisecting each edge in it (exactly np.histogram's counts); mean, std and l2 are
float64 dot products and sums (std from sum(x^2) - n mean^2 when that keeps ~13 digits, else two
passes). Everything else (NaN / Inf, integers, bool, values beyond 2**+-300) takes the general
path: float64 copies, as described above. ``histogram`` alone bins by arithmetic on uniform
edges, corrected by one comparison with each neighbouring edge (numpy's own method for
bins=int, exact), and by binary search on other edges. Float32 matrices above
LANCZOS_FLOAT32_ABOVE elements run Lanczos with float32 mat-vecs (about 1e-7 relative
rounding); every Lanczos stops early once a step changes the estimate by less than
LANCZOS_RTOL. ``drift`` / ``update_ratio`` of float32 tensors with at least 2**20 elements take
the difference in float32 (exact for nearby values) and sum the squares in float64 per block.
torch's float32 ``vector_norm`` is avoided on large tensors: its running sum drifts by ~1e-4
relative over millions of elements. Percentiles use a full sort on purpose: numpy's SIMD sort
of 2.4M float32 values takes ~7-11 ms here, np.partition at the 17 needed ranks ~47-59 ms.
Where a ResNet-18 snapshot's ~0.2 s goes (``benchmarks/profile_watch_snapshot.py --parts``):
sorts ~40 ms, the exact Gram path ~45 ms (its float64 products run at BLAS peak; a float32
Gram would halve it but err ~5e-7), float32 Lanczos ~40-50 ms (mat-vecs; LANCZOS_RTOL 1e-6
would halve it but err up to ~7e-6), float64 sums ~10 ms (blocked sums into a reused buffer
measured no faster than the float64 copy).
``tensor_stats_and_histogram(..., hint)`` warm-starts Lanczos from the last call's Ritz vector
(a parameter across snapshots). Norms are not numpy BLAS calls and torch reductions run
with ``torch.set_num_threads(1)`` for their duration (restored afterwards): a multi-threaded
BLAS stalls for milliseconds per call when the cores are busy. torch.quantile refuses more than
16M elements, so percentiles never use it.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import torch

from nnviz.errors import ConfigError

__all__ = [
    "ACTIVATION_KINDS",
    "DEFAULT_BINS",
    "PERCENTILES",
    "Histogram",
    "activation_stats",
    "activation_stats_many",
    "drift",
    "drift_flat",
    "histogram",
    "run_edges",
    "sample_values",
    "stats_and_histograms_flat",
    "sum_of_squares",
    "tensor_stats",
    "tensor_stats_and_histogram",
    "update_ratio",
    "weight_edges",
]

# TensorBoard's compressed-histogram points, rounded to whole percents: NORMAL_HISTOGRAM_BPS =
# (0, 668, 1587, 3085, 5000, 6915, 8413, 9332, 10000) basis points in
# tensorboard/plugins/distribution/compressor.py, the normal CDF at 0, +-0.5, +-1, +-1.5 std, +-inf.
PERCENTILES: tuple[int, ...] = (0, 7, 16, 31, 50, 69, 84, 93, 100)
DEFAULT_BINS = 60

SPECTRAL_EXACT_MAX_DIM = 256  # above this min(rows, cols), spectral_norm uses Lanczos
LANCZOS_FLOAT32_ABOVE = 1 << 20  # float32 matrices with more elements: float32 mat-vecs
LANCZOS_RTOL = (1e-12, 1e-7)  # (float64, float32): stop once a step adds less than this
# (float32: about its mat-vecs' own rounding; 1e-8 took twice the steps for ~1e-7 less)
LANCZOS_STEPS = 30  # Golub-Kahan-Lanczos steps (two mat-vecs each, like power iteration)

WEIGHT_EDGE_FLOOR = 1e-6  # smallest half-width of weight_edges (all-zero tensors)
RUN_EDGE_PAD = 0.02  # run_edges pads each side by this fraction of the range
EDGE_LIMIT = 1e300  # edges are clipped to +-EDGE_LIMIT so that they (and their widths) stay finite

ACTIVATION_KINDS: tuple[str, ...] = ("relu", "leaky_relu", "gelu", "tanh", "sigmoid", "linear")
DEAD_KINDS = ("relu", "leaky_relu")
# Saturation: Karpathy, "Building makemore Part 3: Activations & Gradients, BatchNorm"
# (karpathy/nn-zero-to-hero, lectures/makemore/makemore_part3_bn.ipynb) prints the share of
# tanh outputs with (t.abs() > 0.97). That notebook has no sigmoid; for sigmoid nnviz uses the
# same 0.03 distance from its asymptotes 0 and 1.
TANH_SATURATION = 0.97  # |tanh| > 0.97 is saturated
SIGMOID_SATURATION_LOW = 0.03  # sigmoid < 0.03 is saturated
SIGMOID_SATURATION_HIGH = 0.97  # sigmoid > 0.97 is saturated

_NUMPY_DTYPES = {torch.float16, torch.float32, torch.float64, torch.bool, torch.uint8}
_NUMPY_DTYPES |= {torch.int8, torch.int16, torch.int32, torch.int64}
_SCALE_LIMIT = 2.0**300  # values beyond 2**+-300 are scaled by a power of two first
_CHUNK = 1 << 20  # elements per chunk in _norm (bounds its temporary memory)


# ----------------------------------------------------------------------------------- helpers


def _flat_float64(x: Any, copy: bool = False) -> np.ndarray:
    """Flat C-contiguous float64 array of x: a private copy if copy, else maybe a view of x."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(f"complex tensors are not supported (dtype {x.dtype})")
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype not in _NUMPY_DTYPES:  # bfloat16, float8: exact in float32
            t = t.to(torch.float32)
        # numpy converts: torch's threaded casts are slow on a busy machine
        arr = t.numpy(force=True)
    else:
        arr = np.asarray(x)
        if np.iscomplexobj(arr):
            raise TypeError(f"complex arrays are not supported (dtype {arr.dtype})")
    return arr.astype(np.float64, order="C", copy=copy).reshape(-1)


def _pow2_scale(maxabs: float) -> float:
    """1.0 for ordinary magnitudes, else a finite power of two s with maxabs / s in [1, 2)."""
    if maxabs == 0.0 or 1.0 / _SCALE_LIMIT < maxabs < _SCALE_LIMIT:
        return 1.0
    return math.ldexp(1.0, math.frexp(maxabs)[1] - 1)


def _check_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, Integral) or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def _percentiles_sorted(ys: np.ndarray) -> np.ndarray:
    """PERCENTILES of sorted non-empty ys, linear interpolation exactly as numpy computes it."""
    n = ys.size
    h = (n - 1) * (np.asarray(PERCENTILES, dtype=np.float64) / 100.0)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    frac = h - lo
    a, b = ys[lo], ys[hi]
    diff = b - a
    # numpy's _lerp: interpolate from the nearer end, so results stay within [a, b]
    return np.where(frac >= 0.5, b - diff * (1.0 - frac), a + diff * frac)


def _finite_min_max(x: np.ndarray, mask: np.ndarray, nf: int) -> tuple[float, float]:
    """Min and max of the (nf > 0) finite entries of x."""
    if nf == x.size:
        return float(np.min(x)), float(np.max(x))
    lo = np.min(x, where=mask, initial=np.inf)
    return float(lo), float(np.max(x, where=mask, initial=-np.inf))


def _norm(y: np.ndarray, minus: np.ndarray | float | None = None) -> float:
    """Euclidean norm of y (or of y - minus), pairwise-summed in bounded-size chunks.

    Not np.linalg.norm: its BLAS dot is multi-threaded and stalls for milliseconds when the
    cores are busy (e.g. with torch's own threads); chunks bound the temporary memory.
    """
    parts = []
    for i in range(0, y.size, _CHUNK):
        d = y[i : i + _CHUNK]
        if isinstance(minus, np.ndarray):
            d = d - minus[i : i + _CHUNK]
        elif minus is not None:
            d = d - minus
        parts.append(float(np.sum(np.square(d))))
    return math.sqrt(math.fsum(parts))


def _moments(y: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Mean and unbiased std of non-empty finite y with min lo and max hi (two-pass)."""
    if lo == hi:  # all equal, or a single value: exactly (value, 0.0), not NaN
        return lo, 0.0
    mean = float(np.mean(y))
    return mean, _norm(y, mean) / math.sqrt(y.size - 1)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch single-threaded inside (restored after).

    Small dense linear algebra is fastest on one thread, and a multi-threaded BLAS stalls for
    milliseconds per call whenever the cores are busy (training, other processes). numpy's
    OpenBLAS cannot be limited per call without extra packages, hence torch here.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _tnorm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm by torch's cascade sum (torch.linalg.vector_norm's float32 running sum
    drifts by ~1e-4 relative over millions of elements; this stays near 1e-7)."""
    return torch.sum(v * v).sqrt()


_DOT_BLOCK = 1 << 16  # elements per block of sum_of_squares (no large temporaries)


def sum_of_squares(t: torch.Tensor, minus: torch.Tensor | None = None) -> float:
    """Σ (t − minus)² of a real tensor, per block of _DOT_BLOCK elements, the blocks summed in
    float64 (float32 blocks stay within ~1e-7 relative, float64 ~1e-15).

    No temporary larger than a block: fresh multi-megabyte buffers cost page faults that
    dominate a single pass over a large tensor. On a GPU, one reduction on the device.
    """
    a = t.detach().reshape(-1)
    b = minus.detach().reshape(-1).to(a.device) if minus is not None else None
    if a.dtype not in (torch.float32, torch.float64):  # ints, bool, float16 / bfloat16
        a = a.double()
    if b is not None and b.dtype != a.dtype:
        b = b.to(a.dtype) if b.dtype in (torch.float32, torch.float64) else b.double()
        a = a.to(b.dtype)
    if a.device.type != "cpu":
        d = a if b is None else a - b
        return float(torch.sum(d * d, dtype=torch.float64))
    parts = []
    with _one_thread():
        for i in range(0, a.numel(), _DOT_BLOCK):
            d = a[i : i + _DOT_BLOCK]
            if b is not None:
                d = d - b[i : i + _DOT_BLOCK]
            # float64: a dot product; float32: a cascade sum (torch's float32 dot drifts ~1e-6)
            parts.append(float(torch.dot(d, d) if d.dtype == torch.float64 else (d * d).sum()))
    return math.fsum(parts)


def _orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Remove from w its components along the orthonormal rows of basis (twice is enough)."""
    if basis.shape[0]:
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
    return w


def _lanczos_top_singular_value(m: torch.Tensor, fro: float, steps: int = LANCZOS_STEPS,
                                hint: dict | None = None) -> float:
    """Largest singular value by Golub-Kahan-Lanczos with full reorthogonalisation.

    ``hint`` (a dict the caller keeps per matrix, e.g. per parameter across snapshots): its
    "v", the top right Ritz vector of an earlier call on a matrix of the same shape, is the
    start (with a 1e-3 share of the fixed random start, so no direction is missing), and the
    new Ritz vector is stored back. Weights move little between snapshots, so a warm start
    converges in a few steps where a random one needs up to LANCZOS_STEPS; the result is a
    lower bound either way (Ritz values never overshoot)."""
    rows, cols = m.shape
    steps = min(steps, rows, cols)
    tol = 1e-12 * fro  # a smaller alpha / beta means an invariant subspace: Ritz values exact
    rtol = LANCZOS_RTOL[m.dtype == torch.float32]
    last = 0.0
    u_basis = m.new_zeros((steps, rows))
    v_basis = m.new_zeros((steps + 1, cols))
    start = torch.from_numpy(np.random.default_rng(0).standard_normal(cols)).to(m.dtype)
    start = start / _tnorm(start)
    warm = hint.get("v") if hint is not None else None
    if isinstance(warm, torch.Tensor) and tuple(warm.shape) == (cols,) and \
            bool(torch.isfinite(warm).all()) and float(_tnorm(warm)) > 0:
        start = warm.to(m.dtype) / _tnorm(warm.to(m.dtype)) + 1e-3 * start
        first_check = 1
    else:
        first_check = 3
    v_basis[0] = start / _tnorm(start)
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(steps):
        u = m @ v_basis[j]
        if j:
            u = u - betas[-1] * u_basis[j - 1]
        u = _orthogonalize(u, u_basis[:j])
        alpha = float(_tnorm(u))
        if alpha <= tol:
            break
        u_basis[j] = u / alpha
        alphas.append(alpha)
        w = _orthogonalize(m.T @ u_basis[j] - alpha * v_basis[j], v_basis[: j + 1])
        beta = float(_tnorm(w))
        if beta <= tol:
            break
        betas.append(beta)
        v_basis[j + 1] = w / beta
        if j >= first_check:  # converged: the estimate has stopped growing
            now = _ritz_top(alphas, betas)
            if now - last <= rtol * now:
                break
            last = now
        elif j == first_check - 1:
            last = _ritz_top(alphas, betas)
    if not alphas:
        return 0.0
    if hint is None:
        return _ritz_top(alphas, betas)
    top, y = _ritz_top(alphas, betas, vector=True)
    hint["v"] = (v_basis[: y.size].T @ torch.from_numpy(y).to(m.dtype)).clone()
    return top


def _ritz_top(alphas: list[float], betas: list[float], vector: bool = False) -> Any:
    """Largest singular value of U_k^T M V_{k+1}, the k x (k+1) upper bidiagonal of the
    Lanczos steps so far: a lower bound of the matrix's, growing with k. ``vector``: also its
    right singular vector (k + 1 coefficients on the V basis)."""
    k = len(alphas)
    b = np.zeros((k, k + 1))
    b[np.arange(k), np.arange(k)] = alphas
    nb = min(len(betas), k)
    b[np.arange(nb), np.arange(nb) + 1] = betas[:nb]
    if vector:
        _, sv, vt = np.linalg.svd(b)
        return float(sv[0]), vt[0]
    return float(np.linalg.svd(b, compute_uv=False)[0])


def _spectral_norm(m: np.ndarray, fro: float, hint: dict | None = None) -> float:
    """Largest singular value of a finite 2-D float64 matrix with Frobenius norm fro."""
    rows, cols = m.shape
    if fro == 0.0:
        return 0.0
    if min(rows, cols) == 1:
        return fro
    t = torch.from_numpy(m)
    with _one_thread():
        if min(rows, cols) <= SPECTRAL_EXACT_MAX_DIM:
            gram = t @ t.T if rows <= cols else t.T @ t
            return math.sqrt(max(float(torch.linalg.eigvalsh(gram)[-1]), 0.0))
        return _lanczos_top_singular_value(t, fro, hint=hint)


# ------------------------------------------------------------------------------ tensor_stats


def tensor_stats(t: torch.Tensor) -> dict:
    """Summary statistics of a tensor as plain Python numbers (see the module docstring)."""
    return tensor_stats_and_histogram(t, None)[0]


def tensor_stats_and_histogram(t: torch.Tensor, edges: np.ndarray | None,
                               hint: dict | None = None) -> tuple[dict, Histogram | None]:
    """``tensor_stats(t)`` and ``histogram(t, edges)`` (None without edges) from one sort.

    ``hint``: a dict kept by the caller per tensor across calls (a parameter over a run's
    snapshots); a Lanczos spectral norm starts from the Ritz vector it holds and stores the new
    one (see ``_lanczos_top_singular_value``)."""
    fast = _stats_sorted(t, edges, hint)
    if fast is not None:
        return fast
    return _tensor_stats_exact(t), (histogram(t, edges) if edges is not None else None)


def _stats_sorted(t: torch.Tensor, edges: np.ndarray | None, hint: dict | None = None
                  ) -> tuple[dict, Histogram | None] | None:
    """The common case (a float tensor, all finite, ordinary magnitudes) from one sort.

    Sorting in the tensor's own dtype gives the same order as sorting its float64 values; the
    sorted float64 copy then yields min, max, percentiles and exact-zero count (by bisection),
    the histogram (each edge bisected: the same counts as comparing every value) and, by torch
    float64 reductions, mean, std and l2. None (use the general path) for anything else.
    """
    if not isinstance(t, torch.Tensor) or t.dtype not in (torch.float16, torch.float32,
                                                          torch.float64) or t.numel() < 2:
        return None
    shape = tuple(t.shape)
    a = _flat_real(t)
    srt = np.sort(a)
    lo, hi = float(srt[0]), float(srt[-1])  # NaN sorts last, -inf first
    if not (math.isfinite(lo) and math.isfinite(hi)) or _pow2_scale(max(-lo, hi)) != 1.0:
        return None
    e = _check_edges(edges) if edges is not None else None
    y = srt.astype(np.float64, copy=False)  # (n,) sorted
    n = y.size
    ty = torch.from_numpy(y)
    zeros = int(np.searchsorted(y, 0.0, side="right") - np.searchsorted(y, 0.0, side="left"))
    with _one_thread():  # single-threaded: threads stall on a busy machine
        sq = float(torch.dot(ty, ty))
        l2 = math.sqrt(sq)
        if lo == hi:
            mean, std = lo, 0.0
        else:
            mean = float(torch.mean(ty))
            ss = sq - n * mean * mean  # exact to ~1e-13 unless mean² dominates the squares
            if not ss > 1e-3 * sq:
                ss = float(_tnorm(ty - mean)) ** 2  # then two passes, as _moments
            std = math.sqrt(max(ss, 0.0) / (n - 1))
    if len(shape) >= 2:
        spectral = _spectral_norm_of(t, shape, l2, hint)
    else:
        spectral = l2
    out = {
        "numel": n, "mean": mean, "std": std, "min": lo, "max": hi,
        "percentiles": [float(p) for p in _percentiles_sorted(y)],
        "l2": l2, "spectral_norm": spectral,
        "stable_rank": max(1.0, (l2 / spectral) ** 2) if spectral > 0.0 else None,
        "zero_frac": zeros / n, "nan_count": 0, "inf_count": 0, "finite_count": n,
    }
    hist = None
    if e is not None:
        cut = np.searchsorted(y, e, side="left")
        cut[-1] = np.searchsorted(y, e[-1], side="right")  # the last bin holds its right edge
        hist = Histogram(edges=e, counts=np.diff(cut), underflow=int(cut[0]),
                         overflow=int(n - cut[-1]))
    return out, hist


def stats_and_histograms_flat(flat: np.ndarray, shapes: Sequence[tuple[int, ...]],
                              edges: Sequence[np.ndarray],
                              hints: Sequence[dict | None] | None = None
                              ) -> list[tuple[dict, Histogram] | None]:
    """``tensor_stats_and_histogram`` of many tensors laid end to end in ``flat`` (1-D float32
    or float64, the tensors' values in order, of these ``shapes``) in one vectorised pass.

    The same numbers as one call per tensor: each tensor's values are sorted (in the array's
    dtype, the order of their float64 values) for min, max, percentiles (numpy's linear
    interpolation, the same arithmetic) and the histogram (each edge bisected); sums, the
    two-pass centred sum of squares, zero counts and drift-free norms are float64 sums per
    segment (``np.add.reduceat``), one call for all tensors; spectral norms of matrices of the
    same shape share one batched Gram eigendecomposition. For a tiny model this replaces ~30
    small numpy / torch calls per tensor by ~4. A tensor the fast path does not cover (empty,
    NaN / Inf, magnitudes beyond 2**+-300) gets None: give it to tensor_stats_and_histogram.
    """
    if flat.ndim != 1 or flat.dtype not in (np.float32, np.float64):
        raise ValueError(f"flat must be a 1-D float32 or float64 array, got {flat.dtype} "
                         f"{flat.shape}")
    k = len(shapes)
    sizes = np.array([math.prod(s) for s in shapes], dtype=np.intp)
    if int(sizes.sum()) != flat.size or len(edges) != k:
        raise ValueError(f"{flat.size} values for shapes of {int(sizes.sum())} elements "
                         f"and {len(edges)} edge arrays for {k} tensors")
    checked = _check_edges_all(edges)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    srt = flat.copy()
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        if hi - lo > 1:
            srt[lo:hi].sort()
    y = srt.astype(np.float64, copy=False)
    nonempty = sizes > 0
    out: list[tuple[dict, Histogram] | None] = [None] * k
    if not nonempty.any():
        return out
    first = y[np.minimum(starts, y.size - 1)]
    last = y[np.maximum(ends - 1, 0)]
    with np.errstate(all="ignore"):
        top = np.maximum(-first, last)
        ok = nonempty & np.isfinite(first) & np.isfinite(last) & \
            ((top == 0.0) | ((top > 1.0 / _SCALE_LIMIT) & (top < _SCALE_LIMIT)))
        if not ok.any():
            return out
        if not ok.all():  # keep non-finite values out of the sums (their results are dropped)
            y = y.copy()
            y[np.repeat(~ok, sizes)] = 0.0
        idx = starts[nonempty]
        sums = np.zeros(k)
        sq = np.zeros(k)
        zeros = np.zeros(k, dtype=np.intp)
        sums[nonempty] = np.add.reduceat(y, idx)
        sq[nonempty] = np.add.reduceat(y * y, idx)
        zeros[nonempty] = np.add.reduceat(y == 0.0, idx, dtype=np.intp)
        n = np.maximum(sizes, 1)
        mean = sums / n
        d = y - np.repeat(mean, sizes)  # two passes, as numpy's var
        ss = np.zeros(k)
        ss[nonempty] = np.add.reduceat(d * d, idx)
        equal = first == last
        mean = np.where(equal, first, mean)  # all equal (or one value): exactly it, std 0
        std = np.where(equal, 0.0, np.sqrt(ss / np.maximum(sizes - 1, 1)))
        l2 = np.sqrt(sq)
        h = (n[:, None] - 1) * (np.asarray(PERCENTILES, dtype=np.float64) / 100.0)
        lo_i = np.floor(h).astype(np.intp)
        hi_i = np.minimum(lo_i + 1, n[:, None] - 1)
        frac = h - lo_i
        a = y[np.minimum(starts[:, None] + lo_i, y.size - 1)]
        b = y[np.minimum(starts[:, None] + hi_i, y.size - 1)]
        diff = b - a
        pct = np.where(frac >= 0.5, b - diff * (1.0 - frac), a + diff * frac)  # numpy's _lerp
    spectral = _spectral_norms_flat(flat, shapes, starts, ends, l2, ok, hints)
    rows = zip(sizes.tolist(), mean.tolist(), std.tolist(), first.tolist(), last.tolist(),
               pct.tolist(), l2.tolist(), spectral, zeros.tolist(), strict=True)
    for i, (size, mu, sd, lo, hi, p, norm, spec, nz) in enumerate(rows):
        if not ok[i]:
            continue
        e = checked[i]
        seg = y[starts[i]:ends[i]]
        cut = np.searchsorted(seg, e, side="left")
        cut[-1] = np.searchsorted(seg, e[-1], side="right")  # the last bin holds its right edge
        entry = {
            "numel": size, "mean": mu, "std": sd, "min": lo, "max": hi, "percentiles": p,
            "l2": norm, "spectral_norm": spec,
            "stable_rank": max(1.0, (norm / spec) ** 2) if spec > 0.0 else None,
            "zero_frac": nz / size, "nan_count": 0, "inf_count": 0, "finite_count": size,
        }
        out[i] = entry, Histogram._checked(e, np.diff(cut), int(cut[0]), int(size - cut[-1]))
    return out


def _check_edges_all(edges: Sequence[np.ndarray]) -> list[np.ndarray]:
    """_check_edges of each array; one vectorised check when they have the same length."""
    arrays = [np.asarray(e, dtype=np.float64) for e in edges]
    if arrays and len({a.shape for a in arrays}) == 1 and arrays[0].ndim == 1 and \
            arrays[0].size >= 2:
        m = np.stack(arrays)
        if np.all(np.isfinite(m)) and np.all(np.diff(m, axis=1) > 0):
            return arrays
    return [_check_edges(a) for a in arrays]


def _spectral_norms_flat(flat: np.ndarray, shapes: Sequence[tuple[int, ...]],
                         starts: np.ndarray, ends: np.ndarray, l2: np.ndarray, ok: np.ndarray,
                         hints: Sequence[dict | None] | None) -> list[float]:
    """spectral_norm of each ok tensor of stats_and_histograms_flat (l2 for 0-D / 1-D ones);
    exact Gram eigenvalues batched per Gram size (the smaller side: a (64, 3) and a (3, 64)
    weight share one eigvalsh call; 2 x 2 Grams in closed form), Lanczos above
    SPECTRAL_EXACT_MAX_DIM."""
    out = [float(v) for v in l2.tolist()]
    batches: dict[int, list[tuple[int, int, int]]] = {}  # Gram size: (tensor, rows, cols)
    for i, shape in enumerate(shapes):
        if not ok[i] or len(shape) < 2 or l2[i] == 0.0:
            continue  # 0-D / 1-D: the l2 norm; all zeros: 0.0
        rows = shape[0]
        cols = (ends[i] - starts[i]) // rows
        if min(rows, cols) == 1:
            continue  # the l2 norm
        if min(rows, cols) <= SPECTRAL_EXACT_MAX_DIM:
            batches.setdefault(min(rows, cols), []).append((i, rows, cols))
            continue
        seg = flat[starts[i]:ends[i]]
        hint = hints[i] if hints is not None else None
        with _one_thread():
            if seg.dtype == np.float32 and seg.size > LANCZOS_FLOAT32_ABOVE:
                m = torch.from_numpy(seg).reshape(rows, cols)
            else:
                m = torch.from_numpy(seg.astype(np.float64)).reshape(rows, cols)
            out[i] = _lanczos_top_singular_value(m, float(l2[i]), hint=hint)
    pairs = batches.pop(2, [])
    if pairs:  # 2 x 2 Grams [[a, b], [b, c]]: the top eigenvalue in closed form
        top2 = _top_eigenvalue_2x2([_gram_2x2(flat[starts[i]:ends[i]], rows, cols)
                                    for i, rows, cols in pairs])
        for (i, _, _), v in zip(pairs, top2.tolist(), strict=True):
            out[i] = math.sqrt(max(v, 0.0))
    with _one_thread():
        for members in batches.values():
            grams = []
            for i, rows, cols in members:  # the smaller Gram, in float64
                m = torch.from_numpy(flat[starts[i]:ends[i]].astype(np.float64))
                m = m.reshape(rows, cols)
                grams.append(m @ m.T if rows <= cols else m.T @ m)  # (side, side)
            top = torch.linalg.eigvalsh(torch.stack(grams))[:, -1].tolist()
            for (i, _, _), v in zip(members, top, strict=True):
                out[i] = math.sqrt(max(v, 0.0))
    return out


def _gram_2x2(seg: np.ndarray, rows: int, cols: int) -> tuple[float, float, float]:
    """(a, b, c) of the 2 x 2 Gram [[a, b], [b, c]] of a (rows, cols) matrix with a side of 2
    (its two rows or columns dotted in float64)."""
    m = seg.astype(np.float64).reshape(rows, cols)
    u, v = (m[0], m[1]) if rows == 2 else (m[:, 0], m[:, 1])
    return float(u @ u), float(u @ v), float(v @ v)


def _top_eigenvalue_2x2(grams: list[tuple[float, float, float]]) -> np.ndarray:
    """Largest eigenvalue of each symmetric PSD [[a, b], [b, c]]: (a + c) / 2 + hypot((a - c)
    / 2, b), a sum of non-negative terms (a, c >= 0), so correct to a few ulps, as eigvalsh."""
    a, b, c = np.asarray(grams, dtype=np.float64).T
    return 0.5 * (a + c) + np.hypot(0.5 * (a - c), b)


def drift_flat(w0: np.ndarray, wt: np.ndarray, sizes: Sequence[int]) -> list[float | None]:
    """``drift`` of each tensor laid end to end in the 1-D arrays w0 and wt (float32 or
    float64, the same shapes): float64 sums per segment, one call for all, with drift's
    conventions (None for 0/0, inf for x/0, NaN where either holds a NaN or Inf). Tensors of
    magnitudes beyond 2**+-300 are computed one by one, scaled as ``drift`` does."""
    if w0.shape != wt.shape or w0.ndim != 1:
        raise ValueError(f"shapes differ: {w0.shape} vs {wt.shape}")
    size = np.asarray(sizes, dtype=np.intp)
    if int(size.sum()) != w0.size:
        raise ValueError(f"{w0.size} values for sizes adding up to {int(size.sum())}")
    out: list[float | None] = [None] * size.size
    nonempty = size > 0
    if not nonempty.any():
        return out
    idx = (np.cumsum(size) - size)[nonempty]
    r = w0.astype(np.float64, copy=False)
    w = wt.astype(np.float64, copy=False)
    with np.errstate(all="ignore"):
        den = np.zeros(size.size)
        num = np.zeros(size.size)
        den[nonempty] = np.add.reduceat(r * r, idx)
        d = w - r
        num[nonempty] = np.add.reduceat(d * d, idx)
        top = np.zeros(size.size)
        top[nonempty] = np.maximum(np.maximum.reduceat(np.abs(r), idx),
                                   np.maximum.reduceat(np.abs(w), idx))
    starts = np.cumsum(size) - size
    for i, (n_i, t, a, b) in enumerate(zip(size.tolist(), top.tolist(), num.tolist(),
                                           den.tolist(), strict=True)):
        if n_i == 0:
            continue
        if not math.isfinite(t):  # a NaN or an Inf in either (NaN propagates through max)
            out[i] = float("nan")
        elif t != 0.0 and not 1.0 / _SCALE_LIMIT < t < _SCALE_LIMIT:
            seg = slice(starts[i], starts[i] + n_i)
            out[i] = _relative_change(torch.from_numpy(np.array(w0[seg])),
                                      torch.from_numpy(np.array(wt[seg])))
        elif b == 0.0:
            out[i] = None if a == 0.0 else float("inf")
        else:
            out[i] = math.sqrt(a) / math.sqrt(b)
    return out


def _spectral_norm_of(t: torch.Tensor, shape: tuple[int, ...], fro: float,
                      hint: dict | None = None) -> float:
    """spectral_norm of a finite tensor: float32 mat-vecs for large float32 matrices."""
    rows = shape[0]
    cols = t.numel() // rows
    if t.dtype == torch.float32 and t.numel() > LANCZOS_FLOAT32_ABOVE and \
            min(rows, cols) > SPECTRAL_EXACT_MAX_DIM:
        m = t.detach().cpu().reshape(rows, cols)
        with _one_thread():
            return _lanczos_top_singular_value(m, fro, hint=hint)
    return _spectral_norm(_flat_float64(t).reshape(rows, cols), fro, hint)


def _finite_counts(x: np.ndarray) -> tuple[int, np.ndarray, int, int]:
    """(size, finite mask, finite count, NaN count) of a flat array."""
    n = int(x.size)
    finite_mask = np.isfinite(x)
    nf = int(np.count_nonzero(finite_mask))
    return n, finite_mask, nf, int(np.count_nonzero(np.isnan(x))) if nf < n else 0


def _tensor_stats_exact(t: torch.Tensor) -> dict:
    """tensor_stats for every input (NaN / Inf, huge or tiny values, integer dtypes)."""
    shape = tuple(t.shape)
    x = _flat_float64(t, copy=True)  # private: sorted in place below
    n, finite_mask, nf, nan_count = _finite_counts(x)
    out: dict[str, Any] = {
        "numel": n,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "percentiles": None,
        "l2": None,
        "spectral_norm": None,
        "stable_rank": None,
        "zero_frac": float(np.count_nonzero(x == 0.0)) / n if n else None,
        "nan_count": nan_count,
        "inf_count": n - nf - nan_count,
        "finite_count": nf,
    }
    if nf == 0:
        return out
    lo, hi = _finite_min_max(x, finite_mask, nf)
    s = _pow2_scale(max(-lo, hi))
    # y: the finite values divided by s (exact: a power of two), a private array
    y = x if nf == n else x[finite_mask]
    if s != 1.0:
        y /= s
    l2 = _norm(y)
    if len(shape) >= 2:
        z = y if nf == n else np.where(finite_mask, x, 0.0) / s
        spectral = _spectral_norm(z.reshape(shape[0], -1), l2)
    else:
        spectral = l2
    mean, std = _moments(y, lo / s, hi / s)
    y.sort()  # in place: sorting a fresh copy of a large tensor costs more than the sort
    out.update(
        mean=mean * s,
        std=std * s,
        min=lo,
        max=hi,
        percentiles=[float(p) * s for p in _percentiles_sorted(y)],
        l2=l2 * s,
        spectral_norm=spectral * s,
        stable_rank=max(1.0, (l2 / spectral) ** 2) if spectral > 0.0 else None,
    )
    return out


# ------------------------------------------------------------------------------------- edges


def weight_edges(
    values: np.ndarray,
    n_bins: int = DEFAULT_BINS,
    theory_std: float | None = None,
    margin: float = 0.5,
    maxabs: float | None = None,
) -> np.ndarray:
    """Bin edges symmetric about 0 for one parameter, fixed for a run from its initial values.

    ``maxabs``: the largest |finite value| of ``values`` when the caller has it already (the
    recorder measures all parameters in one fused call); ``values`` are then not read."""
    n_bins = _check_bins(n_bins)
    if not (math.isfinite(margin) and margin >= 0.0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if theory_std is not None and theory_std < 0:
        raise ValueError(f"theory_std must be >= 0, got {theory_std!r}")
    if maxabs is None or not math.isfinite(maxabs):
        x = _flat_float64(values)
        finite = x[np.isfinite(x)]
        maxabs = float(np.max(np.abs(finite))) if finite.size else 0.0
    half = max(maxabs * (1.0 + margin), WEIGHT_EDGE_FLOOR)
    if theory_std is not None and math.isfinite(theory_std):
        half = max(half, 4.0 * float(theory_std))
    half = min(half, EDGE_LIMIT)
    steps = 2.0 * np.arange(n_bins + 1, dtype=np.float64) - n_bins  # exact odd symmetry
    return half * (steps / n_bins)


def run_edges(
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    n_bins: int = DEFAULT_BINS,
) -> np.ndarray:
    """Bin edges covering every snapshot's [low, high] of a run, padded by RUN_EDGE_PAD."""
    n_bins = _check_bins(n_bins)
    vals = [float(v) for v in (*lows, *highs) if v is not None and math.isfinite(float(v))]
    lo = max(min(vals), -EDGE_LIMIT) if vals else 0.0
    hi = min(max(vals), EDGE_LIMIT) if vals else 0.0
    width = hi - lo
    if width > 1e-9 * max(abs(lo), abs(hi)):
        pad = RUN_EDGE_PAD * width
        edges = np.linspace(lo - pad, hi + pad, n_bins + 1)
        if np.all(np.diff(edges) > 0):
            return edges
    center = 0.5 * lo + 0.5 * hi
    half = 0.05 * abs(center) if abs(center) > 1e-290 else 0.5
    return np.linspace(center - half, center + half, n_bins + 1)


# --------------------------------------------------------------------------------- histogram


def _check_edges(edges: Any) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"edges must be 1-D with at least 2 entries (1 bin), got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("edges must be finite")
    if not np.all(np.diff(e) > 0):
        raise ValueError("edges must be strictly increasing")
    return e


@dataclass(eq=False)
class Histogram:
    """Counts on fixed edges plus everything outside them (see the module docstring)."""

    edges: np.ndarray
    counts: np.ndarray
    underflow: int = 0
    overflow: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0

    def __post_init__(self) -> None:
        self.edges = _check_edges(self.edges)
        self.counts = np.asarray(self.counts, dtype=np.int64).reshape(-1)
        if self.counts.size != self.edges.size - 1:
            raise ValueError(
                f"{self.counts.size} counts for {self.edges.size} edges: need len(edges) - 1"
            )
        for name in ("underflow", "overflow", "nan", "posinf", "neginf"):
            setattr(self, name, int(getattr(self, name)))

    @classmethod
    def _checked(cls, edges: np.ndarray, counts: np.ndarray, underflow: int, overflow: int
                 ) -> Histogram:
        """A histogram of finite values on edges already checked (skips __post_init__)."""
        h = cls.__new__(cls)
        h.edges, h.counts = edges, counts.astype(np.int64, copy=False)
        h.underflow, h.overflow, h.nan, h.posinf, h.neginf = underflow, overflow, 0, 0, 0
        return h

    def total(self) -> int:
        """Every element counted: bins + underflow + overflow + nan + posinf + neginf."""
        outside = self.underflow + self.overflow + self.nan + self.posinf + self.neginf
        return int(self.counts.sum()) + outside

    def to_dict(self) -> dict:
        """JSON-ready dict of lists and ints."""
        return {
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "underflow": self.underflow,
            "overflow": self.overflow,
            "nan": self.nan,
            "posinf": self.posinf,
            "neginf": self.neginf,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Histogram:
        """Inverse of ``to_dict``."""
        return cls(
            edges=np.asarray(d["edges"], dtype=np.float64),
            counts=np.asarray(d["counts"], dtype=np.int64),
            underflow=d["underflow"],
            overflow=d["overflow"],
            nan=d["nan"],
            posinf=d["posinf"],
            neginf=d["neginf"],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            np.array_equal(self.edges, other.edges)
            and np.array_equal(self.counts, other.counts)
            and (self.underflow, self.overflow, self.nan, self.posinf, self.neginf)
            == (other.underflow, other.overflow, other.nan, other.posinf, other.neginf)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


def histogram(values: np.ndarray | torch.Tensor, edges: np.ndarray) -> Histogram:
    """Count values on edges; out-of-range and non-finite values are counted separately."""
    e = _check_edges(edges)
    x = _flat_real(values)
    if x.size and np.isfinite(np.min(x)) and np.isfinite(np.max(x)):  # NaN propagates: all finite
        finite, nan, posinf, neginf = x, 0, 0, 0
    else:
        finite_mask = np.isfinite(x)
        finite = x[finite_mask]
        nan = int(np.count_nonzero(np.isnan(x)))
        posinf = int(np.count_nonzero(x == np.inf))
        neginf = int(np.count_nonzero(x == -np.inf))
    counts, below, above = _bin_counts(finite, e)
    return Histogram(edges=e, counts=counts, underflow=below, overflow=above, nan=nan,
                     posinf=posinf, neginf=neginf)


def _flat_real(x: Any) -> np.ndarray:
    """Flat array of x in its own float dtype (float16/32/64), or float64 for anything else.

    Binning compares each value with the float64 edges (numpy promotes exactly), so no float64
    copy of a float32 tensor is needed.
    """
    if isinstance(x, torch.Tensor) and x.dtype in (torch.float16, torch.float32, torch.float64):
        t = x.detach()
        return (t.cpu() if t.device.type != "cpu" else t).numpy(force=True).reshape(-1)
    if isinstance(x, np.ndarray) and x.dtype in (np.float16, np.float32, np.float64):
        return x.reshape(-1)
    return _flat_float64(x)


_BIN_BLOCK = 1 << 16  # elements per block of _bin_counts (its temporaries stay in cache)
_UNIFORM_TOL = 1e-6  # edges within this fraction of a bin of uniform use arithmetic binning


def _bin_counts(x: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(counts, below, above) of finite x on strictly increasing edges e.

    Bin i counts e[i] <= x < e[i + 1], the last bin also x == e[-1] (numpy's convention). On
    uniform edges (all of weight_edges, run_edges and linspace), the bin is first computed by
    arithmetic, then corrected by one comparison with each neighbouring edge, as numpy's own
    np.histogram does for bins=int: exact, since the arithmetic guess is off by less than one
    bin; other edges use a binary search.
    """
    n_bins = e.size - 1
    widths = np.diff(e)
    step = (e[-1] - e[0]) / n_bins
    uniform = bool(np.all(np.abs(widths - step) <= _UNIFORM_TOL * step))
    counts = np.zeros(n_bins + 1, dtype=np.int64)  # the extra slot collects out-of-range values
    lo, hi = e[0], e[-1]
    norm = n_bins / (hi - lo)
    for i in range(0, x.size, _BIN_BLOCK):
        b = x[i : i + _BIN_BLOCK]
        if uniform:
            # the guess, clipped into [0, n_bins - 1] (NaN-free: x is finite; huge values clip)
            g = (b.astype(np.float64, copy=False) - lo) * norm
            np.clip(g, 0, n_bins - 1, out=g)
            idx = g.astype(np.intp)
            idx -= b < e[idx]  # comparisons in float64: exact for every input dtype
            idx += (b >= e[idx + 1]) & (idx != n_bins - 1)
        else:
            idx = np.searchsorted(e, b, side="right") - 1
            np.minimum(idx, n_bins - 1, out=idx)
        idx[(b < lo) | (b > hi)] = n_bins
        counts += np.bincount(idx, minlength=n_bins + 1)
    below = int(np.count_nonzero(x < lo))
    return counts[:n_bins], below, int(counts[n_bins]) - below


# -------------------------------------------------------------------------------- sampling


def sample_values(t: torch.Tensor, k: int, seed: int = 0) -> np.ndarray:
    """All values (flat float32 copy) if numel <= k, else k of them drawn without replacement."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
    flat = t.detach().reshape(-1)
    n = flat.numel()
    if n > k:
        flat = flat[_sample_positions(n, k, seed).to(flat.device)]
    out = flat.to(torch.float32).cpu().numpy(force=True)
    return np.array(out, dtype=np.float32, copy=True)


@functools.lru_cache(maxsize=32)
def _sample_positions(n: int, k: int, seed: int) -> torch.Tensor:
    """sample_values' k sorted positions of n (the same every snapshot: kept, ~2 ms each)."""
    # a private Generator: the global numpy / torch RNG states are left untouched
    idx = np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
    return torch.from_numpy(idx.astype(np.int32 if n < 2**31 else np.int64))


# ------------------------------------------------------------------------------- activations


def activation_stats(a: torch.Tensor, kind: str) -> dict:
    """Mean, std, zero / dead / saturated fractions and NaN / Inf counts of an activation."""
    if kind not in ACTIVATION_KINDS:
        raise ConfigError(f"unknown activation kind {kind!r}; valid: {', '.join(ACTIVATION_KINDS)}")
    shape = tuple(a.shape)
    fast = _activation_stats_torch(a, kind)
    if fast is not None:
        return fast
    x = _flat_float64(a)
    n, finite_mask, nf, nan_count = _finite_counts(x)
    out: dict[str, Any] = {
        "mean": None,
        "std": None,
        "zero_frac": None,
        "dead_frac": None,
        "saturated_frac": None,
        "nan_count": nan_count,
        "inf_count": n - nf - nan_count,
    }
    if n == 0:
        return out
    if nf:
        lo, hi = _finite_min_max(x, finite_mask, nf)
        s = _pow2_scale(max(-lo, hi))
        y = x if nf == n else x[finite_mask]
        mean, std = _moments(y / s if s != 1.0 else y, lo / s, hi / s)
        out["mean"], out["std"] = mean * s, std * s
    out["zero_frac"] = float(np.count_nonzero(x == 0.0)) / n
    if kind in DEAD_KINDS:
        positive = x > 0.0
        if len(shape) >= 2:
            alive = positive.reshape(shape[0], shape[1], -1).any(axis=(0, 2))
            out["dead_frac"] = 1.0 - float(np.count_nonzero(alive)) / alive.size
        else:
            out["dead_frac"] = 0.0 if positive.any() else 1.0
    if kind == "tanh":
        out["saturated_frac"] = float(np.count_nonzero(np.abs(x) > TANH_SATURATION)) / n
    elif kind == "sigmoid":
        sat = (x < SIGMOID_SATURATION_LOW) | (x > SIGMOID_SATURATION_HIGH)
        out["saturated_frac"] = float(np.count_nonzero(sat)) / n
    return out


MANY_MAX = 1 << 12  # activation_stats_many batches tensors of at most this many elements
MANY_TOTAL = 1 << 15  # and at most this many in one pass (its float64 temporaries stay in cache;
# past ~8 k elements a tensor, torch's float32 pass per tensor is faster)


def activation_stats_many(acts: Sequence[torch.Tensor], kinds: Sequence[str]
                          ) -> list[dict | None]:
    """``activation_stats`` of many small tensors in one vectorised pass (a probe's layers).

    Every tensor of at most MANY_MAX elements (MANY_TOTAL in all; callers pass more in
    chunks), on the CPU, float16 / float32 / float64, all
    finite and of ordinary magnitudes (as ``stats_and_histograms_flat``) is laid end to end in
    one float64 array; mean, the two-pass centred sum of squares, the zero and saturated counts
    are float64 sums per segment (``np.add.reduceat``), min / max per segment decide finiteness,
    dead units are one max per layer. The numbers are ``activation_stats``' (in float64 where
    its fast path sums float32 values: within ~1e-12 of numpy's float64 ones); all equal values
    give exactly that value as mean and 0.0 as std. Any other tensor gets None: give it to
    ``activation_stats``. An unknown kind raises ``ConfigError``.
    """
    for kind in kinds:
        if kind not in ACTIVATION_KINDS:
            raise ConfigError(f"unknown activation kind {kind!r}; valid: "
                              f"{', '.join(ACTIVATION_KINDS)}")
    out: list[dict | None] = [None] * len(acts)
    take = [i for i, a in enumerate(acts)
            if isinstance(a, torch.Tensor) and a.device.type == "cpu" and
            a.dtype in (torch.float16, torch.float32, torch.float64) and
            0 < a.numel() <= MANY_MAX]
    if not take:
        return out
    parts = [acts[i].detach().reshape(-1).numpy() for i in take]
    sizes = np.array([p.size for p in parts], dtype=np.intp)
    idx = np.cumsum(sizes) - sizes
    y = np.concatenate(parts, dtype=np.float64)
    with np.errstate(all="ignore"):
        lo = np.minimum.reduceat(y, idx)  # NaN propagates: a segment with one is not ok
        hi = np.maximum.reduceat(y, idx)
        top = np.maximum(-lo, hi)
        ok = np.isfinite(lo) & np.isfinite(hi) & \
            ((top == 0.0) | ((top > 1.0 / _SCALE_LIMIT) & (top < _SCALE_LIMIT)))
        if not ok.all():  # keep non-finite values out of the sums (their results are dropped)
            y[np.repeat(~ok, sizes)] = 0.0
        mean = np.add.reduceat(y, idx) / sizes
        d = y - np.repeat(mean, sizes)
        ss = np.add.reduceat(d * d, idx)
        equal = lo == hi
        mean = np.where(equal, lo, mean)  # all equal (or one value): exactly it, std 0
        std = np.where(equal, 0.0, np.sqrt(ss / np.maximum(sizes - 1, 1)))
        zeros = np.add.reduceat(y == 0.0, idx, dtype=np.intp)
        picked = [kinds[i] for i in take]
        tanh = np.add.reduceat(np.abs(y) > TANH_SATURATION, idx, dtype=np.intp) \
            if "tanh" in picked else None
        sigmoid = np.add.reduceat((y < SIGMOID_SATURATION_LOW) | (y > SIGMOID_SATURATION_HIGH),
                                  idx, dtype=np.intp) if "sigmoid" in picked else None
    rows = zip(take, picked, sizes.tolist(), mean.tolist(), std.tolist(), zeros.tolist(),
               hi.tolist(), ok.tolist(), strict=True)
    for j, (i, kind, n, mu, sd, nz, high, good) in enumerate(rows):
        if not good:
            continue
        entry: dict[str, Any] = {
            "mean": mu, "std": sd, "zero_frac": nz / n,
            "dead_frac": None, "saturated_frac": None, "nan_count": 0, "inf_count": 0,
        }
        if kind in DEAD_KINDS:
            a = parts[j]
            shape = tuple(acts[i].shape)
            if len(shape) >= 2:  # a unit (feature or channel) is alive if > 0 anywhere
                unit_max = a.reshape(shape[0], shape[1], -1).max(axis=(0, 2))
                entry["dead_frac"] = int(np.count_nonzero(unit_max <= 0)) / unit_max.size
            else:
                entry["dead_frac"] = 0.0 if high > 0 else 1.0
        if kind == "tanh":
            entry["saturated_frac"] = int(tanh[j]) / n  # type: ignore[index]
        elif kind == "sigmoid":
            entry["saturated_frac"] = int(sigmoid[j]) / n  # type: ignore[index]
        out[i] = entry
    return out


def _activation_stats_torch(a: torch.Tensor, kind: str) -> dict | None:
    """Fast path for the common case (finite float32 activations of moderate size).

    Runs in torch float32 on the tensor's own device: the recorder calls this on every probed
    layer at every snapshot, and float64 numpy copies of a (256, 16, 32, 32) probe output cost
    tens of milliseconds. Mean and the centred sum of squares (two passes) are float32 values
    summed in float64 (~1e-8 relative); not torch.var_mean, whose single-threaded Welford loop
    takes 30x longer. Returns None (use the exact float64 path) for NaN/Inf, empty or non-float
    input.
    """
    if a.numel() == 0 or not a.is_floating_point() or a.numel() > 2**26:
        return None
    x32 = a.detach().float()
    lo_t, hi_t = torch.aminmax(x32)  # NaN propagates through min/max: one pass checks finiteness
    lo, hi = float(lo_t), float(hi_t)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    n = x32.numel()
    mean_t = torch.sum(x32, dtype=torch.float64) / n
    mean = float(mean_t)
    if lo == hi:
        std = 0.0
    else:
        d = x32 - mean_t.float()
        ss = float(torch.sum(d.mul_(d), dtype=torch.float64))
        std = math.sqrt(ss / (n - 1))
    if x32.device.type == "cpu":  # numpy counts ten times faster than torch's count_nonzero
        zeros = n - int(np.count_nonzero(x32.numpy(force=True)))
    else:
        zeros = n - int(torch.count_nonzero(x32))
    out: dict[str, Any] = {
        "mean": mean, "std": std, "zero_frac": zeros / n,
        "dead_frac": None, "saturated_frac": None, "nan_count": 0, "inf_count": 0,
    }
    if kind in DEAD_KINDS:
        if x32.dim() >= 2:  # a unit (feature or channel) is alive if > 0 anywhere in the batch
            unit_max = x32.amax(dim=[0, *range(2, x32.dim())])
            out["dead_frac"] = float((unit_max <= 0).sum()) / unit_max.numel()
        else:
            out["dead_frac"] = 0.0 if hi > 0 else 1.0
    if kind == "tanh":
        out["saturated_frac"] = float((x32.abs() > TANH_SATURATION).sum()) / n
    elif kind == "sigmoid":
        sat = (x32 < SIGMOID_SATURATION_LOW) | (x32 > SIGMOID_SATURATION_HIGH)
        out["saturated_frac"] = float(sat.sum()) / n
    return out


# ---------------------------------------------------------------------------- relative change


def _relative_change(ref: torch.Tensor, new: torch.Tensor) -> float | None:
    if tuple(ref.shape) != tuple(new.shape):
        raise ValueError(f"shapes differ: {tuple(ref.shape)} vs {tuple(new.shape)}")
    fast = _relative_change_float32(ref, new)
    if fast is not None:
        return fast
    r = _flat_float64(ref)
    w = _flat_float64(new)
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(w))):
        return float("nan")
    maxabs = max(float(np.max(np.abs(v))) if v.size else 0.0 for v in (r, w))
    s = _pow2_scale(maxabs)  # the ratio does not change when both are scaled
    if s != 1.0:
        r, w = r / s, w / s
    den = _norm(r)
    num = _norm(w, r)
    if den == 0.0:
        return None if num == 0.0 else float("inf")
    return num / den


_F32_SAFE = (1e-15, 1e15)  # float32 squares of values in this range neither under- nor overflow


def _relative_change_float32(ref: Any, new: Any) -> float | None:
    """Large float32 tensors in torch: difference and norms in float32 (~1e-6 relative).

    A float32 difference of nearby values is exact (Sterbenz), and torch's float32 sums are
    cascade sums (~1e-7 relative); float64 copies of millions of values cost ten times more. None
    (use the float64 path) for small, non-float32, non-finite or extreme inputs, and 0/0.
    """
    if not (isinstance(ref, torch.Tensor) and isinstance(new, torch.Tensor)) or \
            ref.dtype != torch.float32 or new.dtype != torch.float32 or ref.numel() < _CHUNK:
        return None
    r, w = ref.detach().reshape(-1), new.detach().reshape(-1).to(ref.device)
    with _one_thread():
        bounds = torch.stack([*torch.aminmax(r), *torch.aminmax(w)]).abs().cpu()
        top = float(bounds.max())  # NaN propagates
        if not (math.isfinite(top) and _F32_SAFE[0] < top < _F32_SAFE[1]):
            return None
        den = math.sqrt(sum_of_squares(r))
        num = math.sqrt(sum_of_squares(w, r))
    if den == 0.0 or not (_F32_SAFE[0] < den < _F32_SAFE[1]):
        return None
    return num / den


def update_ratio(before: torch.Tensor, after: torch.Tensor) -> float | None:
    """||after - before|| / ||before|| (None for 0/0, inf for x/0, NaN for non-finite input)."""
    return _relative_change(before, after)


def drift(w0: torch.Tensor, wt: torch.Tensor) -> float | None:
    """Relative drift from init ||wt - w0|| / ||w0||, with update_ratio's conventions."""
    return _relative_change(w0, wt)
