"""Gradient, update-ratio and activation numbers per layer (charts and CSV tables), the
weight-statistics table, and the diagnostics panel and health timeline
(ui.diagnostics_panel)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from nnviz.analysis import views
from nnviz.analysis.overview import missing_text
from nnviz.figures import captions
from nnviz.figures import curves as fc
from nnviz.i18n import t
from nnviz.store.runs import Run
from ui import diagnostics_panel
from ui.explore.charts import chart, csv_button, png_name, table
from ui.text import show_error

CAPTIONS = captions.CAPTIONS


def render_health(run: Run, index: int, key: str, charts: bool = True) -> None:
    """Gradient, update-ratio and activation statistics per layer: charts and CSV tables."""
    grads = views.grad_table(run, index)
    acts = views.activation_table(run, index)
    if charts:
        _health_charts(run, index, grads, acts, key)
    st.markdown(t("**Gradients and updates**"))
    table(grads)
    csv_button(grads, f"{run.run_id}-s{index}-gradients.csv", key=f"{key}_gcsv")
    st.markdown(t("**Activations (probe batch)**"))
    table(acts)
    csv_button(acts, f"{run.run_id}-s{index}-activations.csv", key=f"{key}_acsv")


def _health_charts(run: Run, index: int, grads: Any, acts: Any, key: str) -> None:
    """Per-parameter gradient norm and update ratio; per-layer activation std and fractions."""
    at = views.snapshot_label(run, index)
    once = f"{views.run_key(run)}|{index}"  # each figure built once per server for this
    left, right = st.columns(2)
    with left:
        if grads["steps"].notna().any():
            chart(lambda: fc.layer_bars(list(grads["parameter"]), list(grads["grad norm ‖g‖"]),
                                        title=t("Gradient norm ‖g‖ per parameter"),
                                        y_title="‖g‖", log_y=True, kind="grad_norm"),
                  key=f"{key}_gnorm", cache=f"gnorm|{once}",
                  png=png_name(run.run_id, at, "gradient_norm"))
            st.caption(CAPTIONS["grad"])
            chart(lambda: fc.layer_bars(list(grads["parameter"]),
                                        list(grads["update ratio ‖ΔW‖/‖W‖"]),
                                        title=t("Update ratio ‖ΔW‖/‖W‖ per parameter"),
                                        y_title=t("update ratio"), log_y=True,
                                        ref=views.UPDATE_RATIO_REF, ref_label="≈1e-3 (CS231n)",
                                        kind="update_ratio_bars"),
                  key=f"{key}_ratio", cache=f"ratio_bars|{once}",
                  png=png_name(run.run_id, at, "update_ratio"))
            st.caption(CAPTIONS["update_ratio"])
        else:
            st.info(t(missing_text(run, "gradients")))
    with right:
        if len(acts):
            names = list(acts["layer"])
            chart(lambda: fc.activation_std(names, list(acts["mean"]), list(acts["std"])),
                  key=f"{key}_astd", cache=f"astd|{once}",
                  png=png_name(run.run_id, at, "activation_std"))
            chart(lambda: fc.activation_fractions(names, list(acts["dead fraction"]),
                                                  list(acts["saturated fraction"]),
                                                  list(acts["zero fraction"])),
                  key=f"{key}_afrac", cache=f"afrac|{once}",
                  png=png_name(run.run_id, at, "activation_fractions"))
            st.caption(CAPTIONS["activations"])
        else:
            st.info(t(missing_text(run, "activations")))


def render_stats_table(run: Run, index: int, key: str) -> None:
    """Weight statistics of every parameter at the snapshot: the main columns, the others on
    request (so the table fits a projector's width), and a CSV download of them all."""
    df = views.stats_table(run, index)
    main = views.stats_shown_columns(df)
    extra = st.multiselect(t("More columns"), [c for c in df.columns if c not in main],
                           key=f"{key}_cols", placeholder=t("exact zeros, NaN, spectral norm, …"),
                           help=t("Columns left out so the table fits the screen; the CSV "
                                  "download holds every column."))
    table(df[views.stats_shown_columns(df, extra)])
    csv_button(df, f"{run.run_id}-s{index}-weights.csv", key=f"{key}_wcsv")


def render_timeline(run: Run, index: int, key: str) -> None:
    """The health timeline: which flags hold at which snapshot."""
    try:
        diagnostics_panel.render_timeline(run, index, key=key)
    except Exception as exc:  # noqa: BLE001 - a panel bug must not take the page down
        show_error(exc)


def render_diagnostics(run: Run, index: int, key: str, signal: bool = True) -> None:
    """The diagnostics panel, and (``signal``) the signal-through-depth chart."""
    try:
        diagnostics_panel.render_panel(run, index, key=key)
        if signal:
            diagnostics_panel.render_signal(run, index, key=key)
    except Exception as exc:  # noqa: BLE001 - a panel bug must not take the page down
        show_error(exc)
