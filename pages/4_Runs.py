"""Runs: every stored run; open, stop, download, delete (after a confirmation) and import runs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from nnviz.errors import NnvizError
from nnviz.store.runs import MAX_IMPORT_BYTES
from ui import ownership as own
from ui import shell
from ui.links import explore_link
from ui.runs import run_picker
from ui.state import job_manager, run_store
from ui.text import show_error

shell.page("runs")
state = st.session_state
state.setdefault("runs_confirm_delete", None)  # run id waiting for "Yes, delete"
state.setdefault("runs_message", None)         # (kind, text) shown once after an action
state.setdefault("runs_import", None)          # (file id, kind, text) of the last upload

store = run_store()
manager = job_manager()
st.title("Runs")
st.caption("Your runs, the lessons and the server's own runs; a run someone shares by link "
           "opens in Explore.")

if state.runs_message:
    kind, text = state.runs_message
    (st.success if kind == "success" else st.warning)(text)
    state.runs_message = None

try:
    rows, problems = store.list_runs()
except OSError as exc:  # the runs folder itself cannot be read
    show_error(exc)
    rows, problems = [], []
rows = own.visible_rows(rows, manager)  # never other people's runs, unless shared by link


def _fmt(x: object, digits: int = 4) -> object:
    return round(x, digits) if isinstance(x, float) else x


if rows:
    table = pd.DataFrame([{
        "status": r["status"],
        "model": r["model"],
        "init": r["init"],
        "data": r["dataset"],
        "seed": r["seed"],
        "epochs": f"{r['epochs_done']}/{r['epochs']}",
        "val loss": _fmt(r["val_loss"]),
        "val acc": _fmt(r["val_acc"]),
        "created": dt.datetime.fromtimestamp(r["created"]) if r.get("created") else None,
        "name": r["name"],
        "run": r["run_id"],
        "detail": r["status_detail"],
    } for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    })

st.subheader("One run")
run_id = run_picker("runs_pick", "Run", rows=rows)
if run_id is not None:
    row = next(r for r in rows if r["run_id"] == run_id)
    col_open, col_zip, col_delete = st.columns(3)
    with col_open:
        explore_link(run_id)
    col_zip.download_button(
        "Download as zip", data=lambda: store.export_zip(run_id), file_name=f"{run_id}.zip",
        mime="application/zip", key="runs_download", on_click="ignore",
        help="run.json and every snapshot; another nnviz can import it below.")
    if not own.can_delete(row, manager):
        col_delete.caption("Lessons, the server's runs and other people's runs are read-only "
                           "to you (the teacher can delete them).")
    elif row["status"] == "running":
        if col_delete.button("Stop training", key="runs_stop",
                             help="Asks the trainer to stop after its current step."):
            try:
                own.check_can_delete(row, manager)
                store.request_cancel(run_id)
            except NnvizError as exc:
                show_error(exc)
            else:
                st.info("Stop requested: the run stops within one training step.")
    elif col_delete.button("Delete…", key="runs_delete"):
        state.runs_confirm_delete = run_id

    if state.runs_confirm_delete == run_id and row["status"] != "running":
        st.warning(f"Delete run **{run_id}**? Its settings and every snapshot are removed from "
                   "disk. This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Yes, delete it", key="runs_delete_yes", type="primary"):
            state.runs_confirm_delete = None
            try:
                own.check_can_delete(row, manager)
                store.delete(run_id)
                manager.forget_run(run_id)
            except NnvizError as exc:
                show_error(exc)
            else:
                state.runs_message = ("success", f"Deleted run {run_id}.")
                state.pop("runs_pick", None)
                st.rerun()
        if no.button("Keep it", key="runs_delete_no"):
            state.runs_confirm_delete = None
            st.rerun()

st.subheader("Import a run")
upload = st.file_uploader(
    "A .zip made by Download (or `python -m nnviz export`)", type=["zip"], key="runs_upload",
    max_upload_size=MAX_IMPORT_BYTES // 2**20,
    help="The file is checked first; a file that is not a valid nnviz run changes nothing.")
if upload is not None:
    last = state.runs_import
    if last is None or last[0] != upload.file_id:  # import each uploaded file once
        try:
            new_id = store.import_zip(upload.getvalue())
        except NnvizError as exc:
            state.runs_import = (upload.file_id, "error", str(exc))
        else:
            manager.claim_run(new_id, own.session_id())
            state.runs_import = (upload.file_id, "success", f"Imported run {new_id}.")
            st.rerun()
    _, kind, text = state.runs_import
    (st.success if kind == "success" else st.error)(text)

if problems:
    with st.expander(f"{len(problems)} folder(s) in the runs folder could not be read",
                     expanded=True):
        for text in problems:
            st.warning(text)

own.teacher_box(manager)
