"""Where training jobs execute: the interface every backend implements, and the job itself.

A job is a pure function of a JSON config: ``run_job(config dict, runs folder)`` trains one run
into the runs folder, sends progress events as it goes and returns a small result dict::

    {"ok": True,  "run_id": ..., "status": "completed" | "diverged" | "cancelled" | ...,
     "detail": ...}
    {"ok": False, "run_id": ... or None, "error": "the message to show"}

It never raises for what a user can cause (a bad config, a missing data file): that comes back
as ``ok: False`` with the message. A cancel is the run's CANCEL file (``RunStore.request_cancel``,
which any process that sees the runs folder may create), looked for at every step; the trainer
stops within one step and keeps what it recorded.

A ``Backend`` runs such jobs somewhere: ``submit`` returns a ``concurrent.futures.Future`` of
the result dict, progress events come out of ``next_event``, and a job whose worker process (or
machine) died raises ``WorkerDied`` with the message to show from ``result``. Which jobs to
run, in which order, who owns them and which configs are the same job is not the backend's
business: ``ui.services.jobs.JobManager`` (the app) and ``nnviz.cli.sweep`` (the command line)
decide that. Two backends exist: ``LocalPool`` (worker processes on this machine, the default)
and ``RayBackend`` (tasks on a Ray cluster; ``ray`` is imported only when it is chosen).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

RAY_ADDRESS_ENV = "NNVIZ_RAY_ADDRESS"  # auto | ray://host:10001 | host:6379: train on Ray
STEP_EVENT_INTERVAL_S = 0.1   # workers send at most ~10 step events a second

Emit = Callable[[dict[str, Any]], None]


class WorkerDied(Exception):
    """The process (or machine) training a job stopped before it returned; the message says
    what happened and what was kept."""


class Backend(ABC):
    """Executes training jobs: submit, progress events, results; no queue policy of its own."""

    name: str = "backend"

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many jobs it trains at once (the caller keeps at most this many submitted)."""

    @property
    def threads_per_job(self) -> int:
        """torch threads (CPUs) one job gets."""
        return 1

    @abstractmethod
    def submit(self, job_id: str, cfg_data: dict[str, Any], root: str) -> Future:
        """Start training ``cfg_data`` into the runs folder ``root``; a Future of its result
        dict. Raises ``WorkerDied`` (or OSError) when no worker can be started."""

    @abstractmethod
    def result(self, future: Future) -> dict[str, Any]:
        """The finished future's result dict; ``WorkerDied`` when its worker died."""

    @abstractmethod
    def next_event(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        """The next progress event as (job id, event), or None after ``timeout`` seconds."""

    def warm(self) -> None:  # noqa: B027  (optional: most backends start lazily)
        """Start workers now, so the first job starts fast."""

    @property
    def alive(self) -> bool:
        """True while workers are up (a pool stops them when idle)."""
        return True

    def stop_idle(self) -> None:  # noqa: B027  (optional)
        """Nothing to do for a while: give the workers' memory back (they come back on demand)."""

    @abstractmethod
    def shutdown(self, timeout: float) -> None:
        """Stop every worker (terminating any still busy after ``timeout``); no more jobs."""


def run_job(cfg_data: dict[str, Any], root: str, threads: int, emit: Emit | None) -> dict[str, Any]:
    """Train one config into the runs folder ``root``; the result dict (never raises)."""
    import torch

    from nnviz.config import RunConfig
    from nnviz.engine.training import train
    from nnviz.errors import NnvizError
    from nnviz.store.runs import RunStore

    seen: dict[str, Any] = {"run_id": None, "last_step": 0.0}

    def progress(event: dict[str, Any]) -> None:
        if event.get("run_id"):
            seen["run_id"] = event["run_id"]
        if event.get("event") == "step":
            now = time.monotonic()
            last = event["step"] == event.get("steps_per_epoch")
            if now - seen["last_step"] < STEP_EVENT_INTERVAL_S and not last:
                return
            seen["last_step"] = now
        if emit is not None:
            emit(event)

    try:
        torch.set_num_threads(threads)  # a previous job may have changed it
        cfg = RunConfig.from_dict(cfg_data)
        if cfg.threads > threads:
            cfg = cfg.replace(threads=threads)  # stay inside this job's thread budget
        result = train(cfg, RunStore(root), progress=progress, cancel=None)
    except NnvizError as exc:
        return {"ok": False, "error": str(exc), "run_id": seen["run_id"]}
    except Exception as exc:  # a bug or a torch error: report it, keep the worker alive
        traceback.print_exc()
        return {"ok": False, "error": f"Training crashed: {type(exc).__name__}: {exc}",
                "run_id": seen["run_id"]}
    finally:
        release_memory()  # the run's tensors are gone: give their pages back
    return {"ok": True, "run_id": result.run_id, "status": result.status,
            "detail": result.detail}


def mark_unfinished(store: Any, run_id: str, status: str, message: str) -> None:
    """A run whose worker stopped still says 'running' on disk: record how it ended."""
    from nnviz.store.runs import RunWriter  # store: a RunStore

    run = store.load(run_id)
    if run.record.status == "running":
        RunWriter.reopen(store, run).finish(status, message)


def env_number(name: str, kind: type, low: float) -> Any:
    """A number of at least ``low`` from the environment variable ``name``, or None when it is
    unset; a bad value is logged and ignored (a deployer's typo must not stop the app)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < low:
        log.warning("ignoring $%s=%r: expected a number of at least %s", name, text, low)
        return None
    return value


def release_memory(collect: bool = True) -> None:
    """Collect garbage (optionally) and hand freed heap pages back to the OS.

    Thirty sessions' rendering or one training frees hundreds of MB that glibc's malloc keeps
    mapped in the process, so the server and its workers would stay at their peak size after
    a class. ``malloc_trim(0)`` returns them; it takes milliseconds. It cannot shrink the
    arenas of threads other than the main one (glibc trims only the main arena's top), which
    is why ``limit_malloc_arenas`` keeps their number small. A no-op without glibc.
    """
    if collect:
        import gc

        gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def limit_malloc_arenas(most: int) -> bool:
    """Let glibc's malloc make at most ``most`` arenas in this process (``mallopt``), unless
    the deployer set ``$MALLOC_ARENA_MAX``; True when the limit was set.

    glibc gives threads arenas of their own (up to 8 per core), and ``malloc_trim`` cannot
    return the free top of any arena but the main one: a worker whose torch threads allocated
    during a training kept about 20 MB more than before it, for good. Call it before the
    process starts its threads; arenas made earlier stay. A no-op without glibc."""
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, max(1, int(most))))


_LIBC: list[Any] = []


def _glibc() -> Any:
    """glibc (with malloc_trim and mallopt), or None on another C library."""
    if not _LIBC:
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            libc.malloc_trim, libc.mallopt  # noqa: B018 - glibc's, not musl's or macOS's
            _LIBC.append(libc)
        except (OSError, AttributeError):  # not glibc (macOS, musl)
            _LIBC.append(None)
    return _LIBC[0]


def ray_address(explicit: str | None = None) -> str | None:
    """The Ray cluster to train on: ``explicit`` (a --ray flag), else $NNVIZ_RAY_ADDRESS, else
    None (train on this machine)."""
    text = (explicit if explicit is not None else os.environ.get(RAY_ADDRESS_ENV, "")).strip()
    return text or None
