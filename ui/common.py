"""Streamlit helpers shared by every page: the job manager, the run store, job progress, run
picker, share link and error display (the Train form is ``ui.config_form``).

Session-state keys written here start with the ``prefix`` a page passes (``train_...``), plus
``nnviz_job_id``: the job the user started last, which the Explore page follows.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from nnviz.errors import NnvizError
from nnviz.store.runs import RunStore, default_root
from ui.services.jobs import JobInfo, JobManager
from ui.services.urlstate import view_to_query

log = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent.parent
EXPLORE_PAGE = "pages/2_Explore.py"
JOB_KEY = "nnviz_job_id"  # the job the user started last (read by the Explore page)
RUN_STATUS_ICONS = {"completed": "✅", "running": "⏳", "diverged": "💥", "cancelled": "⏹️",
                    "failed": "❌", "interrupted": "⚠️"}


# --- shared resources ----------------------------------------------------------------------


def use_router() -> None:
    """Make a page opened by a deep link run under app.py's router.

    Until app.py's ``st.navigation`` has run once in a server, Streamlit treats ``pages/`` as
    its old folder of pages: a first visit to ``/Explore?...`` runs the page file alone, with a
    sidebar listing "app" and no icons, and skips app.py's start-up. Clearing that mode and
    re-running sends the request through the router, which opens the same page. (AppTest
    turns that mode back on before every run; a session's later runs are not repeated.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    first_run = "_nnviz_routed" not in st.session_state
    st.session_state["_nnviz_routed"] = True
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if first_run:  # a page load, never a click: nothing is lost by running it again
            st.rerun()


def runs_root() -> Path:
    """The runs folder: $NNVIZ_RUNS_DIR or ./runs, as an absolute path."""
    return default_root().resolve()


def _release_manager(manager: JobManager) -> None:
    manager.shutdown()


@st.cache_resource(show_spinner=False, max_entries=4, on_release=_release_manager,
                   validate=lambda m: not m.closed)
def _manager(root: str) -> JobManager:
    return JobManager(root)


def job_manager() -> JobManager:
    """The app-wide job manager for the runs folder (one per server; workers start on demand)."""
    manager = _manager(str(runs_root()))
    manager.warm()  # returns at once; the first Train click then finds warm workers
    return manager


def run_store() -> RunStore:
    """The run store of the runs folder."""
    return RunStore(runs_root())


def show_error(exc: BaseException) -> None:
    """Show an error in plain words: the message of an nnviz error, never a traceback."""
    if isinstance(exc, NnvizError):
        st.error(str(exc), icon="🚫")
        return
    log.exception("unexpected error in the app", exc_info=exc)
    st.error(f"Something went wrong ({type(exc).__name__}: {exc}). The details are in the "
             "server log; please report it.", icon="🚫")


def query_params() -> dict[str, list[str]]:
    """The page's query parameters with every value of repeated keys (for ui.services.urlstate)."""
    return {key: st.query_params.get_all(key) for key in st.query_params}


def explore_available() -> bool:
    """True when the Explore page exists (another module of the app)."""
    return (APP_DIR / EXPLORE_PAGE).is_file()


def open_explore(run_id: str | None = None, job: JobInfo | None = None,
                 preset: str | None = None) -> None:
    """Switch to the Explore page for a run or job (remembered in session state and the URL)."""
    if job is not None:
        st.session_state[JOB_KEY] = job.job_id
        run_id = run_id or job.run_id
    if not explore_available():
        st.warning("The Explore page is not installed in this app.")
        return
    st.switch_page(EXPLORE_PAGE, query_params=view_to_query(run_id=run_id, preset=preset))


def explore_link(run_id: str, label: str = "Open in Explore", key: str | None = None) -> None:
    """A link to the Explore page showing one run."""
    if explore_available():
        st.page_link(EXPLORE_PAGE, label=label, icon="🔍",
                     query_params=view_to_query(run_id=run_id))
    else:
        st.caption(f"Run {run_id} (the Explore page is not installed).")


# --- jobs, runs and links ------------------------------------------------------------------


def job_status(job: JobInfo | None) -> None:
    """A progress bar and status line for a job (only a short result line once it finished)."""
    if job is None:
        return
    if job.state == "queued":
        st.info(f"Waiting in the queue: position {job.queue_position}. Training starts when a "
                "worker is free; you can leave this page meanwhile.", icon="⏳")
    elif job.state == "running":
        p = job.progress
        if not p.get("steps_per_epoch"):
            st.progress(0.0, text="Starting: making the data and the model…")
            return
        epochs, steps = int(p.get("epochs") or 1), int(p["steps_per_epoch"])
        epoch, step = int(p.get("epoch") or 0), int(p.get("step") or 0)
        done = max(0, epoch - 1) * steps + step if epoch else 0
        fraction = min(1.0, done / max(1, epochs * steps))
        parts = [f"Epoch {max(epoch, 1)}/{epochs}", f"step {step}/{steps}"]
        if p.get("loss") is not None:
            parts.append(f"loss {p['loss']:.4g}")
        if p.get("samples_per_s"):
            parts.append(f"{p['samples_per_s']:,.0f} samples/s")
        st.progress(fraction, text=" · ".join(parts))
    elif job.state == "done":
        if job.reused:
            st.success(f"This exact run was trained before: opened run {job.run_id} instead "
                       "of training it again.", icon="♻️")
        elif job.status_detail.startswith("diverged"):
            st.warning(f"The run {job.status_detail}: the loss or weights became NaN/Inf. "
                       "Explore shows where it happened.", icon="💥")
        else:
            detail = f" ({job.status_detail})" if job.status_detail else ""
            st.success(f"Finished run {job.run_id}{detail}.", icon="✅")
    elif job.state == "cancelled":
        st.warning(f"Cancelled: {job.status_detail or 'stopped by the user'}. What was "
                   "recorded so far is kept.", icon="⏹️")
    else:
        st.error(f"Training failed: {job.status_detail}", icon="🚫")


def run_label(row: dict[str, Any]) -> str:
    """A one-line label of a run summary: model, init, seed, status and when it was made."""
    created = row.get("created")
    when = dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if created else "?"
    name = f"{row['name']} · " if row.get("name") else ""
    icon = RUN_STATUS_ICONS.get(row["status"], "")
    return (f"{icon} {name}{row['model']} · {row['init']} · {row['dataset']} · seed "
            f"{row['seed']} · {row['status']} · {when}")


def run_picker(key: str, label: str, rows: list[dict[str, Any]] | None = None) -> str | None:
    """A selectbox of the stored runs, newest first; the chosen run id (None if there are none)."""
    if rows is None:
        rows, _ = run_store().list_runs()
    if not rows:
        st.info("No runs yet: train one on the Train page or pick a lesson on the Home page.")
        return None
    by_id = {r["run_id"]: r for r in rows}
    ids = list(by_id)
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = ids[0]
    return st.selectbox(label, ids, key=key, format_func=lambda rid: run_label(by_id[rid]))


def page_url_name(page: str) -> str:
    """The URL path Streamlit gives a page file: ``pages/2_Explore.py`` -> ``Explore``."""
    stem = Path(page).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def app_url(page: str | None = None) -> str:
    """The app's address in the user's browser, for a page file (None: the Home page)."""
    try:
        url = st.context.url or ""
    except Exception:  # no browser session (tests, bare mode)
        url = ""
    if not url:
        return ""
    url = url.rstrip("/")
    names = [page_url_name(p.name) for p in (APP_DIR / "pages").glob("*.py")]
    for name in names:  # drop the current page's part of the path
        if url.endswith("/" + name):
            url = url[: -len(name) - 1]
            break
    return f"{url}/{page_url_name(page)}" if page else f"{url}/"


def share_link(params: dict[str, str], label: str = "Share these settings",
               page: str | None = None) -> str:
    """Show a link to a page (None: this one) with these query parameters; returns it."""
    if page is None:
        try:
            base = st.context.url or ""
        except Exception:  # no browser session (tests, bare mode)
            base = ""
    else:
        base = app_url(page)
    query = urlencode(params)
    link = f"{base}?{query}" if query else (base or "?")
    st.markdown(f"**{label}**")
    st.code(link, language=None, wrap_lines=True)
    return link
