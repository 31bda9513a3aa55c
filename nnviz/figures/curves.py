"""Curves over epochs and per-layer bar charts: loss and accuracy, drift from init, update ratio,
gradient and activation statistics.

Pure functions: numbers in, ``plotly.graph_objects.Figure`` out; the epoch shown is marked with a
dashed line so a scrubbed view and its history line up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from nnviz.analysis.diagnostics.flags import UPDATE_RATIO_REF
from nnviz.figures.style import (
    ACT_COLOR,
    GRAD_COLOR,
    MUTED,
    SEQUENCE,
    SEVERITY_COLORS,
    THEORY_COLOR,
    WEIGHT_COLOR,
    apply_layout,
)
from nnviz.i18n import t
from nnviz.store.format import HistoryRow, finite_or_none, none_to_nan


def _num(v: Any) -> float:
    """A float for plotting; None and non-finite become NaN (a gap in the line)."""
    return none_to_nan(finite_or_none(None if v is None else float(v)))


def _mark(fig: go.Figure, current_epoch: float | None) -> None:
    if current_epoch is not None:
        fig.add_vline(x=float(current_epoch), line={"color": THEORY_COLOR, "dash": "dash",
                                                    "width": 1.5})


def _reference(fig: go.Figure, y: float, label: str, log_y: bool) -> None:
    """A dotted horizontal reference line with its label just above it, at the left."""
    fig.add_hline(y=y, line={"color": SEVERITY_COLORS["info"], "dash": "dot", "width": 1.5})
    if label:
        # annotations on a log axis take log10 coordinates (add_hline's own label does not)
        fig.add_annotation(text=label, x=0, xref="paper", xanchor="left",
                           y=math.log10(y) if log_y else y, yref="y", yanchor="bottom",
                           showarrow=False, font={"size": 12, "color": SEVERITY_COLORS["info"]})


BOTTOM_LEGEND = {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.22, "yanchor": "top"}
UNDER_TITLE_LEGEND = {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0,
                      "yanchor": "bottom"}


def _empty(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font={"color": MUTED})


def training_curve(history: Sequence[HistoryRow], metric: str = "loss",
                   current_epoch: float | None = None, *, title: str = "") -> go.Figure:
    """Train and validation ``metric`` ('loss' or 'acc') per epoch, the epoch shown marked."""
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    epochs = [float(h.epoch) for h in history]
    fig = go.Figure()
    n_points = 0
    for split, color in (("train", WEIGHT_COLOR), ("val", THEORY_COLOR)):
        ys = [_num(getattr(h, f"{split}_{metric}")) for h in history]
        if any(not math.isnan(y) for y in ys):
            n_points += len(ys)
            fig.add_trace(go.Scatter(x=epochs, y=ys, mode="lines+markers",
                                     name=t("train") if split == "train" else t("validation"),
                                     line={"color": color, "width": 2}))
    label = t("loss") if metric == "loss" else t("accuracy")
    if not n_points:
        _empty(fig, t("no finished epoch yet") if not history else
               t("no loss recorded") if metric == "loss" else t("no accuracy recorded"))
    _mark(fig, current_epoch)
    yaxis: dict[str, Any] = {"title": {"text": label}}
    if metric == "acc":
        yaxis["range"] = [0, 1.02]
    apply_layout(fig, title=title or (t("Loss per epoch") if metric == "loss" else
                                      t("Accuracy per epoch")), height=300,
                 xaxis={"title": {"text": t("epoch")}, "rangemode": "tozero"}, yaxis=yaxis,
                 meta={"kind": f"curve_{metric}"})
    return fig


def compare_curves(histories: Mapping[str, Sequence[HistoryRow]], key: str = "val_loss",
                   current_epoch: float | None = None, *, title: str = "",
                   mark_trace: bool = False) -> go.Figure:
    """One ``HistoryRow`` field (e.g. 'val_loss') of several runs on one chart. ``mark_trace``:
    the epoch shown is marked by a last trace (a dashed vertical line across the values, out
    of the legend and hover) instead of a layout shape, so that the epoch player moves it with
    a restyle (a shape that moves takes a whole redraw there)."""
    fig = go.Figure()
    ys: list[float] = []
    for k, (label, history) in enumerate(histories.items()):
        y = [_num(getattr(h, key)) for h in history]
        ys += [v for v in y if math.isfinite(v)]
        fig.add_trace(go.Scatter(x=[float(h.epoch) for h in history], y=y,
                                 mode="lines+markers", name=label,
                                 line={"color": SEQUENCE[k % len(SEQUENCE)]}))
    if not mark_trace:
        _mark(fig, current_epoch)
    else:  # always there (NaN when nothing to mark): the same traces in every frame
        at = float(current_epoch) if current_epoch is not None and ys else math.nan
        fig.add_trace(go.Scatter(x=[at, at], y=[min(ys), max(ys)] if ys else [math.nan] * 2,
                                 mode="lines", showlegend=False, hoverinfo="skip",
                                 name=t("epoch shown"),
                                 line={"color": THEORY_COLOR, "dash": "dash", "width": 1.5}))
    apply_layout(fig, title=title or history_label(key), height=300,
                 xaxis={"title": {"text": t("epoch")}, "rangemode": "tozero"},
                 yaxis={"title": {"text": history_label(key)}}, meta={"kind": "compare"})
    return fig


def history_label(key: str) -> str:
    """A history key ('val_loss') as words in the reader's language ('val loss')."""
    words = {"train_loss": t("train loss"), "val_loss": t("val loss"), "train_acc": t(
        "train accuracy"), "val_acc": t("val accuracy"), "lr": t("learning rate"),
        "seconds": t("seconds")}
    return words.get(key, key.replace("_", " "))


def series_curves(epochs: Sequence[float], series: Mapping[str, Sequence[Any]],
                  current_epoch: float | None = None, *, title: str = "", y_title: str = "",
                  log_y: bool = False, ref: float | None = None, ref_label: str = "",
                  kind: str = "series") -> go.Figure:
    """Several per-snapshot series (one line per parameter) against epoch."""
    fig = go.Figure()
    x = [float(e) for e in epochs]
    for k, (name, values) in enumerate(series.items()):
        ys = [_num(v) for v in values]
        if log_y:
            ys = [y if y > 0 else math.nan for y in ys]
        dash = ("solid", "dash", "dot", "dashdot")[(k // len(SEQUENCE)) % 4]  # past 8 colours
        fig.add_trace(go.Scatter(x=x, y=ys, mode="lines+markers", name=name,
                                 line={"color": SEQUENCE[k % len(SEQUENCE)], "width": 2,
                                       "dash": dash}))
    if ref is not None:
        _reference(fig, ref, ref_label, log_y)
    _mark(fig, current_epoch)
    rows = math.ceil(len(series) / 4)
    apply_layout(fig, title=title, height=330 + 24 * rows, xaxis={"title": {"text": t("epoch")}},
                 yaxis={"title": {"text": y_title}, "type": "log" if log_y else "linear"},
                 meta={"kind": kind})
    fig.update_layout(margin={"b": 80 + 24 * rows}, legend=BOTTOM_LEGEND)
    return fig


def drift_curves(epochs: Sequence[float], series: Mapping[str, Sequence[Any]],
                 current_epoch: float | None = None) -> go.Figure:
    """Relative drift from init ‖W_t − W_0‖ / ‖W_0‖ per parameter over time; on a log axis
    when the positive drifts span more than two orders of magnitude (a run that explodes)."""
    positive = [y for vs in series.values() for v in vs if (y := _num(v)) > 0]
    log_y = bool(positive) and max(positive) > 100 * min(positive)
    return series_curves(epochs, series, current_epoch,
                         title=t("Drift from init ‖W_t − W_0‖ / ‖W_0‖"),
                         y_title=t("relative drift (log scale)") if log_y else
                         t("relative drift"),
                         log_y=log_y, kind="drift")


def update_ratio_curves(epochs: Sequence[float], series: Mapping[str, Sequence[Any]],
                        current_epoch: float | None = None) -> go.Figure:
    """Update ratio ‖ΔW‖/‖W‖ per step over time (log y) with the 1e-3 reference line."""
    return series_curves(epochs, series, current_epoch,
                         title=t("Update ratio ‖ΔW‖ / ‖W‖ per step"), y_title=t("update ratio"),
                         log_y=True, ref=UPDATE_RATIO_REF, ref_label="≈1e-3 (CS231n, Karpathy)",
                         kind="update_ratio")


def layer_bars(names: Sequence[str], values: Sequence[Any], *, title: str = "",
               y_title: str = "", log_y: bool = False, ref: float | None = None,
               ref_label: str = "", color: str = GRAD_COLOR, kind: str = "layer_bars"
               ) -> go.Figure:
    """One bar per layer or parameter (model order), optional log axis and reference line.

    Missing values (None) leave a gap; non-finite values are drawn as red bars at the top with
    'NaN' / 'Inf' labels, never dropped.
    """
    ys, colors, texts = [], [], []
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))
              and (float(v) > 0 or not log_y)]
    top = max(finite, default=1.0)
    for v in values:
        if v is None:
            ys.append(math.nan)
            colors.append(color)
            texts.append("")
        elif not math.isfinite(float(v)):
            ys.append(top)
            colors.append(SEVERITY_COLORS["critical"])
            texts.append("NaN" if math.isnan(float(v)) else "Inf")
        elif log_y and float(v) <= 0:
            ys.append(math.nan)
            colors.append(color)
            texts.append("0")
        else:
            ys.append(float(v))
            colors.append(color)
            texts.append("")
    fig = go.Figure(go.Bar(x=list(names), y=ys, marker={"color": colors}, text=texts,
                           textposition="outside", hovertemplate="%{x}: %{y:.3g}<extra></extra>"))
    if ref is not None:
        _reference(fig, ref, ref_label, log_y)
    apply_layout(fig, title=title, height=300, showlegend=False,
                 yaxis={"title": {"text": y_title}, "type": "log" if log_y else "linear"},
                 meta={"kind": kind})
    return fig


def activation_fractions(names: Sequence[str], dead: Sequence[Any], saturated: Sequence[Any],
                         zero: Sequence[Any]) -> go.Figure:
    """Per layer: share of dead ReLU units, saturated sigmoid/tanh outputs, exact zeros."""
    fig = go.Figure()
    for label, vals, color in ((t("dead units"), dead, SEVERITY_COLORS["critical"]),
                               (t("saturated"), saturated, SEVERITY_COLORS["warning"]),
                               (t("exact zeros"), zero, ACT_COLOR)):
        ys = [_num(v) for v in vals]
        if any(not math.isnan(y) for y in ys):
            fig.add_trace(go.Bar(x=list(names), y=ys, name=label, marker={"color": color},
                                 hovertemplate="%{x}: %{y:.1%}<extra>" + label + "</extra>"))
    if not fig.data:
        _empty(fig, t("no activations recorded"))
    apply_layout(fig, title=t("Activations: dead / saturated / zero fraction"), height=320,
                 barmode="group", yaxis={"title": {"text": t("fraction")}, "range": [0, 1.05],
                                         "tickformat": ".0%"},
                 meta={"kind": "activation_fractions"})
    fig.update_layout(legend=UNDER_TITLE_LEGEND, margin={"t": 85})
    return fig


def activation_std(names: Sequence[str], means: Sequence[Any], stds: Sequence[Any]) -> go.Figure:
    """Per layer in forward order: activation std (bars) and mean (markers) on the probe batch."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=list(names), y=[_num(v) for v in stds], name=t("std"),
                         marker={"color": ACT_COLOR}))
    fig.add_trace(go.Scatter(x=list(names), y=[_num(v) for v in means], name=t("mean"),
                             mode="markers", marker={"color": WEIGHT_COLOR, "size": 9}))
    apply_layout(fig, title=t("Activation std and mean by layer (forward order)"), height=320,
                 yaxis={"title": {"text": t("value")}}, meta={"kind": "activation_std"})
    fig.update_layout(legend=UNDER_TITLE_LEGEND, margin={"t": 85})
    return fig
