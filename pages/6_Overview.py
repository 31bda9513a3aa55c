"""Overview: every parameter of a run in one sortable, searchable table; open checkpoints."""

from __future__ import annotations

import streamlit as st

from nnviz.analysis import views
from nnviz.errors import StorageError
from nnviz.i18n import t
from ui import overview as uo
from ui import ownership as own
from ui import shell
from ui.diagnostics_panel import render_signal
from ui.runs import run_picker
from ui.state import job_manager, run_store
from ui.text import literal, show_error

P = "overview"  # session-state key prefix of this page

shell.page("overview")
st.session_state.setdefault(f"{P}_signal", False)  # draw the signal-through-depth chart
st.title(t("Model overview"))
st.caption(t("One row per parameter with its health numbers, for models with many layers (a "
             "ResNet, a transformer). Record your own loop with `nnviz.watch(model, optimizer)` "
             "or open checkpoints below."))

store = run_store()
url_run = st.query_params.get("run")
rows = own.visible_rows(store.list_runs()[0], job_manager())  # never other people's runs
if url_run and any(r["run_id"] == url_run for r in rows) and \
        st.session_state.get(f"{P}_url_seen") != url_run:
    st.session_state[f"{P}_url_seen"] = url_run
    st.session_state[f"{P}_run"] = url_run

with st.expander(t("Open checkpoints as a run"), expanded=not rows):
    new_id = uo.render_checkpoint_upload(store, f"{P}_ckpt")
    if new_id:
        st.session_state[f"{P}_run"] = new_id
        st.rerun()

run_id = run_picker(f"{P}_run", t("Run"), rows=rows)
if run_id is not None:
    try:
        run = store.load(run_id)
    except StorageError as exc:
        show_error(exc)
        st.stop()
    if run.n_snapshots == 0:
        st.info(t("This run has no snapshots yet."))
        st.stop()
    source = run.record.source
    if source.kind == "checkpoint":
        st.caption(t("From checkpoints: weights only. Gradient, update-ratio and activation "
                     "columns stay empty; weight diagnostics (spectral norm, stable rank, drift "
                     "between checkpoints, NaN/Inf) still apply."))
    elif source.kind == "watch":
        st.caption(t("Recorded with nnviz.watch: {model}, {n} parameters.",
                     model=literal(source.extra.get("model_class")),
                     n=f"{source.extra.get('n_params', 0):,}"))
    n = run.n_snapshots
    index = st.select_slider(t("Snapshot"), options=list(range(n)), value=n - 1,
                             key=f"{P}_index_{run_id}",
                             format_func=lambda i: views.snapshot_label(run, i))
    uo.render_table(run, index, f"{P}_{run_id}")
    if st.toggle(t("Signal through depth (every Linear / Conv layer)"), key=f"{P}_signal"):
        render_signal(run, index, key=P)
