"""Every snapshot at once: a layer's ridgeline and percentile bands, drift and update ratio
over time, and the loss and accuracy curves."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from nnviz.analysis import views
from nnviz.figures import captions
from nnviz.figures import curves as fc
from nnviz.figures import weights as fw
from nnviz.i18n import t
from nnviz.store.runs import Run
from ui.explore.charts import chart, csv_button, png_name, track

CAPTIONS = captions.CAPTIONS


def render_all_epochs(run: Run, index: int, layer: str, key: str) -> None:
    """Ridgeline and percentile bands of the layer's parameters, drift and update ratio."""
    epochs = views.snapshot_epochs(run)
    current = epochs[index]
    at = f"{views.run_key(run)}|{index}"  # every figure below: built once per server for this

    def ridge(param: str) -> go.Figure:
        labels = [views.snapshot_label(run, i) for i in range(run.n_snapshots)]
        tr = track([run], param)
        return fw.ridgeline(tr.edges, tr.counts_matrix(run.run_id), labels, index,
                            title=t("{param}: every snapshot, fixed bins", param=param))

    def bands(param: str) -> go.Figure:
        ep, pct = views.percentile_series(run, param)
        return fw.percentile_bands(ep, pct, current,
                                   title=t("{param}: distribution over epochs", param=param))

    for param in views.layer_params(run).get(layer, []):
        left, right = st.columns(2)
        with left:
            chart(lambda p=param: ridge(p), key=f"{key}_{param}_ridge",
                  cache=f"ridge|{at}|{param}", png=png_name(run.run_id, param, "ridgeline"))
            st.caption(CAPTIONS["ridgeline"])
        with right:
            chart(lambda p=param: bands(p), key=f"{key}_{param}_bands",
                  cache=f"bands|{at}|{param}", png=png_name(run.run_id, param, "percentiles"))
            st.caption(CAPTIONS["bands"])
    names = views.param_names(run)
    left, right = st.columns(2)
    with left:
        chart(lambda: fc.drift_curves(*views.param_series(run, "drift", names), current),
              key=f"{key}_drift", cache=f"drift|{at}", png=png_name(run.run_id, "drift"))
        st.caption(CAPTIONS["drift"])
    with right:
        chart(lambda: fc.update_ratio_curves(*views.param_series(run, "update_ratio", names),
                                             current),
              key=f"{key}_ratio_t", cache=f"ratio|{at}", png=png_name(run.run_id, "update_ratio"))
        st.caption(CAPTIONS["update_ratio"])


def render_curves(run: Run, index: int, key: str) -> None:
    """Loss and accuracy per epoch with the epoch shown marked; history as CSV."""
    current = views.current_epoch(run, index)
    history = run.record.history
    has_acc = any(h.val_acc is not None or h.train_acc is not None for h in history)
    cols = st.columns(2 if has_acc else 1)
    at = f"{run.run_id}|{len(history)}|{current}"
    with cols[0]:
        chart(lambda: fc.training_curve(history, "loss", current), key=f"{key}_loss",
              cache=f"loss|{at}", png=png_name(run.run_id, "loss"))
        st.caption(CAPTIONS["loss"])
    if has_acc:
        with cols[1]:
            chart(lambda: fc.training_curve(history, "acc", current), key=f"{key}_acc",
                  cache=f"acc|{at}", png=png_name(run.run_id, "accuracy"))
            st.caption(CAPTIONS["acc"])
    if history:
        csv_button(views.history_frame(run), f"{run.run_id}-history.csv", key=f"{key}_hcsv",
                   label=t("Download history CSV"))
