"""Tests of nnviz.analysis.stats: every statistic against torch / numpy as the reference answer,
and every
edge case the module docstring promises (empty, single value, all equal, NaN/Inf, zero bins)."""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnviz.analysis import stats
from nnviz.errors import ConfigError

NAN, INF = float("nan"), float("inf")
STAT_KEYS = set(
    "numel mean std min max percentiles l2 spectral_norm stable_rank zero_frac nan_count inf_count"
    " finite_count".split()
)
ACT_KEYS = set("mean std zero_frac dead_frac saturated_frac nan_count inf_count".split())
FAST = settings(max_examples=50, deadline=None, database=None)  # no .hypothesis/ folder


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def svdvals(m: torch.Tensor) -> torch.Tensor:
    """torch.linalg.svdvals on one thread (multi-threaded LAPACK crawls on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.svdvals(m)
    finally:
        torch.set_num_threads(n)


def reference_stats(t: torch.Tensor) -> dict:
    """The same statistics computed the obvious way with torch (float64)."""
    x = t.detach().to(torch.float64)
    flat = x.reshape(-1)
    finite = flat[torch.isfinite(flat)]
    q = torch.tensor(stats.PERCENTILES, dtype=torch.float64) / 100
    if x.ndim >= 2:
        m = torch.where(torch.isfinite(x), x, torch.zeros_like(x)).reshape(x.shape[0], -1)
        spectral = svdvals(m)[0].item()
    else:
        spectral = torch.linalg.vector_norm(finite).item()
    l2 = torch.linalg.vector_norm(finite).item()
    return {
        "numel": flat.numel(),
        "mean": finite.mean().item(),
        "std": finite.std().item() if finite.numel() > 1 else 0.0,
        "min": finite.min().item(),
        "max": finite.max().item(),
        "percentiles": torch.quantile(finite, q).tolist(),
        "l2": l2,
        "spectral_norm": spectral,
        "stable_rank": l2**2 / spectral**2 if spectral else None,
        "zero_frac": (flat == 0).double().mean().item(),
        "nan_count": int(torch.isnan(flat).sum()),
        "inf_count": int(torch.isinf(flat).sum()),
        "finite_count": finite.numel(),
    }


def assert_stats_close(got: dict, want: dict, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    assert set(got) == STAT_KEYS
    for key in ("numel", "nan_count", "inf_count", "finite_count"):
        assert got[key] == want[key], key
    for key in ("mean", "std", "min", "max", "l2", "spectral_norm", "stable_rank", "zero_frac"):
        assert got[key] == pytest.approx(want[key], rel=rtol, abs=atol), key
    np.testing.assert_allclose(got["percentiles"], want["percentiles"], rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------ constants


def test_constants() -> None:
    assert stats.PERCENTILES == (0, 7, 16, 31, 50, 69, 84, 93, 100)
    assert stats.DEFAULT_BINS == 60
    assert stats.TANH_SATURATION == 0.97
    assert (stats.SIGMOID_SATURATION_LOW, stats.SIGMOID_SATURATION_HIGH) == (0.03, 0.97)
    kinds = {"relu", "leaky_relu", "gelu", "tanh", "sigmoid", "linear"}
    assert set(stats.ACTIVATION_KINDS) == kinds


# --------------------------------------------------------------------------- tensor_stats


SHAPES = [(40960,), (160, 256), (256, 160), (64, 3, 3, 3), (1, 2), (2, 1), (7,), (), (5, 300)]


@pytest.mark.parametrize("shape", [*SHAPES, (3, 4, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_tensor_stats_matches_torch(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    t = randn(*shape, seed=len(shape), dtype=dtype)
    assert_stats_close(stats.tensor_stats(t), reference_stats(t))


def test_tensor_stats_types_and_json() -> None:
    s = stats.tensor_stats(randn(20, 30))
    assert set(s) == STAT_KEYS
    for key in ("numel", "nan_count", "inf_count", "finite_count"):
        assert type(s[key]) is int
    for key in STAT_KEYS - {"numel", "nan_count", "inf_count", "finite_count", "percentiles"}:
        assert type(s[key]) is float, key
    assert isinstance(s["percentiles"], list) and len(s["percentiles"]) == 9
    assert all(type(p) is float for p in s["percentiles"])
    assert json.loads(json.dumps(s, allow_nan=False)) == s


@given(hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6)))
@FAST
def test_percentiles_equal_numpy(values: np.ndarray) -> None:
    s = stats.tensor_stats(torch.from_numpy(values))
    want = np.percentile(values, stats.PERCENTILES)  # numpy's default: linear
    np.testing.assert_array_equal(s["percentiles"], want)
    assert s["percentiles"][0] == values.min() and s["percentiles"][-1] == values.max()
    assert s["min"] == values.min() and s["max"] == values.max()
    assert s["mean"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-9)


def test_percentiles_match_torch_quantile_with_duplicates() -> None:
    t = torch.tensor([3.0, 1.0, 1.0, 2.0, 2.0, 2.0, 10.0], dtype=torch.float64)
    q = torch.tensor(stats.PERCENTILES, dtype=torch.float64) / 100
    want = torch.quantile(t, q, interpolation="linear").tolist()
    np.testing.assert_allclose(stats.tensor_stats(t)["percentiles"], want, rtol=1e-15)


def test_percentiles_over_16m_elements() -> None:
    # torch.quantile refuses inputs this large; the stats must not.
    t = torch.rand(2**24 + 3, generator=torch.Generator().manual_seed(1))
    s = stats.tensor_stats(t)
    want = np.percentile(t.numpy().astype(np.float64), stats.PERCENTILES)
    np.testing.assert_array_equal(s["percentiles"], want)
    assert s["numel"] == 2**24 + 3


def test_spectral_norm_lanczos_large_matrix() -> None:
    m = randn(1024, 512, seed=3, dtype=torch.float64)
    want = svdvals(m)[0].item()
    s = stats.tensor_stats(m)
    assert abs(s["spectral_norm"] - want) / want < 1e-3
    assert s["spectral_norm"] <= want * (1 + 1e-12)  # Ritz values never overshoot
    assert stats.tensor_stats(m) == s  # deterministic: fixed start vector
    wide = randn(300, 700, seed=4, dtype=torch.float64)
    want = svdvals(wide)[0].item()
    assert stats.tensor_stats(wide)["spectral_norm"] == pytest.approx(want, rel=1e-3)


def test_spectral_norm_exact_up_to_256_and_lanczos_above() -> None:
    for rows in (256, 257):
        m = randn(rows, 300, seed=rows, dtype=torch.float64)
        want = svdvals(m)[0].item()
        rel = 1e-12 if rows == 256 else 1e-3
        assert stats.tensor_stats(m)["spectral_norm"] == pytest.approx(want, rel=rel)


def test_spectral_norm_lanczos_structured_matrices() -> None:
    g = torch.Generator().manual_seed(5)
    # rank 2: Lanczos breaks down early with the exact answer
    a = torch.randn(600, 2, generator=g, dtype=torch.float64)
    low_rank = a @ torch.randn(2, 400, generator=g, dtype=torch.float64)
    want = svdvals(low_rank)
    s = stats.tensor_stats(low_rank)
    assert s["spectral_norm"] == pytest.approx(want[0].item(), rel=1e-9)
    assert s["stable_rank"] == pytest.approx((want**2).sum().item() / want[0].item() ** 2, rel=1e-9)
    # all singular values equal
    eye = torch.eye(300, dtype=torch.float64)
    s = stats.tensor_stats(eye)
    assert s["spectral_norm"] == pytest.approx(1.0, rel=1e-12)
    assert s["stable_rank"] == pytest.approx(300.0, rel=1e-9)
    # top singular vector orthogonal to the all-ones vector (defeats a ones start vector)
    alternating = torch.tensor([(-1.0) ** i for i in range(400)], dtype=torch.float64)
    m = 10 * torch.outer(torch.ones(500, dtype=torch.float64), alternating)
    m += 0.01 * torch.randn(500, 400, generator=g, dtype=torch.float64)
    want = svdvals(m)[0].item()
    assert stats.tensor_stats(m)["spectral_norm"] == pytest.approx(want, rel=1e-6)
    # a constant matrix: rank one
    s = stats.tensor_stats(torch.full((300, 400), -0.25, dtype=torch.float64))
    assert s["spectral_norm"] == pytest.approx(0.25 * math.sqrt(300 * 400), rel=1e-12)
    assert s["stable_rank"] == pytest.approx(1.0, rel=1e-12)


def test_tiny_layer_1x2_and_vectors() -> None:
    s = stats.tensor_stats(torch.tensor([[3.0, -4.0]]))
    assert s["spectral_norm"] == 5.0 and s["l2"] == 5.0 and s["stable_rank"] == 1.0
    s = stats.tensor_stats(torch.tensor([3.0, -4.0]))  # 1-D: operator norm of a vector is L2
    assert s["spectral_norm"] == 5.0
    s = stats.tensor_stats(torch.tensor([[3.0], [-4.0]]))
    assert s["spectral_norm"] == pytest.approx(5.0)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0), (2, 0, 4)])
def test_tensor_stats_empty(shape: tuple[int, ...]) -> None:
    s = stats.tensor_stats(torch.empty(shape))
    counts = {"numel": 0, "nan_count": 0, "inf_count": 0, "finite_count": 0}
    assert s == {**{k: None for k in STAT_KEYS}, **counts}


@pytest.mark.parametrize("t", [torch.tensor([3.5]), torch.tensor(-2.0), torch.tensor([[4.0]])])
def test_tensor_stats_single_value(t: torch.Tensor) -> None:
    v = t.item()
    s = stats.tensor_stats(t)
    assert s["std"] == 0.0  # not NaN
    assert s["mean"] == s["min"] == s["max"] == v
    assert s["percentiles"] == [v] * 9
    assert s["l2"] == s["spectral_norm"] == abs(v)
    assert s["stable_rank"] == 1.0
    assert (s["numel"], s["finite_count"], s["zero_frac"]) == (1, 1, 0.0)


@pytest.mark.parametrize("c", [0.1, -3.0, 1e-20])
def test_tensor_stats_all_equal(c: float) -> None:
    t = torch.full((10, 20), c)
    cf = t[0, 0].item()  # c as float32
    s = stats.tensor_stats(t)
    assert s["std"] == 0.0 and s["mean"] == cf
    assert s["percentiles"] == [cf] * 9
    assert s["spectral_norm"] == pytest.approx(abs(cf) * math.sqrt(200), rel=1e-12)
    assert s["stable_rank"] == pytest.approx(1.0, rel=1e-12)
    assert s["stable_rank"] >= 1.0


def test_tensor_stats_all_zeros() -> None:
    s = stats.tensor_stats(torch.zeros(4, 5))
    assert s["zero_frac"] == 1.0
    assert s["spectral_norm"] == 0.0 and s["l2"] == 0.0
    assert s["stable_rank"] is None
    assert s["std"] == 0.0 and s["percentiles"] == [0.0] * 9


def test_zero_frac_counts_exact_zeros_only() -> None:
    t = torch.tensor([0.0, -0.0, 1e-30, 1.0, NAN, 0.0])
    assert stats.tensor_stats(t)["zero_frac"] == pytest.approx(3 / 6)


def test_tensor_stats_nan_and_inf_are_counted_not_dropped() -> None:
    t = randn(20, 30, seed=7)
    t[0, 0], t[3, 4], t[5, 6], t[7, 8], t[9, 9] = NAN, NAN, INF, -INF, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = stats.tensor_stats(t)
    assert (s["nan_count"], s["inf_count"], s["finite_count"], s["numel"]) == (2, 2, 596, 600)
    assert_stats_close(s, reference_stats(t))
    json.dumps(s, allow_nan=False)  # the non-finite values never leak into a statistic


def test_tensor_stats_no_finite_values() -> None:
    s = stats.tensor_stats(torch.tensor([[NAN, INF], [-INF, NAN]]))
    assert (s["numel"], s["nan_count"], s["inf_count"], s["finite_count"]) == (4, 2, 2, 0)
    assert s["zero_frac"] == 0.0
    for key in ("mean", "std", "min", "max", "percentiles", "l2", "spectral_norm", "stable_rank"):
        assert s[key] is None, key


def test_tensor_stats_huge_and_tiny_float64_do_not_overflow() -> None:
    big = torch.tensor([[1e300, -1e300], [3e299, 2e300]], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = stats.tensor_stats(big)
        tiny = stats.tensor_stats(big * 1e-300 * 1e-300)
    want = reference_stats(big / 1e300)  # the same numbers, scaled into the ordinary range
    for key in ("mean", "std", "min", "max", "l2", "spectral_norm"):
        assert s[key] == pytest.approx(want[key] * 1e300, rel=1e-12), key
        assert tiny[key] == pytest.approx(want[key] * 1e-300, rel=1e-12), key
    assert s["stable_rank"] == pytest.approx(want["stable_rank"], rel=1e-12)
    assert tiny["stable_rank"] == pytest.approx(want["stable_rank"], rel=1e-12)
    np.testing.assert_allclose(s["percentiles"], np.array(want["percentiles"]) * 1e300, rtol=1e-12)


def test_tensor_stats_near_float64_limit() -> None:
    t = torch.tensor([1.7e308, -1.7e308, 1e308], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = stats.tensor_stats(t)
    assert (s["min"], s["max"]) == (-1.7e308, 1.7e308)
    assert s["mean"] == pytest.approx(1e308 / 3, rel=1e-12)
    want_std = torch.tensor([1.7, -1.7, 1.0], dtype=torch.float64).std().item() * 1e308
    assert s["std"] == pytest.approx(want_std, rel=1e-12)  # 1.795e308: still finite
    assert s["l2"] == INF  # the true value, 2.6e308, is beyond the float64 range
    assert s["percentiles"][4] == 1e308 and s["percentiles"][0] == -1.7e308
    assert stats.update_ratio(t, -t) == pytest.approx(2.0)


def test_inputs_are_not_modified_and_threads_restored() -> None:
    threads = torch.get_num_threads()
    t = torch.tensor([[3e300, NAN, -1e300], [2e300, 0.0, INF]], dtype=torch.float64)
    before = t.clone()
    stats.tensor_stats(t)
    stats.activation_stats(t, "tanh")
    stats.histogram(t, np.linspace(-1, 1, 5))
    stats.update_ratio(t.nan_to_num(), 2 * t.nan_to_num())
    arr = t.numpy().copy()
    stats.weight_edges(arr)
    assert torch.equal(t.nan_to_num(), before.nan_to_num()) and t.isnan().equal(before.isnan())
    np.testing.assert_array_equal(arr, t.numpy())
    stats.tensor_stats(randn(300, 300))  # the Lanczos path
    assert torch.get_num_threads() == threads


def test_tensor_stats_requires_grad_noncontiguous_and_other_dtypes() -> None:
    w = randn(8, 6, seed=9).requires_grad_(True)
    s = stats.tensor_stats(w)
    assert s == stats.tensor_stats(w.detach())
    assert w.grad is None
    assert_stats_close(stats.tensor_stats(w.detach().T), reference_stats(w.detach().T))
    conv = randn(16, 3, 5, 5, seed=10).to(memory_format=torch.channels_last)
    assert_stats_close(stats.tensor_stats(conv), reference_stats(conv))
    assert stats.tensor_stats(torch.tensor([0, 1, 2]))["mean"] == 1.0
    with pytest.raises(TypeError):
        stats.tensor_stats(torch.ones(3, dtype=torch.complex64))


def test_tensor_stats_is_fast() -> None:
    for t in (randn(40960), randn(160, 256), randn(256, 160), randn(10, 4096)):
        stats.tensor_stats(t)
        best = min(_timed(stats.tensor_stats, t) for _ in range(10))
        assert best < 0.005, f"{tuple(t.shape)}: {best * 1e3:.2f} ms"


def _timed(f: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    f(*args)
    return time.perf_counter() - start


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tensor_stats_on_cuda() -> None:
    t = randn(64, 300, seed=11)
    t[0, 0] = NAN
    assert stats.tensor_stats(t.cuda()) == stats.tensor_stats(t)
    np.testing.assert_array_equal(
        stats.sample_values(t.cuda(), 100, seed=3), stats.sample_values(t, 100, seed=3)
    )
    h = stats.histogram(t.cuda(), np.linspace(-2, 2, 9))
    assert h == stats.histogram(t, np.linspace(-2, 2, 9))
    a = torch.relu(t).cuda()
    assert stats.activation_stats(a, "relu") == stats.activation_stats(a.cpu(), "relu")
    assert stats.update_ratio(t.cuda(), 2 * t.cuda()) is not None


# ---------------------------------------------------------------------------- weight_edges


def test_weight_edges_from_values() -> None:
    values = randn(50, 40, seed=12).numpy()
    edges = stats.weight_edges(values)
    assert edges.shape == (stats.DEFAULT_BINS + 1,) and edges.dtype == np.float64
    assert np.all(np.diff(edges) > 0)
    np.testing.assert_array_equal(edges, -edges[::-1])  # exactly symmetric
    assert edges[stats.DEFAULT_BINS // 2] == 0.0
    half = float(np.abs(values).max()) * 1.5
    assert edges[-1] == pytest.approx(half, rel=1e-15)
    np.testing.assert_allclose(edges, np.linspace(-half, half, stats.DEFAULT_BINS + 1), atol=1e-12)
    assert stats.weight_edges(values, margin=0.0)[-1] == pytest.approx(np.abs(values).max())
    assert len(stats.weight_edges(values, n_bins=7)) == 8


def test_weight_edges_theory_std() -> None:
    values = np.array([0.01, -0.02], dtype=np.float32)
    assert stats.weight_edges(values, theory_std=0.5)[-1] == pytest.approx(2.0)
    assert stats.weight_edges(values * 100, theory_std=0.1)[-1] == pytest.approx(3.0)
    assert stats.weight_edges(values, theory_std=NAN)[-1] == pytest.approx(0.03)  # ignored
    assert stats.weight_edges(values, theory_std=0.0)[-1] == pytest.approx(0.03)
    with pytest.raises(ValueError):
        stats.weight_edges(values, theory_std=-1.0)


@pytest.mark.parametrize("c", [0.0, 0.3, -2.0])
def test_weight_edges_all_zero_or_constant(c: float) -> None:
    edges = stats.weight_edges(np.full(100, c))
    assert np.all(np.diff(edges) > 0)
    assert edges[-1] >= max(abs(c) * 1.5, 1e-6)
    assert edges[-1] == pytest.approx(max(abs(c) * 1.5, stats.WEIGHT_EDGE_FLOOR))
    h = stats.histogram(np.full(100, c), edges)
    assert h.underflow == h.overflow == 0 and h.counts.sum() == 100


def test_weight_edges_empty_single_and_non_finite() -> None:
    assert stats.weight_edges(np.array([]))[-1] == stats.WEIGHT_EDGE_FLOOR
    assert stats.weight_edges(np.array([NAN, INF, -INF]))[-1] == stats.WEIGHT_EDGE_FLOOR
    assert stats.weight_edges(np.array([NAN, INF]), theory_std=0.1)[-1] == pytest.approx(0.4)
    assert stats.weight_edges(np.array([NAN, INF, 0.5, -0.2]))[-1] == pytest.approx(0.75)
    assert stats.weight_edges(np.array([-0.4]))[0] == pytest.approx(-0.6)
    assert stats.weight_edges(torch.tensor([0.5, -1.0]))[-1] == pytest.approx(1.5)
    huge = stats.weight_edges(np.array([1.7e308]))
    assert np.all(np.isfinite(huge)) and np.all(np.diff(huge) > 0)


@pytest.mark.parametrize("n_bins", [0, -1, 2.5, True])
def test_weight_edges_and_run_edges_reject_zero_bins(n_bins: object) -> None:
    with pytest.raises(ConfigError):
        stats.weight_edges(np.ones(3), n_bins=n_bins)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        stats.run_edges([0.0], [1.0], n_bins=n_bins)  # type: ignore[arg-type]


def test_weight_edges_rejects_bad_margin() -> None:
    for margin in (-0.1, NAN, INF):
        with pytest.raises(ValueError):
            stats.weight_edges(np.ones(3), margin=margin)


@given(
    hnp.arrays(np.float32, st.integers(0, 50), elements=st.floats(width=32, allow_nan=True)),
    st.one_of(st.none(), st.floats(0, 10)),
)
@FAST
def test_weight_edges_cover_initial_values(values: np.ndarray, theory_std: float | None) -> None:
    edges = stats.weight_edges(values, theory_std=theory_std)
    assert np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)
    h = stats.histogram(values, edges)
    assert h.underflow == h.overflow == 0
    assert h.total() == values.size


# ------------------------------------------------------------------------------- run_edges


def test_run_edges_pads_range() -> None:
    edges = stats.run_edges([-1.0, -0.5, None], [1.0, 2.0, NAN], n_bins=30)
    assert len(edges) == 31
    assert edges[0] == pytest.approx(-1.06) and edges[-1] == pytest.approx(2.06)
    np.testing.assert_allclose(np.diff(edges), 3.12 / 30)


@pytest.mark.parametrize(
    ("lows", "highs", "lo", "hi"),
    [
        ([2.0, 2.0], [2.0, 2.0], 1.9, 2.1),
        ([-4.0], [-4.0], -4.2, -3.8),
        ([0.0], [0.0], -0.5, 0.5),
        ([None, None], [None], -0.5, 0.5),
        ([], [], -0.5, 0.5),
        ([NAN, INF], [-INF], -0.5, 0.5),
        ([1.0], [1.0 + 1e-13], 0.95, 1.05),
    ],
)
def test_run_edges_degenerate(lows: list, highs: list, lo: float, hi: float) -> None:
    edges = stats.run_edges(lows, highs)
    assert len(edges) == stats.DEFAULT_BINS + 1
    assert edges[0] == pytest.approx(lo) and edges[-1] == pytest.approx(hi)
    assert np.all(np.diff(edges) > 0)


@given(
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=8),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=8),
    st.integers(1, 200),
)
@FAST
def test_run_edges_property(lows: list, highs: list, n_bins: int) -> None:
    edges = stats.run_edges(lows, highs, n_bins=n_bins)
    assert edges.shape == (n_bins + 1,)
    assert np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)
    finite = np.array([v for v in lows + highs if v is not None and math.isfinite(v)])
    inside = finite[np.abs(finite) <= stats.EDGE_LIMIT]
    h = stats.histogram(inside, edges)
    assert h.underflow == h.overflow == 0


# ------------------------------------------------------------------------------- histogram


def test_histogram_matches_numpy() -> None:
    values = randn(10000, seed=13).numpy() * 2
    edges = np.linspace(-3, 3, 61)
    h = stats.histogram(values, edges)
    inside = values[(values >= -3) & (values <= 3)]
    np.testing.assert_array_equal(h.counts, np.histogram(inside, edges)[0])
    assert h.underflow == int((values < -3).sum()) and h.overflow == int((values > 3).sum())
    assert h.underflow > 0 and h.overflow > 0
    assert h.total() == values.size
    assert h.counts.dtype == np.int64 and h.edges.dtype == np.float64
    np.testing.assert_array_equal(h.edges, edges)


def test_histogram_values_on_edges() -> None:
    h = stats.histogram(np.array([0.0, 1.0, 2.0, 3.0, 3.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(h.counts, [1, 1, 3])  # last edge goes in the last bin
    np.testing.assert_array_equal(h.counts, np.histogram([0, 1, 2, 3, 3], [0, 1, 2, 3])[0])
    h = stats.histogram(np.array([-1e-300, 3.0000000001]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert (h.underflow, h.overflow, h.counts.sum()) == (1, 1, 0)


def test_histogram_nan_inf_counted() -> None:
    values = torch.tensor([NAN, INF, -INF, INF, 0.5, -5.0, 5.0, NAN, NAN])
    h = stats.histogram(values, np.linspace(-1, 1, 5))
    assert (h.nan, h.posinf, h.neginf, h.underflow, h.overflow) == (3, 2, 1, 1, 1)
    assert h.counts.sum() == 1
    assert h.total() == values.numel()


@pytest.mark.parametrize(
    "values",
    [np.array([]), np.array([0.25]), np.full(17, 0.25), np.full(5, 9.0), np.full(3, NAN)],
    ids=["empty", "single", "all-equal", "all-equal-outside", "all-nan"],
)
def test_histogram_edge_cases_total(values: np.ndarray) -> None:
    edges = np.linspace(-1, 1, 9)
    h = stats.histogram(values, edges)
    assert h.total() == values.size
    finite = values[np.isfinite(values)]
    inside = finite[(finite >= -1) & (finite <= 1)]
    np.testing.assert_array_equal(h.counts, np.histogram(inside, edges)[0])
    assert np.count_nonzero(h.counts) <= 1


def test_histogram_torch_inputs() -> None:
    t = randn(30, 40, seed=14).requires_grad_(True)
    edges = stats.weight_edges(t.detach().numpy())
    h = stats.histogram(t, edges)
    np.testing.assert_array_equal(h.counts, np.histogram(t.detach().numpy(), edges)[0])
    hb = stats.histogram(t.detach().to(torch.bfloat16), edges)
    np.testing.assert_array_equal(
        hb.counts, np.histogram(t.detach().to(torch.bfloat16).float().numpy(), edges)[0]
    )
    f32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)  # float32 vs float64 edges, like numpy
    e = np.array([0.0, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(stats.histogram(f32, e).counts, np.histogram(f32, e)[0])


@pytest.mark.parametrize(
    "edges",
    [[], [1.0], [[0.0, 1.0], [2.0, 3.0]], [0.0, 0.0, 1.0], [1.0, 0.0], [0.0, NAN], [0.0, INF]],
)
def test_histogram_rejects_bad_edges(edges: list) -> None:
    with pytest.raises(ValueError):
        stats.histogram(np.ones(3), np.asarray(edges, dtype=np.float64))


def test_histogram_dict_round_trip() -> None:
    values = np.concatenate([randn(1000, seed=15).numpy(), [NAN, INF, -INF, 100.0, -100.0]])
    h = stats.histogram(values, np.linspace(-2, 2, 21))
    d = h.to_dict()
    assert set(d) == {"edges", "counts", "underflow", "overflow", "nan", "posinf", "neginf"}
    assert all(type(c) is int for c in d["counts"]) and all(type(e) is float for e in d["edges"])
    back = stats.Histogram.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert back == h
    assert back.total() == h.total() == values.size
    np.testing.assert_array_equal(back.edges, h.edges)
    assert back != stats.histogram(values[:-1], np.linspace(-2, 2, 21))
    with pytest.raises(ValueError):
        stats.Histogram(edges=np.array([0.0, 1.0]), counts=np.array([1, 2]))


@given(
    hnp.arrays(np.float64, st.integers(0, 200), elements=st.floats(allow_nan=True)),
    st.integers(1, 20),
)
@FAST
def test_histogram_property(values: np.ndarray, n_bins: int) -> None:
    edges = np.linspace(-10, 10, n_bins + 1)
    h = stats.histogram(values, edges)
    assert h.total() == values.size
    finite = values[np.isfinite(values)]
    inside = finite[(finite >= -10) & (finite <= 10)]
    np.testing.assert_array_equal(h.counts, np.histogram(inside, edges)[0])
    assert h.underflow == int((finite < -10).sum()) and h.overflow == int((finite > 10).sum())
    assert h.nan == int(np.isnan(values).sum())
    assert (h.posinf, h.neginf) == (int((values == INF).sum()), int((values == -INF).sum()))


# ---------------------------------------------------------------------------- sample_values


def test_sample_values_all_when_small() -> None:
    t = randn(7, 9, seed=16, dtype=torch.float64)
    for k in (63, 64, 1000):
        out = stats.sample_values(t, k)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, t.reshape(-1).float().numpy())
    out = stats.sample_values(t.float(), 63)
    t.add_(1.0)  # training updates weights in place: the returned values must be a copy
    np.testing.assert_array_equal(out, (t - 1.0).reshape(-1).float().numpy())


def test_sample_values_without_replacement_and_deterministic() -> None:
    n, k = 100_000, 5000
    t = torch.arange(n, dtype=torch.float32)
    out = stats.sample_values(t, k, seed=3)
    assert out.shape == (k,) and out.dtype == np.float32
    assert len(np.unique(out)) == k  # no value drawn twice
    assert np.all(np.diff(out) > 0)  # original order kept
    assert set(out.astype(np.int64)) <= set(range(n))
    np.testing.assert_array_equal(out, stats.sample_values(t, k, seed=3))
    assert not np.array_equal(out, stats.sample_values(t, k, seed=4))
    # depends on seed and numel only: same positions for another shape / dtype / values
    other = stats.sample_values(torch.arange(n, dtype=torch.float64).reshape(100, 1000) * 2, k, 3)
    np.testing.assert_array_equal(other, out * 2)
    idx = np.sort(np.random.default_rng(3).choice(n, size=k, replace=False))
    np.testing.assert_array_equal(out, idx.astype(np.float32))


def test_sample_values_uniform() -> None:
    n, k = 200_000, 20_000
    out = stats.sample_values(torch.arange(n, dtype=torch.float32), k, seed=0)
    observed = np.histogram(out, bins=10, range=(0, n))[0]
    chi2 = float(((observed - k / 10) ** 2 / (k / 10)).sum())
    assert chi2 < 27.88  # chi-square, 9 degrees of freedom, p = 0.001


def test_sample_values_leaves_global_rng_alone() -> None:
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    stats.sample_values(randn(1000), 10, seed=5)
    stats.tensor_stats(randn(300, 400))  # the Lanczos start vector too
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]


def test_sample_values_edge_cases() -> None:
    assert stats.sample_values(torch.empty(0), 10).shape == (0,)
    assert stats.sample_values(randn(5), 0).shape == (0,)
    with pytest.raises(ValueError):
        stats.sample_values(randn(5), -1)
    w = randn(4, 4, seed=17).requires_grad_(True)
    np.testing.assert_array_equal(stats.sample_values(w, 100), w.detach().reshape(-1).numpy())
    b = randn(100, seed=18).to(torch.bfloat16)
    np.testing.assert_array_equal(stats.sample_values(b, 1000), b.float().numpy())
    nan = torch.tensor([NAN, 1.0, INF])
    np.testing.assert_array_equal(stats.sample_values(nan, 5), nan.numpy())  # kept as they are
    np.testing.assert_array_equal(stats.sample_values(np.arange(4.0), 10), np.arange(4.0))


# -------------------------------------------------------------------------- activation_stats


def _dead_reference(a: torch.Tensor) -> float:
    alive = (a > 0).transpose(0, 1).reshape(a.shape[1], -1).any(dim=1)
    return 1.0 - alive.double().mean().item()


@pytest.mark.parametrize("shape", [(64, 32), (8, 16, 5, 5), (4, 6, 10)])
@pytest.mark.parametrize("kind", ["relu", "leaky_relu"])
def test_activation_dead_units(shape: tuple[int, ...], kind: str) -> None:
    pre = randn(*shape, seed=19)
    pre[:, :5] = -pre[:, :5].abs() - 0.1  # units 0..4 never fire
    a = torch.relu(pre) if kind == "relu" else torch.nn.functional.leaky_relu(pre, 0.01)
    s = stats.activation_stats(a, kind)
    assert s["dead_frac"] == pytest.approx(_dead_reference(a), abs=1e-15)
    assert s["dead_frac"] == pytest.approx(5 / shape[1], abs=1e-15)
    assert s["saturated_frac"] is None
    # activations are measured in float32 (the recorder's fast path): ~1e-7 relative
    assert s["mean"] == pytest.approx(a.double().mean().item(), rel=1e-6)
    assert s["std"] == pytest.approx(a.double().std().item(), rel=1e-6)
    assert s["zero_frac"] == pytest.approx((a == 0).double().mean().item(), abs=1e-15)


@pytest.mark.parametrize("kind", ["gelu", "tanh", "sigmoid", "linear"])
def test_activation_dead_frac_only_for_relu_kinds(kind: str) -> None:
    assert stats.activation_stats(-torch.ones(4, 3), kind)["dead_frac"] is None


def test_activation_saturation_like_makemore() -> None:
    h = torch.tanh(3 * randn(32, 100, seed=20))
    s = stats.activation_stats(h, "tanh")
    assert s["saturated_frac"] == pytest.approx((h.abs() > 0.97).float().mean().item(), abs=1e-7)
    assert 0.1 < s["saturated_frac"] < 0.9
    sig = torch.sigmoid(4 * randn(32, 100, seed=21))
    s = stats.activation_stats(sig, "sigmoid")
    want = ((sig < 0.03) | (sig > 0.97)).float().mean().item()
    assert s["saturated_frac"] == pytest.approx(want, abs=1e-7)
    for kind in ("relu", "leaky_relu", "gelu", "linear"):
        assert stats.activation_stats(h, kind)["saturated_frac"] is None


def test_activation_nan_inf() -> None:
    a = torch.tanh(randn(10, 10, seed=22))
    a[0, 0], a[1, 1], a[2, 2] = NAN, INF, -INF
    s = stats.activation_stats(a, "tanh")
    assert (s["nan_count"], s["inf_count"]) == (1, 2)
    finite = a[torch.isfinite(a)].double()
    assert s["mean"] == pytest.approx(finite.mean().item(), rel=1e-12)
    assert s["std"] == pytest.approx(finite.std().item(), rel=1e-12)
    assert s["saturated_frac"] == pytest.approx((a.abs() > 0.97).double().mean().item())
    dead = stats.activation_stats(torch.full((3, 2), NAN), "relu")
    assert dead["dead_frac"] == 1.0 and dead["mean"] is None and dead["nan_count"] == 6


def test_activation_empty_single_and_1d() -> None:
    s = stats.activation_stats(torch.empty(0, 16), "relu")
    assert s == {**dict.fromkeys(ACT_KEYS), "nan_count": 0, "inf_count": 0}
    s = stats.activation_stats(torch.tensor([[0.5]]), "relu")
    assert (s["mean"], s["std"], s["dead_frac"], s["zero_frac"]) == (0.5, 0.0, 0.0, 0.0)
    assert stats.activation_stats(torch.zeros(8), "relu")["dead_frac"] == 1.0
    assert stats.activation_stats(torch.full((4, 4), 0.2), "sigmoid")["std"] == 0.0


def test_activation_types_json_and_bad_kind() -> None:
    s = stats.activation_stats(torch.relu(randn(16, 8, seed=23)).requires_grad_(True), "relu")
    assert set(s) == ACT_KEYS
    json.dumps(s, allow_nan=False)
    assert type(s["nan_count"]) is int and type(s["dead_frac"]) is float
    with pytest.raises(ConfigError, match="leaky_relu"):
        stats.activation_stats(torch.ones(2, 2), "swish")
    with pytest.raises(ValueError):
        stats.activation_stats(torch.ones(2, 2), "ReLU")


def _awkward_activations() -> list[tuple[torch.Tensor, str]]:
    """Mixed sizes, kinds and dtypes, constant and one-element tensors, NaN / Inf, huge and
    tiny magnitudes, empty and over-MANY_MAX tensors (which the batched pass hands back)."""
    pre = randn(64, 32, seed=40)
    pre[:, :3] = -pre[:, :3].abs() - 0.1  # three dead units
    with_nan = randn(4, 5, seed=41)
    with_nan[1, 2] = NAN
    with_inf = randn(3, 3, seed=42)
    with_inf[0, 0] = -INF
    return [
        (randn(64, 64, seed=43), "linear"), (torch.relu(pre), "relu"),
        (torch.nn.functional.leaky_relu(randn(8, 6, 3, 3, seed=44), 0.01), "leaky_relu"),
        (torch.tanh(3 * randn(8, 4, 3, 3, seed=45)), "tanh"),
        (torch.sigmoid(4 * randn(5, 7, seed=46)), "sigmoid"), (torch.full((4, 3), 0.25), "sigmoid"),
        (torch.tensor([[0.5]]), "relu"), (torch.zeros(8), "relu"), (-torch.ones(6), "relu"),
        (torch.tensor([-1.5]), "tanh"), (with_nan, "relu"), (with_inf, "linear"),
        (randn(6, 5, seed=47, dtype=torch.float64) * 1e-5, "gelu"),
        (randn(6, 5, seed=48, dtype=torch.float16), "tanh"),
        (randn(3, 2, seed=49, dtype=torch.float64) * 1e200, "linear"),
        (randn(3, 2, seed=50, dtype=torch.float64) * 1e-200, "linear"),
        (torch.empty(0, 4), "relu"), (randn(4, 3, seed=51).requires_grad_(True), "linear"),
        (randn(2, stats.MANY_MAX, seed=52), "linear"), (randn(16, seed=53), "relu"),
    ]


def test_activation_stats_many_matches_activation_stats_and_numpy() -> None:
    cases = _awkward_activations()
    acts, kinds = [a for a, _ in cases], [k for _, k in cases]
    many = stats.activation_stats_many(acts, kinds)
    handed_back = 0
    for a, kind, got in zip(acts, kinds, many, strict=True):
        one = stats.activation_stats(a, kind)
        if got is None:  # not batched: NaN / Inf, extreme magnitudes, empty, too large
            handed_back += 1
            x = a.detach().double()
            assert a.numel() == 0 or a.numel() > stats.MANY_MAX or \
                not bool(torch.isfinite(x).all()) or float(x.abs().max()) > 2.0**300 or \
                float(x.abs().max()) < 2.0**-300
            continue
        assert set(got) == ACT_KEYS and type(got["nan_count"]) is int
        x = a.detach().double().numpy()
        assert got["mean"] == pytest.approx(x.mean(), rel=1e-12, abs=1e-300)
        assert got["std"] == pytest.approx(x.std(ddof=1) if x.size > 1 else 0.0, rel=1e-9,
                                           abs=1e-300)
        if x.min() == x.max():
            assert got["mean"] == x.flat[0] and got["std"] == 0.0  # exactly
        for key in ("zero_frac", "dead_frac", "saturated_frac", "nan_count", "inf_count"):
            assert got[key] == one[key], key  # counts: identical to the per-tensor path
        for key in ("mean", "std"):  # the per-tensor fast path sums float32: ~1e-7
            assert got[key] == pytest.approx(one[key], rel=1e-6, abs=1e-300)
    assert handed_back == 6  # NaN, Inf, 1e200, 1e-200, empty, over MANY_MAX
    with pytest.raises(ConfigError, match="leaky_relu"):
        stats.activation_stats_many([torch.ones(2, 2)], ["swish"])
    assert stats.activation_stats_many([], []) == []


# --------------------------------------------------------------------- update_ratio / drift


def test_update_ratio_matches_torch() -> None:
    before = randn(50, 20, seed=24)
    after = before + 1e-3 * randn(50, 20, seed=25)
    want = torch.linalg.norm((after - before).double()) / torch.linalg.norm(before.double())
    assert stats.update_ratio(before, after) == pytest.approx(want.item(), rel=1e-12)
    assert stats.drift(before, after) == stats.update_ratio(before, after)
    assert stats.update_ratio(before, before.clone()) == 0.0
    mixed = stats.update_ratio(before.half().requires_grad_(True), after)
    want = torch.linalg.norm(after.double() - before.half().double()) / torch.linalg.norm(
        before.half().double()
    )
    assert mixed == pytest.approx(want.item(), rel=1e-12)


def test_update_ratio_zero_before() -> None:
    z = torch.zeros(3, 3)
    assert stats.update_ratio(z, z.clone()) is None
    assert stats.drift(z, z) is None
    assert stats.update_ratio(z, torch.ones(3, 3)) == INF
    assert stats.drift(z, torch.ones(3, 3)) == INF
    assert stats.update_ratio(torch.empty(0), torch.empty(0)) is None


def test_update_ratio_non_finite_and_shapes() -> None:
    before, after = torch.ones(4), torch.tensor([1.0, NAN, 1.0, 1.0])
    assert math.isnan(stats.update_ratio(before, after))
    assert math.isnan(stats.drift(torch.tensor([INF, 1.0]), torch.ones(2)))
    with pytest.raises(ValueError):
        stats.update_ratio(torch.ones(2, 3), torch.ones(3, 2))


def test_update_ratio_huge_and_tiny_float64() -> None:
    before = torch.tensor([1e300, -2e300, 5e299], dtype=torch.float64)
    after = before * 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.update_ratio(before, after) == pytest.approx(0.5, rel=1e-12)
        before, after = before * 1e-300 * 1e-300, after * 1e-300 * 1e-300  # ~1e-300
        assert stats.drift(before, after) == pytest.approx(0.5, rel=1e-12)


# ------------------------------------------------------- fast paths (one sort, arithmetic bins)

_EDGE_SETS = {
    "weight": stats.weight_edges(np.array([-0.3, 0.2]), n_bins=60),
    "run": stats.run_edges([-1.7, -0.2], [0.4, 2.9], n_bins=40),
    "uneven": np.array([-1.0, -0.5, -0.4, 0.0, 0.01, 0.3, 2.0]),
}


@FAST
@given(hnp.arrays(np.float32, st.integers(2, 400),
                  elements=st.sampled_from([0.0, -0.0, 0.25, -0.3, 1e-30, 0.3, 2.0])
                  | st.floats(-3, 3, width=32)),
       st.sampled_from(sorted(_EDGE_SETS)))
def test_one_sort_gives_the_general_paths_numbers(values: np.ndarray, edges_name: str) -> None:
    """The sorted fast path agrees with the general float64 path and with numpy, edge values
    (exactly on bin edges, +-0.0, all equal) included."""
    edges = _EDGE_SETS[edges_name]
    values = np.concatenate([values, edges[::7].astype(np.float32)])  # values on edges
    t = torch.from_numpy(values).reshape(-1, 1 + (values.size % 2 == 0))
    got, hist = stats.tensor_stats_and_histogram(t, edges)
    want = stats._tensor_stats_exact(t)
    for key in ("numel", "finite_count", "nan_count", "inf_count", "min", "max", "zero_frac",
                "percentiles"):
        assert got[key] == want[key], key  # bit for bit
    for key in ("mean", "std", "l2", "spectral_norm"):
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-300), key
    x = values.astype(np.float64)
    np.testing.assert_array_equal(got["percentiles"], np.percentile(x, stats.PERCENTILES))
    assert hist == stats.histogram(values, edges)  # the arithmetic / bisection binning
    np.testing.assert_array_equal(hist.counts, np.histogram(x, edges)[0])
    assert hist.underflow == int((x < edges[0]).sum()) and hist.overflow == int(
        (x > edges[-1]).sum())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_arithmetic_binning_exact_at_every_edge(dtype) -> None:
    """Values at, just below and just above every edge land where np.histogram puts them."""
    for edges in _EDGE_SETS.values():
        e = edges.astype(dtype).astype(np.float64)  # edges representable in the dtype
        e = np.unique(e)
        near = np.concatenate([e, np.nextafter(e.astype(dtype), dtype(-np.inf)),
                               np.nextafter(e.astype(dtype), dtype(np.inf))]).astype(dtype)
        h = stats.histogram(near, e)
        np.testing.assert_array_equal(h.counts, np.histogram(near.astype(np.float64), e)[0])
        assert h.total() == near.size


def test_non_finite_and_huge_inputs_leave_the_fast_path() -> None:
    t = torch.tensor([1.0, float("nan"), -2.0, float("inf")])
    s, h = stats.tensor_stats_and_histogram(t, np.linspace(-3, 3, 7))
    assert (s["nan_count"], s["inf_count"], h.nan, h.posinf) == (1, 1, 1, 1)
    assert stats._stats_sorted(t, None) is None
    assert stats._stats_sorted(torch.tensor([1e-310, 2e-310], dtype=torch.float64), None) is None
    assert stats._stats_sorted(torch.tensor([1, 2, 3]), None) is None  # integers


def test_sum_of_squares_blocks_match_numpy() -> None:
    g = torch.Generator().manual_seed(4)
    a = torch.randn(3 * stats._DOT_BLOCK + 17, generator=g) * 1e-3 + 1e-4
    b = a + 1e-6 * torch.randn(a.shape, generator=g)
    x, y = a.double().numpy(), b.double().numpy()
    assert stats.sum_of_squares(a) == pytest.approx(float(np.sum(x * x)), rel=1e-7)
    assert stats.sum_of_squares(a.double()) == pytest.approx(float(np.sum(x * x)), rel=1e-14)
    assert stats.sum_of_squares(b, a) == pytest.approx(float(np.sum((y - x) ** 2)), rel=1e-6)
    assert stats.sum_of_squares(torch.tensor([3, 4])) == 25.0


def test_drift_float32_path_matches_numpy() -> None:
    g = torch.Generator().manual_seed(5)
    w0 = torch.randn(1 << 20, generator=g) * 0.02
    wt = w0 + 1e-4 * torch.randn(w0.shape, generator=g)
    x0, xt = w0.double().numpy(), wt.double().numpy()
    want = np.linalg.norm(xt - x0) / np.linalg.norm(x0)
    assert stats._relative_change_float32(w0, wt) is not None  # the fast path is taken
    assert stats.drift(w0, wt) == pytest.approx(want, rel=1e-6)
    bad = wt.clone()
    bad[7] = float("nan")
    assert math.isnan(stats.drift(w0, bad))
    assert stats.drift(torch.zeros(1 << 20), torch.zeros(1 << 20)) is None


def test_spectral_norm_warm_start_from_a_hint() -> None:
    """A hint (kept per parameter across snapshots) starts Lanczos from the last Ritz vector:
    the result stays a lower bound as close to the true value; a hint of the wrong shape or
    with NaN is ignored."""
    g = torch.Generator().manual_seed(3)
    m = torch.randn(600, 700, generator=g, dtype=torch.float64) / 30
    hint: dict = {}
    for k in range(3):  # weights that move a little between snapshots
        m = m + 1e-3 * torch.randn(600, 700, generator=g, dtype=torch.float64)
        want = torch.linalg.svdvals(m)[0].item()
        got = stats.tensor_stats_and_histogram(m, None, hint)[0]["spectral_norm"]
        assert got <= want * (1 + 1e-12), k
        assert got == pytest.approx(want, rel=1e-5), k
        assert hint["v"].shape == (700,)
    for bad in ({"v": torch.ones(3)}, {"v": torch.full((700,), math.nan)}):
        got = stats.tensor_stats_and_histogram(m, None, bad)[0]["spectral_norm"]
        assert got == pytest.approx(torch.linalg.svdvals(m)[0].item(), rel=1e-5)
    big = torch.randn(1100, 1000, generator=g) / 30  # float32 Lanczos, warm
    hint32: dict = {}
    for _ in range(2):
        got = stats.tensor_stats_and_histogram(big, None, hint32)[0]["spectral_norm"]
    assert got == pytest.approx(torch.linalg.svdvals(big.double())[0].item(), rel=1e-4)


def test_float32_lanczos_on_a_conv_weight_cold_and_warm() -> None:
    """A ResNet layer4 conv weight at PyTorch's default init (512 x 4608 float32: Lanczos with
    float32 mat-vecs, stopped once a step adds less than LANCZOS_RTOL[1]): its flat
    Marchenko-Pastur spectrum is the slowest case: a cold start (a run's first snapshot) can
    end 1e-4 low after LANCZOS_STEPS, warm starts (every later snapshot, after a
    training-sized move) within 1e-6 of float64's SVD; always a lower bound."""
    torch.manual_seed(7)
    w = torch.nn.Conv2d(512, 512, 3).weight.detach().reshape(512, -1)
    hint: dict = {}
    for k in range(3):
        want = torch.linalg.svdvals(w.double())[0].item()
        got = stats.tensor_stats_and_histogram(w, None, hint)[0]["spectral_norm"]
        assert got <= want * (1 + 1e-7), k  # a lower bound, up to float32 mat-vec rounding
        assert got == pytest.approx(want, rel=1e-3 if k == 0 else 1e-6), k
        w = w + 0.01 * w.std() * torch.randn_like(w)


# ------------------------------------------------ many tensors at once (the recorder's fast path)

FLAT_SHAPES = [(64, 2), (64,), (64, 64), (3, 4, 3, 3), (2, 64), (2,), (1,), (), (1, 5), (5, 1),
               (0,), (3, 0), (300, 260), (7,), (4, 4), (4, 4), (6,), (2, 3)]


def _flat_case(dtype: np.dtype, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Tensors of FLAT_SHAPES with the edge cases the docstring promises, and their edges."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(rng.standard_normal(s) * rng.uniform(0.01, 3), dtype=dtype)
              for s in FLAT_SHAPES]
    arrays[5][:] = 0.0                    # all zeros
    arrays[13][:] = 0.25                  # all equal
    arrays[14].reshape(-1)[3] = NAN       # NaN: the general path
    arrays[15].reshape(-1)[[0, 5]] = (INF, -INF)  # Inf: the general path
    arrays[16][[1, 4]] = 0.0              # a few exact zeros (-0.0 too)
    arrays[16][2] = -0.0
    arrays[17] = np.round(arrays[17])     # ties in the sort
    edges = [stats.weight_edges(a.reshape(-1), n_bins=int(rng.integers(1, 70)))
             for a in arrays]
    edges[2] = np.array([-5.0, -0.1, 0.0, 0.03, 2.0])  # not uniform
    edges[6] = np.linspace(-1e-3, 1e-3, 9)  # values outside: under / overflow
    return arrays, edges


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_tensors_at_once_equal_one_call_each_and_numpy(dtype):
    arrays, edges = _flat_case(dtype)
    flat = np.concatenate([a.reshape(-1) for a in arrays])
    hints: list[dict] = [{} for _ in arrays]
    got = stats.stats_and_histograms_flat(flat, [a.shape for a in arrays], edges, hints)
    for a, e, g in zip(arrays, edges, got, strict=True):
        x = a.reshape(-1).astype(np.float64)
        if a.size == 0 or not np.all(np.isfinite(x)):
            assert g is None  # the caller takes tensor_stats_and_histogram
            continue
        assert g is not None
        entry, hist = g
        want, want_hist = stats.tensor_stats_and_histogram(torch.from_numpy(a), e)
        assert list(entry) == list(want)  # same keys, same order
        for key in ("numel", "min", "max", "percentiles", "zero_frac", "nan_count",
                    "inf_count", "finite_count"):
            assert entry[key] == want[key], key  # exact
        for key in ("mean", "std", "l2", "spectral_norm", "stable_rank"):
            if want[key] is None:  # stable_rank of all zeros
                assert entry[key] is None, key
            else:
                assert entry[key] == pytest.approx(want[key], rel=1e-12, abs=1e-300), key
        assert hist == want_hist
        # and against numpy directly
        np.testing.assert_array_equal(entry["percentiles"], np.percentile(x, stats.PERCENTILES))
        np.testing.assert_array_equal(hist.counts, np.histogram(x, e)[0])
        assert hist.underflow == int((x < e[0]).sum()) and hist.overflow == int((x > e[-1]).sum())
        assert hist.total() == a.size
        assert entry["mean"] == pytest.approx(x.mean(), rel=1e-12, abs=1e-15)
        assert entry["std"] == pytest.approx(x.std(ddof=1) if x.size > 1 else 0.0, rel=1e-10,
                                             abs=1e-15)
        assert entry["zero_frac"] == float((x == 0).mean())
        m = x.reshape(a.shape[0], -1) if a.ndim >= 2 else None
        want_sv = np.linalg.svd(m, compute_uv=False)[0] if m is not None else np.linalg.norm(x)
        assert entry["spectral_norm"] == pytest.approx(want_sv, rel=1e-9)
    assert hints[12].get("v") is not None  # the 300 x 260 matrix: Lanczos, warm start kept
    assert got[13][0]["std"] == 0.0 and got[13][0]["percentiles"] == [0.25] * 9
    assert got[5][0]["spectral_norm"] == 0.0 and got[5][0]["stable_rank"] is None


def test_many_tensors_at_once_extremes_and_bad_input():
    big = np.array([1e301, -3e305, 2e300])
    tiny = np.array([1e-305, 3e-302, 0.0, -1e-303])
    ok = np.array([1.0, 2.0])
    got = stats.stats_and_histograms_flat(np.concatenate([big, tiny, ok]),
                                          [(3,), (4,), (2,)], [np.linspace(-1, 1, 5)] * 3)
    assert got[0] is None and got[1] is None  # scaled by a power of two: the general path
    assert got[2][0]["mean"] == 1.5
    assert stats.stats_and_histograms_flat(np.zeros(0), [], []) == []
    assert stats.stats_and_histograms_flat(np.zeros(0), [(0,)], [np.arange(3.0)]) == [None]
    with pytest.raises(ValueError, match="values for shapes"):
        stats.stats_and_histograms_flat(np.zeros(5), [(2,), (2,)], [np.arange(3.0)] * 2)
    with pytest.raises(ValueError, match="1-D float32 or float64"):
        stats.stats_and_histograms_flat(np.zeros(4, dtype=np.int64), [(4,)], [np.arange(3.0)])
    with pytest.raises(ValueError, match="strictly increasing"):
        stats.stats_and_histograms_flat(np.zeros(4), [(4,)], [np.array([0.0, 0.0, 1.0])])
    with pytest.raises(ValueError, match="finite"):
        stats.stats_and_histograms_flat(np.zeros(4), [(4,)], [np.array([0.0, NAN])])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_drift_of_many_tensors_equals_drift(dtype):
    arrays, _ = _flat_case(dtype, seed=3)
    rng = np.random.default_rng(4)
    later = [np.asarray(a + rng.standard_normal(a.shape) * 0.01, dtype=dtype) for a in arrays]
    later[13] = arrays[13].copy()         # unchanged all-equal: 0 / x = 0
    later[5] = arrays[5] + 1.0            # from all zeros: x / 0 = inf
    arrays.append(np.zeros(3, dtype=dtype))
    later.append(np.zeros(3, dtype=dtype))  # 0 / 0: None
    arrays.append(np.array([1e300, 2e301]) if dtype == np.float64 else np.ones(2, dtype))
    later.append(arrays[-1] * 1.5)        # float64 beyond 2**300: scaled, as drift does
    w0 = np.concatenate([a.reshape(-1) for a in arrays])
    wt = np.concatenate([a.reshape(-1) for a in later])
    got = stats.drift_flat(w0, wt, [a.size for a in arrays])
    for a, b, g in zip(arrays, later, got, strict=True):
        want = stats.drift(torch.from_numpy(np.ascontiguousarray(a)),
                           torch.from_numpy(np.ascontiguousarray(b)))
        if want is None or g is None:
            assert g is want is None
        elif math.isnan(want):
            assert math.isnan(g)
        else:
            assert g == pytest.approx(want, rel=1e-12)
    assert math.isnan(got[14]) and math.isnan(got[15]) and got[5] == INF and got[-2] is None
    assert got[10] is None and got[11] is None  # empty tensors
    with pytest.raises(ValueError, match="shapes differ"):
        stats.drift_flat(np.zeros(3), np.zeros(4), [3])


def test_weight_edges_with_a_known_max_are_the_same():
    x = randn(40, seed=9).numpy()
    top = float(np.abs(x).max())
    np.testing.assert_array_equal(stats.weight_edges(x, theory_std=0.1, maxabs=top),
                                  stats.weight_edges(x, theory_std=0.1))
    y = x.copy()
    y[0] = NAN  # a non-finite maxabs is ignored: measured from the values
    np.testing.assert_array_equal(stats.weight_edges(y, maxabs=NAN), stats.weight_edges(y))


@pytest.mark.parametrize("shape", [(64, 2), (2, 64), (2, 2), (2, 3), (3, 2), (1000, 2)])
@pytest.mark.parametrize("kind", ["random", "equal", "parallel", "orthogonal", "tiny", "huge"])
def test_a_side_of_two_gets_the_2x2_gram_in_closed_form(shape, kind):
    """Matrices with a side of 2 (a 2-D input layer, a 2-class output) share a closed-form top
    eigenvalue of their 2 x 2 Gram in the flat pass: float64's SVD to ~1e-14 whatever the
    conditioning (rank one, equal singular values, extreme scales)."""
    rng = np.random.default_rng(len(kind) * 100 + shape[0])
    m = rng.standard_normal(shape)
    if kind == "equal":
        m[:] = -0.3
    elif kind == "parallel":  # rank one: the smaller eigenvalue is 0
        if shape[0] == 2:
            m[1] = 2.0 * m[0]
        else:
            m[:, 1] = -3.0 * m[:, 0]
    elif kind == "orthogonal":  # both singular values equal
        q = np.linalg.qr(rng.standard_normal((max(shape), 2)))[0]
        m = q if shape[1] == 2 else q.T
    elif kind == "tiny":
        m *= 1e-30
    elif kind == "huge":
        m *= 1e30
    m = m.astype(np.float32)
    x = m.astype(np.float64)
    other = rng.standard_normal(5).astype(np.float32)  # a neighbour in the flat buffer
    flat = np.concatenate([other, m.reshape(-1)])
    got = stats.stats_and_histograms_flat(flat, [(5,), shape], [np.linspace(-1, 1, 5)] * 2)
    entry = got[1][0]
    want = np.linalg.svd(x, compute_uv=False)
    assert entry["spectral_norm"] == pytest.approx(want[0], rel=1e-14)
    assert entry["stable_rank"] == pytest.approx(max(1.0, (want ** 2).sum() / want[0] ** 2),
                                                 rel=1e-12)
    assert entry["spectral_norm"] == pytest.approx(
        stats.tensor_stats(torch.from_numpy(m))["spectral_norm"], rel=1e-14)
