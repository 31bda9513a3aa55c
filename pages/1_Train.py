"""Train: set every option in the sidebar, start a background job, watch it, open it in Explore."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st
import torch

from nnviz.config import RunConfig
from nnviz.engine.training import available_devices, device_label
from nnviz.errors import NnvizError
from nnviz.i18n import t
from ui import ownership as own
from ui import shell
from ui import state as shared
from ui.config_form import config_form, last_config
from ui.explore.query import query_dict
from ui.i18n import apply_language, with_lang
from ui.links import explore_link, share_link
from ui.runs import job_status, poll_every, status_word
from ui.services.jobs import JobInfo
from ui.services.urlstate import config_to_query, has_config, query_to_config
from ui.text import show_error, warning

shell.page("train")
state = st.session_state
state.setdefault("train_job_id", None)
state.setdefault("train_reuse", True)
state.setdefault("train_ready_run", None)  # run id whose first snapshot is on disk
manager = shared.job_manager()

# The URL carries the settings: a link with settings fills the form, otherwise the form keeps
# what this session last had.
params = query_dict()
warnings: list[str] = []
if has_config(params):
    initial, warnings = query_to_config(params)
else:
    initial = last_config("train") or RunConfig()
cfg = config_form("train", initial)
if cfg is not None:
    wanted = with_lang(config_to_query(cfg))
    if {k: v[-1] for k, v in params.items()} != wanted:
        st.query_params.from_dict(wanted)

st.title(t("Train"))
for text in warnings:
    warning(text, icon=":material/link:")


def current_job() -> JobInfo | None:
    """This session's last job, or None (also when the server restarted since)."""
    job_id = state.train_job_id
    if not job_id:
        return None
    try:
        return manager.get(job_id)
    except NnvizError:
        state.train_job_id = None
        return None


devices = [device_label(torch.device(d)) for d in available_devices()]
st.caption(t("Devices on this server: {devices} · {n} run(s) train at once with {threads} CPU "
             "thread(s) each; others wait in a queue.", devices=", ".join(devices),
             n=manager.max_concurrent, threads=manager.threads_per_job))
if cfg is not None:
    st.markdown(t("**{model}** · init **{init}** · data **{dataset}** ({n} examples) · "
                  "{optimizer} lr {lr} · {epochs} epoch(s) · seed {seed}", model=cfg.model,
                  init=cfg.init, dataset=cfg.dataset, n=cfg.n_samples, optimizer=cfg.optimizer,
                  lr=f"{cfg.lr:g}", epochs=cfg.epochs, seed=cfg.seed))
else:
    st.error(t("Fix the settings marked in the sidebar to train."))

job = current_job()
left, middle, right = st.columns([1, 1, 2])
start = left.button(t("Train"), key="train_start", type="primary", disabled=cfg is None,
                    width="stretch")
stop = middle.button(t("Cancel"), key="train_cancel", disabled=not own.can_cancel(job),
                     width="stretch",
                     help=t("Only whoever started a training (or the teacher) can cancel it."))
right.checkbox(t("Open an identical finished run instead of training again"), key="train_reuse",
               help=t("Runs are seeded and deterministic: the same settings give the same run."))
if start and cfg is not None:
    try:
        job = manager.submit(cfg, reuse=state.train_reuse, owner=own.session_id())
    except NnvizError as exc:
        show_error(exc)
    else:
        state.train_job_id = job.job_id
        state[shared.JOB_KEY] = job.job_id
        st.rerun()
if stop and job is not None:
    try:
        manager.cancel(job.job_id, own.actor())
    except NnvizError as exc:
        show_error(exc)
    st.rerun()


def _job_row(j: JobInfo) -> dict[str, object]:
    """One row of the queue table."""
    p = j.progress
    epochs = f"{p.get('epoch') or 0}/{p.get('epochs') or j.config.epochs}"
    mine = j.owner == own.session_id() or own.actor().admin
    return {
        t("mine"): t("yes") if j.job_id == state.train_job_id else "",
        t("state"): status_word(j.word) + (t(" (reused)") if j.reused else ""),
        t("queue"): own.wait_text(j),
        t("model"): j.config.model,
        t("init"): j.config.init,
        t("data"): j.config.dataset,
        t("seed"): j.config.seed,
        t("epoch"): epochs,
        t("run"): (j.run_id or "") if mine else "",  # other people's run names stay theirs
        t("submitted"): dt.datetime.fromtimestamp(j.submitted).strftime("%H:%M:%S"),
        t("detail"): j.status_detail if mine else "",
    }


every = poll_every(job)  # only this session's own job is polled, never other people's


@st.fragment(run_every=every)
def progress_panel() -> None:
    """The job's progress and the server's queue, refreshed while this session's job is
    queued or running (otherwise with the Refresh button)."""
    apply_language()  # a timer rerun of the fragment may run in a fresh thread
    mine = current_job()
    job_status(mine)
    if mine is not None and mine.state == "queued":
        st.caption(t("Queue: {wait} (from how fast this server trained its last runs).",
                     wait=own.wait_text(mine)))
    if mine is not None and mine.run_id:
        if state.train_ready_run != mine.run_id:  # read the run once, not at every poll
            try:
                if shared.load_run(mine.run_id).n_snapshots > 0:
                    state.train_ready_run = mine.run_id
            except NnvizError:
                pass
        if state.train_ready_run == mine.run_id:
            explore_link(mine.run_id, label=t("Open in Explore (it updates as the run trains)")
                         if mine.active else t("Open in Explore"))
    jobs = manager.jobs()
    st.subheader(t("Queue"))
    if not jobs:
        st.caption(t("No jobs since the server started."))
    else:
        st.dataframe(pd.DataFrame([_job_row(j) for j in jobs[:30]]), hide_index=True,
                     width="stretch")
    if every is None:
        st.button(t("Refresh the queue"), key="train_refresh", icon=":material/refresh:")
    elif poll_every(mine) != every:
        st.rerun()  # the job ended (refresh the buttons) or is now checked at another pace


progress_panel()

if cfg is not None:
    with st.expander(t("Share these settings"), expanded=False):
        query = config_to_query(cfg)
        share_link(query, t("Link that opens the run in Explore (trained there if needed)"),
                   page="explore")
        share_link(query, t("Link that fills this form"))
        st.caption(t("Whoever opens a link gets exactly these seeded settings. Runs are "
                     "deterministic, so a class opening the same link trains it only once."))

own.teacher_box(manager)
