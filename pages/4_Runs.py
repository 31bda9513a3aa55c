"""Runs: every stored run; open, stop, download, delete (after a confirmation) and import runs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from nnviz.errors import NnvizError
from nnviz.i18n import t
from nnviz.store.archive import MAX_IMPORT_BYTES
from ui import ownership as own
from ui import shell
from ui.links import explore_link
from ui.runs import run_picker, status_word
from ui.state import job_manager, run_store
from ui.text import literal, show_error

shell.page("runs")
state = st.session_state
state.setdefault("runs_confirm_delete", None)  # run id waiting for "Yes, delete"
state.setdefault("runs_message", None)         # (kind, text) shown once after an action
state.setdefault("runs_import", None)          # (file id, kind, text) of the last upload
state.setdefault("runs_zip", None)             # (run id, zip bytes) prepared for download

store = run_store()
manager = job_manager()
st.title(t("Runs"))
st.caption(t("Your runs, the lessons and the server's own runs; a run someone shares by link "
             "opens in Explore."))

if state.runs_message:
    kind, text = state.runs_message
    (st.success if kind == "success" else st.warning)(text)
    state.runs_message = None

try:
    runs, damaged = store.scan()
except OSError as exc:  # the runs folder itself cannot be read
    show_error(exc)
    runs, damaged = [], []
# never other people's runs, unless shared by link
rows = own.visible_rows([r.summary() for r in runs], manager)


def _fmt(x: object, digits: int = 4) -> object:
    return round(x, digits) if isinstance(x, float) else x


if rows:
    table = pd.DataFrame([{
        t("status"): status_word(r["status"]),
        t("model"): r["model"],
        t("init"): r["init"],
        t("data"): r["dataset"],
        t("seed"): r["seed"],
        t("epochs"): f"{r['epochs_done']}/{r['epochs']}",
        t("val loss"): _fmt(r["val_loss"]),
        t("val acc"): _fmt(r["val_acc"]),
        t("created"): dt.datetime.fromtimestamp(r["created"]) if r.get("created") else None,
        t("name"): r["name"],
        t("run"): r["run_id"],
        t("detail"): r["status_detail"],
    } for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        t("created"): st.column_config.DatetimeColumn(t("created"), format="YYYY-MM-DD HH:mm"),
    })



def _zip_button(area: object, run_id: str, key: str) -> None:
    """'Prepare zip', then 'Download <id>.zip'; an export that fails says why."""
    ready = state.runs_zip if state.runs_zip and state.runs_zip[0] == run_id else None
    if ready is None:
        if area.button(t("Prepare zip"), key=f"{key}_prepare",
                       help=t("run.json and every snapshot; another nnviz can import it below.")):
            try:
                state.runs_zip = (run_id, store.export_zip(run_id))
            except NnvizError as exc:
                area.error(literal(exc), icon=":material/block:")
                return
            st.rerun()
        return
    area.download_button(t("Download as zip"), data=ready[1], file_name=f"{run_id}.zip",
                         mime="application/zip", key=key, on_click="ignore",
                         help=t("run.json and every snapshot; another nnviz can import it."))


st.subheader(t("One run"))
run_id = run_picker("runs_pick", t("Run"), rows=rows)
if run_id is not None:
    row = next(r for r in rows if r["run_id"] == run_id)
    col_open, col_zip, col_delete = st.columns(3)
    with col_open:
        explore_link(run_id)
    _zip_button(col_zip, run_id, "runs_download")
    if not own.can_delete(row, manager):
        col_delete.caption(t("Lessons, the server's runs and other people's runs are read-only "
                             "to you (the teacher can delete them)."))
    elif row["status"] == "running":
        if col_delete.button(t("Stop training"), key="runs_stop",
                             help=t("Asks the trainer to stop after its current step.")):
            try:
                own.check_can_delete(row, manager)
                store.request_cancel(run_id)
            except NnvizError as exc:
                show_error(exc)
            else:
                st.info(t("Stop requested: the run stops within one training step."))
    elif col_delete.button(t("Delete…"), key="runs_delete"):
        state.runs_confirm_delete = run_id

    if state.runs_confirm_delete == run_id and row["status"] != "running":
        st.warning(t("Delete run **{run}**? Its settings and every snapshot are removed from "
                     "disk. This cannot be undone.", run=run_id))
        yes, no = st.columns(2)
        if yes.button(t("Yes, delete it"), key="runs_delete_yes", type="primary"):
            state.runs_confirm_delete = None
            try:
                own.check_can_delete(row, manager)
                store.delete(run_id)
                manager.forget_run(run_id)
            except NnvizError as exc:
                show_error(exc)
            else:
                state.runs_message = ("success", t("Deleted run {run}.", run=run_id))
                state.pop("runs_pick", None)
                st.rerun()
        if no.button(t("Keep it"), key="runs_delete_no"):
            state.runs_confirm_delete = None
            st.rerun()

st.subheader(t("Import a run"))
upload = st.file_uploader(
    t("A .zip made by Download (or `python -m nnviz export`)"), type=["zip"], key="runs_upload",
    max_upload_size=MAX_IMPORT_BYTES // 2**20,
    help=t("The file is checked first; a file that is not a valid nnviz run changes nothing."))
if upload is not None:
    last = state.runs_import
    if last is None or last[0] != upload.file_id:  # import each uploaded file once
        try:
            new_id = store.import_zip(upload.getvalue())
        except NnvizError as exc:
            state.runs_import = (upload.file_id, "error", str(exc))
        else:
            manager.claim_run(new_id, own.session_id())
            state.runs_import = (upload.file_id, "success", t("Imported run {run}.", run=new_id))
            st.rerun()
    _, kind, text = state.runs_import
    (st.success if kind == "success" else st.error)(text)

if damaged and own.actor().admin:  # folder names are the teacher's to see
    st.subheader(t("Damaged runs ({n})", n=len(damaged)))
    st.caption(t("These folders fail nnviz's checks, so they cannot be opened. Download one to "
                 "keep what is on disk, or delete it."))
    for d in damaged:
        with st.container(border=True):
            st.text(t("{run} — damaged: {reason}", run=d.run_id, reason=d.reason))
            col_zip, col_delete = st.columns(2)
            _zip_button(col_zip, d.run_id, f"runs_dmg_zip_{d.run_id}")
            if state.runs_confirm_delete == d.run_id:
                if col_delete.button(t("Yes, delete it"), key=f"runs_dmg_yes_{d.run_id}",
                                     type="primary"):
                    state.runs_confirm_delete = None
                    try:
                        store.delete(d.run_id)
                    except NnvizError as exc:
                        show_error(exc)
                    else:
                        state.runs_message = ("success", t("Deleted run {run}.", run=d.run_id))
                        st.rerun()
            elif col_delete.button(t("Delete…"), key=f"runs_dmg_del_{d.run_id}"):
                state.runs_confirm_delete = d.run_id
                st.rerun()

own.teacher_box(manager)
