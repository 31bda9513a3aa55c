"""This browser session on a shared server: who it is, what it may see and change, the teacher's
token box, and the lesson warm-up's progress (the rules are in ui.services.sessions).

A session is a Streamlit session (one browser tab; a reload starts a new one). Its id is a random
string kept in session state; it owns the jobs it queued and the runs they trained. Lists show a
session the lesson runs, the server's runs (made outside the app) and its own runs; another
session's run appears only when a link names it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

import streamlit as st

from nnviz.i18n import t
from ui.i18n import apply_language
from ui.services.jobs import JobInfo, JobManager
from ui.services.sessions import (
    SERVER_RUN,
    Actor,
    check_delete,
    configured_token,
    is_lesson,
    may_cancel,
    may_delete,
    may_list,
    token_ok,
)

SESSION_KEY = "nnviz_session_id"
ADMIN_KEY = "nnviz_admin"           # True once this session entered the teacher token
SHARED_KEY = "nnviz_shared_runs"    # run ids this session opened through a link


def session_id() -> str:
    """This browser session's id (made on its first run)."""
    return st.session_state.setdefault(SESSION_KEY, uuid.uuid4().hex)


def actor() -> Actor:
    """Who is asking: this session, and whether it unlocked the teacher mode."""
    return Actor(session_id(), admin=bool(st.session_state.get(ADMIN_KEY)))


SECRETS_CHECK_S = 30.0  # a missing secrets file is looked for again after this long


def expected_token() -> str | None:
    """The teacher token set by the deployer ($NNVIZ_ADMIN_TOKEN or the secret of that name)."""
    secrets = st.secrets if _has_secrets() else None
    return configured_token(secrets, os.environ)


_SECRETS_SEEN: list[tuple[float, bool]] = []  # (when, found) of the last look


def _has_secrets() -> bool:
    # Without a secrets file, st.secrets searches for one (and raises) on every call: look
    # again only every SECRETS_CHECK_S seconds. A file found stays found (Streamlit keeps it).
    now = time.monotonic()
    if _SECRETS_SEEN and (_SECRETS_SEEN[-1][1] or now - _SECRETS_SEEN[-1][0] < SECRETS_CHECK_S):
        return _SECRETS_SEEN[-1][1]
    try:
        found = st.secrets.load_if_toml_exists()
    except Exception:  # an unreadable secrets file: treat as none
        found = False
    _SECRETS_SEEN[:] = [(now, found)]
    return found


def remember_shared(run_id: str | None) -> None:
    """A run this session reached through a link: it may be listed to this session from now on."""
    if run_id:
        shared = st.session_state.setdefault(SHARED_KEY, [])
        if run_id not in shared:
            shared.append(run_id)
            del shared[:-50]  # bounded


def run_owner(manager: JobManager | None, run_id: str) -> str:
    """The session that made a run, or SERVER_RUN when no session did (CLI, nnviz warm)."""
    owner = manager.run_owner(run_id) if manager is not None else None
    return SERVER_RUN if owner is None else owner


def visible_rows(rows: Sequence[dict[str, Any]], manager: JobManager | None
                 ) -> list[dict[str, Any]]:
    """The run summaries this session may see listed: lessons, the server's, its own, and runs
    shared with it by a link."""
    me = actor()
    shared = set(st.session_state.get(SHARED_KEY, []))
    return [r for r in rows if r["run_id"] in shared or may_list(
        me, run_owner(manager, r["run_id"]), is_lesson(r.get("config_hash")))]


def own_rows(rows: Sequence[dict[str, Any]], manager: JobManager) -> list[dict[str, Any]]:
    """The run summaries this session trained or imported (newest first)."""
    mine = set(manager.owned_runs(session_id()))
    return [r for r in rows if r["run_id"] in mine]


def can_delete(row: dict[str, Any], manager: JobManager) -> bool:
    """True when this session may delete (or stop) the run of this summary."""
    return may_delete(actor(), run_owner(manager, row["run_id"]),
                      is_lesson(row.get("config_hash")))


def check_can_delete(row: dict[str, Any], manager: JobManager) -> None:
    """NotAllowed unless this session may delete (or stop) the run."""
    check_delete(actor(), run_owner(manager, row["run_id"]), is_lesson(row.get("config_hash")))


def can_cancel(job: JobInfo | None) -> bool:
    """True when this session may cancel the job."""
    return job is not None and job.active and may_cancel(actor(), job.owner)


def wait_text(job: JobInfo) -> str:
    """'position 3, about 2 min' for a queued job ('' otherwise)."""
    if job.state != "queued" or not job.queue_position:
        return ""
    if job.eta_s is None:
        return t("position {n}, wait not measured yet", n=job.queue_position)
    return t("position {n}, about {wait}", n=job.queue_position, wait=_duration(job.eta_s))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return t("{n} s", n=max(1, round(seconds)))
    return t("{n} min", n=round(seconds / 60))


def teacher_box(manager: JobManager) -> None:
    """The teacher's token entry (once per session); once unlocked: lock again, clear the queue."""
    with st.expander(t("Teacher"), expanded=False):
        expected = expected_token()
        if st.session_state.get(ADMIN_KEY):
            st.success(t("Teacher mode: you can cancel and delete anything."),
                       icon=":material/lock_open:")
            left, right = st.columns(2)
            if left.button(t("Clear the queue"), key="own_clear_queue",
                           help=t("Cancels every job still waiting; running ones go on.")):
                count = manager.clear_queue(actor())
                st.info(t("Cancelled {n} queued job(s).", n=count))
            if right.button(t("Leave teacher mode"), key="own_lock"):
                st.session_state[ADMIN_KEY] = False
                st.rerun()
            return
        if expected is None:
            st.caption(t("No teacher token is set on this server: whoever deploys it sets "
                         "NNVIZ_ADMIN_TOKEN (an environment variable or a Streamlit secret)."))
            return
        with st.form("own_teacher_form", clear_on_submit=True, border=False):
            given = st.text_input(t("Teacher token"), type="password", key="own_token")
            if st.form_submit_button(t("Unlock")):
                if token_ok(given, expected):
                    st.session_state[ADMIN_KEY] = True
                    st.rerun()
                else:
                    st.error(t("That is not the teacher token."), icon=":material/block:")


def run_select(key: str, label: str, manager: JobManager | None,
               rows: Sequence[dict[str, Any]] | None = None,
               default: str | None = None, where: Any = None) -> str | None:
    """A selectbox of the runs this session may see (plus the one a link opened), or None.
    Without ``rows``, the stored runs (re-listed when a wanted run is newer than the list)."""
    if rows is None:
        from ui import state

        rows = state.list_runs()[0]
        wanted = {st.session_state.get(key), default} - {None}
        if wanted - {r["run_id"] for r in rows}:
            rows = state.list_runs(fresh=True)[0]
    shown = visible_rows(rows, manager)
    current = st.session_state.get(key)
    if current and current not in {r["run_id"] for r in shown}:
        extra = [r for r in rows if r["run_id"] == current]  # set by a link or this session
        if extra:
            remember_shared(current)
            shown = extra + shown
    if not shown:
        return None
    ids = [r["run_id"] for r in shown]
    if st.session_state.get(key) not in ids:  # its own last run, else the first lesson
        mine = own_rows(shown, manager) if manager is not None else []
        st.session_state[key] = default if default in ids else \
            (mine[0]["run_id"] if mine else ids[0])
    from ui.runs import run_label

    labels = {r["run_id"]: run_label(r) for r in shown}
    area = where or st
    return area.selectbox(label, ids, key=key, format_func=lambda i: labels.get(i, i))


def warm_progress(manager: JobManager) -> None:
    """Home: while the lessons are being trained for the class, how far that got."""
    progress = manager.lesson_progress()
    if progress is None or progress.finished and not progress.failed:
        return
    from ui.runs import POLL_SLOW_S  # here: ui.runs reads runs (torch); Home's top stays light

    @st.fragment(run_every=POLL_SLOW_S if not progress.finished else None)
    def _panel() -> None:
        apply_language()  # a timer rerun of the fragment may run in a fresh thread
        now = manager.lesson_progress()
        if now is None:
            return
        if now.finished:
            if now.failed:
                st.warning(t("Lessons that could not be prepared: {names}.",
                             names=", ".join(now.failed)))
            else:
                st.rerun()
            return
        doing = t("; training “{name}” now", name=now.running) if now.running else ""
        st.progress(now.ready / max(1, now.total),
                    text=t("Preparing the lessons for the class: {ready} of {total} ready{doing}. "
                           "A lesson opened meanwhile waits for its turn.", ready=now.ready,
                           total=now.total, doing=doing))

    _panel()
