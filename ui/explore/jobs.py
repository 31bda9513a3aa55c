"""Runs that are not ready yet: a linked run that trains first (its progress until the first
snapshot exists) and a shown run that is still training (the page re-runs on each new
snapshot). Both poll at ``ui.runs.poll_every``'s pace, and only while there is something to
wait for. A running job's first snapshot is first waited for in the page's run itself (up to
FIRST_WAIT_S: a lesson click on a warm server draws its first chart in that same run); after
that, a job that has just started is checked every FIRST_POLL_S for it (shown within a quarter
second of its writing, not up to a second later)."""

from __future__ import annotations

import time

import streamlit as st

from nnviz.errors import NnvizError, StorageError
from nnviz.i18n import t
from nnviz.store.runs import Run
from ui import state
from ui.i18n import apply_language
from ui.links import page_link
from ui.runs import POLL_SLOW_S, job_status, poll_every, status_word
from ui.services.jobs import JobInfo, JobManager
from ui.text import error, info, show_error

POLL_EVERY_S = POLL_SLOW_S  # seconds between checks for new snapshots of a running run
FOLLOW_EVERY_S = 10.0       # a training run's page is redrawn for new epochs at most this often
ENDED = ("failed", "cancelled", "done")
FIRST_POLL_S = 0.25         # seconds between checks for a just-started job's first snapshot ...
FIRST_POLL_FOR_S = 8.0      # ... for this long after it started (a check reads memory only)
FIRST_WAIT_S = 1.0          # a running job's first snapshot is waited for this long in the run


def _just_started(job: JobInfo, now: float | None = None) -> bool:
    """The job is running and has run less than FIRST_POLL_FOR_S."""
    now = time.time() if now is None else now
    return job.state == "running" and job.started is not None \
        and now - job.started < FIRST_POLL_FOR_S


def first_snapshot_every(job: JobInfo, now: float | None = None) -> float | None:
    """Seconds between checks of a job whose first snapshot is awaited: FIRST_POLL_S while it
    has run less than FIRST_POLL_FOR_S, else ``poll_every``'s pace (None: do not poll)."""
    every = poll_every(job, now)
    if every is not None and _just_started(job, now):
        return min(every, FIRST_POLL_S)
    return every


def manager_or_none() -> JobManager | None:
    """The app's job manager, or None (the reason shown) when it could not start."""
    try:
        return state.job_manager()
    except Exception as exc:  # noqa: BLE001 - say so, keep the page usable
        show_error(exc)
        return None


def run_or_stop(run_id: str | None, no_runs: str) -> Run:
    """The run to show, or stop the page with ``no_runs`` (and a Train link) or the load error."""
    if run_id is None:
        st.info(no_runs)
        page_link("train", t("Train a run"))
        st.stop()
    try:
        return state.load_run(run_id)
    except StorageError as exc:
        show_error(exc)
        st.stop()
    raise AssertionError("unreachable: st.stop() ends the script")


def _has_snapshot(run_id: str) -> bool:
    try:
        return state.load_run(run_id).n_snapshots > 0
    except StorageError:
        return False


def wait_for_job(job_id: str) -> tuple[str | None, bool]:
    """(run id, pending) of a training job: the run id once its first snapshot exists; while
    it is not there yet, its progress (refreshed at ``poll_every``'s pace) and pending = True;
    for a failed, cancelled or unknown job, an error and (None, False)."""
    mgr = manager_or_none()
    if mgr is None:
        return None, False
    try:
        job = mgr.get(job_id)
    except NnvizError as exc:
        show_error(exc)
        return None, False
    if not job.run_id and _just_started(job):
        # A warm worker writes the init snapshot within ~10 ms of the job's start (a lesson
        # click): wait for it here rather than draw "Training" and poll for it, which costs
        # a poll interval and a second run of the page before the first chart.
        try:
            job = mgr.wait(job_id, FIRST_WAIT_S, run=True)
        except NnvizError as exc:
            show_error(exc)
            return None, False
    if job.run_id and _has_snapshot(job.run_id):
        return job.run_id, False
    if job.state in ENDED:
        error(t("Training {state}: {detail}", state=status_word(job.state),
                detail=job.status_detail or t("no details given")))
        return None, False

    every = first_snapshot_every(job)

    @st.fragment(run_every=every)
    def _poll() -> None:
        apply_language()  # a timer rerun of the fragment may run in a fresh thread
        try:
            current = mgr.get(job_id)  # the manager's table in memory: no disk read
        except NnvizError as exc:
            show_error(exc)
            return
        job_status(current)
        if (current.run_id and _has_snapshot(current.run_id)) or current.state in ENDED \
                or first_snapshot_every(current) != every:
            st.rerun()  # the whole page: the run can be explored, the job ended, or a new pace

    info(t("Training this run; its epochs appear here as soon as they are recorded."),
         icon=":material/model_training:")
    _poll()
    return None, True


def watch_run(run: Run) -> None:
    """While a run trains, re-run the page when a new status is saved, and for new snapshots
    at most every FOLLOW_EVERY_S (each redraw rebuilds the run's charts for every snapshot,
    seconds of the server's CPU that all other sessions wait behind).

    Always one element, so the charts below keep their place (and the epoch player its
    frame) when the run finishes.
    """
    if run.status != "running":
        st.empty()
        return
    seen = (run.n_snapshots, run.status)
    drawn = time.monotonic()

    @st.fragment(run_every=POLL_EVERY_S)
    def _watch() -> None:
        apply_language()  # a timer rerun of the fragment may run in a fresh thread
        try:
            fresh = state.load_run(run.run_id)  # one stat; re-read only when run.json changed
        except StorageError:
            return
        grown = fresh.n_snapshots != seen[0]
        if fresh.status != seen[1] or grown and (
                seen[0] == 0 or time.monotonic() - drawn >= FOLLOW_EVERY_S):
            st.rerun()  # finished, its first snapshot, or new epochs to show
        st.caption(t("Training: {done} of {epochs} epochs done; new epochs appear here as they "
                     "finish.", done=len(fresh.record.history), epochs=fresh.config.epochs))

    _watch()
