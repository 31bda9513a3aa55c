"""Finished tuning runs as tables: the pandas DataFrames each step's figure draws.

``step_frames(step, runs)`` turns a step's finished runs (``[(label, Run)]``, any status: a
diverged run's history ends where it diverged) into its frames; missing numbers are NaN.
``scheduler_preview`` draws the LR of a schedule before any training, with the real torch
schedulers on a dummy optimizer; ``lr_find_frame`` turns an ``nnviz.engine.lrfind`` result into a
table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from nnviz.analysis.tuning.steps import _step
from nnviz.config import RunConfig
from nnviz.errors import ConfigError
from nnviz.i18n import t
from nnviz.store.format import HistoryRow, none_to_nan

LabelledRuns = list[tuple[str, Any]]  # [(label, nnviz.store.runs.Run)]


def history_frame(runs: LabelledRuns) -> pd.DataFrame:
    """One row per run and epoch: label, run_id, status, epoch and the history's numbers."""
    rows = []
    for label, run in runs:
        for h in run.record.history:
            rows.append({"label": label, "run_id": run.run_id, "status": run.status,
                         "epoch": h.epoch, "train_loss": none_to_nan(h.train_loss),
                         "val_loss": none_to_nan(h.val_loss), "val_acc": none_to_nan(h.val_acc),
                         "lr": none_to_nan(h.lr), "seconds": none_to_nan(h.seconds)})
    cols = ["label", "run_id", "status", "epoch", "train_loss", "val_loss", "val_acc", "lr",
            "seconds"]
    return pd.DataFrame(rows, columns=cols)


def summary_frame(runs: LabelledRuns) -> pd.DataFrame:
    """One row per run: its config's main options, final and best losses, time per epoch."""
    rows = []
    for label, run in runs:
        rec = run.record
        cfg, hist = run.config, rec.history
        last = hist[-1] if hist else HistoryRow(epoch=0)  # no epoch done: every number NaN
        vals = [none_to_nan(h.val_loss) for h in hist]
        finite = [v for v in vals if math.isfinite(v)]
        rows.append({
            "label": label, "run_id": run.run_id, "status": run.status,
            "detail": rec.status_detail, "epochs_done": len(hist),
            "batch_size": cfg.batch_size, "width": cfg.width, "depth": cfg.depth,
            "dropout": cfg.dropout, "weight_decay": cfg.weight_decay, "loss": rec.loss,
            "n_params": sum(p.numel for p in rec.params.values()),
            "n_classes": rec.data.n_classes if rec.data is not None else 0,
            "train_loss": none_to_nan(last.train_loss), "val_loss": none_to_nan(last.val_loss),
            "val_acc": none_to_nan(last.val_acc),
            "best_val_loss": min(finite) if finite else math.nan,
            "best_epoch": hist[int(np.nanargmin(vals))].epoch if finite else None,
            "seconds_per_epoch": float(np.mean([none_to_nan(h.seconds) for h in hist]))
            if hist else math.nan,
        })
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["gap"] = frame["val_loss"] - frame["train_loss"]
    return frame


def layer_std_frame(runs: LabelledRuns, snapshot: int = 0) -> pd.DataFrame:
    """Std of every Linear / Conv layer's output on the probe batch, in depth order.

    ``output`` marks the model's last layer: it is initialised for no activation after it, so
    the signal-propagation reading (``step_findings``) leaves it out.
    """
    rows = []
    for label, run in runs:
        if not run.n_snapshots:
            continue
        acts = run.snapshot(snapshot).record.activations
        layers = [layer.name for layer in run.record.layers if layer.kind == "linear"]
        for depth, name in enumerate(layers, start=1):
            act = acts.get(name)
            rows.append({"label": label, "run_id": run.run_id, "layer": name, "depth": depth,
                         "std": none_to_nan(act.std if act is not None else None),
                         "output": depth == len(layers)})
    return pd.DataFrame(rows, columns=["label", "run_id", "layer", "depth", "std", "output"])


def activation_health_frame(runs: LabelledRuns, snapshot: int = -1) -> pd.DataFrame:
    """Per hidden activation layer: dead fraction (ReLU family) or saturated fraction."""
    rows = []
    for label, run in runs:
        if not run.n_snapshots:
            continue
        snap = run.snapshot(snapshot)
        acts = snap.record.activations
        layers = [layer for layer in run.record.layers if layer.kind != "linear"]
        for depth, layer in enumerate(layers, start=1):
            s = acts.get(layer.name)
            dead = s.dead_frac if s is not None else None
            sat = s.saturated_frac if s is not None else None
            measure, value = ("dead", dead) if dead is not None else ("saturated", sat)
            rows.append({"label": label, "run_id": run.run_id, "layer": layer.name,
                         "kind": layer.kind, "depth": depth, "measure": measure,
                         "fraction": none_to_nan(value), "epoch": snap.epoch})
    return pd.DataFrame(rows, columns=["label", "run_id", "layer", "kind", "depth", "measure",
                                       "fraction", "epoch"])


def early_stopping_marks(runs: LabelledRuns) -> dict[str, Any]:
    """Best validation epoch of the full run, and the epoch where early stopping stopped.

    ``stop_epoch`` is None when early stopping never triggered (the run used all its epochs).
    """
    marks: dict[str, Any] = {"best_epoch": None, "stop_epoch": None, "patience": None,
                             "epochs": None}
    for _label, run in runs:
        cfg = run.config
        if cfg.early_stopping:
            stopped = run.record.stopped_early
            marks["stop_epoch"] = stopped.epoch if stopped is not None else None  # never triggered
            marks["patience"] = cfg.early_stopping
            marks["epochs"] = cfg.epochs
        elif run.record.history:
            hist = run.record.history
            vals = [none_to_nan(h.val_loss) for h in hist]
            if any(math.isfinite(v) for v in vals):
                marks["best_epoch"] = hist[int(np.nanargmin(vals))].epoch
    return marks


def loss_choice_frame(runs: LabelledRuns) -> pd.DataFrame:
    """Per run: task, loss, and the metric that compares losses fairly.

    Classification: final validation accuracy on the (balanced) validation set. Regression:
    distance ‖(w, b) − (w_true, b_true)‖ between SimpleNet's learned line and the true one.
    """
    rows = []
    for label, run in runs:
        rec = run.record
        task = rec.data.task if rec.data is not None else None
        row = {"label": label, "run_id": run.run_id, "status": run.status, "task": task,
               "loss": rec.loss, "metric": "", "value": math.nan}
        if task == "classification":
            last = rec.history[-1].val_acc if rec.history else None
            row.update(metric="validation accuracy", value=none_to_nan(last))
        elif task == "regression" and run.n_snapshots:
            row.update(metric="distance to the true (w, b)", value=_param_error(run))
        rows.append(row)
    return pd.DataFrame(rows, columns=["label", "run_id", "status", "task", "loss", "metric",
                                       "value"])


def _param_error(run: Any) -> float:
    """‖(w, b) − (w_true, b_true)‖ of a SimpleNet regression run, at its last snapshot."""
    rec = run.record
    extra = rec.data.extra if rec.data is not None else {}
    if "true_w" not in extra or "linear.weight" not in rec.params:
        return math.nan
    snap = run.snapshot(-1)
    learned = np.concatenate([snap.values("linear.weight").ravel(),
                              snap.values("linear.bias").ravel()]).astype(np.float64)
    truth = np.array([*extra["true_w"], extra["true_b"]], dtype=np.float64)
    return float(np.linalg.norm(learned - truth))


def step_frames(step: int, runs: LabelledRuns) -> dict[str, Any]:
    """The tables a step's figure draws, from its finished runs."""
    _step(step)
    frames: dict[str, Any] = {"history": history_frame(runs), "summary": summary_frame(runs)}
    if step == 1:
        frames["layer_std"] = layer_std_frame(runs, 0)
    elif step == 3:
        frames["marks"] = early_stopping_marks(runs)
    elif step == 4:
        switches = {label: run.config.switch_epoch for label, run in runs
                    if run.config.optimizer == "adam_then_sgd"}
        frames["switch_epoch"] = min(switches.values()) if switches else None
    elif step == 6:
        frames["loss_choice"] = loss_choice_frame(runs)
    elif step == 7:
        frames["health"] = activation_health_frame(runs, -1)
    return frames


# --- the LR tools


def plateau_curve(epochs: int, plateau_from: int | None = None) -> list[float]:
    """A synthetic validation loss that falls, then stops improving from ``plateau_from``."""
    start = plateau_from or max(2, epochs // 3)
    return [1.0 * 0.7 ** min(e, start) for e in range(1, epochs + 1)]


def scheduler_preview(cfg: RunConfig, schedulers: tuple[str, ...] = ("step", "cosine", "plateau"),
                      plateau_losses: list[float] | None = None) -> pd.DataFrame:
    """LR used in each epoch under each scheduler, with the real torch schedulers.

    Uses ``nnviz.engine.training.make_scheduler`` on a dummy SGD optimizer at ``cfg.lr``,
    stepped once per epoch as training does (the LR of epoch e is the one before the e-th step).
    ReduceLROnPlateau reacts to the validation loss, which does not exist before training: it
    is fed ``plateau_losses`` (default: ``plateau_curve``), included as a ``loss`` column.
    """
    from nnviz.engine.training import make_scheduler

    losses = plateau_losses or plateau_curve(cfg.epochs)
    if len(losses) < cfg.epochs:
        raise ConfigError(t("plateau_losses: need {n} values (one per epoch), got {got}.",
                            n=cfg.epochs, got=len(losses)))
    rows = []
    for name in schedulers:
        if name not in ("none", "step", "cosine", "plateau"):
            raise ConfigError(t("scheduler: {name!r} is not a scheduler; use step, cosine, "
                                "plateau or none.", name=name))
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
        sched = make_scheduler(cfg.replace(scheduler=name), opt)
        for epoch in range(1, cfg.epochs + 1):
            rows.append({"scheduler": name, "epoch": epoch, "lr": opt.param_groups[0]["lr"],
                         "loss": losses[epoch - 1] if name == "plateau" else math.nan})
            if sched is None:
                continue
            opt.step()  # no gradients: changes nothing, keeps torch's step-order check quiet
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(losses[epoch - 1])
            else:
                sched.step()
    return pd.DataFrame(rows, columns=["scheduler", "epoch", "lr", "loss"])


def lr_find_frame(result: Any) -> pd.DataFrame:
    """The LR range test's points: lr, raw loss, smoothed loss."""
    return pd.DataFrame({"lr": result.lrs, "loss": result.losses, "smoothed": result.smoothed})
