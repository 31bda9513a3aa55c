"""The default backend: warm worker processes on this machine (a spawn-context process pool).

Each job trains in its own worker process of a ``ProcessPoolExecutor`` (spawn context: torch is
not safe to share across threads or to fork). The workers import torch and nnviz when they
start, so a job handed to an idle worker writes its first snapshot within a fraction of a
second. Workers report progress through a multiprocessing queue (a fresh one per pool: a worker
killed mid-write can leave a queue's lock held). A worker that dies (killed, out of memory)
breaks the pool: its jobs raise ``WorkerDied`` and the next submit starts a fresh pool.
``stop_idle`` stops the workers (they come back with the next job). A worker allocates from
one malloc arena (``limit_malloc_arenas``): with glibc's default of one per thread, the arena
torch's threads used kept ~20 MB after every job that ``malloc_trim`` could not return, at no
measurable cost in training time here (3.65 vs 3.74 s of CPU for a 12-epoch CNN, noise-level).
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.connection import wait as wait_any
from pathlib import Path
from typing import Any

from nnviz.backends.base import Backend, WorkerDied, env_number, limit_malloc_arenas, run_job

WORKER_DIED = ("The training process stopped unexpectedly (it may have run out of memory or "
               "been killed). What it recorded so far is kept; try again with a smaller model, "
               "fewer samples or a smaller batch.")

_SPAWN_LOCK = threading.Lock()
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # the folder holding nnviz/


@contextmanager
def _spawn_safe() -> Iterator[None]:
    """Around any call that may start a worker process (pool.submit).

    A spawned child re-runs the parent's ``__main__`` module. Under Streamlit, ``__main__`` is
    the page script, which would make every worker run the page (and start workers itself), so
    a neutral ``__main__`` is installed while the child is prepared. The folder holding nnviz
    is put on the child's sys.path, which Streamlit only extends while a script runs.
    """
    with _SPAWN_LOCK:
        saved_main = sys.modules.get("__main__")
        stub = types.ModuleType("__main__")  # no __file__, no __spec__: the child imports nothing
        sys.modules["__main__"] = stub
        added = _PACKAGE_PARENT not in sys.path
        if added:
            sys.path.append(_PACKAGE_PARENT)
        try:
            yield
        finally:
            if added and _PACKAGE_PARENT in sys.path:
                sys.path.remove(_PACKAGE_PARENT)
            if sys.modules.get("__main__") is stub and saved_main is not None:
                sys.modules["__main__"] = saved_main


# --- worker side (runs in the spawned processes) -------------------------------------------

_EVENTS: Any = None  # this worker's progress queue, set by _init_worker


WORKER_NICE = 10               # workers' niceness above the server's: sessions stay quick
WORKER_NICE_ENV = "NNVIZ_WORKER_NICE"


def worker_nice() -> int:
    """How much lower than the server's a worker's CPU priority is: $NNVIZ_WORKER_NICE (0 to
    19; 0 keeps the server's) or WORKER_NICE. Training then takes only the CPU that the
    sessions leave, so a page answers within a second while two trainings run."""
    value = env_number(WORKER_NICE_ENV, int, 0)
    return WORKER_NICE if value is None else min(19, value)


WORKER_MALLOC_ARENAS = 1       # one malloc arena: what a job frees can all be trimmed


def _init_worker(events: Any, threads: int) -> None:
    """Worker start-up: one malloc arena (before any thread starts), lower its CPU priority,
    keep the progress queue, import torch and the trainer once."""
    global _EVENTS
    limit_malloc_arenas(WORKER_MALLOC_ARENAS)
    _EVENTS = events
    try:
        os.nice(worker_nice())
    except (AttributeError, OSError):  # not POSIX, or not allowed: train at the same priority
        pass
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (only allowed once per process)
        pass
    import nnviz.engine.training  # noqa: F401  (pre-import: the first job starts without delay)

    # The first optimizer step of a process imports torch._dynamo (about 2 s). Do it beside
    # the first job rather than before it: that job's first snapshot (at init, before any step)
    # comes sooner, and later jobs find it done. Joined at exit, so a worker never stops
    # with the import half done.
    warm = threading.Thread(target=_warm_optimizers, name="nnviz-optim-warm", daemon=True)
    warm.start()
    atexit.register(warm.join)


def _warm_optimizers() -> None:
    import torch

    weight = torch.nn.Parameter(torch.zeros(2))
    for optimizer in (torch.optim.SGD([weight], lr=0.1, momentum=0.9), torch.optim.Adam([weight]),
                      torch.optim.AdamW([weight])):
        (weight * weight).sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _warm_up() -> int:
    """A no-op task that makes the pool start a worker (whose initializer imports torch)."""
    import os

    return os.getpid()


def _run_job(job_id: str, cfg_data: dict[str, Any], root: str, threads: int) -> dict[str, Any]:
    """Train one job in this worker; never raises for user errors (returns the message)."""

    def emit(event: dict[str, Any]) -> None:
        if _EVENTS is not None:
            _EVENTS.put(("event", job_id, event))

    return run_job(cfg_data, root, threads, emit)


# --- the pool (in the process that submits) ---------------------------------------------------


class LocalPool(Backend):
    """``slots`` warm worker processes with ``threads_per_job`` torch threads each."""

    name = "local"

    def __init__(self, slots: int, threads_per_job: int) -> None:
        self._slots = max(1, int(slots))
        self._threads = max(1, int(threads_per_job))
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._pool: ProcessPoolExecutor | None = None
        self._events: Any = None
        self._future_pool: dict[Future, ProcessPoolExecutor] = {}

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def threads_per_job(self) -> int:
        return self._threads

    @property
    def alive(self) -> bool:
        return self._pool is not None

    def warm(self) -> None:
        with self._lock:
            self._ensure_pool()

    def submit(self, job_id: str, cfg_data: dict[str, Any], root: str) -> Future:
        args = (job_id, cfg_data, root, self._threads)
        with self._lock:
            try:
                pool = self._ensure_pool()  # outside _spawn_safe: it takes the same lock
                with _spawn_safe():
                    future = pool.submit(_run_job, *args)
            except (BrokenProcessPool, RuntimeError):
                self._replace_pool()
                try:
                    pool = self._ensure_pool()
                    with _spawn_safe():
                        future = pool.submit(_run_job, *args)
                except (BrokenProcessPool, RuntimeError, OSError) as exc:
                    raise WorkerDied(f"Could not start a training process: {exc}") from exc
            self._future_pool[future] = self._pool  # type: ignore[assignment]
            return future

    def result(self, future: Future) -> dict[str, Any]:
        with self._lock:
            pool = self._future_pool.pop(future, None)
        try:
            return future.result()
        except BrokenProcessPool:
            with self._lock:
                if pool is not None and pool is self._pool:
                    self._replace_pool()
            raise WorkerDied(WORKER_DIED) from None

    def next_event(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        import queue

        events = self._events
        if events is None:
            time.sleep(timeout)
            return None
        try:
            message = events.get(timeout=timeout)
        except queue.Empty:
            return None
        except (EOFError, OSError, ValueError):  # queue closed
            time.sleep(timeout)
            return None
        _, job_id, event = message
        return job_id, event

    def stop_idle(self) -> None:
        """Detach the pool at once (the caller holds its own lock, so no job slips in) and
        let its idle workers exit in the background."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            threading.Thread(target=_stop_pool, args=(pool, 10.0), name="nnviz-pool-stop",
                             daemon=True).start()

    def shutdown(self, timeout: float) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop_pool(pool, timeout)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # A fresh queue per pool: a worker killed mid-write can leave a queue's lock held.
            self._events = self._ctx.Queue()
            self._pool = ProcessPoolExecutor(
                max_workers=self._slots, mp_context=self._ctx,
                initializer=_init_worker, initargs=(self._events, self._threads),
            )
            with _spawn_safe():
                for _ in range(self._slots):  # each submit starts one worker process
                    self._pool.submit(_warm_up)
        return self._pool

    def _replace_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _stop_pool(pool: ProcessPoolExecutor, timeout: float) -> None:
    """Shut a pool down; terminate workers still busy after timeout."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public API
    pool.shutdown(wait=False, cancel_futures=True)
    # Wait on the exit sentinels (not join: the pool's own thread joins them too).
    pending = {p.sentinel: p for p in processes}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for sentinel in wait_any(list(pending), timeout=deadline - time.monotonic()):
            pending.pop(sentinel, None)
    for process in pending.values():
        process.terminate()
