"""The epoch player's payload: every frame the browser draws is the builder's own figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnviz.analysis import diagnostics, views
from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.figures import epoch_view as ev
from nnviz.figures import player as fp
from nnviz.store.runs import RunStore


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return RunStore(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def cnn(store):
    cfg = RunConfig(model="simple_cnn", dataset="shapes32", n_samples=200, epochs=3,
                    batch_size=64, probe_size=32, seed=3)
    return store.load(train(cfg, store).run_id)


@pytest.fixture(scope="module")
def diverged(store):
    cfg = RunConfig(model="mlp", dataset="spiral", depth=6, width=32, init="too_large",
                    optimizer="sgd", lr=5.0, n_samples=200, epochs=3, batch_size=32,
                    probe_size=32)
    result = train(cfg, store)
    assert result.status == "diverged"
    return store.load(result.run_id)


def tracks(run, layer):
    return {p: views.param_track([run], p) for p in views.layer_params(run)[layer]}


def charts(payload):
    return [cell["chart"] for block in payload["blocks"] for cell in block.get("row", [])]


def test_every_frame_is_the_builders_figure_for_that_snapshot(cnn):
    """Rebuilt from base + diff, each frame of each chart equals the figure the builder makes
    for that snapshot, for every view of a conv and a linear layer (More views on)."""
    for layer in views.layer_names(cnn):
        tr = tracks(cnn, layer)
        payload = ev.player_payload(cnn, layer, tr, more=True,
                                    timeline=diagnostics.timeline_severities(cnn))
        assert payload["snapshots"] == list(range(cnn.n_snapshots))
        json.dumps(payload, allow_nan=False)  # what the component sends: strict JSON
        params = views.layer_params(cnn)[layer]
        for k, i in enumerate(payload["snapshots"]):
            want = []
            for p in params:
                w = ev.stored_values(cnn, i, p)
                want.append(ev.histogram_figure(cnn, i, p, tr[p]))
                want.append(ev.main_figure(cnn, i, p, tr[p], w))
                if ev.extra_kind(cnn, p):
                    want.append(ev.extra_figure(cnn, i, p, tr[p], w))
                want.append(ev.delta_figure(cnn, i, p, tr[p]))
            got = [fp.frame_figure(c, k) for c in charts(payload)[1:]]  # [0]: the timeline
            assert len(got) == len(want)
            for g, f in zip(got, want, strict=True):
                assert g == fp.figure_dict(ev._compact(f))


def test_histogram_frames_hold_numpy_counts_and_fixed_axes(cnn):
    payload = ev.player_payload(cnn, "conv1", tracks(cnn, "conv1"))
    hist = charts(payload)[0]
    ranges = set()
    for k in range(cnn.n_snapshots):
        fig = fp.frame_figure(hist, k)
        bars = fig["data"][0]
        counts = np.frombuffer(__import__("base64").b64decode(bars["y"]["bdata"]),
                               dtype=bars["y"]["dtype"])
        w = cnn.snapshot(k).values("conv1.weight")
        edges = views.param_track([cnn], "conv1.weight").edges
        np.testing.assert_array_equal(counts, np.histogram(w, bins=edges)[0])
        ranges.add((tuple(fig["layout"]["xaxis"]["range"]),
                    tuple(fig["layout"]["yaxis"]["range"])))
    assert len(ranges) == 1
    # frames after the first carry only what changed: no x, no axes
    diff = hist["frames"][1]
    assert set(diff["traces"]["0"]) == {"y"}
    assert "xaxis" not in diff.get("layout", {}) and "yaxis" not in diff.get("layout", {})


def test_a_diverged_runs_frames_are_the_builders_figures(diverged):
    """NaN / Inf counts (in the histogram's subtitle and meta) travel with each frame; the
    payload stays strict JSON."""
    bad = 0
    for layer in views.layer_names(diverged):
        tr = tracks(diverged, layer)
        payload = ev.player_payload(diverged, layer, tr)
        json.dumps(payload, allow_nan=False)
        hists = [c for c in charts(payload) if c["base"]["layout"]["meta"]["kind"]
                 == "weight_histogram"]
        for p, chart in zip(views.layer_params(diverged)[layer], hists, strict=True):
            own = views.auto_bins(diverged, p) is not None  # the default: automatic bins
            for k, i in enumerate(payload["snapshots"]):
                assert fp.frame_figure(chart, k) == fp.figure_dict(
                    ev.histogram_figure(diverged, i, p, tr[p], rebin=own))
            first = fp.frame_figure(chart, 0)["layout"]["meta"]
            last = fp.frame_figure(chart, len(payload["snapshots"]) - 1)["layout"]["meta"]
            assert first["nan"] + first["posinf"] + first["neginf"] == 0
            bad += last["nan"] + last["posinf"] + last["neginf"]
    assert bad > 0


def test_automatic_bins_go_per_snapshot_only_for_a_run_that_blew_up(cnn, diverged):
    """The default: a calm run keeps the run's bins; a diverged one gets each snapshot's own
    bins, and the note under the chart says so and why, at every frame."""
    payload = ev.player_payload(cnn, "conv1", tracks(cnn, "conv1"))
    fig = fp.frame_figure(charts(payload)[0], 1)
    assert not fig["layout"]["title"]["text"].endswith("(own bins)")
    assert views.auto_bins(cnn, "conv1.weight") is None
    assert "notes" not in next(b for b in payload["blocks"] if "row" in b and len(b["row"]) > 1
                               )["row"][0]
    layer = views.layer_names(diverged)[0]
    payload = ev.player_payload(diverged, layer, tracks(diverged, layer))
    cell = next(b for b in payload["blocks"] if "row" in b and b["row"][0]["chart"]["base"]
                ["layout"]["meta"]["kind"] == "weight_histogram")["row"][0]
    assert cell["caption"] == []  # not the fixed-bins caption
    assert len(cell["notes"]) == len(payload["snapshots"])
    assert all("chosen automatically" in n and "NaN / Inf" in n for n in cell["notes"])
    for k in range(len(payload["snapshots"])):
        assert fp.frame_figure(cell["chart"], k)["layout"]["title"]["text"].endswith("(own bins)")
    # the tiles beside it follow: this snapshot's own colour scale, and the note says so
    tiles = next(b for b in payload["blocks"] if "row" in b and b["row"][0] is cell)["row"]
    assert tiles[1]["chart"]["base"]["layout"]["meta"]["kind"] == "neurons"  # fc1.weight
    assert all(ev.OWN_SCALE_NOTE[0].split("**")[1] in n for n in tiles[1]["notes"])
    assert "own symmetric colour scale" in tiles[1]["caption"][0]
    assert "fixed for the run" not in tiles[1]["caption"][0]
    w = diverged.snapshot(payload["snapshots"][0]).values(views.layer_params(diverged)[layer][0])
    zmax = fp.frame_figure(tiles[1]["chart"], 0)["data"][0]["zmax"]
    assert zmax == pytest.approx(float(np.abs(w).max()), rel=1e-6)
    # an explicit choice wins over the automatic one
    fixed = ev.player_payload(diverged, layer, tracks(diverged, layer), rebin=False)
    assert not fp.frame_figure(charts(fixed)[0], 0)["layout"]["title"]["text"].endswith(
        "(own bins)")


def test_rebinned_frames_carry_their_own_bins(cnn):
    tr = tracks(cnn, "conv1")
    payload = ev.player_payload(cnn, "conv1", tr, rebin=True)
    xs = set()
    for k in range(cnn.n_snapshots):
        fig = fp.frame_figure(charts(payload)[0], k)
        assert fig["layout"]["title"]["text"].endswith("(own bins)")
        xs.add(tuple(fig["layout"]["xaxis"]["range"]))
    assert len(xs) == cnn.n_snapshots


def test_texts_follow_the_snapshot(cnn):
    payload = ev.player_payload(cnn, "fc", tracks(cnn, "fc"))
    per_frame = [b["htmls"] for b in payload["blocks"] if "htmls" in b]
    loss_line, *stats_rows = per_frame
    assert loss_line[0].startswith("At init") and loss_line[2].startswith("After epoch 2")
    row = views.stats_row(cnn, 2, "fc.weight")
    assert f"std <b>{ev.fmt(row['std'])}</b>" in stats_rows[0][2]


@pytest.mark.parametrize("n, most, want", [
    (4, 61, [0, 1, 2, 3]), (5, 3, [0, 2, 4]), (11, 4, [0, 3, 7, 10]), (2, 2, [0, 1])])
def test_spaced_frames_keep_both_ends(n, most, want):
    assert ev.spaced(n, most) == want


def test_heavy_heatmaps_thin_the_frames(cnn, monkeypatch):
    monkeypatch.setattr(ev, "PLAYER_MAX_CELLS", 3 * 90_000)
    frames = ev.player_frames(cnn, heavy_cells=90_000)
    assert frames == [0, 2, 3] or (frames[0] == 0 and frames[-1] == cnn.n_snapshots - 1
                                   and len(frames) == 3)


def test_md_html_escapes_everything_but_its_markup():
    assert ev.md_html("<script>x</script> **b** *i* `c` :red[**3**]") == (
        '&lt;script&gt;x&lt;/script&gt; <b>b</b> <i>i</i> <code>c</code> '
        '<span class="red"><b>3</b></span>')
    assert ev.md_html("a * b * c") == "a * b * c"  # spaced asterisks are not italics


# Bounded strategies: small numbers, a short alphabet, few leaves, so each example is cheap to
# build on a busy machine (the too-slow health check measured the generator, not the code).
_keys = st.text(alphabet="abxy", max_size=2)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(alphabet="abxy", max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=6)
traces = st.lists(st.dictionaries(st.sampled_from(["x", "y", "z", "type", "marker"]),
                                  json_values, max_size=4), max_size=3)
layouts = st.dictionaries(st.sampled_from(["title", "xaxis", "yaxis", "meta", "shapes"]),
                          json_values, max_size=4)


@given(traces, layouts, traces, layouts)
def test_apply_diff_inverts_frame_diff(d1, l1, d2, l2):
    base, other = {"data": d1, "layout": l1}, {"data": d2, "layout": l2}
    assert fp.apply_diff(base, fp.frame_diff(base, other)) == other
