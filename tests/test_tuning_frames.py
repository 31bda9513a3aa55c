"""Tuning guide, the tables (``nnviz.analysis.tuning.frames``): the scheduler preview against
the closed forms and training, and every step's frames, findings and figures from tiny real
runs checked against torch / numpy."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from nnviz.analysis import tuning
from nnviz.config import RunConfig
from nnviz.engine.training import prepare, train
from nnviz.errors import ConfigError
from nnviz.figures import tuning as ft
from nnviz.store.format import FORMAT_VERSION, parse_run
from nnviz.store.runs import RunStore

# --------------------------------------------------------------------------- scheduler preview


def test_scheduler_preview_matches_the_closed_forms():
    cfg = RunConfig(epochs=12, lr=0.1, step_size=4, gamma=0.5, patience=1)
    losses = [1.0, 0.8, 0.6] + [0.6] * 9  # stops improving after epoch 3
    frame = tuning.scheduler_preview(cfg, plateau_losses=losses)
    step = frame[frame.scheduler == "step"]["lr"].to_numpy()
    np.testing.assert_allclose(step, [0.1 * 0.5 ** ((e - 1) // 4) for e in range(1, 13)])
    cosine = frame[frame.scheduler == "cosine"]["lr"].to_numpy()
    np.testing.assert_allclose(cosine, [0.05 * (1 + math.cos(math.pi * (e - 1) / 12))
                                        for e in range(1, 13)], atol=1e-12)
    plateau = frame[frame.scheduler == "plateau"]
    lrs = plateau["lr"].to_numpy()
    # Best at epoch 3; epochs 4 and 5 are bad (> patience 1): the LR halves from epoch 6, and
    # again every 2 epochs while nothing improves.
    np.testing.assert_allclose(lrs[:5], 0.1)
    np.testing.assert_allclose(lrs[5:7], 0.05)
    np.testing.assert_allclose(lrs[7:9], 0.025)
    np.testing.assert_allclose(plateau["loss"].to_numpy(), losses)
    with pytest.raises(ConfigError):
        tuning.scheduler_preview(cfg, plateau_losses=[1.0])
    curve = tuning.plateau_curve(12)
    assert curve[3] == curve[-1] < curve[0]


def test_scheduler_preview_equals_what_training_does(store):
    cfg = RunConfig(model="mlp", dataset="moons", depth=1, width=4, n_samples=100, epochs=5,
                    scheduler="step", step_size=2, gamma=0.3, lr=0.02, seed=1)
    run = store.load(train(cfg, store).run_id)
    preview = tuning.scheduler_preview(cfg, schedulers=("step",))
    np.testing.assert_allclose([h.lr for h in run.record.history], preview["lr"].to_numpy())
    fig = ft.scheduler_figure(tuning.scheduler_preview(cfg))
    assert {t.name for t in fig.data} >= {"StepLR", "CosineAnnealingLR", "ReduceLROnPlateau"}


# --------------------------------------------------------------------------- from tiny runs


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Every step's tiny sweep, trained once: {step: [(label, Run)]}."""
    store = RunStore(tmp_path_factory.mktemp("tuning-runs"))
    out = {}
    for step in tuning.STEPS:
        runs = []
        for label, cfg in tuning.step_configs(step, tuning.tuning_base(), "tiny"):
            result = train(cfg.replace(device="cpu"), store)
            runs.append((label, store.load(result.run_id)))
        out[step] = runs
    return out


@pytest.mark.parametrize("step", sorted(tuning.STEPS))
def test_each_step_draws_its_runs(tiny_runs, step):
    runs = tiny_runs[step]
    frames = tuning.step_frames(step, runs)
    history, summary = frames["history"], frames["summary"]
    assert list(summary["label"]) == [label for label, _ in runs]
    for label, run in runs:
        got = history[history.label == label]["val_loss"].to_numpy()
        np.testing.assert_allclose(got, [h.val_loss for h in run.record.history])
    np.testing.assert_allclose(summary["gap"], summary["val_loss"] - summary["train_loss"])
    findings = tuning.step_findings(step, frames)
    assert findings and all(isinstance(f, str) and f for f in findings)
    figures = ft.step_figures(step, frames)
    assert figures
    for fig in figures:
        assert fig.layout.title.text and fig.layout.meta["kind"].startswith("tuning_")
        assert fig.data
        fig.to_json()  # serializable for st.plotly_chart


def test_summary_counts_parameters_like_torch(tiny_runs):
    for label, run in tiny_runs[5]:
        _, model, _, _ = prepare(run.config)
        row = tuning.summary_frame([(label, run)]).iloc[0]
        assert row["n_params"] == sum(p.numel() for p in model.parameters())
        assert row["seconds_per_epoch"] == pytest.approx(
            np.mean([h.seconds for h in run.record.history]))


def test_layer_std_is_the_std_of_each_layer_output_at_init(tiny_runs):
    """Reference: rebuild the seeded model and push the probe batch through it with torch."""
    label, run = tiny_runs[1][1]  # kaiming_normal
    cfg = run.config
    data, model, _, _ = prepare(cfg)
    probe = data.x_val[: cfg.probe_size]
    outputs = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: outputs.__setitem__(n, out))
             for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    model.eval()
    with torch.no_grad():
        model(probe)
    for h in hooks:
        h.remove()
    frame = tuning.layer_std_frame([(label, run)])
    assert list(frame["layer"]) == list(outputs)
    expected = [outputs[n].double().std().item() for n in frame["layer"]]  # unbiased, as stats
    np.testing.assert_allclose(frame["std"].to_numpy(), expected, rtol=1e-4)
    assert frame["output"].tolist() == [False] * (len(frame) - 1) + [True]
    fig = ft.layer_std_figure(frame)
    np.testing.assert_allclose(np.asarray(fig.data[0].y, float), expected, rtol=1e-4)
    assert fig.layout.yaxis.type == "log"


def test_too_small_init_vanishes_and_kaiming_keeps_the_signal(tiny_runs):
    frame = tuning.layer_std_frame(tiny_runs[1])
    hidden = frame[~frame["output"]]
    ratio = {label: f.sort_values("depth")["std"].iloc[-1] / f.sort_values("depth")["std"].iloc[0]
             for label, f in hidden.groupby("label")}
    assert ratio["too_small"] < 1e-3
    assert 0.3 < ratio["kaiming_normal"] < 3
    text = " ".join(tuning.step_findings(1, tuning.step_frames(1, tiny_runs[1])))
    assert "too_small: shrinks" in text


def test_batch_figure_plots_time_against_loss(tiny_runs):
    frames = tuning.step_frames(2, tiny_runs[2])
    fig = ft.batch_tradeoff_figure(frames["summary"])
    summary = frames["summary"].sort_values("batch_size")
    np.testing.assert_allclose(np.asarray(fig.data[0].x, float), summary["seconds_per_epoch"])
    np.testing.assert_allclose(np.asarray(fig.data[0].y, float), summary["val_loss"])
    assert fig.layout.xaxis.type == "log"


def test_early_stopping_marks(tiny_runs):
    runs = tiny_runs[3]
    marks = tuning.early_stopping_marks(runs)
    full = runs[0][1]
    vals = [h.val_loss for h in full.record.history]
    assert marks["best_epoch"] == int(np.argmin(vals)) + 1
    stopped = runs[1][1]
    assert marks["patience"] == 1 and marks["epochs"] == 4
    early = stopped.record.stopped_early
    assert marks["stop_epoch"] == (early.epoch if early is not None else None)
    if marks["stop_epoch"] is not None:  # it stopped: the full run did not improve right after
        assert len(stopped.record.history) == marks["stop_epoch"] < 4
        assert vals[marks["stop_epoch"] - 1] >= min(vals[: marks["stop_epoch"] - 1])
    fig = ft.early_stopping_figure(tuning.history_frame(runs), marks)
    assert [t.name for t in fig.data] == ["training loss", "validation loss"]
    assert len(fig.data[1].y) == len(full.record.history)


def test_loss_choice_metric(tiny_runs):
    frame = tuning.loss_choice_frame(tiny_runs[6])
    error = dict(zip(frame["label"], frame["value"], strict=True))
    assert error["MAE"] < error["MSE"]  # the outliers pull MSE's line, not MAE's
    assert list(frame["task"]) == ["classification"] * 2 + ["regression"] * 2
    for label, run in tiny_runs[6][2:]:
        extra = run.record.data.extra
        snap = run.snapshot(-1)
        learned = np.r_[snap.values("linear.weight").ravel(), snap.values("linear.bias")]
        truth = np.r_[extra["true_w"], extra["true_b"]]
        value = frame[frame.label == label]["value"].iloc[0]
        assert value == pytest.approx(math.dist(learned, truth), rel=1e-6)
    for label, run in tiny_runs[6][:2]:
        assert frame[frame.label == label]["value"].iloc[0] == run.record.history[-1].val_acc
    figs = ft.loss_choice_figures(frame)
    assert [f.layout.meta["kind"] for f in figs] == ["tuning_loss_classification",
                                                     "tuning_loss_regression"]


def test_param_error_of_a_known_line():
    """‖(w, b) − (w_true, b_true)‖ on a run record whose line is off by (3, 4, 0)."""
    values = {"linear.weight": np.array([[4.0, 2.0]]), "linear.bias": np.array([0.5])}
    info = {"module": "linear", "module_type": "Linear", "edges": [-1.0, 1.0]}
    record = parse_run({
        "schema_version": FORMAT_VERSION, "run_id": "x", "status": "completed", "created": 0.0,
        "config": RunConfig(model="simple_net", dataset="regression").to_dict(), "loss": "mse",
        "snapshots": [], "params": {
            "linear.weight": {**info, "shape": [1, 2], "numel": 2, "kind": "weight", "order": 0},
            "linear.bias": {**info, "shape": [1], "numel": 1, "kind": "bias", "order": 1}},
        "data": {"task": "regression", "extra": {"true_w": [1.0, -2.0], "true_b": 0.5}}})
    snap = SimpleNamespace(values=lambda name: values[name])  # a Snapshot's tensors
    run = SimpleNamespace(record=record, run_id="x", status="completed", n_snapshots=1,
                          snapshot=lambda i: snap)
    frame = tuning.loss_choice_frame([("line", run)])
    assert frame["value"].iloc[0] == pytest.approx(5.0)


def test_activation_health(tiny_runs):
    frame = tuning.activation_health_frame(tiny_runs[7])
    measures = frame.groupby("label")["measure"].first().to_dict()
    assert measures == {"relu": "dead", "leaky_relu": "dead", "sigmoid": "saturated",
                        "tanh": "saturated"}
    label, run = tiny_runs[7][3]  # tanh
    acts = run.snapshot(-1).record.activations
    got = frame[frame.label == label].sort_values("depth")
    assert got["fraction"].tolist() == [acts[n].saturated_frac for n in got["layer"]]
    assert ((frame["fraction"] >= 0) & (frame["fraction"] <= 1)).all()


def test_regularization_figure_shows_the_gap(tiny_runs):
    summary = tuning.step_frames(8, tiny_runs[8])["summary"]
    fig = ft.regularization_figure(summary)
    assert [t.name for t in fig.data] == ["training loss", "validation loss"]
    assert list(fig.data[1].text) == [f"gap {g:+.2f}" for g in summary["gap"]]


def test_diverged_runs_are_shown_not_dropped(tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig(model="simple_net", dataset="regression", n_samples=1000, epochs=2,
                    batch_size=16, optimizer="sgd", lr=50.0, momentum=0.0)  # ×99 per step
    run = store.load(train(cfg, store).run_id)
    assert run.status == "diverged" and run.record.history == []  # diverged within epoch 1
    frames = tuning.step_frames(1, [("too_large", run)])
    findings = tuning.step_findings(1, frames)
    assert findings[0].startswith("**too_large** diverged at epoch 1")
    curves, _ = ft.step_figures(1, frames)
    assert any("Not drawn (no finished epoch): too_large" in a.text
               for a in curves.layout.annotations)
    for fig in ft.step_figures(1, frames):
        fig.to_json()


def test_lr_find_figure_marks_the_suggestion():
    frame = pd.DataFrame({"lr": [1e-4, 1e-3, 1e-2, 1e-1], "loss": [1.0, 0.8, 0.3, 9.0],
                          "smoothed": [1.0, 0.9, 0.6, 2.0]})
    fig = ft.lr_find_figure(frame, suggested_lr=1e-2, stop_lr=1e-1)
    star = next(t for t in fig.data if t.name == "suggested lr")
    assert list(star.x) == [1e-2] and list(star.y) == [0.6]
    stop = next(t for t in fig.data if "exploded" in t.name)
    assert list(stop.x) == [1e-1, 1e-1]
    assert fig.layout.xaxis.type == "log"
