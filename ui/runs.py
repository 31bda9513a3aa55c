"""Runs and jobs as the pages show them: run labels, the run picker, a run's header line and
a training job's progress. Every name and detail a user or a file supplied is shown literally.

Polling: a page re-checks a job (a ``st.fragment(run_every=poll_every(job))``) only while that
job is queued or running, and reads the job manager's in-memory table, never the runs folder.
It looks every POLL_FAST_S for the first BACK_OFF_AFTER_S of a run, when the user waits for its
first snapshot, then every POLL_SLOW_S (and a queued job every POLL_SLOW_S): thirty sessions
that watch trainings cost the server a few page runs a second, not thirty.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from nnviz.analysis.overview import source_line
from nnviz.figures.epoch_view import fmt
from nnviz.i18n import N_, t
from nnviz.store.runs import Run
from ui import state
from ui.services.jobs import JobInfo
from ui.text import error, info, literal

STATUS_ICONS = {"completed": ":material/check_circle:", "running": ":material/hourglass_top:",
                "diverged": ":material/error:", "cancelled": ":material/stop_circle:",
                "failed": ":material/cancel:", "interrupted": ":material/warning:"}

POLL_FAST_S = 1.0         # seconds between checks while a run has just started
POLL_SLOW_S = 3.0         # ... once it has trained a while, and while a job is queued
BACK_OFF_AFTER_S = 20.0   # a running job is checked at the slow pace after this long

NO_RUNS = N_("No runs yet: train one on the Train page or pick a lesson on the Home page.")
# The words of a run's status and a job's state, as shown (translated by status_word).
STATUS_WORDS = {"running": N_("running"), "completed": N_("completed"), "failed": N_("failed"),
                "cancelled": N_("cancelled"), "diverged": N_("diverged"),
                "interrupted": N_("interrupted"), "queued": N_("queued"), "done": N_("done")}


def status_word(word: str) -> str:
    """A run status or job state in the reader's language (an unknown word as it is)."""
    return t(STATUS_WORDS[word]) if word in STATUS_WORDS else word


def run_label(row: dict[str, Any]) -> str:
    """A one-line plain-text label of a run summary: name, model, init, data, seed, status and
    when it was made."""
    created = row.get("created")
    try:
        when = dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        when = "—"
    name = f"{row['name']} · " if row.get("name") else ""
    return name + t("{model} · {init} · {dataset} · seed {seed} · {status} ({done}/{epochs}) · "
                    "{when}", model=row["model"], init=row["init"], dataset=row["dataset"],
                    seed=row["seed"], status=status_word(row["status"]),
                    done=row["epochs_done"], epochs=row["epochs"], when=when)


def run_picker(key: str, label: str, default: str | None = None,
               rows: list[dict[str, Any]] | None = None, where: Any = None,
               on_change: Callable[[], None] | None = None,
               empty: str | None = NO_RUNS) -> str | None:
    """A selectbox of the stored runs, newest first; the chosen run id (None, and the
    ``empty`` note, if there are none). ``default`` is chosen when the widget has no valid
    choice yet."""
    area = where or st
    problems: list[str] = []
    if rows is None:
        rows, problems = state.list_runs()
        wanted = {st.session_state.get(key), default} - {None}
        if wanted - {r["run_id"] for r in rows}:  # a run newer than the cached list
            rows, problems = state.list_runs(fresh=True)
    if not rows:
        if empty:
            area.info(t(empty))
        return None
    labels = {r["run_id"]: run_label(r) for r in rows}
    ids = list(labels)
    if st.session_state.get(key) not in labels:
        st.session_state[key] = default if default in labels else ids[0]
    choice = area.selectbox(label, ids, format_func=lambda i: labels.get(i, i), key=key,
                            on_change=on_change)
    if problems:
        area.caption(t("{n} run folder(s) could not be read (see the Runs page).",
                       n=len(problems)))
    return choice


def run_header(run: Run) -> None:
    """Name, model, initializer, seed, data, optimizer and status of a run; its status detail."""
    cfg = run.config
    status = run.status
    word = status_word(status)
    icon = STATUS_ICONS.get(status, "")
    own = source_line(run)  # a user's own model or checkpoints: its config is a placeholder
    if own:
        st.markdown(t("**{name}** — {source}, {icon} {status} ({n} epochs recorded)",
                      name=literal(cfg.name or run.run_id), source=literal(own), icon=icon,
                      status=word, n=len(run.record.history)))
    else:
        st.markdown(t(
            "**{name}** — model `{model}`, init `{init}`, seed `{seed}`, data `{dataset}`, "
            "optimizer `{optimizer}` (lr {lr}), {icon} {status} ({done}/{epochs} epochs)",
            name=literal(cfg.name or run.run_id), model=cfg.model, init=cfg.init, seed=cfg.seed,
            dataset=cfg.dataset, optimizer=cfg.optimizer, lr=fmt(cfg.lr), icon=icon, status=word,
            done=len(run.record.history), epochs=cfg.epochs))
    detail = t(run.record.status_detail)  # English from the run file; a known one translated
    if status in ("diverged", "failed") and detail:
        error(t("This run {status}: {detail}", status=word, detail=detail))
    elif detail:
        st.caption(literal(detail))
    else:
        st.empty()  # one element either way: what follows keeps its place


def poll_every(job: JobInfo | None, now: float | None = None) -> float | None:
    """Seconds between re-checks of a job a page shows; None (do not poll) unless it is queued
    or running. A fragment polling at one pace reruns its page when this says another."""
    if job is None or not job.active:
        return None
    if job.state == "queued":
        return POLL_SLOW_S
    now = time.time() if now is None else now
    since = job.started or job.submitted
    return POLL_FAST_S if now - since < BACK_OFF_AFTER_S else POLL_SLOW_S


def job_status(job: JobInfo | None) -> None:
    """A progress bar and status line for a job (only a short result line once it finished)."""
    if job is None:
        return
    if job.state == "queued":
        info(t("Waiting in the queue: position {n}. Training starts when a worker is free; you "
               "can leave this page meanwhile.", n=job.queue_position), icon=":material/schedule:")
    elif job.state == "running":
        p = job.progress
        if not p.get("steps_per_epoch"):
            st.progress(0.0, text=t("Starting: making the data and the model…"))
            return
        epochs, steps = int(p.get("epochs") or 1), int(p["steps_per_epoch"])
        epoch, step = int(p.get("epoch") or 0), int(p.get("step") or 0)
        done = max(0, epoch - 1) * steps + step if epoch else 0
        fraction = min(1.0, done / max(1, epochs * steps))
        parts = [t("Epoch {epoch}/{epochs}", epoch=max(epoch, 1), epochs=epochs),
                 t("step {step}/{steps}", step=step, steps=steps)]
        if p.get("loss") is not None:
            parts.append(t("loss {loss}", loss=fmt(p["loss"])))
        if p.get("samples_per_s"):
            parts.append(t("{rate} samples/s", rate=f"{p['samples_per_s']:,.0f}"))
        st.progress(fraction, text=" · ".join(parts))
    elif job.state == "done":
        if job.reused:
            st.success(t("This exact run was trained before: opened run {run} instead of "
                         "training it again.", run=literal(job.run_id)),
                       icon=":material/recycling:")
        elif job.status_detail.startswith("diverged"):
            st.warning(t("The run {detail}: the loss or weights became NaN/Inf. Explore shows "
                         "where it happened.", detail=literal(job.status_detail)),
                       icon=":material/error:")
        else:
            detail = f" ({literal(job.status_detail)})" if job.status_detail else ""
            st.success(t("Finished run {run}{detail}.", run=literal(job.run_id), detail=detail),
                       icon=":material/check_circle:")
    elif job.state == "cancelled":
        st.warning(t("Cancelled: {detail}. What was recorded so far is kept.",
                     detail=literal(t(job.status_detail) or t("stopped by the user"))),
                   icon=":material/stop_circle:")
    else:
        error(t("Training failed: {detail}", detail=t(job.status_detail)))
