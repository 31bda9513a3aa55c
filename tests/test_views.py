"""nnviz.analysis.views: fixed run-wide axes, tables and series, checked against numpy."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nnviz.analysis import stats, views
from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore

UNIFORM = {"kind": "uniform", "mean": 0.0, "std": 0.5 / math.sqrt(3), "low": -0.5, "high": 0.5,
           "scale": None, "formula": "U(±0.5)"}


def make_run(store: RunStore, snapshots: list[dict[str, np.ndarray]], *, stored: str = "all",
             model_types: dict[str, str] | None = None, input_shape=(2,), name: str = ""):
    """A run written through the storage API with chosen values per snapshot (no training)."""
    first = snapshots[0]
    model_types = model_types or {}
    info = {}
    for order, (pname, arr) in enumerate(first.items()):
        module, _, kind = pname.rpartition(".")
        info[pname] = {
            "shape": list(arr.shape), "numel": int(arr.size), "module": module,
            "module_type": model_types.get(module, "Linear"), "kind": kind, "order": order,
            "theory": UNIFORM, "edges": [float(e) for e in stats.weight_edges(arr)],
            "stored": stored,
        }
    cfg = RunConfig(model="mlp", dataset="moons", epochs=max(1, len(snapshots) - 1), name=name)
    writer = store.create(cfg, "hash", {
        "params": info, "layers": [{"name": "act1", "kind": "relu", "type": "ReLU"}],
        "init_digest": "abc", "data": {"input_shape": list(input_shape)}})
    for k, snap in enumerate(snapshots):
        tensors, per_param = {}, {}
        for pname, arr in snap.items():
            t = torch.from_numpy(np.asarray(arr, dtype=np.float32))
            hist = stats.histogram(arr, np.asarray(info[pname]["edges"]))
            n = int(stored.removeprefix("sample of ")) if stored != "all" else t.numel()
            tensors[f"values/{pname}"] = t.reshape(-1)[:n]  # a sample stores N values
            tensors[f"hist/{pname}"] = torch.from_numpy(hist.counts)
            entry = stats.tensor_stats(t)
            entry["hist_outside"] = {"underflow": hist.underflow, "overflow": hist.overflow,
                                     "nan": hist.nan, "posinf": hist.posinf,
                                     "neginf": hist.neginf}
            entry["drift"] = stats.drift(torch.from_numpy(np.asarray(first[pname], np.float32)),
                                         t)
            if k:
                entry["grad"] = {"norm": 0.5 * k, "mean_abs": 0.1, "std": 0.2,
                                 "last_norm": 0.4, "last_mean_abs": 0.1, "last_std": 0.2,
                                 "steps": 3}
                entry["update_ratio"] = 1e-3 * k
                entry["update_ratio_last"] = 1e-3
            per_param[pname] = entry
        acts = {"act1": {"kind": "relu", **stats.activation_stats(torch.ones(4, 3) * k, "relu")}}
        writer.add_snapshot(tensors, {"epoch": float(k), "step": 3 * k, "params": per_param,
                                      "activations": acts})
        if k:
            writer.meta["history"].append({"epoch": k, "train_loss": 1.0 / k, "val_loss": 1.5 / k,
                                           "train_acc": 0.5, "val_acc": None, "lr": 0.1,
                                           "seconds": 1.0, "samples_per_s": 10.0})
    writer.finish("completed")
    return store.load(writer.run_id)


@pytest.fixture()
def synth(store):
    """Three snapshots of fc1.weight (4, 5) and fc1.bias, with a NaN and an Inf at the end."""
    rng = np.random.default_rng(0)
    w0 = rng.uniform(-0.5, 0.5, (4, 5))
    w1 = w0 * 2.0
    w2 = w0 * 3.0
    w2[0, 0] = np.nan
    w2[1, 1] = np.inf
    b = np.array([0.1, -0.2, 0.0, 0.3])
    return make_run(store, [{"fc1.weight": w0, "fc1.bias": b},
                            {"fc1.weight": w1, "fc1.bias": b * 2},
                            {"fc1.weight": w2, "fc1.bias": b * 2}])


# ----------------------------------------------------------------------------- param_track


def test_track_edges_fixed_and_covering_every_snapshot(synth):
    tr = views.param_track([synth], "fc1.weight")
    values = [synth.snapshot(k).values("fc1.weight").astype(np.float64) for k in range(3)]
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    assert tr.edges[0] < finite.min() and tr.edges[-1] > finite.max()
    assert tr.edges.size == stats.DEFAULT_BINS + 1
    for k, v in enumerate(values):
        h = tr.hist(synth.run_id, k)
        assert h.edges is tr.edges or np.array_equal(h.edges, tr.edges)
        ref, _ = np.histogram(v[np.isfinite(v)], tr.edges)
        np.testing.assert_array_equal(h.counts, ref)
        assert h.total() == 20
    last = tr.hist(synth.run_id, 2)
    assert (last.nan, last.posinf, last.underflow, last.overflow) == (1, 1, 0, 0)
    assert tr.count_max == max(int(tr.hist(synth.run_id, k).counts.max()) for k in range(3))
    assert tr.abs_max == pytest.approx(float(np.abs(finite).max()), rel=1e-6)
    assert tr.low == pytest.approx(float(finite.min()), rel=1e-6)
    assert tr.source == "values"
    np.testing.assert_array_equal(tr.counts_matrix(synth.run_id)[1],
                                  tr.hist(synth.run_id, 1).counts)


def test_track_delta_histograms(synth):
    tr = views.param_track([synth], "fc1.weight")
    w0 = synth.snapshot(0).values("fc1.weight").astype(np.float64)
    w1 = synth.snapshot(1).values("fc1.weight").astype(np.float64)
    d0 = tr.delta_hist(synth.run_id, 0)
    assert d0.total() == 20 and d0.counts.max() == 20  # W_0 - W_0 = 0: one bin
    d1 = tr.delta_hist(synth.run_id, 1)
    ref, _ = np.histogram(w1 - w0, tr.delta_edges)
    np.testing.assert_array_equal(d1.counts, ref)
    assert tr.delta_edges[0] == pytest.approx(-tr.delta_edges[-1])  # symmetric about 0
    d2 = tr.delta_hist(synth.run_id, 2)
    assert d2.total() == 20 and d2.nan + d2.posinf == 2
    assert tr.delta_count_max == max(int(d1.counts.max()), int(d2.counts.max()))


def test_track_shared_by_two_runs(store, synth):
    other = make_run(store, [{"fc1.weight": np.full((4, 5), 0.2), "fc1.bias": np.zeros(4)},
                             {"fc1.weight": np.full((4, 5), 4.0), "fc1.bias": np.zeros(4)}])
    tr = views.param_track([synth, other], "fc1.weight")
    mine = views.param_track([synth], "fc1.weight")
    alone = views.param_track([other], "fc1.weight")
    assert tr.edges[0] <= mine.edges[0] and tr.edges[-1] > 4.0  # covers both runs
    assert alone.edges[0] > mine.edges[0]                       # each alone would differ
    assert set(tr.hists) == {synth.run_id, other.run_id}
    assert tr.abs_max == pytest.approx(4.0)
    assert tr.hist(other.run_id, 1).total() == 20
    assert tr.hist(synth.run_id, 2).total() == 20


def test_track_uses_recorded_counts_for_sampled_params(store):
    w0 = np.linspace(-1, 1, 20).reshape(4, 5)
    run = make_run(store, [{"fc1.weight": w0}, {"fc1.weight": w0 * 10}], stored="sample of 8")
    tr = views.param_track([run], "fc1.weight")
    assert tr.source == "recorded" and tr.notes
    np.testing.assert_array_equal(tr.edges, run.record.params["fc1.weight"].edges)
    h = tr.hist(run.run_id, 1)
    np.testing.assert_array_equal(h.counts, run.snapshot(1).hist_counts("fc1.weight"))
    assert h.underflow + h.overflow > 0 and h.total() == 20


def test_snapshot_histogram_rebins_on_its_own_range(synth):
    h = views.snapshot_histogram(synth, 1, "fc1.weight")
    v = synth.snapshot(1).values("fc1.weight").astype(np.float64)
    assert h.total() == 20 and h.underflow == h.overflow == 0
    assert h.edges[0] < v.min() and h.edges[-1] > v.max()
    np.testing.assert_array_equal(h.counts, np.histogram(v, h.edges)[0])
    h2 = views.snapshot_histogram(synth, 2, "fc1.weight")
    assert h2.total() == 20 and (h2.nan, h2.posinf) == (1, 1)


def test_squeezed_when_a_snapshot_spans_at_most_two_bins():
    edges = np.linspace(-100, 100, 61)  # bin width 3.33
    assert views.squeezed(edges, -1.0, 2.0)
    assert not views.squeezed(edges, -10.0, 10.0)
    assert not views.squeezed(edges, 1.0, 1.0)      # no spread: re-binning shows nothing more
    assert not views.squeezed(edges, None, None)


def test_track_unknown_param(synth):
    with pytest.raises(KeyError):
        views.param_track([synth], "nope.weight")
    with pytest.raises(ValueError):
        views.param_track([], "fc1.weight")


# ------------------------------------------------------------------------ theory and stats


def test_theory_curve_scaled_to_counts(synth):
    tr = views.param_track([synth], "fc1.weight")
    x, y = views.theory_curve(views.theory_of(synth, "fc1.weight"), tr.edges, 20)
    width = tr.edges[1] - tr.edges[0]
    assert y[np.argmin(np.abs(x))] == pytest.approx(20 * width / 1.0)  # pdf = 1 on U(±0.5)
    assert views.theory_point(views.theory_of(synth, "fc1.weight")) is None


def test_stats_row_and_table(synth):
    row = views.stats_row(synth, 2, "fc1.weight")
    v = synth.snapshot(2).values("fc1.weight").astype(np.float64)
    fin = v[np.isfinite(v)]
    assert row["nan"] == 1 and row["inf"] == 1
    assert row["mean"] == pytest.approx(fin.mean(), rel=1e-6)
    assert row["std"] == pytest.approx(fin.std(ddof=1), rel=1e-6)
    assert row["theory_std"] == pytest.approx(0.5 / math.sqrt(3))
    brow = views.stats_row(synth, 0, "fc1.bias")
    assert brow["zeros"] == 1
    df = views.stats_table(synth, 1)
    assert list(df["parameter"]) == ["fc1.weight", "fc1.bias"]
    assert "theoretical std" in df.columns
    back = pd.read_csv(io.BytesIO(views.to_csv(df)))
    assert back["std"].tolist() == pytest.approx(df["std"].tolist(), rel=1e-9)


def test_grad_and_activation_tables(synth):
    g0 = views.grad_table(synth, 0)
    assert g0["grad norm ‖g‖"].isna().all()
    g2 = views.grad_table(synth, 2)
    assert g2["grad norm ‖g‖"].tolist() == [1.0, 1.0]
    assert g2["update ratio ‖ΔW‖/‖W‖"].tolist() == pytest.approx([2e-3, 2e-3])
    acts = views.activation_table(synth, 1)
    assert acts["layer"].tolist() == ["act1"] and acts["mean"].iloc[0] == pytest.approx(1.0)
    h = views.health_numbers(synth, 2)
    assert h["nan_weights"] == 1 and h["inf_weights"] == 1
    assert h["max_update_ratio"] == pytest.approx(2e-3)
    hist = views.history_frame(synth)
    assert hist["train_loss"].tolist() == [1.0, 0.5]


def test_series(synth):
    epochs, pct = views.percentile_series(synth, "fc1.weight")
    assert epochs == [0.0, 1.0, 2.0] and pct.shape == (3, 9)
    v = synth.snapshot(1).values("fc1.weight").astype(np.float64)
    np.testing.assert_allclose(pct[1], np.percentile(v, stats.PERCENTILES), rtol=1e-6)
    epochs, drift = views.param_series(synth, "drift")
    assert drift["fc1.weight"][0] == 0.0
    assert drift["fc1.weight"][1] == pytest.approx(1.0, rel=1e-6)  # ‖2w − w‖ / ‖w‖


def test_structure_helpers(synth):
    assert views.layer_params(synth) == {"fc1": ["fc1.weight", "fc1.bias"]}
    assert views.figures_for(synth, "fc1.weight") == ["histogram", "neurons", "delta"]
    assert views.figures_for(synth, "fc1.bias") == ["histogram", "bars", "delta"]
    assert views.snapshot_label(synth, 0) == "init (epoch 0)"
    assert views.snapshot_label(synth, 2) == "epoch 2"
    assert views.shape_text([16, 3, 3, 3]) == "16×3×3×3 = 432"


def test_feature_shape_of_linear_layers(store):
    conv = {"conv1.weight": np.zeros((4, 3, 3, 3)), "conv1.bias": np.zeros(4),
            "fc.weight": np.zeros((2, 4 * 5 * 5)), "fc.bias": np.zeros(2)}
    run = make_run(store, [conv], model_types={"conv1": "Conv2d", "fc": "Linear"})
    assert views.feature_shape(run, "fc.weight") == (4, 5, 5)
    assert views.feature_shape(run, "conv1.weight") is None
    assert views.figures_for(run, "conv1.weight") == ["histogram", "filters", "rgb", "delta"]
    assert "spatial" in views.figures_for(run, "fc.weight")
    mlp = {"fc1.weight": np.zeros((3, 1 * 4 * 4)), "fc2.weight": np.zeros((2, 3))}
    run = make_run(store, [mlp], input_shape=(1, 4, 4))
    assert views.feature_shape(run, "fc1.weight") == (1, 4, 4)   # reads the raw image
    assert views.feature_shape(run, "fc2.weight") is None


def test_two_run_helpers(store, synth):
    short = make_run(store, [{"fc1.weight": np.ones((4, 5)), "fc1.bias": np.zeros(4)},
                             {"fc1.weight": np.ones((4, 5)), "fc1.bias": np.zeros(4)}],
                     name="short")
    assert views.comparable_layers(synth, short) == ["fc1"]
    assert views.align_snapshots(synth, short) == [(0.0, 0, 0), (1.0, 1, 1), (2.0, 2, 1)]
    diff = views.config_diff(synth.config, short.config)
    assert set(diff["option"]) == {"epochs", "name"}
    twin = views.twin_config(synth.config, "xavier_normal")
    assert twin.init == "xavier_normal" and twin.seed == synth.config.seed
    other = make_run(store, [{"fc2.weight": np.ones((4, 5))}])
    assert views.comparable_layers(synth, other) == []


# ------------------------------------------------------------------ a real tutorial run


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    cfg = RunConfig(model="simple_cnn", dataset="shapes32", init="default", n_samples=200,
                    epochs=1, batch_size=64, probe_size=32)
    return store.load(train(cfg, store).run_id)


def test_tutorial_cnn_theoretical_std_is_the_default_init(tutorial_run):
    """The seed text's correction: 1/√(3·27) = 0.111 for conv1, 1/√(3·4096) = 0.00902 for fc."""
    conv = views.stats_row(tutorial_run, 0, "conv1.weight")
    fc = views.stats_row(tutorial_run, 0, "fc.weight")
    assert conv["theory_std"] == pytest.approx(1 / math.sqrt(81))
    assert fc["theory_std"] == pytest.approx(1 / math.sqrt(3 * 4096))
    assert conv["std"] == pytest.approx(0.111, abs=0.01)
    assert fc["std"] == pytest.approx(0.00902, rel=0.03)
    assert views.feature_shape(tutorial_run, "fc.weight") == (16, 16, 16)
    tr = views.param_track([tutorial_run], "fc.weight")
    assert all(h.total() == 40960 for h in tr.hists[tutorial_run.run_id])
    x, y = views.theory_curve(views.theory_of(tutorial_run, "fc.weight"), tr.edges, tr.numel)
    width = tr.edges[1] - tr.edges[0]
    assert np.trapezoid(y, x) / width == pytest.approx(40960, rel=1e-3)


def test_views_and_figures_do_not_import_streamlit():
    code = ("import sys, nnviz.analysis.views, nnviz.figures.weights, nnviz.figures.curves; "
            "sys.exit('streamlit' in sys.modules)")
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
