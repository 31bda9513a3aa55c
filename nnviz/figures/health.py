"""Health figures: which diagnostics hold at which snapshot, and the signal through depth.

Pure functions: numbers in, ``plotly.graph_objects.Figure`` out.

* ``health_timeline(rows, current_index)``: a strip of cells, one row per flag code that holds
  somewhere, one column per snapshot, coloured by severity (none / info / warning / critical).
  ``rows`` is ``diagnostics.timeline_severities(run)``: ``(snapshot index, epoch, {code:
  severity})``.
* ``signal_chart(profile)``: std of weights, of the activation signal and of gradients against
  depth, log y, from ``diagnostics.signal_profile(run, index)``. Exact zeros cannot sit on a log
  axis: they are drawn as crosses on a floor a decade below the smallest positive value and the
  hover says "exactly 0"; missing or non-finite values are gaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nnviz.analysis.diagnostics.flags import CODES, format_value
from nnviz.figures.style import (
    ACT_COLOR,
    GRAD_COLOR,
    MUTED,
    SEVERITY_COLORS,
    THEORY_COLOR,
    WEIGHT_COLOR,
    apply_layout,
)
from nnviz.i18n import N_, t

CODE_ORDER = CODES  # the diagnostics' codes, in display order
SEVERITY_LEVEL = {"info": 1, "warning": 2, "critical": 3}
# Row labels of the timeline: the code in words, short enough for a phone.
CODE_LABELS = {"non_finite": N_("non finite"), "exploding": N_("exploding"),
               "vanishing": N_("vanishing"), "symmetry": N_("symmetry"), "frozen": N_("frozen"),
               "dead_relu": N_("dead relu"), "saturation": N_("saturation"),
               "lr_too_high": N_("lr too high"), "lr_too_low": N_("lr too low"),
               "overfitting": N_("overfitting"), "not_learning": N_("not learning")}
NONE_COLOR = "#EEF1F5"  # a cell where the flag does not hold
# Stepped colour scale for levels 0..3 (zmin 0, zmax 3): each level owns a third of the range
# around its value, so the colours never blend.
TIMELINE_COLORSCALE = [
    [0.0, NONE_COLOR], [1 / 6, NONE_COLOR],
    [1 / 6, SEVERITY_COLORS["info"]], [0.5, SEVERITY_COLORS["info"]],
    [0.5, SEVERITY_COLORS["warning"]], [5 / 6, SEVERITY_COLORS["warning"]],
    [5 / 6, SEVERITY_COLORS["critical"]], [1.0, SEVERITY_COLORS["critical"]],
]
SERIES = (  # (profile column, legend name, colour)
    ("weight_std", N_("weights"), WEIGHT_COLOR),  # the y axis says it is their std
    ("activation_std", N_("activation signal"), ACT_COLOR),
    ("grad_std", N_("gradients"), GRAD_COLOR),
)


def epoch_label(index: int, epoch: float) -> str:
    """Column label of a snapshot: 'init' for snapshot 0 at epoch 0, else the epoch."""
    return t("init") if index == 0 and epoch == 0 else f"{epoch:g}"


def health_timeline(rows: Sequence[tuple[int, float, Mapping[str, str]]],
                    current_index: int | None = None, *, title: str = ""
                    ) -> go.Figure:
    """Flags x snapshots heat strip coloured by severity, the current snapshot outlined."""
    title = title or t("Health timeline")
    codes = [c for c in CODE_ORDER if any(c in sev for _, _, sev in rows)]
    codes += sorted({c for _, _, sev in rows for c in sev} - set(codes))
    xs = [epoch_label(i, e) for i, e, _ in rows]
    fig = go.Figure()
    if rows and codes:
        z = [[SEVERITY_LEVEL.get(sev.get(code, ""), 0) for _, _, sev in rows] for code in codes]
        text = [[t("{code} at epoch {epoch}: {severity}", code=code, epoch=f"{e:g}",
                   severity=severity_word(sev.get(code, "ok"))) for _, e, sev in rows]
                for code in codes]
        fig.add_trace(go.Heatmap(
            z=z, x=xs, y=[t(CODE_LABELS[c]) if c in CODE_LABELS else c.replace("_", " ")
                          for c in codes], zmin=0, zmax=3,
            colorscale=TIMELINE_COLORSCALE, showscale=False, xgap=2, ygap=2,
            text=text, hovertemplate="%{text}<extra></extra>", name=t("flags")))
        for sev, level in SEVERITY_LEVEL.items():  # legend entries for the colours
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=severity_word(sev),
                                     marker={"symbol": "square", "size": 12,
                                             "color": SEVERITY_COLORS[sev]},
                                     showlegend=any(level in row for row in z)))
    else:  # nothing to draw: one clear line of text, no empty grid or ticks
        fig.add_annotation(text=t("Nothing flagged at any snapshot") if rows else
                           t("No snapshots yet"), xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False, font={"size": 16})
        apply_layout(fig, title, height=110)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    if current_index is not None and 0 <= current_index < len(rows):
        fig.add_vrect(x0=current_index - 0.5, x1=current_index + 0.5,
                      line={"color": THEORY_COLOR, "width": 2}, fillcolor="rgba(0,0,0,0)")
    height = 90 + 34 * max(len(codes), 1)
    apply_layout(fig, title, height=height)
    fig.update_xaxes(title_text=t("epoch"), type="category", showgrid=False)
    fig.update_yaxes(autorange="reversed", showgrid=False)
    return fig


def severity_word(severity: str) -> str:
    """'info', 'warning', 'critical' or 'ok' in the reader's language."""
    return {"info": t("info"), "warning": t("warning"), "critical": t("critical"),
            "ok": t("ok")}.get(severity, severity)


def _positive(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        if v is not None and isinstance(v, int | float) and math.isfinite(v) and v > 0:
            out.append(float(v))
    return out


SIGNAL_MAX_TICKS = 12  # layer names on the signal chart's x axis


def short_log_ticks(low: float, high: float) -> list[float] | None:
    """Ticks 1, 2, 5 × 10^k (1, 2, 3, 5 under one decade) for a log axis from ``low`` to
    ``high`` (both > 0) spanning less than two decades; None for a wider axis, whose
    power-of-ten ticks read well."""
    if not (0 < low <= high) or math.log10(high / low) >= 2:
        return None
    steps = (1, 2, 5) if math.log10(high / low) >= 1 else (1, 2, 3, 5)
    out = []
    for k in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        out += [float(f"{m * 10.0 ** k:.12g}") for m in steps]
    inside = [v for v in out if low / 1.25 <= v <= high * 1.25]
    return inside if len(inside) >= 2 else None


def signal_chart(profile: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Std of weights, activation signal and gradients per layer against depth (log y)."""
    title = title or t("Signal through depth")
    fig = go.Figure()
    if profile is None or len(profile) == 0:
        fig.add_annotation(text=t("No layers to show"), xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False, font={"color": MUTED})
        return apply_layout(fig, title)
    depth = [int(d) for d in profile["depth"]]
    names = [str(n) for n in profile["layer"]]
    columns = [c for c, _, _ in SERIES if c in profile]
    positive = _positive([v for c in columns for v in profile[c]])
    floor = min(positive) / 10 if positive else 1e-12
    any_zero = False
    for col, label, color in SERIES:
        if col not in profile:
            continue
        label = t(label)
        raw = [float(v) if v is not None else math.nan for v in profile[col]]
        ys = [v if math.isfinite(v) and v > 0 else None for v in raw]
        if all(y is None for y in ys) and not any(v == 0 for v in raw):
            continue
        fig.add_trace(go.Scatter(
            x=depth, y=ys, mode="lines+markers", name=label, line={"color": color, "width": 2},
            legendgroup=col, customdata=names,
            hovertemplate="%{customdata}: %{y:.3g}<extra>" + label + "</extra>"))
        zeros = [d for d, v in zip(depth, raw, strict=True) if v == 0]
        if zeros:
            any_zero = True
            fig.add_trace(go.Scatter(
                x=zeros, y=[floor] * len(zeros), mode="markers",
                name=t("{label}: exactly 0", label=label),
                marker={"symbol": "x", "size": 11, "color": color}, legendgroup=col,
                showlegend=False, customdata=[names[depth.index(d)] for d in zeros],
                hovertemplate=t("%{customdata}: exactly 0<extra>") + label + "</extra>"))
    if "norm_after" in profile:
        for d, norm in zip(depth, profile["norm_after"], strict=True):
            if bool(norm) and d != depth[-1]:
                fig.add_vline(x=d + 0.5, line={"color": MUTED, "dash": "dot", "width": 1})
    apply_layout(fig, title)
    fig.update_yaxes(type="log", title_text=t("std (log scale)"), exponentformat="power")
    shown = positive + ([floor] if any_zero else [])
    ticks = short_log_ticks(min(shown), max(shown)) if shown else None
    if ticks is not None:  # under two decades plotly labels 0.2, 0.3 … 0.9, 1, 1.1, overlapping
        fig.update_yaxes(tickmode="array", tickvals=ticks, ticktext=[f"{v:g}" for v in ticks])
    x_title = t("layer (input → output)")
    if any_zero:  # a log axis has no 0: say what the crosses at the bottom are
        x_title += t(" · × = exactly 0")
    # At most about 12 layer names (every k-th, and the output layer): 21 rotated names
    # overlapped on a phone; hovering a point names its layer.
    step = max(1, math.ceil(len(depth) / SIGNAL_MAX_TICKS))
    keep = sorted(set(range(0, len(depth), step)) | {len(depth) - 1})
    fig.update_xaxes(title_text=x_title, tickmode="array", tickvals=[depth[k] for k in keep],
                     ticktext=[names[k] for k in keep])
    # The title at the very top and room for a legend that wraps to three rows on a phone
    # (it grows upward from the plot): the legend never covers the title.
    fig.update_layout(height=450, margin={"t": 136},
                      title={"y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 10}})
    if not fig.data:
        fig.add_annotation(text=t("No finite values to draw"), xref="paper", yref="paper", x=0.5,
                           y=0.5, showarrow=False, font={"color": MUTED})
    return fig


def signal_change_text(profile: pd.DataFrame) -> str:
    """' Here the activation signal changes by ×0.001 from the first layer to the last.', or
    where it dies on the way: ' Here the activation signal falls to exactly 0 at fc5.'"""
    ratio = profile_ratio(profile, "activation_std") if len(profile) else None
    if ratio is None:
        return ""
    if ratio == 0:
        values = [float(v) if v is not None else math.nan for v in profile["activation_std"]]
        first_zero = next(k for k, v in enumerate(values) if v == 0)
        layer = profile["layer"].iloc[first_zero]
        if first_zero < len(values) - 1:
            return t(" Here the activation signal falls to exactly 0 at {layer}: every later "
                     "layer gets no signal.", layer=layer)
        return t(" Here the activation signal falls to exactly 0 at {layer}.", layer=layer)
    return t(" Here the activation signal changes by ×{ratio} from the first layer to the last.",
             ratio=format_value(ratio))


def profile_ratio(profile: pd.DataFrame, column: str) -> float | None:
    """Last over first positive value of a profile column (how much the signal changed)."""
    vals = [float(v) for v in profile[column] if v is not None and np.isfinite(v)]
    if len(vals) < 2 or vals[0] <= 0:
        return None
    return vals[-1] / vals[0]
