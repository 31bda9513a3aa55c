"""Explore's "This epoch" view as data: the figures of one layer at one snapshot, and the
epoch player's payload (every snapshot of them, sent to the browser once). No streamlit.

The per-parameter builders (``histogram_figure``, ``main_figure``, ``extra_figure``,
``delta_figure``) are the ones Explore and Compare draw; ``player_payload`` calls them for every
snapshot the player carries and keeps, per chart, its first frame whole and only the differences
for the others (``nnviz.figures.player``). Texts that change with the snapshot (the stats row,
the loss line, notes) are sent as one HTML string per frame, escaped here.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from nnviz.analysis import views
from nnviz.analysis.filters import neighbour_correlation, orientation_coherence
from nnviz.figures import health
from nnviz.figures import player as fp
from nnviz.figures import weights as fw
from nnviz.figures.captions import CAPTIONS, main_caption
from nnviz.i18n import t
from nnviz.store.runs import Run

PLAYER_MAX_FRAMES = 61       # snapshots one player carries (evenly spaced beyond this)
PLAYER_MAX_CELLS = 2_000_000  # heatmap cells over every frame (~8 MB of float32 in the payload)
RGB_SCALES = {"global": "global", "per filter": "per_filter"}

Values = Callable[[int, str], np.ndarray]


# --------------------------------------------------------------------------------- numbers


def fmt(x: Any, digits: int = 4) -> str:
    """A number for people: '—' for missing, 'NaN' / 'Inf' spelled out, thousands separated."""
    if x is None:
        return "—"
    if isinstance(x, bool | str):
        return str(x)
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "−Inf"
    return f"{x:.{digits}g}"


def stats_line(row: dict[str, Any]) -> str:
    """'mean **…** · std **…** · theoretical std **…** · min … · max … · exact zeros … · NaN …
    · Inf …' in Streamlit Markdown (NaN / Inf counts in red when not 0)."""
    def bad(v: int) -> str:
        return f":red[**{v:,}**]" if v else "0"
    return t("mean **{mean}** · std **{std}** · theoretical std **{theory}** · min {min} · "
             "max {max} · exact zeros {zeros} · NaN {nan} · Inf {inf}", mean=fmt(row["mean"]),
             std=fmt(row["std"]), theory=fmt(row["theory_std"]), min=fmt(row["min"]),
             max=fmt(row["max"]), zeros=fmt(row["zeros"]), nan=bad(row["nan"]),
             inf=bad(row["inf"]))


def epoch_line(run: Run, index: int) -> str:
    """'After epoch 2: train loss **…** · val loss **…** · val accuracy **…**' (Markdown)."""
    epoch = views.current_epoch(run, index)
    done = [h for h in run.record.history if h.epoch <= epoch + 1e-9]
    if not done and epoch > 0:  # a snapshot inside the first epoch
        step = run.entries[index].step if index < len(run.entries) else 0
        return t("Epoch {epoch}, after step {step}: the first epoch has not finished, so no "
                 "epoch loss is recorded yet.", epoch=f"{epoch:g}", step=step)
    if not done:
        return t("At init: no training yet; scrub forward to watch the weights move.")
    h = done[-1]
    parts = [t("train loss **{v}**", v=fmt(h.train_loss)),
             t("val loss **{v}**", v=fmt(h.val_loss))]
    if h.val_acc is not None:
        parts.append(t("val accuracy **{v}**", v=f"{h.val_acc:.1%}"))
    return t("After epoch {epoch}: {parts}", epoch=h.epoch, parts=" · ".join(parts))


_MD = [(re.compile(r":(red|orange|green|blue|gray)\[(.+?)\]"), r'<span class="\1">\2</span>'),
       (re.compile(r"\*\*(.+?)\*\*"), r"<b>\1</b>"),
       (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<i>\1</i>"),
       (re.compile(r"`(.+?)`"), r"<code>\1</code>")]


def md_html(text: str) -> str:
    """The small Markdown subset nnviz's texts use (**bold**, *italic*, `code`, :red[…]) as
    HTML, everything else escaped."""
    out = html.escape(text, quote=False)
    for pattern, repl in _MD:
        out = pattern.sub(repl, out)
    return out


# ------------------------------------------------------------------------ one parameter


def stored_values(run: Run, index: int, param: str) -> np.ndarray:
    """Stored values of a parameter at a snapshot (in its shape when stored whole)."""
    info = run.param(param)
    v = run.snapshot(index).values(param)
    return v.reshape(info.shape) if info.stored_whole else v


def histogram_figure(run: Run, index: int, param: str, tr: views.ParamTrack,
                     rebin: bool = False) -> go.Figure:
    """The weight histogram on the run's fixed bins and y range with the init theory over it;
    with ``rebin``, on this snapshot's own range."""
    theory = views.theory_of(run, param)
    label = f"{param} · {views.snapshot_label(run, index)}"
    if rebin:
        hist = views.snapshot_histogram(run, index, param)
        return fw.weight_histogram(hist, theory_xy=views.theory_curve(theory, hist.edges,
                                                                      tr.numel),
                                   theory_point=views.theory_point(theory),
                                   title=t("{label} (own bins)", label=label))
    curve = views.theory_curve(theory, tr.edges, tr.numel)
    y_top = max(float(tr.count_max), float(curve[1].max()) if curve is not None else 0.0)
    return fw.weight_histogram(tr.hist(run.run_id, index), y_max=y_top, theory_xy=curve,
                               theory_point=views.theory_point(theory), title=label)


def histogram_notes(run: Run, index: int, param: str, tr: views.ParamTrack,
                    rebin: bool = False, auto: str | None = None) -> list[str]:
    """Markdown notes under the histogram at this snapshot (squeezed bins, re-binning; ``auto``:
    why the bins were chosen per snapshot automatically)."""
    if rebin and auto:
        return [f"**Bins: this snapshot's own range**, chosen automatically: {auto}. Bar "
                "heights are not comparable across epochs; set *Histogram bins* to *fixed "
                "for the run* to compare them."]
    if rebin:
        return [t("Re-binned on this snapshot's own range (like W&B): good for reading its "
                  "shape, but bars are not comparable across epochs. Switch back to fixed bins "
                  "to see movement.")]
    row = run.snapshot(index).record.params[param]
    if views.squeezed(tr.edges, row.min, row.max):
        return [t(":orange[Nearly all values fall in one or two of the run's bins: another "
                  "snapshot spreads far wider (an explosion?). Switch *Histogram bins* to "
                  "*this snapshot* to read this one's shape.]")]
    return []


def histogram_caption(run: Run, param: str, tr: views.ParamTrack) -> list[str]:
    """The histogram's fixed caption (and the default-init note, and the track's notes)."""
    text = CAPTIONS["histogram"]
    if run.config.init == "default" and run.param(param).module_type in ("Conv2d", "Linear"):
        text += " " + CAPTIONS["default_init"]
    return [text, *tr.notes]


def main_kind(run: Run, param: str) -> str | None:
    """'filters', 'neurons' or 'bars': the parameter's main view beside its histogram."""
    which = views.figures_for(run, param)
    return next((k for k in ("filters", "neurons", "bars") if k in which), None)


def main_figure(run: Run, index: int, param: str, tr: views.ParamTrack,
                w: np.ndarray, own_scale: bool = False) -> go.Figure | None:
    """Conv filter tiles, the tutorial's neuron tiles, or bias bars, by the parameter's shape;
    on the run's colour scale and y range, or (``own_scale``) on this snapshot's."""
    kind = main_kind(run, param)
    zmax, y_range = tr.abs_max, (tr.low, tr.high)
    finite = w[np.isfinite(w)]
    if own_scale and finite.size:
        if np.abs(finite).max() > 0:
            zmax = float(np.abs(finite).max())
        y_range = (float(finite.min()), float(finite.max()))
    if kind == "filters":
        return fw.conv_filter_grid(w, zmax)
    if kind == "neurons":
        return fw.neuron_grid(w, zmax)
    if kind == "bars":
        theory = views.theory_of(run, param)
        bounds = None
        if theory is not None and theory.kind == "uniform" and theory.low is not None:
            bounds = (theory.low, theory.high)
        return fw.bias_bars(w, y_range, title=t("{param} per element", param=param),
                            name=run.param(param).kind, theory_bounds=bounds)
    return None


OWN_SCALE_NOTE = (  # [tiles, bars]
    "**Colours: this snapshot's own scale** (±its max |w|), chosen with the bins: on the run's "
    "scale the early snapshots would be blank.",
    "**Y axis: this snapshot's own range**, chosen with the bins: on the run's range the early "
    "snapshots' bars would be too short to see.")


def structure_note(w: np.ndarray) -> str:
    """'Structure score **0.28** …': the filters' neighbour-tap correlation and orientation
    coherence at this snapshot."""
    score, orientation = neighbour_correlation(w), orientation_coherence(w)
    return CAPTIONS["structure"].format(
        score="—" if score is None else f"{score:.2f}",
        orientation="—" if orientation is None else f"{orientation:.2f}")


def extra_kind(run: Run, param: str) -> str | None:
    """'rgb' (first conv layer) or 'spatial' (a linear layer on a feature map), else None."""
    which = views.figures_for(run, param)
    return next((k for k in ("rgb", "spatial") if k in which), None)


def extra_figure(run: Run, index: int, param: str, tr: views.ParamTrack, w: np.ndarray,
                 rgb_scale: str = "global", neuron: int = 0) -> go.Figure | None:
    """RGB filters of a first conv layer, or one neuron's weights on its input feature map."""
    kind = extra_kind(run, param)
    if kind == "rgb":
        return fw.rgb_filters(w, normalize=RGB_SCALES.get(rgb_scale, "global"), zmax=tr.abs_max)
    if kind == "spatial":
        return fw.spatial_grid(w[int(neuron)], views.feature_shape(run, param), tr.abs_max,
                               neuron=int(neuron))
    return None


def delta_figure(run: Run, index: int, param: str, tr: views.ParamTrack) -> go.Figure:
    """Histogram of W_t − W_0 on bins fixed for the run."""
    return fw.delta_histogram(tr.delta_hist(run.run_id, index),
                              y_max=tr.delta_count_max if index else None,
                              title=f"{param}: W_t − W_0")


def delta_caption(index: int) -> str:
    return CAPTIONS["delta"] if index else t(
        "At init W_t − W_0 = 0 for every value; scrub forward to see how far training moves "
        "them.")


# ---------------------------------------------------------------------------- the player


def player_frames(run: Run, heavy_cells: int) -> list[int]:
    """Snapshot indices the player carries: all of them, or evenly spaced with both ends
    when there are more than PLAYER_MAX_FRAMES or their heatmaps would outgrow the budget."""
    most = PLAYER_MAX_FRAMES
    if heavy_cells:
        most = min(most, PLAYER_MAX_CELLS // heavy_cells)
    return spaced(run.n_snapshots, max(2, most))


def spaced(n: int, most: int) -> list[int]:
    """range(n), or ``most`` of its indices evenly spaced with both ends."""
    if n <= most:
        return list(range(n))
    return sorted({round(k * (n - 1) / (most - 1)) for k in range(most)})


def _compact(fig: go.Figure | None) -> go.Figure | None:
    """Heatmap cells as float32 (half the payload; colours and 4-digit hovers unchanged)."""
    if fig is None:
        return None
    for trace in fig.data:
        if trace.type == "heatmap" and trace.z is not None:
            trace.z = np.asarray(trace.z, dtype=np.float32)
    return fig


def _cell(chart: dict[str, Any], caption: Sequence[str] = (),
          notes: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    cell: dict[str, Any] = {"chart": chart, "caption": [md_html(c) for c in caption]}
    if notes is not None and any(notes):
        cell["notes"] = ["".join(f"<p>{md_html(n)}</p>" for n in frame) for frame in notes]
    return cell


def _per_frame(texts: Sequence[str]) -> dict[str, Any]:
    htmls = [md_html(t) for t in texts]
    return {"html": htmls[0]} if len(set(htmls)) == 1 else {"htmls": htmls}


def player_payload(run: Run, layer: str, tracks: dict[str, views.ParamTrack], *,
                   values: Values | None = None, rebin: bool | None = None, more: bool = False,
                   rgb_scale: str = "global", neuron: int = 0,
                   timeline: Sequence[tuple[int, float, dict[str, str]]] | None = None
                   ) -> dict[str, Any]:
    """Everything the "This epoch" view shows for ``layer``, at every snapshot the player
    carries: the health timeline, the loss line, and per parameter its title, stats row,
    histogram and main view (with ``more``: the RGB / spatial view and W_t − W_0).
    ``rebin``: histograms on each snapshot's own bins (True), on the run's (False), or chosen
    per parameter by ``views.auto_bins`` (None, the default).

    ``values(index, param)`` loads stored values (a cache in the app); ``tracks`` holds each
    parameter's run-wide axes. Returns {"labels", "snapshots", "blocks"}: a block is
    {"html"} (fixed), {"htmls"} (one per frame) or {"row": [cell, ...]} where a cell is
    {"chart": {"base", "frames"}, "caption": [...], "notes": [one per frame]}.
    """
    load = values or (lambda i, p: stored_values(run, i, p))
    params = views.layer_params(run).get(layer, [])
    heavy = 0
    for p in params:
        if main_kind(run, p) in ("filters", "neurons"):
            w = load(0, p)
            img = fw.conv_image(w) if w.ndim == 4 else fw.neuron_image(w) if w.ndim == 2 else w
            heavy += int(np.asarray(img).size) * (2 if more and extra_kind(run, p) else 1)
    frames = player_frames(run, heavy)
    labels = [views.snapshot_label(run, i) for i in frames]
    blocks: list[dict[str, Any]] = []
    if timeline is not None:
        chart = fp.chart_frames(lambda i: health.health_timeline(timeline, i), frames)
        blocks.append({"row": [_cell(chart, [CAPTIONS["timeline"]])]})
    blocks.append(_per_frame([epoch_line(run, i) for i in frames]))
    for p in params:
        tr = tracks[p]
        shape = views.shape_text(run.param(p).shape)
        head = f"<h4><code>{html.escape(p)}</code> · {html.escape(shape)}</h4>"
        theory = views.theory_of(run, p)
        if theory is not None and theory.formula:
            head += f'<p class="caption">{t("Init theory:")} {md_html(theory.formula)}</p>'
        blocks.append({"html": head})
        blocks.append(_per_frame([stats_line(views.stats_row(run, i, p)) for i in frames]))
        auto = views.auto_bins(run, p) if rebin is None else None
        own = bool(rebin) or auto is not None
        row = [_cell(fp.chart_frames(lambda i, p=p, tr=tr, own=own: histogram_figure(
                         run, i, p, tr, rebin=own), frames),
                     histogram_caption(run, p, tr) if not own else (),
                     [histogram_notes(run, i, p, tr, rebin=own, auto=auto) for i in frames])]
        kind = main_kind(run, p)
        if kind is not None:
            tiles = own  # colours / y axis each snapshot reads, as its bins
            notes = None
            if kind == "filters" or tiles:
                notes = [([structure_note(load(i, p))] if kind == "filters" else [])
                         + ([OWN_SCALE_NOTE[kind == "bars"]] if tiles else []) for i in frames]
            row.append(_cell(fp.chart_frames(lambda i, p=p, tr=tr, tiles=tiles: _compact(
                main_figure(run, i, p, tr, load(i, p), own_scale=tiles)), frames),
                [main_caption(kind, run.param(p).module_type, own_scale=tiles)], notes))
        blocks.append({"row": row})
        if not more:
            continue
        row = []
        extra = extra_kind(run, p)
        if extra is not None:
            row.append(_cell(fp.chart_frames(lambda i, p=p, tr=tr: _compact(extra_figure(
                run, i, p, tr, load(i, p), rgb_scale=rgb_scale, neuron=neuron)), frames),
                [CAPTIONS[extra]]))
        row.append(_cell(fp.chart_frames(lambda i, p=p, tr=tr: delta_figure(run, i, p, tr),
                                         frames),
                         notes=[[delta_caption(i)] for i in frames]))
        blocks.append({"row": row})
    return {"labels": labels, "snapshots": frames, "n_snapshots": run.n_snapshots,
            "blocks": blocks}


def frame_of(payload: dict[str, Any], index: int) -> int:
    """The player frame nearest to snapshot ``index``."""
    snaps = payload["snapshots"]
    return min(range(len(snaps)), key=lambda k: abs(snaps[k] - index))
