"""Compare's side-by-side view as the epoch player: for every aligned snapshot, both runs'
histograms (on one set of bins and one y axis), main views and W_t − W_0, redrawn in the browser as
the slider moves, like Explore's "This epoch" view (no server round trip per move).

The payload has the player's format (nnviz.figures.epoch_view.player_payload); its
"snapshots" are positions in ``views.align_snapshots(run_a, run_b)``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from nnviz.analysis import views
from nnviz.figures import captions
from nnviz.figures import curves as fc
from nnviz.figures import epoch_view as ev
from nnviz.figures import player as fp
from nnviz.i18n import get_language, t
from nnviz.store.runs import Run
from ui import player
from ui.explore.charts import track, values
from ui.explore.param import shared_y_top
from ui.explore.player_view import CHART_VIEWS, VIEWS, Payload, ahead_layers, play_views

CAPTIONS = captions.CAPTIONS
Aligned = Sequence[tuple[float, int, int]]


def _cell(chart: dict[str, Any], caption: Sequence[str] = ()) -> dict[str, Any]:
    return {"chart": chart, "caption": [ev.md_html(c) for c in caption]}


def _per_frame(htmls: Sequence[str]) -> dict[str, Any]:
    return {"html": htmls[0]} if len(set(htmls)) == 1 else {"htmls": list(htmls)}


def _side(fig: go.Figure, side: str, top: float | None = None) -> go.Figure:
    """The run's letter in the title (and the PNG's name); the shared y range if given."""
    fig.update_layout(title_text=t("Run {side} · {title}", side=side,
                                   title=fig.layout.title.text or ""))
    if top is not None:
        fig.update_yaxes(range=[0, top * 1.08])
    return fig


def _stats(run: Run, index: int, param: str, side: str) -> str:
    row = views.stats_row(run, index, param)
    return (f"<p><b>{html.escape(t('Run {side}', side=side))}</b> · "
            f"{ev.md_html(ev.stats_line(row))}</p>")


def aligned_label(epoch: float) -> str:
    """The label of an aligned position: 'init (epoch 0)' or 'epoch 2'."""
    return t("epoch {epoch}", epoch=f"{epoch:g}") if epoch else t("init (epoch 0)")


def compare_payload(run_a: Run, run_b: Run, aligned: Aligned, layer: str) -> dict[str, Any]:
    """Both runs' charts of ``layer`` at every aligned position the player carries."""
    params = views.layer_params(run_a).get(layer, [])
    heavy = 0
    for p in params:
        if ev.main_kind(run_a, p) in ("filters", "neurons"):
            heavy += 2 * int(np.prod(run_a.param(p).shape))  # both runs' tiles
    most = ev.PLAYER_MAX_FRAMES if not heavy else min(ev.PLAYER_MAX_FRAMES,
                                                      ev.PLAYER_MAX_CELLS // heavy)
    frames = ev.spaced(len(aligned), max(2, most))
    sides = ((run_a, 1, "A"), (run_b, 2, "B"))
    blocks: list[dict[str, Any]] = [_per_frame([
        "<p>" + t("Showing A at {a} and B at {b}.",
                  a=f"<b>{html.escape(views.snapshot_label(run_a, aligned[k][1]))}</b>",
                  b=f"<b>{html.escape(views.snapshot_label(run_b, aligned[k][2]))}</b>") + "</p>"
        for k in frames])]
    for p in params:
        tr = track([run_a, run_b], p)
        top = shared_y_top([run_a, run_b], p, tr)
        shape = views.shape_text(run_a.param(p).shape)
        blocks.append({"html": f"<h4><code>{html.escape(p)}</code> · {html.escape(shape)}"
                               "</h4>"})
        blocks.append(_per_frame(["".join(_stats(run, aligned[k][i], p, side)
                                          for run, i, side in sides) for k in frames]))
        blocks.append({"row": [_cell(fp.chart_frames(
            lambda k, run=run, i=i, p=p, tr=tr, top=top, side=side: _side(
                ev.histogram_figure(run, aligned[k][i], p, tr), side, top), frames))
            for run, i, side in sides]})
        kind = ev.main_kind(run_a, p)
        if kind is not None:
            blocks.append({"row": [_cell(fp.chart_frames(
                lambda k, run=run, i=i, p=p, tr=tr, side=side: _side(ev.main_figure(
                    run, aligned[k][i], p, tr, values(run, aligned[k][i], p)), side), frames),
                [captions.main_caption(kind, run_a.param(p).module_type)])
                for run, i, side in sides]})
        blocks.append({"row": [_cell(fp.chart_frames(
            lambda k, run=run, i=i, p=p, tr=tr, side=side: _side(
                ev.delta_figure(run, aligned[k][i], p, tr), side), frames),
            [t("How far each weight moved since init (W_t − W_0).")])
            for run, i, side in sides]})
    # both runs' loss curves, the snapshot shown marked: in the frame, so a move or a layer
    # pick redraws them here instead of re-sending and re-rendering two charts of the page
    histories = loss_histories(run_a, run_b)
    blocks.append({"row": [_cell(fp.chart_frames(
        lambda k, key=key, title=title: fc.compare_curves(
            histories, key, aligned[k][0], title=title, mark_trace=True), frames))
        for key, title, _ in loss_curves()]})
    blocks.append({"html": f'<div class="caption"><p>{ev.md_html(CAPTIONS["loss"])}</p></div>'})
    return {"labels": [aligned_label(aligned[k][0]) for k in frames], "snapshots": frames,
            "n_snapshots": len(aligned), "blocks": blocks}


def loss_histories(run_a: Run, run_b: Run) -> dict[str, Any]:
    """Each run's history under its legend label ("A: default")."""
    return {f"{side}: {run.config.init}": run.record.history
            for side, run in (("A", run_a), ("B", run_b))}


def loss_curves() -> list[tuple[str, str, str]]:
    """The loss curves Compare draws: (history key, title, PNG name), validation first."""
    return [("val_loss", t("Validation loss"), "validation_loss"),
            ("train_loss", t("Training loss"), "training_loss")]


def compare_chart(run_a: Run, run_b: Run, aligned: Aligned, layer: str) -> Payload:
    """The side-by-side payload of one layer (its family: that layer of these two runs)."""
    lang = get_language()  # the payload holds texts: one per language
    return Payload(f"compare|{lang}|{views.run_key(run_a)}|{run_a.status}|"
                   f"{views.run_key(run_b)}|{run_b.status}|{layer}",
                   f"compare|{run_a.run_id}|{run_b.run_id}|{layer}",
                   lambda: player.encode(compare_payload(run_a, run_b, aligned, layer)))


def render_compare_player(run_a: Run, run_b: Run, aligned: Aligned, layers: Sequence[str],
                          layer: str, prefix: str, hidden: bool = False) -> int:
    """Both runs side by side in the epoch player; returns the aligned position shown
    (``hidden``: kept mounted out of sight, with its payloads, while Health is shown). Once
    its charts are drawn the frame asks ahead for the layers a reader may pick next
    (``ahead_layers``), so a pick of one in the page's Layer selectbox is shown at once."""
    chart = compare_chart(run_a, run_b, aligned, layer)
    still = run_a.status != "running" and run_b.status != "running"
    ahead = {} if hidden else {
        name: compare_chart(run_a, run_b, aligned, name) for name in ahead_layers(layers, layer)}
    return play_views(prefix, VIEWS[2] if hidden else CHART_VIEWS[0], {CHART_VIEWS[0]: chart},
                      n=len(aligned), prefetch=still,
                      png_prefix=f"{run_a.run_id}_vs_{run_b.run_id}", ahead=ahead,
                      picker=t("Layer"), control=False)
