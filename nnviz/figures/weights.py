"""Weight figures: histograms with the theory drawn over them, filter and neuron heatmaps, bias
bars, and the all-epochs views (ridgeline, percentile bands).

Every function is pure: numbers in, ``plotly.graph_objects.Figure`` out. Axes that must not move
while scrubbing (bins, y range, colour limits) are passed in, computed once per run by
``nnviz.analysis.views.param_track``.
Each figure's ``layout.meta`` says what it is (``kind``) and the
numbers a test or a caption needs (element counts, tile counts, colour limit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from nnviz.analysis.stats import PERCENTILES, Histogram
from nnviz.figures.style import (
    DIVERGING,
    FONT_SIZE,
    MUTED,
    SEVERITY_COLORS,
    THEORY_COLOR,
    WEIGHT_COLOR,
    apply_layout,
)
from nnviz.i18n import t

OUTSIDE_COLOR = SEVERITY_COLORS["warning"]
HOVER_TEXT_LIMIT = 6000   # heatmap cells above which per-cell hover labels are left out
MAX_FILTERS = 64          # filters (rows) drawn in a conv grid
SINGLE_CHANNEL_COLS = 4   # filters per row when a conv layer reads one input channel
MAX_CHANNELS = 32         # input channels (columns) drawn in a conv grid
MAX_RIDGES = 40           # snapshots drawn in a ridgeline (evenly spaced, current one kept)


# ------------------------------------------------------------------------------- histograms


def outside_text(hist: Histogram) -> str:
    """What the bins do not show, short enough for a phone: 'all in the bins, no NaN / Inf',
    or only the counts that are not 0: '3 above the bins · NaN 7 · +Inf 3'."""
    parts = [t("{n} below the bins", n=f"{hist.underflow:,}")] if hist.underflow else []
    if hist.overflow:
        parts.append(t("{n} above the bins", n=f"{hist.overflow:,}"))
    parts += [f"{name} {n:,}" for name, n in (("NaN", hist.nan), ("+Inf", hist.posinf),
                                               ("−Inf", hist.neginf)) if n]
    return " · ".join(parts) if parts else t("all in the bins, no NaN / Inf")


def weight_histogram(
    hist: Histogram,
    *,
    y_max: float | None = None,
    theory_xy: tuple[np.ndarray, np.ndarray] | None = None,
    theory_point: float | None = None,
    title: str = "",
    name: str = "",
    color: str = WEIGHT_COLOR,
    kind: str = "weight_histogram",
    x_title: str = "",
    height: int = 340,
) -> go.Figure:
    """Counts on fixed edges, out-of-range bars at both ends, the theory curve over them.

    ``y_max`` fixes the y range (the largest count over the run); ``theory_xy`` is
    ``views.theory_curve`` (already in counts per bin); ``theory_point`` marks a point-mass
    theory (e.g. BatchNorm weight = 1) with a dashed line. Under/overflow get their own bars just
    outside the edges; NaN/Inf counts are written above the plot. ``layout.meta`` holds every
    count, so ``sum(bars) + nan + posinf + neginf == numel``.
    """
    name = name or t("weights")
    edges = hist.edges
    centers = 0.5 * (edges[:-1] + edges[1:])
    widths = np.diff(edges)
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=centers, y=hist.counts, width=widths, name=name, marker={"color": color},
        hovertemplate=t("%{x:.4g}: %{y} values<extra></extra>"),
    ))
    w_lo, w_hi = float(widths[0]), float(widths[-1])
    if hist.underflow:
        fig.add_trace(go.Bar(x=[edges[0] - w_lo], y=[hist.underflow], width=[w_lo],
                             name=t("below range"), marker={"color": OUTSIDE_COLOR},
                             hovertemplate=t("below the bins: %{y}<extra></extra>")))
    if hist.overflow:
        fig.add_trace(go.Bar(x=[edges[-1] + w_hi], y=[hist.overflow], width=[w_hi],
                             name=t("above range"), marker={"color": OUTSIDE_COLOR},
                             hovertemplate=t("above the bins: %{y}<extra></extra>")))
    top = float(y_max) if y_max else float(max(hist.counts.max(initial=0), 1))
    top = max(top, float(hist.underflow), float(hist.overflow), 1.0)
    if theory_xy is not None:
        tx, ty = theory_xy
        fig.add_trace(go.Scatter(x=tx, y=ty, mode="lines", name=t("theory at init"),
                                 line={"color": THEORY_COLOR, "width": 2.5},
                                 hovertemplate=t("theory %{x:.4g}: %{y:.1f}<extra></extra>")))
    if theory_point is not None:
        fig.add_vline(x=theory_point, line={"color": THEORY_COLOR, "dash": "dash", "width": 2},
                      annotation_text=t("init: all = {value}", value=f"{theory_point:g}"),
                      annotation_position="top left")
    bad = hist.underflow + hist.overflow + hist.nan + hist.posinf + hist.neginf
    color = SEVERITY_COLORS["critical"] if (hist.nan or hist.posinf or hist.neginf) else \
        (OUTSIDE_COLOR if bad else MUTED)
    pad = 1.5 * max(w_lo, w_hi)
    apply_layout(fig, title=title, height=height, bargap=0, showlegend=theory_xy is not None,
                 xaxis={"title": {"text": x_title or t("value")},
                        "range": [edges[0] - pad, edges[-1] + pad]},
                 yaxis={"title": {"text": t("count")}, "range": [0, top * 1.08]},
                 meta={"kind": kind, "numel": hist.total(), "bins": int(hist.counts.size),
                       "underflow": hist.underflow, "overflow": hist.overflow, "nan": hist.nan,
                       "posinf": hist.posinf, "neginf": hist.neginf})
    fig.update_layout(
        title={"subtitle": {"text": outside_text(hist),
                            "font": {"size": FONT_SIZE, "color": color}}},
        margin={"t": 75},
        legend={"orientation": "v", "x": 0.99, "xanchor": "right", "y": 0.99,
                "yanchor": "top", "bgcolor": "rgba(255,255,255,0.75)"},
    )
    return fig


def delta_histogram(hist: Histogram, *, y_max: float | None = None, title: str = "") -> go.Figure:
    """Histogram of W_t − W_0 on bins fixed for the run (symmetric about 0)."""
    return weight_histogram(hist, y_max=y_max, title=title, name="W_t − W_0", color=MUTED,
                            kind="delta_histogram", x_title=t("change since init W_t − W_0"))


# ------------------------------------------------------------------------------- heatmaps


def tile_grid(tiles: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """Lay (n, h, w) tiles row by row into one image, NaN between them (drawn blank)."""
    n, h, w = tiles.shape
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols) if n else 0
    img = np.full((max(rows * (h + gap) - gap, 0), max(cols * (w + gap) - gap, 0)), np.nan)
    for k in range(n):
        r, c = divmod(k, cols)
        img[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = tiles[k]
    return img


def _heatmap_layout(fig: go.Figure, title: str, img_shape: tuple[int, int], meta: dict,
                    height: int | None = None, x_ticks: tuple[list, list] | None = None,
                    y_ticks: tuple[list, list] | None = None) -> go.Figure:
    rows, cols = img_shape
    if height is None:
        height = int(min(900, max(260, 60 + 420 * rows / max(cols, 1))))
    xaxis: dict = {"showgrid": False, "zeroline": False, "constrain": "domain"}
    yaxis: dict = {"showgrid": False, "zeroline": False, "autorange": "reversed",
                   "scaleanchor": "x", "constrain": "domain"}
    for axis, ticks in ((xaxis, x_ticks), (yaxis, y_ticks)):
        if ticks is None:
            axis["showticklabels"] = False
        else:
            axis["tickvals"], axis["ticktext"] = ticks
    apply_layout(fig, title=title, height=height, xaxis=xaxis, yaxis=yaxis, meta=meta,
                 plot_bgcolor="white")
    return fig


def _tick_positions(n: int, size: int, gap: int, prefix: str, most: int = 16
                    ) -> tuple[list, list]:
    step = max(1, math.ceil(n / most))
    idx = list(range(0, n, step))
    return [k * (size + gap) + (size - 1) / 2 for k in idx], [f"{prefix}{k}" for k in idx]


def _conv_cols(n_filters: int, n_channels: int) -> int:
    """Tiles per row: one per input channel; a one-channel layer (grey images) wraps its
    filters into rows of SINGLE_CHANNEL_COLS, so a column of tiles does not shrink each one."""
    return min(n_filters, SINGLE_CHANNEL_COLS) if n_channels == 1 else n_channels


def conv_image(w: np.ndarray, max_filters: int = MAX_FILTERS, max_channels: int = MAX_CHANNELS,
               gap: int = 1) -> np.ndarray:
    """A conv weight (O, I, kh, kw) as one image: filters down, input channels across (one
    input channel: the filters left to right in rows of SINGLE_CHANNEL_COLS)."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"conv_filter_grid needs a (out, in, kh, kw) weight, got {w.shape}")
    n_out, n_in, kh, kw = w.shape
    o, i = min(n_out, max_filters), min(n_in, max_channels)
    return tile_grid(w[:o, :i].reshape(o * i, kh, kw), cols=_conv_cols(o, i), gap=gap)


def neuron_image(w: np.ndarray, n_neurons: int = 10, cols: int = 5) -> np.ndarray:
    """The first neurons of a linear weight (out, in), each a near-square tile, as one image."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"neuron_grid needs a (out, in) weight, got {w.shape}")
    n = min(w.shape[0], n_neurons)
    return tile_grid(np.stack([near_square(w[k], fill=np.nan) for k in range(n)]), cols=cols)


def conv_filter_grid(w: np.ndarray, zmax: float, *, title: str = "",
                     max_filters: int = MAX_FILTERS, max_channels: int = MAX_CHANNELS,
                     gap: int = 1) -> go.Figure:
    """Every filter (row) × input channel (column) of a conv weight (O, I, kh, kw) as a tile,
    on one symmetric colour scale ±zmax (pass the run-wide max |w| so it never changes)."""
    w = np.asarray(w, dtype=np.float64)
    img = conv_image(w, max_filters, max_channels, gap)
    n_out, n_in, kh, kw = w.shape
    o, i = min(n_out, max_filters), min(n_in, max_channels)
    zmax = float(zmax) if zmax and math.isfinite(zmax) and zmax > 0 else 1.0
    cols = _conv_cols(o, i)
    text = None
    if img.size <= HOVER_TEXT_LIMIT:
        text = np.full(img.shape, "", dtype=object)
        for k in range(o * i):
            f, c = divmod(k, i)
            row, col = divmod(k, cols)
            for r in range(kh):
                for s in range(kw):
                    text[row * (kh + gap) + r, col * (kw + gap) + s] = \
                        t("filter {f}, in-channel {c}, ({r},{s})", f=f, c=c, r=r, s=s)
    fig = go.Figure(go.Heatmap(
        z=img, zmin=-zmax, zmax=zmax, colorscale=DIVERGING, text=text,
        hovertemplate=("%{text}: %{z:.4g}<extra></extra>" if text is not None
                       else "%{z:.4g}<extra></extra>"),
        hoverongaps=False,
        colorbar={"title": {"text": t("weight"), "side": "right"}, "thickness": 14},
    ))
    shown = t("first {o} of {n} filters", o=o, n=n_out) if o < n_out else \
        t("{n} filters", n=n_out)
    channels = t("1 input channel") if n_in == 1 else t("{n} input channels", n=n_in)
    shown += t(", first {i} of {n} input channels", i=i, n=n_in) if i < n_in else \
        f" × {channels}"
    full_title = title or t("Filters ({shown})", shown=shown)
    if i == 1:  # wrapped rows: each row starts at filter f, the columns count on from it
        rows = math.ceil(o / cols)
        x_ticks = _tick_positions(cols, kw, gap, "+")
        y_ticks = ([r * (kh + gap) + (kh - 1) / 2 for r in range(rows)],
                   [f"f{r * cols}" for r in range(rows)])
    else:
        x_ticks = _tick_positions(i, kw, gap, t("in "))
        y_ticks = _tick_positions(o, kh, gap, "f")
    return _heatmap_layout(
        fig, full_title, img.shape,
        meta={"kind": "conv_filters", "n_tiles": o * i, "filters": o, "channels": i,
              "zmax": zmax, "shown": shown, "cols": cols},
        x_ticks=x_ticks, y_ticks=y_ticks,
    )


def rgb_filters(w: np.ndarray, *, normalize: str = "global", zmax: float | None = None,
                cols: int = 8, max_filters: int = MAX_FILTERS, title: str = "") -> go.Figure:
    """First-layer filters with 3 input channels as small RGB images.

    ``normalize="global"``: every filter on the same scale [−zmax, zmax] → [0, 255] (grey =
    0; pass the run-wide max |w| so colours are comparable across filters and epochs);
    ``"per_filter"``: each filter stretched to its own min..max (shows its pattern, hides its
    size).
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"rgb_filters needs a (out, 3, kh, kw) weight, got {w.shape}")
    if normalize not in ("global", "per_filter"):
        raise ValueError(f"normalize must be 'global' or 'per_filter', got {normalize!r}")
    n = min(w.shape[0], max_filters)
    x = np.nan_to_num(w[:n], nan=0.0, posinf=0.0, neginf=0.0)
    if normalize == "global":
        limit = float(zmax) if zmax and math.isfinite(zmax) and zmax > 0 else \
            max(float(np.abs(x).max(initial=0.0)), 1e-12)
        unit = (x + limit) / (2 * limit)
        how = t("one scale ±{limit}, grey = 0", limit=f"{limit:.3g}")
    else:
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        hi = x.max(axis=(1, 2, 3), keepdims=True)
        unit = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
        how = t("each filter stretched to its own range")
    rgb = np.clip(np.rint(unit * 255), 0, 255).transpose(0, 2, 3, 1)  # (n, kh, kw, 3)
    kh, kw = rgb.shape[1:3]
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    gap = 1
    img = np.full((rows * (kh + gap) - gap, cols * (kw + gap) - gap, 3), 255.0)
    for k in range(n):
        r, c = divmod(k, cols)
        img[r * (kh + gap): r * (kh + gap) + kh, c * (kw + gap): c * (kw + gap) + kw] = rgb[k]
    fig = go.Figure(go.Image(z=img.astype(np.uint8), hoverinfo="skip"))
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, showgrid=False)
    height = int(min(700, max(200, 60 + 380 * img.shape[0] / img.shape[1])))
    apply_layout(fig, title=title or t("RGB filters ({how})", how=how), height=height,
                 meta={"kind": "rgb_filters", "n_tiles": n, "normalize": normalize})
    return fig


def near_square_shape(n: int) -> tuple[int, int]:
    """(rows, cols) for n values: rows = ⌊√n⌋, cols = ⌈n / rows⌉ (the tutorial's choice).

    The tutorial pads to (rows + 1) · rows when n is not a multiple of rows, which is too small
    when n > rows² + rows (e.g. n = 14): cols = ⌈n / rows⌉ gives the same shape wherever the
    tutorial's works, and a correct one where it fails.
    """
    if n <= 0:
        raise ValueError(f"near_square_shape needs n >= 1, got {n}")
    rows = math.isqrt(n)
    return rows, -(-n // rows)


def near_square(v: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A 1-D vector reshaped to near_square_shape, padded with ``fill`` at the end."""
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    rows, cols = near_square_shape(v.size)
    out = np.full(rows * cols, fill, dtype=np.float64)
    out[: v.size] = v
    return out.reshape(rows, cols)


def neuron_grid(w: np.ndarray, zmax: float, *, n_neurons: int = 10, cols: int = 5,
                title: str = "") -> go.Figure:
    """The tutorial's view of a linear weight (out, in): the first neurons' input weights, each
    reshaped to a near-square (padding drawn blank, not as zeros), on a symmetric scale ±zmax."""
    w = np.asarray(w, dtype=np.float64)
    img = neuron_image(w, n_neurons, cols)
    n = min(w.shape[0], n_neurons)
    zmax = float(zmax) if zmax and math.isfinite(zmax) and zmax > 0 else 1.0
    rows, cols_ = near_square_shape(w.shape[1])
    fig = go.Figure(go.Heatmap(
        z=img, zmin=-zmax, zmax=zmax, colorscale=DIVERGING, hoverongaps=False,
        hovertemplate="%{z:.4g}<extra></extra>",
        colorbar={"title": {"text": t("weight"), "side": "right"}, "thickness": 14},
    ))
    shape = t("{n} inputs as {rows}×{cols}", n=w.shape[1], rows=rows, cols=cols_)
    return _heatmap_layout(
        fig, title or t("First {n} of {total} neurons ({shape})", n=n, total=w.shape[0],
                        shape=shape), img.shape,
        meta={"kind": "neurons", "n_tiles": n, "tile_shape": [rows, cols_], "zmax": zmax},
    )


def spatial_grid(row: np.ndarray, shape: Sequence[int], zmax: float, *, neuron: int = 0,
                 cols: int = 8, max_channels: int = 64, title: str = "") -> go.Figure:
    """One output neuron's weights on a flattened (C, H, W) input, one H×W tile per channel."""
    c, h, wd = (int(s) for s in shape)
    row = np.asarray(row, dtype=np.float64).reshape(-1)
    if row.size != c * h * wd:
        raise ValueError(f"{row.size} weights do not fill a {c}×{h}×{wd} map")
    k = min(c, max_channels)
    tiles = row.reshape(c, h, wd)[:k]
    img = tile_grid(tiles, cols=cols)
    zmax = float(zmax) if zmax and math.isfinite(zmax) and zmax > 0 else 1.0
    fig = go.Figure(go.Heatmap(
        z=img, zmin=-zmax, zmax=zmax, colorscale=DIVERGING, hoverongaps=False,
        hovertemplate="%{z:.4g}<extra></extra>",
        colorbar={"title": {"text": t("weight"), "side": "right"}, "thickness": 14},
    ))
    shown = t("{k} of {c}", k=k, c=c) if k < c else f"{c}"
    return _heatmap_layout(
        fig, title or t("Neuron {neuron} on {shown} input channels ({h}×{w} each)",
                        neuron=neuron, shown=shown, h=h, w=wd),
        img.shape, meta={"kind": "spatial", "n_tiles": k, "neuron": neuron, "zmax": zmax},
    )


# ------------------------------------------------------------------------------------ bars


def bias_bars(values: np.ndarray, y_range: tuple[float, float], *, title: str = "",
              name: str = "", theory_bounds: tuple[float, float] | None = None) -> go.Figure:
    """The tutorial's bar chart of a 1-D parameter, on a y range fixed for the whole run.

    ``theory_bounds`` (e.g. ±1/√fan_in of PyTorch's default bias) are drawn as dotted lines.
    """
    name = name or t("bias")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    colors = [WEIGHT_COLOR if np.isfinite(x) else SEVERITY_COLORS["critical"] for x in v]
    fig = go.Figure(go.Bar(x=np.arange(v.size), y=np.nan_to_num(v, nan=0.0, posinf=0.0,
                                                                   neginf=0.0),
                           marker={"color": colors}, name=name,
                           hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    lo, hi = (float(y_range[0]), float(y_range[1]))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = 0.06 * (hi - lo) if hi > lo else 0.5
    if theory_bounds is not None:
        for b in theory_bounds:
            fig.add_hline(y=b, line={"color": THEORY_COLOR, "dash": "dot", "width": 1.5})
        lo, hi = min(lo, *theory_bounds), max(hi, *theory_bounds)
    apply_layout(fig, title=title, height=300, bargap=0.15, showlegend=False,
                 xaxis={"title": {"text": t("index")}},
                 yaxis={"title": {"text": name}, "range": [lo - pad, hi + pad]},
                 meta={"kind": "bars", "n": int(v.size), "nonfinite": int((~np.isfinite(v)).sum())})
    return fig


# ------------------------------------------------------------------------- all-epochs views


def _pick(n: int, current: int, most: int) -> list[int]:
    """Up to ``most`` indices of range(n), evenly spaced, always with current and the last."""
    if n <= most:
        return list(range(n))
    picks = {int(round(k)) for k in np.linspace(0, n - 1, most - 1)}
    picks.add(min(max(current, 0), n - 1))
    return sorted(picks)


def ridgeline(edges: np.ndarray, counts: np.ndarray, labels: Sequence[str], current: int, *,
              title: str = "", overlap: float = 1.8) -> go.Figure:
    """TensorBoard's offset view on fixed bins: one outline per snapshot, older ones further
    back (higher), the current one highlighted. Heights are relative to the run's largest bin."""
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    centers = 0.5 * (edges[:-1] + edges[1:])
    n = counts.shape[0]
    picks = _pick(n, current, MAX_RIDGES)
    top = max(float(counts.max(initial=0.0)), 1.0)
    fig = go.Figure()
    m = len(picks)
    for rank, k in enumerate(picks):
        base = float(m - 1 - rank)  # the oldest at the top, the newest at the bottom (front)
        ys = base + overlap * counts[k] / top
        is_cur = k == current
        fig.add_trace(go.Scatter(
            x=np.concatenate([centers, centers[::-1]]),
            y=np.concatenate([ys, np.full(centers.size, base)]),
            fill="toself", mode="lines", name=labels[k],
            line={"color": WEIGHT_COLOR if is_cur else MUTED, "width": 2.5 if is_cur else 1},
            fillcolor="rgba(47,111,222,0.55)" if is_cur else "rgba(255,255,255,0.85)",
            hoverinfo="name", showlegend=False,
        ))
    step = max(1, math.ceil(m / 12))
    apply_layout(fig, title=title or t("All snapshots on the run's fixed bins (older further "
                                       "back)"),
                 height=int(min(800, 160 + 26 * m)),
                 xaxis={"title": {"text": t("value")}},
                 yaxis={"tickvals": [float(m - 1 - r) for r in range(0, m, step)],
                        "ticktext": [labels[picks[r]] for r in range(0, m, step)],
                        "showgrid": False, "zeroline": False},
                 meta={"kind": "ridgeline", "snapshots": picks, "current": current})
    return fig


def percentile_bands(epochs: Sequence[float], pct: np.ndarray, current_epoch: float | None = None,
                     *, title: str = "") -> go.Figure:
    """TensorBoard's distributions view: min–max, 7–93, 16–84, 31–69 % bands and the median.

    ``pct`` is (n_snapshots, 9) at stats.PERCENTILES (NaN where a snapshot had no finite value).
    """
    pct = np.asarray(pct, dtype=np.float64)
    if pct.ndim != 2 or pct.shape[1] != len(PERCENTILES):
        raise ValueError(f"pct must be (n, {len(PERCENTILES)}), got {pct.shape}")
    x = np.asarray(epochs, dtype=np.float64)
    fig = go.Figure()
    k = len(PERCENTILES)
    for j in range(k // 2):
        lo, hi = PERCENTILES[j], PERCENTILES[k - 1 - j]
        alpha = 0.15 + 0.17 * j
        label = t("min–max") if j == 0 else f"{lo}–{hi} %"
        fig.add_trace(go.Scatter(x=x, y=pct[:, j], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip", legendgroup=label))
        fig.add_trace(go.Scatter(x=x, y=pct[:, k - 1 - j], mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor=f"rgba(47,111,222,{alpha:.2f})",
                                 name=label, legendgroup=label,
                                 hovertemplate=f"{label}: %{{y:.4g}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=pct[:, k // 2], mode="lines+markers", name=t("median"),
                             line={"color": WEIGHT_COLOR, "width": 2}))
    if current_epoch is not None:
        fig.add_vline(x=current_epoch, line={"color": THEORY_COLOR, "dash": "dash"})
    apply_layout(fig, title=title or t("Distribution over epochs (percentile bands)"),
                 height=370,
                 xaxis={"title": {"text": t("epoch")}}, yaxis={"title": {"text": t("value")}},
                 meta={"kind": "percentile_bands"})
    fig.update_layout(margin={"b": 100}, legend={"orientation": "h", "x": 0, "xanchor": "left",
                                                 "y": -0.22, "yanchor": "top"})
    return fig
