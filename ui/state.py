"""Resources shared by every session of the server: the runs folder, the job manager and the
cached run readers.

The job manager (worker processes) is made once per runs folder and server. Runs are cached by
(runs folder, run id, run.json's mtime), so a run that trains on is re-read as it grows; the
run list is cached a few seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from nnviz.errors import StorageError
from nnviz.store.runs import RUN_FILE, RUN_ID_RE, Run, RunStore, default_root
from ui.services.jobs import JobManager


def runs_root() -> Path:
    """The runs folder: $NNVIZ_RUNS_DIR or ./runs, as an absolute path."""
    return default_root().resolve()


def run_store() -> RunStore:
    """The run store of the runs folder (its crash leftovers removed once per server start)."""
    store = RunStore(runs_root())
    _cleaned_once(str(store.root))
    return store


@st.cache_resource(max_entries=16, show_spinner=False)
def _cleaned_once(root: str) -> bool:
    RunStore(root).clean_orphans()
    return True


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


def _stamp(root: Path, run_id: str) -> int:
    try:
        return (root / run_id / RUN_FILE).stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(max_entries=32, show_spinner=False)
def _load_run(root: str, run_id: str, stamp: int) -> Run:
    return RunStore(root).load(run_id)


def load_run(run_id: str) -> Run:
    """A run, re-read whenever its run.json changes; StorageError if missing or damaged."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise StorageError(f"{run_id!r} is not a valid run id.")
    root = runs_root()
    return _load_run(str(root), run_id, _stamp(root, run_id))


@st.cache_data(max_entries=32, ttl=5, show_spinner=False)
def _list_runs(root: str) -> tuple[list[dict[str, Any]], list[str]]:
    return RunStore(root).list_runs()


def list_runs(fresh: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """Run summaries newest first and the folders that could not be read (cached a few
    seconds; ``fresh`` re-reads the folder)."""
    if fresh:
        _list_runs.clear()
    return _list_runs(str(runs_root()))


JOB_KEY = "nnviz_job_id"  # session key: the job this user started last (Explore opens it)
