"""Weight and curve figures read back and checked against numpy (the reference answer)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnviz.analysis import stats
from nnviz.analysis.views import theory_curve
from nnviz.engine.initializers import Theory
from nnviz.figures import curves as fc
from nnviz.figures import weights as fw
from nnviz.figures.style import DIVERGING
from nnviz.store.format import HistoryRow


def bars_total(fig) -> int:
    """Every bar of a histogram figure plus the NaN / Inf counts it states."""
    total = sum(int(np.sum(t.y)) for t in fig.data if t.type == "bar")
    meta = fig.layout.meta
    return total + meta["nan"] + meta["posinf"] + meta["neginf"]


def tutorial_reshape(w: np.ndarray) -> np.ndarray:
    """The seed tutorial's visualize_weights reshape of the first neurons, verbatim."""
    n_features = w.shape[1]
    side_length = int(np.sqrt(n_features))
    if n_features % side_length != 0:
        new_size = (side_length + 1) * side_length
        w_padded = np.zeros((w.shape[0], new_size))
        w_padded[:, :n_features] = w
        w = w_padded
    return w.reshape(w.shape[0] * side_length, -1)


# ------------------------------------------------------------------------------ histograms


def test_histogram_counts_every_element_including_outside_and_nonfinite():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 5000)
    x[:7] = np.nan
    x[7:10] = np.inf
    x[10:12] = -np.inf
    x[12:20] = 9.0      # above the edges
    x[20:25] = -9.0     # below
    edges = np.linspace(-3, 3, 41)
    hist = stats.histogram(x, edges)
    fig = fw.weight_histogram(hist, y_max=400)
    assert bars_total(fig) == x.size
    main = fig.data[0]
    ref, _ = np.histogram(x[np.isfinite(x) & (np.abs(x) <= 3)], edges)
    np.testing.assert_array_equal(main.y, ref)
    np.testing.assert_allclose(main.x, 0.5 * (edges[:-1] + edges[1:]))
    names = [t.name for t in fig.data]
    assert "below range" in names and "above range" in names
    meta = fig.layout.meta
    fin = x[np.isfinite(x)]
    assert (meta["underflow"], meta["overflow"], meta["nan"], meta["posinf"], meta["neginf"]) \
        == (np.count_nonzero(fin < -3), np.count_nonzero(fin > 3), 7, 3, 2)
    assert meta["underflow"] >= 5 and meta["overflow"] >= 8
    assert fig.layout.title.subtitle.text == \
        f"{meta['underflow']} below the bins · {meta['overflow']} above the bins · NaN 7 · " \
        "+Inf 3 · −Inf 2"
    assert tuple(fig.layout.yaxis.range) == pytest.approx((0, 400 * 1.08))


def test_histogram_without_outside_values_has_one_bar_trace():
    hist = stats.histogram(np.array([0.1, 0.2, 0.2]), np.linspace(0, 1, 11))
    fig = fw.weight_histogram(hist)
    assert [t.type for t in fig.data] == ["bar"]
    assert bars_total(fig) == 3
    assert fig.layout.meta["numel"] == 3
    assert fig.layout.title.subtitle.text == "all in the bins, no NaN / Inf"


@pytest.mark.parametrize("theory", [
    Theory("uniform", 0.0, 0.111 / 1.0, -0.19245, 0.19245),
    Theory("normal", 0.0, 0.05, scale=0.05),
    Theory("trunc_normal", 0.0, 0.044, -0.1, 0.1, 0.05),
])
def test_theory_curve_integrates_to_n(theory):
    n = 4321
    edges = np.linspace(-0.4, 0.4, 61)
    x, y = theory_curve(theory, edges, n)
    width = edges[1] - edges[0]
    assert np.trapezoid(y, x) / width == pytest.approx(n, rel=2e-3)
    fig = fw.weight_histogram(stats.histogram(np.zeros(n), edges), theory_xy=(x, y))
    line = [t for t in fig.data if t.type == "scatter"][0]
    assert np.trapezoid(line.y, line.x) / width == pytest.approx(n, rel=2e-3)


def test_theory_curve_is_expected_counts_per_bin():
    """pdf × n × width at a bin centre ≈ the expected count of that bin (a numpy sample)."""
    theory = Theory("uniform", 0.0, 1 / math.sqrt(3), -1.0, 1.0)
    edges = np.linspace(-1.5, 1.5, 31)
    n = 200_000
    x, y = theory_curve(theory, edges, n)
    sample = np.random.default_rng(1).uniform(-1, 1, n)
    counts, _ = np.histogram(sample, edges)
    centers = 0.5 * (edges[:-1] + edges[1:])
    inside = np.abs(centers) < 0.95
    expected = np.interp(centers[inside], x, y)
    np.testing.assert_allclose(counts[inside], expected, rtol=0.05)
    assert np.all(counts[np.abs(centers) > 1.05] == 0)


def test_theory_curve_none_for_point_and_orthogonal():
    edges = np.linspace(-1, 1, 11)
    assert theory_curve(Theory("point", 1.0, 0.0, 1.0, 1.0), edges, 10) is None
    assert theory_curve(Theory("orthogonal", 0.0, 0.1), edges, 10) is None
    assert theory_curve(None, edges, 10) is None


def test_point_theory_is_drawn_as_a_line():
    fig = fw.weight_histogram(stats.histogram(np.ones(4), np.linspace(0.5, 1.5, 11)),
                              theory_point=1.0)
    assert any(s.x0 == 1.0 and s.x1 == 1.0 for s in fig.layout.shapes)


def test_delta_histogram_kind():
    d = np.array([0.0, 0.01, -0.01, 0.02])
    fig = fw.delta_histogram(stats.histogram(d, np.linspace(-0.03, 0.03, 13)), y_max=5)
    assert fig.layout.meta["kind"] == "delta_histogram"
    assert bars_total(fig) == 4


# ------------------------------------------------------------------------------ heatmaps


def test_conv_grid_has_one_tile_per_filter_and_channel_on_a_symmetric_scale():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(5, 3, 3, 3))
    fig = fw.conv_filter_grid(w, zmax=2.5)
    hm = fig.data[0]
    assert hm.zmin == -2.5 and hm.zmax == 2.5
    assert hm.colorscale == fig.data[0].colorscale and fig.data[0].colorbar.title.text == "weight"
    z = np.asarray(hm.z, dtype=float)
    assert z.shape == (5 * 4 - 1, 3 * 4 - 1)
    assert np.count_nonzero(~np.isnan(z)) == w.size
    assert fig.layout.meta["n_tiles"] == 5 * 3
    for o in range(5):
        for i in range(3):
            np.testing.assert_array_equal(z[o * 4:o * 4 + 3, i * 4:i * 4 + 3], w[o, i])


def test_a_one_channel_conv_grid_wraps_its_filters_into_rows_of_four():
    """Grey-image filters (8, 1, 7, 7): two rows of four big tiles, not a column of eight."""
    w = np.random.default_rng(4).normal(size=(8, 1, 7, 7))
    fig = fw.conv_filter_grid(w, zmax=3.0)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (2 * 8 - 1, 4 * 8 - 1)
    for f in range(8):
        r, c = divmod(f, 4)
        np.testing.assert_array_equal(z[r * 8:r * 8 + 7, c * 8:c * 8 + 7], w[f, 0])
    assert fig.data[0].text[8 + 2, 8 * 3 + 5] == "filter 7, in-channel 0, (2,5)"
    assert list(fig.layout.yaxis.ticktext) == ["f0", "f4"]
    assert fig.layout.meta["cols"] == 4 and fig.layout.meta["n_tiles"] == 8
    assert "8 filters × 1 input channel)" in fig.layout.title.text


def test_conv_grid_scale_does_not_follow_the_data():
    """Two epochs drawn with the run's limit get identical colour limits."""
    w0 = np.full((2, 2, 3, 3), 0.1)
    w1 = np.full((2, 2, 3, 3), 0.7)
    a, b = fw.conv_filter_grid(w0, 0.9), fw.conv_filter_grid(w1, 0.9)
    assert (a.data[0].zmin, a.data[0].zmax) == (b.data[0].zmin, b.data[0].zmax) == (-0.9, 0.9)


def test_conv_grid_caps_large_layers():
    w = np.zeros((100, 40, 3, 3))
    fig = fw.conv_filter_grid(w, 1.0, max_filters=64, max_channels=32)
    assert fig.layout.meta["n_tiles"] == 64 * 32
    assert "first 64 of 100" in fig.layout.title.text


def test_conv_grid_rejects_wrong_shape():
    with pytest.raises(ValueError):
        fw.conv_filter_grid(np.zeros((3, 3)), 1.0)


def test_rgb_filters_global_and_per_filter():
    w = np.zeros((4, 3, 3, 3))
    w[1] = 0.5
    w[2, 0] = -0.5
    g = fw.rgb_filters(w, normalize="global", zmax=0.5)
    img = np.asarray(g.data[0].z)
    assert img.shape == (3, 4 * 4 - 1, 3)
    tile = lambda k: img[:, k * 4:k * 4 + 3]  # noqa: E731
    assert np.all(tile(0) == 128)            # zero weight = grey
    assert np.all(tile(1) == 255)            # +zmax = white
    assert np.all(tile(2)[..., 0] == 0) and np.all(tile(2)[..., 1:] == 128)
    assert "±0.5" in g.layout.title.text
    p = fw.rgb_filters(w, normalize="per_filter")
    img = np.asarray(p.data[0].z)
    assert img[:, 8:11].min() == 0 and img[:, 8:11].max() == 255
    assert "own range" in p.layout.title.text
    with pytest.raises(ValueError):
        fw.rgb_filters(np.zeros((2, 1, 3, 3)))


def test_near_square_matches_the_tutorial_where_it_works():
    worked, failed = 0, 0
    for n in [*range(1, 200), 784, 3072, 4096]:
        w = np.random.default_rng(n).normal(size=(3, n))
        try:
            ref = tutorial_reshape(w)
        except ValueError:  # the tutorial pads too little when n > rows² + rows (e.g. 14)
            rows, cols = fw.near_square_shape(n)
            assert rows * cols >= n and rows == math.isqrt(n)
            failed += 1
            continue
        ours = np.vstack([fw.near_square(w[k]) for k in range(3)])
        np.testing.assert_array_equal(ours, ref)
        worked += 1
    assert worked > 100 and failed > 50  # both cases are exercised


def test_near_square_known_shapes():
    assert fw.near_square_shape(4096) == (64, 64)
    assert fw.near_square_shape(2) == (1, 2)
    assert fw.near_square_shape(14) == (3, 5)
    with pytest.raises(ValueError):
        fw.near_square_shape(0)


def test_neuron_grid_tiles_are_the_first_neurons():
    w = np.random.default_rng(3).normal(size=(12, 10))  # 10 inputs -> 3×4, two cells padded
    fig = fw.neuron_grid(w, zmax=4.0, n_neurons=10, cols=5)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert fig.layout.meta["n_tiles"] == 10
    assert z.shape == (2 * 4 - 1, 5 * 5 - 1)
    for k in range(10):
        r, c = divmod(k, 5)
        tile = z[r * 4:r * 4 + 3, c * 5:c * 5 + 4]
        np.testing.assert_array_equal(tile.reshape(-1)[:10], w[k])
        assert np.all(np.isnan(tile.reshape(-1)[10:]))  # padding drawn blank, not as zeros
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-4.0, 4.0)


def test_spatial_grid_folds_a_row_back_into_its_map():
    row = np.arange(2 * 3 * 3, dtype=float)
    fig = fw.spatial_grid(row, (2, 3, 3), zmax=20.0, neuron=4, cols=8)
    z = np.asarray(fig.data[0].z, dtype=float)
    np.testing.assert_array_equal(z[:, :3], row.reshape(2, 3, 3)[0])
    np.testing.assert_array_equal(z[:, 4:7], row.reshape(2, 3, 3)[1])
    assert fig.layout.meta["n_tiles"] == 2 and "Neuron 4" in fig.layout.title.text
    with pytest.raises(ValueError):
        fw.spatial_grid(np.zeros(5), (2, 3, 3), 1.0)


def test_diverging_colours_are_used():
    fig = fw.conv_filter_grid(np.zeros((1, 1, 3, 3)), 1.0)
    scale = fig.data[0].colorscale
    assert scale[0][1] != scale[-1][1] and DIVERGING


# ------------------------------------------------------------------------------------ bars


def test_bias_bars_fixed_range_and_nonfinite_marked():
    v = np.array([0.1, -0.2, np.nan, 0.05])
    fig = fw.bias_bars(v, (-0.5, 0.3), theory_bounds=(-0.25, 0.25))
    lo, hi = fig.layout.yaxis.range
    assert lo < -0.5 and hi > 0.3
    assert fig.layout.meta["nonfinite"] == 1
    np.testing.assert_array_equal(fig.data[0].y, [0.1, -0.2, 0.0, 0.05])
    assert len(fig.layout.shapes) == 2


# ------------------------------------------------------------------------- all-epochs views


def test_ridgeline_one_outline_per_snapshot_current_highlighted():
    edges = np.linspace(-1, 1, 11)
    counts = np.random.default_rng(4).integers(0, 50, size=(5, 10))
    fig = fw.ridgeline(edges, counts, [f"e{k}" for k in range(5)], current=3)
    assert len(fig.data) == 5
    widths = [t.line.width for t in fig.data]
    assert widths[3] == max(widths) and widths.count(max(widths)) == 1
    # the highlighted outline is counts[3] scaled to the run's largest bin, on its baseline
    base = 5 - 1 - 3
    ys = np.asarray(fig.data[3].y)[:10]
    np.testing.assert_allclose(ys, base + 1.8 * counts[3] / counts.max())


def test_ridgeline_subsamples_long_runs_but_keeps_the_current_one():
    counts = np.ones((100, 4))
    fig = fw.ridgeline(np.linspace(0, 1, 5), counts, [str(k) for k in range(100)], current=37)
    assert len(fig.data) <= fw.MAX_RIDGES
    assert 37 in fig.layout.meta["snapshots"] and 99 in fig.layout.meta["snapshots"]


def test_percentile_bands_median_and_bands():
    pct = np.array([[-1, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 1.0],
                    [-2, -1.2, -0.8, -0.4, 0.1, 0.4, 0.8, 1.2, 2.0]])
    fig = fw.percentile_bands([0.0, 1.0], pct, current_epoch=1.0)
    median = [t for t in fig.data if t.name == "median"][0]
    np.testing.assert_array_equal(median.y, pct[:, 4])
    upper = [t for t in fig.data if t.name == "16–84 %"][0]
    np.testing.assert_array_equal(upper.y, pct[:, 6])
    assert any(s.x0 == 1.0 for s in fig.layout.shapes)
    with pytest.raises(ValueError):
        fw.percentile_bands([0.0], np.zeros((1, 3)))


# ---------------------------------------------------------------------------------- curves


def test_training_curve_marks_the_epoch_and_skips_missing_values():
    history = [HistoryRow(epoch=1, train_loss=2.0, val_loss=2.5, train_acc=0.3),
               HistoryRow(epoch=2, train_loss=1.0, val_loss=2.0, train_acc=0.6)]
    fig = fc.training_curve(history, "loss", current_epoch=2)
    assert [t.name for t in fig.data] == ["train", "validation"]
    np.testing.assert_array_equal(fig.data[0].y, [2.0, 1.0])
    assert any(s.x0 == 2 for s in fig.layout.shapes)
    acc = fc.training_curve(history, "acc")
    assert [t.name for t in acc.data] == ["train"]
    empty = fc.training_curve([], "loss")
    assert not empty.data and "no finished epoch" in empty.layout.annotations[0].text


def test_update_ratio_reference_line_at_1e_3():
    fig = fc.update_ratio_curves([0, 1, 2], {"w": [None, 2e-3, 0.0]}, current_epoch=1)
    assert fig.layout.yaxis.type == "log"
    assert any(s.y0 == 1e-3 and s.y1 == 1e-3 for s in fig.layout.shapes)
    label = [a for a in fig.layout.annotations if "1e-3" in a.text][0]
    assert label.y == pytest.approx(-3.0)  # log10 coordinates on a log axis
    y = np.asarray(fig.data[0].y, dtype=float)
    assert np.isnan(y[0]) and y[1] == 2e-3 and np.isnan(y[2])  # 0 cannot sit on a log axis


def test_layer_bars_show_nonfinite_values_in_red():
    fig = fc.layer_bars(["a", "b", "c"], [1.0, float("nan"), None], log_y=True, ref=1e-3,
                        ref_label="ref")
    bar = fig.data[0]
    assert list(bar.text) == ["", "NaN", ""]
    assert bar.marker.color[1] != bar.marker.color[0]
    assert math.isnan(bar.y[2])


def test_activation_charts():
    fig = fc.activation_fractions(["a", "b"], [0.5, None], [None, None], [0.1, 0.0])
    assert [t.name for t in fig.data] == ["dead units", "exact zeros"]
    fig = fc.activation_std(["a", "b"], [0.0, 1.0], [1.0, 2.0])
    np.testing.assert_array_equal(fig.data[0].y, [1.0, 2.0])


def test_compare_and_drift_curves():
    fig = fc.compare_curves({"A": [HistoryRow(epoch=1, val_loss=1.0)],
                             "B": [HistoryRow(epoch=1, val_loss=2.0)]}, "val_loss", 1.0)
    assert [t.name for t in fig.data] == ["A", "B"]
    assert [s.x0 for s in fig.layout.shapes] == [1.0]  # the epoch shown
    # as a trace (the player's): across the values, out of the legend; NaN with no epoch
    fig = fc.compare_curves({"A": [HistoryRow(epoch=1, val_loss=1.0)],
                             "B": [HistoryRow(epoch=2, val_loss=float("nan")),
                                   HistoryRow(epoch=3, val_loss=3.0)]}, "val_loss", 2.0,
                            mark_trace=True)
    assert len(fig.data) == 3 and not fig.layout.shapes
    assert list(fig.data[2].x) == [2.0, 2.0] and list(fig.data[2].y) == [1.0, 3.0]
    assert fig.data[2].showlegend is False and fig.data[2].hoverinfo == "skip"
    fig = fc.compare_curves({"A": [HistoryRow(epoch=1, val_loss=1.0)]}, "val_loss", None,
                            mark_trace=True)
    assert all(math.isnan(v) for v in fig.data[1].x)
    fig = fc.drift_curves([0, 1], {f"p{k}": [0.0, k] for k in range(10)})
    assert len(fig.data) == 10 and fig.data[8].line.dash == "dash"


def test_apply_layout_sets_the_template_plotly_would_validate_to():
    """The template is assigned without re-validation (for speed); the figure must be what the
    validated assignment gives, and one figure's template must not be another's object."""
    import json

    import plotly.graph_objects as go

    from nnviz.figures.style import TEMPLATE, apply_layout

    fast = apply_layout(go.Figure(go.Bar(y=[1, 2])), "t", height=300)
    slow = go.Figure(go.Bar(y=[1, 2])).update_layout(template=TEMPLATE)
    apply_layout(slow, "t", height=300, template=TEMPLATE)  # validated: the old path
    assert json.loads(fast.to_json()) == json.loads(slow.to_json())
    assert fast.layout.template.layout.xaxis.exponentformat == "power"
    other = apply_layout(go.Figure(), "u")
    fast.update_layout(template_layout_font_size=99)  # a change to one figure's template ...
    assert other.layout.template.layout.font.size != 99  # ... is not seen by another's
    assert TEMPLATE.layout.font.size != 99
    with pytest.raises(ValueError):  # everything else is still validated
        apply_layout(go.Figure(), "v", legend_nonsense=1)
