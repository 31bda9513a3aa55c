"""Figures of the tuning guide: one per experiment, each title saying what to conclude.

Pure functions from the DataFrames of ``nnviz.analysis.tuning`` (and an ``LRFindResult``) to plotly
figures. Runs that diverged are drawn up to their last finished epoch and named so in the legend;
a figure with nothing to draw says so in its middle. ``step_figures`` gives a step's figures in
the order the page shows them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nnviz.analysis.tuning.findings import measure_word, status_word
from nnviz.figures.style import (
    MUTED,
    SEQUENCE,
    THEORY_COLOR,
    WEIGHT_COLOR,
    apply_layout,
)
from nnviz.i18n import t

_LOG_TICKS = {"exponentformat": "power", "showexponent": "all"}


def _empty(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font={"color": MUTED})


def _color(i: int) -> str:
    return SEQUENCE[i % len(SEQUENCE)]


def _legend_below(fig: go.Figure) -> go.Figure:
    """Legend under the plot: beside the title it collides with it in a half-width column."""
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.28, "x": 0,
                              "xanchor": "left"},
                      margin={"b": 120})
    return fig


def _legend_name(label: str, status: str) -> str:
    return label if status in ("completed", "") else f"{label} ({status_word(status)})"


def loss_curves(history: pd.DataFrame, metric: str = "val_loss", title: str = "",
                switch_epoch: int | None = None, not_drawn: list[str] | None = None
                ) -> go.Figure:
    """One line per run of ``metric`` against epoch; diverged runs are named so.

    ``not_drawn`` names runs without a finished epoch (e.g. diverged in epoch 1): they have no
    line, so the figure says so.
    """
    fig = go.Figure()
    drawn = 0
    for i, (label, frame) in enumerate(history.groupby("label", sort=False)):
        frame = frame.sort_values("epoch")
        status = str(frame["status"].iloc[0])
        fig.add_trace(go.Scatter(x=frame["epoch"], y=frame[metric], mode="lines+markers",
                                 name=_legend_name(str(label), status),
                                 line={"color": _color(i), "width": 2.5}))
        drawn += int(np.isfinite(frame[metric].to_numpy(float)).sum())
    if not drawn:
        _empty(fig, t("no finished epoch to draw"))
    if not_drawn:
        fig.add_annotation(text=t("Not drawn (no finished epoch): {runs}",
                                  runs=", ".join(not_drawn)),
                           xref="paper", yref="paper", x=1, y=1, xanchor="right",
                           yanchor="top", showarrow=False, font={"color": "#C0392B"},
                           bgcolor="rgba(255,255,255,0.8)")
    if switch_epoch is not None:
        fig.add_vline(x=switch_epoch - 0.5, line={"color": MUTED, "dash": "dot", "width": 2},
                      annotation_text=t("switch to SGD"), annotation_position="top left")
    label = {"val_loss": t("validation loss"), "train_loss": t("training loss"),
             "val_acc": t("validation accuracy")}.get(metric, metric)
    per_epoch = {"val_loss": t("Validation loss per epoch"),
                 "train_loss": t("Training loss per epoch"),
                 "val_acc": t("Validation accuracy per epoch")}.get(metric, metric)
    apply_layout(fig, title=title or per_epoch, height=380,
                 xaxis={"title": {"text": t("epoch")}, "dtick": 1 if len(history) and
                        history["epoch"].max() <= 12 else None},
                 yaxis={"title": {"text": label}}, meta={"kind": f"tuning_curves_{metric}"})
    return _legend_below(fig)


def layer_std_figure(layer_std: pd.DataFrame) -> go.Figure:
    """Std of each layer's output at init against depth (log scale), one line per init."""
    fig = go.Figure()
    for i, (label, frame) in enumerate(layer_std.groupby("label", sort=False)):
        frame = frame.sort_values("depth")
        y = frame["std"].to_numpy(float)
        y = np.where(y > 0, y, np.nan)  # log axis: an exact 0 is a gap
        fig.add_trace(go.Scatter(x=frame["depth"], y=y, mode="lines+markers", name=str(label),
                                 text=frame["layer"], line={"color": _color(i), "width": 2.5},
                                 hovertemplate="%{text}: std %{y:.3g}<extra>%{fullData.name}"
                                               "</extra>"))
    if layer_std.empty:
        _empty(fig, t("no snapshot at init"))
    ticks = layer_std.drop_duplicates("depth").sort_values("depth")
    apply_layout(fig, title=t("Flat is healthy; falling vanishes, rising explodes"),
                 height=380,
                 xaxis={"title": {"text": t("layer (input → output)")}, "tickmode": "array",
                        "tickvals": ticks["depth"].tolist(), "ticktext": ticks["layer"].tolist()},
                 yaxis={"title": {"text": t("std of the layer's output at init")}, "type": "log",
                        **_LOG_TICKS},
                 meta={"kind": "tuning_layer_std"})
    return _legend_below(fig)


def batch_tradeoff_figure(summary: pd.DataFrame) -> go.Figure:
    """Seconds per epoch against final validation loss, one point per batch size."""
    fig = go.Figure()
    ok = summary[np.isfinite(summary["val_loss"].to_numpy(float))].sort_values("batch_size")
    if ok.empty:
        _empty(fig, t("no finished run to draw"))
    else:
        fig.add_trace(go.Scatter(
            x=ok["seconds_per_epoch"], y=ok["val_loss"], mode="lines+markers+text",
            text=[t("batch {b}", b=b) for b in ok["batch_size"]], textposition="top center",
            marker={"size": 12, "color": WEIGHT_COLOR}, line={"color": MUTED, "dash": "dot"},
            name=t("batch size"), customdata=ok["batch_size"],
            hovertemplate=t("batch %{customdata}: %{x:.3g} s per epoch, validation loss "
                            "%{y:.3g}<extra></extra>")))
    apply_layout(fig, title=t("Bigger batches: faster epochs, but not a lower loss"), height=400,
                 xaxis={"title": {"text": t("seconds per epoch (log)")}, "type": "log"},
                 yaxis={"title": {"text": t("final validation loss")}},
                 meta={"kind": "tuning_batch"}, showlegend=False)
    return fig


def early_stopping_figure(history: pd.DataFrame, marks: dict[str, Any]) -> go.Figure:
    """Training and validation loss of the full run; best epoch and early stop marked."""
    fig = go.Figure()
    full = history[history["label"] == history["label"].iloc[0]] if len(history) else history
    full = full.sort_values("epoch")
    for col, name, color in (("train_loss", t("training loss"), WEIGHT_COLOR),
                             ("val_loss", t("validation loss"), THEORY_COLOR)):
        fig.add_trace(go.Scatter(x=full["epoch"], y=full[col], mode="lines+markers", name=name,
                                 line={"color": color, "width": 2.5}))
    if full.empty:
        _empty(fig, t("no finished epoch to draw"))
    if marks.get("best_epoch") is not None:
        fig.add_vline(x=marks["best_epoch"], line={"color": "#17A398", "dash": "dash",
                                                   "width": 2},
                      annotation_text=t("best: epoch {epoch}", epoch=marks["best_epoch"]),
                      annotation_position="top left")
    if marks.get("stop_epoch") is not None:
        fig.add_vline(x=marks["stop_epoch"], line={"color": MUTED, "dash": "dot", "width": 2},
                      annotation_text=t("early stop: epoch {epoch}", epoch=marks["stop_epoch"]),
                      annotation_position="top right")
    short = len(full) and full["epoch"].max() <= 12
    apply_layout(fig, title=t("Stop when the validation loss stops falling, not the training "
                              "loss"),
                 height=400, xaxis={"title": {"text": t("epoch")}, "dtick": 1 if short else None},
                 yaxis={"title": {"text": t("loss")}}, meta={"kind": "tuning_early_stopping"})
    return _legend_below(fig)


def lr_find_figure(frame: pd.DataFrame, suggested_lr: float | None = None,
                   stop_lr: float | None = None) -> go.Figure:
    """The LR range test: raw and smoothed loss against LR (log x), suggestion marked."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=frame["lr"], y=frame["loss"], mode="lines", name=t("batch loss"),
                             line={"color": MUTED, "width": 1}, opacity=0.6))
    fig.add_trace(go.Scatter(x=frame["lr"], y=frame["smoothed"], mode="lines",
                             name=t("smoothed loss"), line={"color": WEIGHT_COLOR, "width": 3}))
    if frame.empty:
        _empty(fig, t("the test recorded no point"))
    if suggested_lr is not None and len(frame):
        i = int(np.argmin(np.abs(np.log(frame["lr"].to_numpy(float)) - math.log(suggested_lr))))
        fig.add_trace(go.Scatter(
            x=[suggested_lr], y=[frame["smoothed"].iloc[i]], mode="markers+text",
            name=t("suggested lr"), text=[t("suggested {lr}", lr=f"{suggested_lr:.2g}")],
            textposition="top center", marker={"size": 14, "color": THEORY_COLOR,
                                                "symbol": "star"}))
    smoothed = frame["smoothed"].to_numpy(float) if len(frame) else np.array([])
    yaxis: dict[str, Any] = {"title": {"text": t("loss")}}
    if smoothed.size:  # keep the explosion from flattening the interesting part
        top = float(np.nanmax(smoothed[: max(1, int(0.95 * smoothed.size))]))
        low = float(np.nanmin(np.r_[smoothed, frame["loss"].to_numpy(float)]))
        pad = max(top - low, 1e-12)
        yaxis["range"] = [low - 0.05 * pad, top + 0.25 * pad]
        if stop_lr is not None:  # a trace, not a shape: shapes and annotations disagree on log x
            fig.add_trace(go.Scatter(x=[stop_lr, stop_lr], y=yaxis["range"], mode="lines",
                                     name=t("loss exploded: test stopped"),
                                     line={"color": "#C0392B", "dash": "dot", "width": 2}))
    apply_layout(fig, title=t("Pick an LR where the loss falls fastest, well before it explodes"),
                 height=400, xaxis={"title": {"text": t("learning rate (log)")}, "type": "log",
                                    **_LOG_TICKS},
                 yaxis=yaxis, meta={"kind": "tuning_lr_find"})
    return _legend_below(fig)


def scheduler_figure(preview: pd.DataFrame) -> go.Figure:
    """LR per epoch under each scheduler (steps), with the plateau's synthetic loss dotted."""
    names = {"none": t("constant"), "step": "StepLR", "cosine": "CosineAnnealingLR",
             "plateau": "ReduceLROnPlateau"}
    fig = go.Figure()
    for i, (name, frame) in enumerate(preview.groupby("scheduler", sort=False)):
        fig.add_trace(go.Scatter(x=frame["epoch"], y=frame["lr"], mode="lines+markers",
                                 name=names.get(str(name), str(name)), line={"color": _color(i),
                                                                             "width": 2.5,
                                                                             "shape": "hv"}))
    plateau = preview[preview["scheduler"] == "plateau"]
    if len(plateau) and np.isfinite(plateau["loss"].to_numpy(float)).any():
        fig.add_trace(go.Scatter(x=plateau["epoch"], y=plateau["loss"], mode="lines",
                                 name=t("synthetic val. loss (plateau input)"), yaxis="y2",
                                 line={"color": MUTED, "dash": "dot"}))
    apply_layout(fig, title=t("LR per epoch, before training: each scheduler lowers it "
                              "differently"),
                 height=400, xaxis={"title": {"text": t("epoch")}},
                 yaxis={"title": {"text": t("learning rate")}, "rangemode": "tozero"},
                 yaxis2={"title": {"text": t("synthetic loss")}, "overlaying": "y",
                         "side": "right",
                         "showgrid": False, "rangemode": "tozero"},
                 meta={"kind": "tuning_schedulers"})
    return _legend_below(fig)


def structure_figure(summary: pd.DataFrame) -> go.Figure:
    """Best validation loss against parameter count, one line per depth, width as text."""
    fig = go.Figure()
    ok = summary[np.isfinite(summary["best_val_loss"].to_numpy(float))]
    for i, (depth, frame) in enumerate(ok.groupby("depth", sort=True)):
        frame = frame.sort_values("n_params")
        fig.add_trace(go.Scatter(
            x=frame["n_params"], y=frame["best_val_loss"], mode="lines+markers+text",
            name=t("depth {depth}", depth=depth), text=[t("w {w}", w=w) for w in frame["width"]],
            textposition="top center", marker={"size": 11}, line={"color": _color(i)},
            customdata=frame["seconds_per_epoch"],
            hovertemplate=t("%{text}: %{x} parameters, best validation loss %{y:.3g}, "
                            "%{customdata:.2g} s per epoch<extra>%{fullData.name}</extra>")))
    if ok.empty:
        _empty(fig, t("no finished run to draw"))
    apply_layout(fig, title=t("Keep the smallest model whose validation loss is near the best"),
                 height=400, xaxis={"title": {"text": t("parameters (log)")}, "type": "log"},
                 yaxis={"title": {"text": t("best validation loss")}},
                 meta={"kind": "tuning_structure"})
    return _legend_below(fig)


def loss_choice_figures(loss_choice: pd.DataFrame) -> list[go.Figure]:
    """Bars: validation accuracy per classification loss; parameter error per regression loss."""
    out = []
    panels = (
        ("classification", t("validation accuracy (balanced set)"),
         t("Imbalanced classes: balanced-set accuracy")),
        ("regression", t("‖learned (w, b) − true (w, b)‖"),
         t("With outliers, MAE's line stays nearer the truth")),
    )
    for task, axis, title in panels:
        frame = loss_choice[loss_choice["task"] == task]
        fig = go.Figure()
        if len(frame):
            fig.add_trace(go.Bar(x=frame["label"], y=frame["value"],
                                 marker={"color": [_color(i) for i in range(len(frame))]},
                                 text=[f"{v:.3g}" if math.isfinite(v) else "–"
                                       for v in frame["value"]], textposition="outside"))
        else:
            _empty(fig, t("no classification run") if task == "classification" else
                   t("no regression run"))
        yaxis: dict[str, Any] = {"title": {"text": axis}}
        if task == "classification":
            yaxis["range"] = [0, 1.1]
        apply_layout(fig, title=title, height=380, yaxis=yaxis, showlegend=False,
                     meta={"kind": f"tuning_loss_{task}"})
        out.append(fig)
    return out


def activation_health_figure(health: pd.DataFrame) -> go.Figure:
    """Dead (ReLU family) or saturated (sigmoid, tanh) fraction per layer, one line per run."""
    fig = go.Figure()
    for i, (label, frame) in enumerate(health.groupby("label", sort=False)):
        frame = frame.sort_values("depth")
        measure = str(frame["measure"].iloc[0])
        fig.add_trace(go.Scatter(x=frame["depth"], y=frame["fraction"], mode="lines+markers",
                                 name=f"{label} ({measure_word(measure)})", text=frame["layer"],
                                 line={"color": _color(i), "width": 2.5},
                                 hovertemplate="%{text}: %{y:.0%} " + measure_word(measure) +
                                               "<extra>%{fullData.name}</extra>"))
    if health.empty:
        _empty(fig, t("no snapshot to read"))
    apply_layout(fig, title=t("Units that stopped learning: dead or saturated"),
                 height=380, xaxis={"title": {"text": t("hidden layer")}, "dtick": 1},
                 yaxis={"title": {"text": t("share of units / outputs")}, "range": [0, 1.02],
                        "tickformat": ".0%"},
                 meta={"kind": "tuning_activation_health"})
    return _legend_below(fig)


def regularization_figure(summary: pd.DataFrame) -> go.Figure:
    """Final training and validation loss per setting (grouped bars), the gap written above."""
    fig = go.Figure()
    ok = summary[np.isfinite(summary["val_loss"].to_numpy(float))]
    if ok.empty:
        _empty(fig, t("no finished run to draw"))
    else:
        fig.add_trace(go.Bar(x=ok["label"], y=ok["train_loss"], name=t("training loss"),
                             marker={"color": WEIGHT_COLOR}))
        fig.add_trace(go.Bar(x=ok["label"], y=ok["val_loss"], name=t("validation loss"),
                             marker={"color": THEORY_COLOR},
                             text=[t("gap {gap}", gap=f"{g:+.2f}") for g in ok["gap"]],
                             textposition="outside"))
    top = float(np.nanmax(ok[["train_loss", "val_loss"]].to_numpy(float))) if len(ok) else 1.0
    apply_layout(fig, title=t("Regularization should shrink the gap without raising validation "
                              "loss"),
                 height=400, barmode="group",
                 yaxis={"title": {"text": t("final loss")}, "range": [0, 1.2 * top]},
                 meta={"kind": "tuning_regularization"})
    return _legend_below(fig)


def step_figures(step: int, frames: dict[str, Any]) -> list[go.Figure]:
    """The figures of one step's sweep, in page order."""
    history, summary = frames["history"], frames["summary"]
    missing = [str(r.label) for r in summary.itertuples() if not r.epochs_done] \
        if len(summary) else []
    if step == 1:
        return [loss_curves(history, title=t("A good init learns from the first epoch"),
                            not_drawn=missing),
                layer_std_figure(frames["layer_std"])]
    if step == 2:
        return [batch_tradeoff_figure(summary)]
    if step == 3:
        return [early_stopping_figure(history, frames["marks"])]
    if step == 4:
        return [loss_curves(history, title=t("Adam, SGD, or Adam then SGD: compare, don't "
                                             "assume"),
                            switch_epoch=frames.get("switch_epoch"), not_drawn=missing)]
    if step == 5:
        return [structure_figure(summary)]
    if step == 6:
        return loss_choice_figures(frames["loss_choice"])
    if step == 7:
        return [loss_curves(history, title=t("Deep nets: saturating activations learn slowest"),
                            not_drawn=missing),
                activation_health_figure(frames["health"])]
    if step == 8:
        return [regularization_figure(summary)]
    raise ValueError(f"step must be 1 to 8, got {step!r}")
