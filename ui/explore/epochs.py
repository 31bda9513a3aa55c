"""Every snapshot at once: the loss and accuracy curves, a layer's ridgeline and percentile
bands, drift and update ratio over time, each with the snapshot shown marked.

The view plays in the epoch player's frame, like "This epoch" (ui.explore.player_view): its
charts at every snapshot the player carries are sent once per (run, layer, language), the
marker moves in the browser, and the frame's view control switches between the two views'
payloads it holds, in the browser, instead of Streamlit building a page of new charts.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from nnviz.analysis import views
from nnviz.figures import captions
from nnviz.figures import curves as fc
from nnviz.figures import epoch_view as ev
from nnviz.figures import player as fp
from nnviz.figures import weights as fw
from nnviz.i18n import get_language, t
from nnviz.store.runs import Run
from ui import player
from ui.explore.charts import csv_button, track
from ui.explore.player_view import Payload

CAPTIONS = captions.CAPTIONS


def all_epochs_payload(run: Run, layer: str) -> dict[str, Any]:
    """The player payload of the view (the format of ``ev.player_payload``): a row of loss
    (and accuracy) curves, a row per parameter of ``layer`` (ridgeline, percentile bands),
    and a row of drift and update ratio, each chart at every snapshot the player carries."""
    frames = ev.player_frames(run, 0)
    epochs = views.snapshot_epochs(run)
    labels = [views.snapshot_label(run, i) for i in range(run.n_snapshots)]
    history = run.record.history

    def cell(build, caption: str) -> dict[str, Any]:
        return {"chart": fp.chart_frames(build, frames), "caption": [ev.md_html(caption)]}

    def curve(metric: str):
        return lambda i: fc.training_curve(history, metric, epochs[i])

    blocks: list[dict[str, Any]] = []
    if history:
        row = [cell(curve("loss"), CAPTIONS["loss"])]
        if any(h.val_acc is not None or h.train_acc is not None for h in history):
            row.append(cell(curve("acc"), CAPTIONS["acc"]))
        blocks.append({"row": row})
    for param in views.layer_params(run).get(layer, []):
        tr = track([run], param)
        counts = tr.counts_matrix(run.run_id)
        ep, pct = views.percentile_series(run, param)

        def ridge(i: int, tr=tr, counts=counts, param=param) -> go.Figure:
            return fw.ridgeline(tr.edges, counts, labels, i,
                                title=t("{param}: every snapshot, fixed bins", param=param))

        def bands(i: int, ep=ep, pct=pct, param=param) -> go.Figure:
            return fw.percentile_bands(ep, pct, epochs[i],
                                       title=t("{param}: distribution over epochs", param=param))

        blocks.append({"row": [cell(ridge, CAPTIONS["ridgeline"]),
                               cell(bands, CAPTIONS["bands"])]})
    names = views.param_names(run)
    ep_d, drift = views.param_series(run, "drift", names)
    ep_r, ratio = views.param_series(run, "update_ratio", names)
    blocks.append({"row": [
        cell(lambda i: fc.drift_curves(ep_d, drift, epochs[i]), CAPTIONS["drift"]),
        cell(lambda i: fc.update_ratio_curves(ep_r, ratio, epochs[i]), CAPTIONS["update_ratio"]),
    ]})
    return {"labels": [labels[i] for i in frames], "snapshots": frames,
            "n_snapshots": run.n_snapshots, "blocks": blocks}


def all_epochs(run: Run, layer: str) -> Payload:
    """The view's payload for the player's frame (ui.explore.player_view.play_views)."""
    lang = get_language()  # the payload holds texts: one per language
    return Payload(f"all|{lang}|{views.run_key(run)}|{run.status}|{layer}",
                   f"all|{run.run_id}|{layer}",
                   lambda: player.encode(all_epochs_payload(run, layer)))


def history_csv(run: Run, key: str) -> None:
    """The loss and accuracy history as CSV, under the view's charts."""
    if run.record.history:
        csv_button(views.history_frame(run), f"{run.run_id}-history.csv", key=f"{key}_hcsv",
                   label=t("Download history CSV"))
