"""Background training jobs: warm worker processes, a bounded number running, a FIFO queue.

Training never runs on the Streamlit script thread: ``JobManager.submit`` puts a job in a queue
and returns at once. At most ``max_concurrent`` jobs train at a time, each in its own worker
process of a ``ProcessPoolExecutor`` (spawn context: torch is not safe to share across threads
or to fork). The workers import torch and nnviz when they start (``warm``), so a job handed to
an idle worker writes its first snapshot within a fraction of a second.

Life of a job::

    queued (queue_position 1, 2, ...) -> running (run_id known once the run folder exists)
        -> done       the run completed, diverged or stopped early (status_detail says which)
        -> cancelled  cancel() while queued, or while running (the trainer keeps what it wrote)
        -> failed     a ConfigError / DataError / crash; status_detail is the message to show

Identical work is done once: with ``reuse=True`` a config whose ``config_hash`` matches a
finished run in the store returns that run (``reused=True``) without training, and a config that
is already queued or running returns that same job. Runs are seeded and deterministic, so a
class of 30 opening one link trains once.

``run_id`` is set from the trainer's "started" event, which comes after the first snapshot (at
init) is on disk, so a job with a run_id can be opened in Explore at once.

Workers report progress through a multiprocessing queue; one listener thread in this process
turns the events into ``JobInfo`` updates. A worker that dies (killed, out of memory) marks its
job failed; the broken pool is replaced and the queue goes on. Every public method is
thread-safe and returns copies, never live objects. At interpreter exit running jobs are
cancelled (they keep what they recorded) instead of being waited for.

Defaults: ``max_concurrent`` = cores // 2 (1 to 4) jobs at once, each with
``threads_per_job`` = cores // max_concurrent torch threads, so training never takes more
than the machine's cores however many people press Train.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
import types
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_any
from pathlib import Path
from typing import Any

from nnviz.config import RunConfig, config_hash
from nnviz.errors import ConfigError, NnvizError, StorageError

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
STATES = ("queued", "running", "done", "failed", "cancelled")
REUSABLE_STATUSES = ("completed", "diverged")  # finished runs that training again would repeat
MAX_FINISHED_KEPT = 500       # finished jobs remembered (oldest forgotten first)
STEP_EVENT_INTERVAL_S = 0.1   # workers send at most ~10 step events a second
WORKER_DIED = ("The training process stopped unexpectedly (it may have run out of memory or "
               "been killed). What it recorded so far is kept; try again with a smaller model, "
               "fewer samples or a smaller batch.")
SHUT_DOWN = "cancelled: the app shut down while it waited or trained"

_SPAWN_LOCK = threading.Lock()
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)  # the folder holding nnviz/


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


def _init_worker(events: Any, threads: int) -> None:
    """Worker start-up: keep the progress queue, import torch and the trainer once."""
    global _EVENTS
    _EVENTS = events
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


def _preload() -> None:
    """Import what submit() needs (the run store, hence torch) in this server process."""
    import nnviz.engine.training  # noqa: F401
    import nnviz.store.runs  # noqa: F401


def _warm_up() -> int:
    """A no-op task that makes the pool start a worker (whose initializer imports torch)."""
    return os.getpid()


def _run_job(job_id: str, cfg_data: dict[str, Any], root: str, threads: int) -> dict[str, Any]:
    """Train one job in this worker; never raises for user errors (returns the message)."""
    import torch

    from nnviz.engine.training import train
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
        if _EVENTS is not None:
            _EVENTS.put(("event", job_id, event))

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
    return {"ok": True, "run_id": result.run_id, "status": result.status,
            "detail": result.detail}


# --- manager side --------------------------------------------------------------------------


@dataclass
class JobInfo:
    """A snapshot of one job's state (a copy: later changes do not show up in it)."""

    job_id: str
    config: RunConfig
    config_hash: str
    state: str                       # "queued" | "running" | "done" | "failed" | "cancelled"
    run_id: str | None = None        # known once the worker created the run folder (or reused)
    reused: bool = False             # True when an identical finished run was opened instead
    queue_position: int | None = None  # 1-based while queued
    progress: dict[str, Any] = field(default_factory=dict)  # epoch, epochs, step, loss, ...
    status_detail: str = ""          # the run's status detail, or the error message if failed
    submitted: float = 0.0
    started: float | None = None
    finished: float | None = None

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.state in ACTIVE


def default_concurrency(cores: int | None = None) -> tuple[int, int]:
    """(jobs at once, torch threads per job) for this many CPU cores."""
    cores = max(1, cores or os.cpu_count() or 1)
    jobs = max(1, min(4, cores // 2))
    return jobs, max(1, cores // jobs)


class JobManager:
    """Queue and run training jobs in warm worker processes; safe to call from any thread."""

    def __init__(self, root: str | Path, max_concurrent: int | None = None,
                 threads_per_job: int | None = None) -> None:
        cores = os.cpu_count() or 1
        self.root = Path(root)
        self.max_concurrent = max(1, int(max_concurrent or default_concurrency(cores)[0]))
        self.threads_per_job = max(1, int(threads_per_job or cores // self.max_concurrent))
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[str, JobInfo] = {}          # insertion order = submission order
        self._queue: deque[str] = deque()
        self._running: dict[str, Future] = {}
        self._job_pool: dict[str, ProcessPoolExecutor] = {}
        self._cancel_wanted: set[str] = set()
        self._done: queue.Queue[str] = queue.Queue()  # job ids whose future finished
        self._pool: ProcessPoolExecutor | None = None
        self._events: Any = None
        self._listener: threading.Thread | None = None
        self._closed = False
        self._preloading = False
        _MANAGERS.add(self)

    # --- public API ---

    @property
    def closed(self) -> bool:
        """True after shutdown(): the manager takes no more jobs."""
        return self._closed

    def warm(self) -> None:
        """Start the worker processes now (in the background) so the first job starts fast."""
        with self._lock:
            self._check_open()
            self._ensure_pool()
            if not self._preloading:
                # submit() reads the run store, whose first import loads torch (~1.5 s): do
                # it in the background now rather than inside the first Train click
                self._preloading = True
                threading.Thread(target=_preload, name="nnviz-jobs-preload", daemon=True).start()

    def submit(self, cfg: RunConfig, reuse: bool = True) -> JobInfo:
        """Queue a training job (or return the identical finished run or active job)."""
        now = time.time()
        try:
            cfg.validate()
        except ConfigError as exc:
            return self._add(JobInfo(_new_id(), cfg, "", "failed", status_detail=str(exc),
                                     submitted=now, finished=now))
        digest = config_hash(cfg)
        found = self._reusable_run(digest) if reuse else None
        with self._lock:
            self._check_open()
            if reuse:
                for job in reversed(list(self._jobs.values())):
                    if job.config_hash == digest and job.state in ACTIVE:
                        return self._copy(job)
                    if found is None and job.config_hash == digest and job.state == "done" \
                            and job.run_id and (self.root / job.run_id).is_dir():
                        # finished after the store was read above
                        found = (job.run_id, job.status_detail,
                                 job.progress.get("epochs_done") or cfg.epochs)
            if found is not None:
                run_id, detail, epochs_done = found
                return self._add(JobInfo(
                    _new_id(), cfg, digest, "done", run_id=run_id, reused=True,
                    progress={"epoch": epochs_done, "epochs": cfg.epochs},
                    status_detail=detail, submitted=now, started=now, finished=now,
                ))
            job = JobInfo(_new_id(), cfg, digest, "queued", submitted=now)
            self._jobs[job.job_id] = job
            self._queue.append(job.job_id)
            self._ensure_pool()
            self._dispatch()
            self._forget_old()
            return self._copy(job)

    def get(self, job_id: str) -> JobInfo:
        """The job's current state; NnvizError for an unknown id."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NnvizError(f"No training job {job_id!r} here (it may belong to an app "
                                 "that has since restarted). Start it again from Train.")
            return self._copy(job)

    def jobs(self) -> list[JobInfo]:
        """Every remembered job, newest first."""
        with self._lock:
            return [self._copy(j) for j in reversed(list(self._jobs.values()))]

    def cancel(self, job_id: str) -> None:
        """Cancel a job: a queued one leaves the queue, a running one stops within one step."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NnvizError(f"No training job {job_id!r} to cancel.")
            if job.state == "queued":
                self._queue.remove(job_id)
                job.state, job.finished = "cancelled", time.time()
                job.status_detail = "cancelled before it started"
                self._changed.notify_all()
            elif job.state == "running":
                self._cancel_wanted.add(job_id)
                if job.run_id:
                    self._request_cancel(job.run_id)

    def wait(self, job_id: str, timeout: float) -> JobInfo:
        """Block until the job is finished or ``timeout`` seconds passed; its state then."""
        deadline = time.monotonic() + timeout
        with self._lock:
            job = self._jobs.get(job_id) or self.get(job_id)  # get() raises for unknown ids
            while job.state in ACTIVE:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.5))
            return self._copy(job)

    def shutdown(self, timeout: float = 15.0) -> None:
        """Cancel everything, stop the workers (terminating any still busy after ``timeout``)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._queue:
                job = self._jobs[self._queue.popleft()]
                job.state, job.finished = "cancelled", time.time()
                job.status_detail = SHUT_DOWN
            for job_id in list(self._running):
                self._cancel_wanted.add(job_id)
                run_id = self._jobs[job_id].run_id
                if run_id:
                    self._request_cancel(run_id)
            pool, self._pool = self._pool, None
        if pool is not None:
            self._stop_pool(pool, timeout)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    break
            time.sleep(0.05)
        listener = self._listener
        if listener is not None:
            listener.join(timeout=5.0)
        with self._lock:
            for job_id in list(self._running):  # never reported back: the worker was stopped
                self._finish(job_id, "cancelled", SHUT_DOWN)
            self._running.clear()
            self._changed.notify_all()

    # --- internals (call with the lock held unless noted) ---

    def _check_open(self) -> None:
        if self._closed:
            raise NnvizError("The training service has shut down; reload the app.")

    def _add(self, job: JobInfo) -> JobInfo:
        with self._lock:
            self._jobs[job.job_id] = job
            self._forget_old()
            self._changed.notify_all()
            return self._copy(job)

    def _copy(self, job: JobInfo) -> JobInfo:
        position = self._queue.index(job.job_id) + 1 if job.state == "queued" else None
        return dataclasses.replace(job, progress=dict(job.progress), queue_position=position)

    def _reusable_run(self, digest: str) -> tuple[str, str, int] | None:
        """(run_id, status detail, epochs done) of a finished run with this hash, if any."""
        from nnviz.store.runs import RunStore

        try:
            row = RunStore(self.root).find_by_hash(digest, REUSABLE_STATUSES)
        except OSError:
            return None
        if row is None:
            return None
        return row["run_id"], row.get("status_detail") or "", row.get("epochs_done", 0)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # A fresh queue per pool: a worker killed mid-write can leave a queue's lock held.
            self._events = self._ctx.Queue()
            self._pool = ProcessPoolExecutor(
                max_workers=self.max_concurrent, mp_context=self._ctx,
                initializer=_init_worker, initargs=(self._events, self.threads_per_job),
            )
            with _spawn_safe():
                for _ in range(self.max_concurrent):  # each submit starts one worker process
                    self._pool.submit(_warm_up)
        if self._listener is None or not self._listener.is_alive():
            self._listener = threading.Thread(target=self._listen, name="nnviz-jobs-listener",
                                              daemon=True)
            self._listener.start()
        return self._pool

    def _dispatch(self) -> None:
        """Hand queued jobs to workers while fewer than max_concurrent run."""
        while self._queue and len(self._running) < self.max_concurrent and not self._closed:
            job_id = self._queue.popleft()
            job = self._jobs[job_id]
            args = (job_id, job.config.to_dict(), str(self.root), self.threads_per_job)
            try:
                with _spawn_safe():
                    future = self._ensure_pool().submit(_run_job, *args)
            except (BrokenProcessPool, RuntimeError):
                self._replace_pool()
                try:
                    with _spawn_safe():
                        future = self._ensure_pool().submit(_run_job, *args)
                except (BrokenProcessPool, RuntimeError, OSError) as exc:
                    self._finish(job_id, "failed", f"Could not start a training process: {exc}")
                    continue
            job.state, job.started = "running", time.time()
            self._running[job_id] = future
            self._job_pool[job_id] = self._pool  # type: ignore[assignment]
            future.add_done_callback(lambda _f, jid=job_id: self._done.put(jid))
        self._changed.notify_all()

    def _replace_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _listen(self) -> None:
        """Listener thread: worker progress events and finished futures -> JobInfo updates."""
        while True:
            with self._lock:
                if self._closed and not self._running and self._done.empty():
                    return
                events = self._events
            while True:
                try:
                    job_id = self._done.get_nowait()
                except queue.Empty:
                    break
                try:
                    with self._lock:
                        self._on_future_done(job_id)
                except Exception:
                    log.exception("could not finish job %s", job_id)
            try:
                message = events.get(timeout=0.1) if events is not None else None
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):  # queue closed
                time.sleep(0.1)
                continue
            if message is None:
                time.sleep(0.1)
                continue
            try:
                _, job_id, event = message
                with self._lock:
                    self._on_event(job_id, event)
            except Exception:  # never let one odd message stop the listener
                log.exception("bad progress message %r", message)

    def _on_event(self, job_id: str, event: dict[str, Any]) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        if event.get("run_id") and not job.run_id:
            job.run_id = event["run_id"]
            if job_id in self._cancel_wanted and job.state == "running":
                self._request_cancel(job.run_id)
        if job.state != "running":
            return
        kind = event.get("event")
        if kind == "started":
            job.progress = {"epoch": 0, "epochs": event.get("epochs"), "step": 0,
                            "steps_per_epoch": event.get("steps_per_epoch")}
        elif kind == "step":
            job.progress = {k: event.get(k) for k in
                            ("epoch", "epochs", "step", "steps_per_epoch", "loss",
                             "samples_per_s")}
        elif kind == "epoch":
            job.progress.update(val_loss=event.get("val_loss"), val_acc=event.get("val_acc"),
                                epochs_done=event.get("epoch"))
        self._changed.notify_all()

    def _on_future_done(self, job_id: str) -> None:
        future = self._running.pop(job_id, None)
        pool = self._job_pool.pop(job_id, None)
        if future is None:
            return
        self._cancel_wanted.discard(job_id)
        try:
            result = future.result()
        except BrokenProcessPool:
            job = self._jobs[job_id]
            if self._closed:  # the workers were stopped on purpose
                if job.run_id:
                    self._mark_run(job.run_id, "cancelled", SHUT_DOWN)
                self._finish(job_id, "cancelled", SHUT_DOWN)
            else:
                if job.run_id:
                    self._mark_run(job.run_id, "failed", WORKER_DIED)
                self._finish(job_id, "failed", WORKER_DIED)
            if pool is not None and pool is self._pool:
                self._replace_pool()
        except CancelledError:
            self._finish(job_id, "cancelled", SHUT_DOWN)
        except BaseException as exc:  # e.g. KeyboardInterrupt in the worker, unpicklable result
            self._finish(job_id, "failed", f"Training failed: {type(exc).__name__}: {exc}")
        else:
            job = self._jobs[job_id]
            job.run_id = result.get("run_id") or job.run_id
            if not result["ok"]:
                self._finish(job_id, "failed", result["error"])
            else:
                state = "cancelled" if result["status"] == "cancelled" else \
                    "failed" if result["status"] == "failed" else "done"
                self._finish(job_id, state, result["detail"])
        if not self._closed:
            self._dispatch()

    def _finish(self, job_id: str, state: str, detail: str) -> None:
        job = self._jobs[job_id]
        job.state, job.status_detail, job.finished = state, detail, time.time()
        self._changed.notify_all()

    def _request_cancel(self, run_id: str) -> None:
        from nnviz.store.runs import RunStore

        try:
            RunStore(self.root).request_cancel(run_id)
        except (StorageError, OSError) as exc:
            log.warning("could not request cancel of %s: %s", run_id, exc)

    def _mark_run(self, run_id: str, status: str, message: str) -> None:
        """A run whose worker was stopped still says 'running' on disk: record how it ended."""
        from nnviz.store.runs import RunStore, RunWriter

        store = RunStore(self.root)
        try:
            run = store.load(run_id)
            if run.meta.get("status") == "running":
                RunWriter(store, run.folder, run.meta).finish(status, message)
        except (StorageError, OSError) as exc:
            log.warning("could not mark run %s failed: %s", run_id, exc)

    def _forget_old(self) -> None:
        finished = [j for j, info in self._jobs.items() if info.state not in ACTIVE]
        for job_id in finished[:max(0, len(finished) - MAX_FINISHED_KEPT)]:
            del self._jobs[job_id]

    def _stop_pool(self, pool: ProcessPoolExecutor, timeout: float) -> None:
        """Shut a pool down without the lock; terminate workers still busy after timeout."""
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


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


_MANAGERS: weakref.WeakSet[JobManager] = weakref.WeakSet()


def _shutdown_all() -> None:
    """At interpreter exit: stop every manager's jobs, so the exit does not wait for them."""
    for manager in list(_MANAGERS):
        try:
            manager.shutdown(timeout=10.0)
        except Exception:  # exiting anyway
            log.exception("job manager shutdown failed")


# Runs before concurrent.futures' own exit hook (which waits for running jobs to finish):
# hooks registered this way are called last-registered first. No public API does this.
_register_exit = getattr(threading, "_register_atexit", None)
if _register_exit is not None:
    _register_exit(_shutdown_all)
