"""Resources shared by every session of the server: the runs folder, the job manager and the
cached run readers.

The job manager (worker processes) is made once per runs folder and server. Parsed runs are
kept in one cache for every session, bounded by size: only the newest version of each run (its
run.json's mtime: a run that trains on is re-read as it grows), at most MAX_RUNS_CACHED runs and
RUN_CACHE_BYTES of them (``$NNVIZ_RUN_CACHE_MB``), least recently used dropped first, so a
class that opened many runs leaves the server near its idle size. The run list is cached a few
seconds.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import types
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from nnviz.backends.base import env_number
from nnviz.errors import StorageError
from nnviz.store.runs import RUN_FILE, RUN_ID_RE, Run, RunStore, default_root
from ui.services.jobs import JobManager


def runs_root() -> Path:
    """The runs folder: $NNVIZ_RUNS_DIR or ./runs, as an absolute path."""
    return _resolved(str(default_root()), os.getcwd())


@functools.lru_cache(maxsize=16)
def _resolved(path: str, cwd: str) -> Path:
    return (Path(cwd) / path).resolve()  # once, not a stat per folder level on every call


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


_WARMED: weakref.WeakSet[JobManager] = weakref.WeakSet()


def job_manager() -> JobManager:
    """The app-wide job manager for the runs folder (one per server; workers start on demand)."""
    manager = _manager(str(runs_root()))
    if manager not in _WARMED:  # once: warm() takes the manager's lock, every page asks
        manager.warm()  # returns at once; the first Train click then finds warm workers
        _WARMED.add(manager)
    return manager


def _stamp(root: Path, run_id: str) -> int:
    try:
        return (root / run_id / RUN_FILE).stat().st_mtime_ns
    except OSError:
        return 0


MAX_RUNS_CACHED = 32             # parsed runs kept for all sessions together
RUN_CACHE_BYTES = 64 * 2**20     # ... and at most this many bytes of them
RUN_CACHE_ENV = "NNVIZ_RUN_CACHE_MB"


def deep_size(obj: object) -> int:
    """Bytes an object graph holds: containers, dataclass-like objects and numpy arrays, each
    object counted once (what a cache entry keeps alive, not counting classes and modules)."""
    seen: set[int] = set()
    todo, total = [obj], 0
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, np.ndarray):
            total += item.nbytes if item.base is None else 0
        elif isinstance(item, dict):
            todo += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo += list(item)
        elif hasattr(item, "__dict__"):
            todo.append(vars(item))
        elif hasattr(item, "__slots__"):
            todo += [getattr(item, n) for n in item.__slots__ if hasattr(item, n)]
    return total


class RunCache:
    """Parsed runs by (runs folder, run id): the newest version of each, least recently used
    dropped first once over ``most`` runs or ``budget`` bytes (the newest always stays). One
    session loads a run while the others asking for it wait, so thirty sessions opening one
    link parse it once. Thread-safe."""

    def __init__(self, budget: int, most: int) -> None:
        self.budget, self.most = budget, most
        self._runs: OrderedDict[tuple[str, str], tuple[int, int, Run]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    @property
    def bytes(self) -> int:
        """The estimated bytes of the runs kept now."""
        with self._lock:
            return sum(size for _, size, _ in self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, root: str, run_id: str, stamp: int) -> Run:
        """The run at version ``stamp``, parsed now unless the cache has it."""
        key = (root, run_id)
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                hit = self._runs.get(key)
                if hit is not None and hit[0] == stamp:
                    self._runs.move_to_end(key)
                    return hit[2]
            try:
                run = RunStore(root).load(run_id)
                run.n_snapshots  # noqa: B018 - open them now: pages do, and the size counts them
                size = deep_size(run)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self._runs[key] = (stamp, size, run)
                self._runs.move_to_end(key)
                self._evict()
            return run

    def clear(self) -> None:
        """Forget every run."""
        with self._lock:
            self._runs.clear()

    def _evict(self) -> None:
        total = sum(size for _, size, _ in self._runs.values())
        while len(self._runs) > 1 and (len(self._runs) > self.most or total > self.budget):
            _, (_, size, _) = self._runs.popitem(last=False)
            total -= size


def _run_cache_budget() -> int:
    megabytes = env_number(RUN_CACHE_ENV, float, 0.0)
    return RUN_CACHE_BYTES if megabytes is None else max(1, int(megabytes * 2**20))


RUNS = RunCache(_run_cache_budget(), MAX_RUNS_CACHED)


def load_run(run_id: str) -> Run:
    """A run, re-read whenever its run.json changes; StorageError if missing or damaged."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise StorageError(f"{run_id!r} is not a valid run id.")
    root = runs_root()
    return RUNS.get(str(root), run_id, _stamp(root, run_id))


@st.cache_data(max_entries=32, ttl=5, show_spinner=False)
def _list_runs(root: str, folder_stamp: int) -> tuple[list[dict[str, Any]], list[str]]:
    return RunStore(root).list_runs()


def list_runs(fresh: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """Run summaries newest first and the folders that could not be read: re-read at once
    when a run was added or deleted (the folder's mtime), a status change within a few
    seconds; ``fresh`` re-reads now."""
    if fresh:
        _list_runs.clear()
    root = runs_root()
    try:
        folder_stamp = root.stat().st_mtime_ns
    except OSError:
        folder_stamp = 0
    return _list_runs(str(root), folder_stamp)


JOB_KEY = "nnviz_job_id"  # session key: the job this user started last (Explore opens it)
