"""Background training jobs: a bounded number running, a FIFO queue, owners, dedupe.

Training never runs on the Streamlit script thread: ``JobManager.submit`` puts a job in a queue
and returns at once. At most ``max_concurrent`` jobs train at a time on the manager's backend
(``nnviz.backends``): by default each in its own warm worker process of this machine
(``LocalPool``: a spawn-context process pool whose workers import torch when they start, so a
job handed to an idle worker writes its first snapshot within a fraction of a second); with
``$NNVIZ_RAY_ADDRESS`` set, each as a Ray task on that cluster (``RayBackend``; every node
writes into the same mounted runs folder), with ``max_concurrent`` what the cluster holds. This
manager decides what runs and when (queue, owners, limits, dedupe); the backend only executes.

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

Workers report progress through the backend (a multiprocessing queue, or a Ray queue actor);
one listener thread in this process turns the events into ``JobInfo`` updates. A worker that
dies (killed, out of memory, its Ray node gone) marks its job failed with the backend's
message; the backend starts fresh workers and the queue goes on. Every public method is
thread-safe and returns copies, never live objects. At interpreter exit running jobs are
cancelled (they keep what they recorded) instead of being waited for.

Sharing one server (a class): a job has an ``owner`` (the browser session that queued it; the
rules are in ``ui.services.sessions``). Only its owner or the teacher may cancel it; a run
trained by a session's job is owned by that session (``run_owner``), except lesson runs, which
belong to nobody. A session may have at most ``max_active_per_session`` jobs queued or running
(``submit_many`` queues a tuning sweep all or nothing, each config counting as one job);
joining an identical job someone else queued, or reusing a finished run, costs nothing. A queued
job carries its position and ``eta_s``, the estimated wait from the measured throughput of the
jobs this server finished (seconds per epoch-example), None until one has finished. A finished
job's ``word`` is the run's own status: "completed", "diverged", "stopped early".

Sizing: ``max_concurrent`` = cpus // 2 (1 to 4) jobs at once, each with ``threads_per_job`` =
cpus // max_concurrent torch threads, where cpus is what the process may really use: the
smaller of its CPU affinity and its cgroup CPU quota (v2 ``cpu.max``, v1
``cpu.cfs_quota_us``), not ``os.cpu_count()`` (a small container on a big host sees every
core of the host). ``$NNVIZ_MAX_JOBS`` overrides the number of jobs at once. Workers that
have had nothing to do for ``idle_exit_s`` seconds (``$NNVIZ_IDLE_EXIT_S``, default 600) exit,
giving their memory back; the next job starts them again. A worker returns its freed heap to
the OS after every job (``release_memory``; the server process does every 10 s, in
``ui.housekeeping``), so memory falls back after a class instead of staying at its peak.
Everything this manager keeps is bounded: MAX_FINISHED_KEPT jobs, MAX_OWNED_RUNS owners,
THROUGHPUT_SAMPLES timings.

Lessons: with ``$NNVIZ_WARM=1`` the first ``warm()`` also queues every lesson preset once (a
preset already trained in the runs folder is reused, so restarts train nothing twice);
``lesson_progress()`` says how far that got.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import queue
import threading
import time
import uuid
import weakref
from collections import deque
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnviz.backends import Backend, WorkerDied, make_backend
from nnviz.backends.base import env_number
from nnviz.backends.local import (  # noqa: F401  (re-exported: the message shown, the niceness)
    WORKER_DIED,
    WORKER_NICE,
    WORKER_NICE_ENV,
    worker_nice,
)
from nnviz.config import RunConfig, config_hash
from nnviz.errors import ConfigError, NnvizError, StorageError
from nnviz.i18n import N_, t
from nnviz.presets import PRESETS
from ui.services.sessions import SERVER, Actor, NotAllowed, check_cancel, is_lesson

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
STATES = ("queued", "running", "done", "failed", "cancelled")
REUSABLE_STATUSES = ("completed", "diverged")  # finished runs that training again would repeat
MAX_FINISHED_KEPT = 500       # finished jobs remembered (oldest forgotten first)
MAX_OWNED_RUNS = 5000         # run -> owner entries remembered (oldest forgotten first)
MAX_ACTIVE_PER_SESSION = 6    # queued + running jobs of one session (the largest sweep is 6)
IDLE_EXIT_S = 600.0           # idle workers exit after this long without a job
THROUGHPUT_SAMPLES = 20       # finished jobs the wait estimate is measured on
MAX_JOBS_ENV, MAX_ACTIVE_ENV, IDLE_EXIT_ENV, WARM_ENV = (
    "NNVIZ_MAX_JOBS", "NNVIZ_MAX_QUEUED", "NNVIZ_IDLE_EXIT_S", "NNVIZ_WARM")
OWNERS_FILE = ".nnviz-owners.json"  # in the runs folder: run id -> owning session id
CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")
# Status details shared by every session: kept in English, translated where shown (ui.runs).
SHUT_DOWN = N_("cancelled: the app shut down while it waited or trained")
CANCELLED_QUEUED = N_("cancelled before it started")


def _preload() -> None:
    """Import what submit() needs (the run store, hence torch) in this server process."""
    import nnviz.engine.training  # noqa: F401
    import nnviz.store.runs  # noqa: F401


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
    owner: str | None = None         # the session that queued it (None: the server itself)
    run_status: str = ""             # the run's own status once done: completed, diverged, ...
    eta_s: float | None = None       # while queued: estimated seconds until it starts

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.state in ACTIVE

    @property
    def word(self) -> str:
        """The word to show: the state, or for a finished run its own status ("diverged")."""
        return self.run_status if self.state == "done" and self.run_status else self.state


def default_concurrency(cores: int | None = None) -> tuple[int, int]:
    """(jobs at once, torch threads per job) for this many CPU cores."""
    cores = max(1, cores or os.cpu_count() or 1)
    jobs = max(1, min(4, cores // 2))
    return jobs, max(1, cores // jobs)


def cgroup_cpu_quota(root: Path | None = None, self_cgroup: Path | None = None) -> float | None:
    """The CPU quota (in CPUs) of this process's cgroup and its parents, or None if unlimited.

    cgroup v2: ``cpu.max`` holds "QUOTA PERIOD" or "max PERIOD"; cgroup v1: ``cpu.cfs_quota_us``
    (-1: none) over ``cpu.cfs_period_us``, under the ``cpu`` or ``cpu,cpuacct`` hierarchy. The
    process's own cgroup path comes from ``/proc/self/cgroup``; inside a container it is often
    "/", so the root's own files count too. The smallest quota on the way up wins.
    """
    root = CGROUP_ROOT if root is None else root
    self_cgroup = SELF_CGROUP if self_cgroup is None else self_cgroup
    try:
        lines = self_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    v2, v1 = "/", None
    for line in lines:
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2] or "/"
        elif "cpu" in parts[1].split(","):
            v1 = parts[2] or "/"
    quotas: list[float] = []
    for folder in _up_to(root, v2):
        quotas += _read_cpu_max(folder / "cpu.max")
    for hierarchy in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        for folder in _up_to(root / hierarchy, v1 or "/"):
            quotas += _read_cfs(folder)
    return min(quotas) if quotas else None


def _up_to(base: Path, relative: str) -> list[Path]:
    """``base/relative`` and each of its parents up to ``base`` itself."""
    folder = base / relative.strip("/")
    out = [folder]
    while folder != base and base in folder.parents:
        folder = folder.parent
        out.append(folder)
    return out


def _read_cpu_max(path: Path) -> list[float]:
    try:
        quota, period = path.read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return []
    if quota == "max":
        return []
    try:
        q, p = float(quota), float(period)
    except ValueError:
        return []
    return [q / p] if q > 0 and p > 0 else []


def _read_cfs(folder: Path) -> list[float]:
    try:
        q = float((folder / "cpu.cfs_quota_us").read_text(encoding="utf-8").strip())
        p = float((folder / "cpu.cfs_period_us").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return []
    return [q / p] if q > 0 and p > 0 else []


def available_cpus(root: Path | None = None, self_cgroup: Path | None = None,
                   affinity: int | None = None) -> int:
    """CPUs this process may really use: its affinity, capped by its cgroup quota (at least 1)."""
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            affinity = os.cpu_count() or 1
    cpus = max(1, affinity)
    quota = cgroup_cpu_quota(root, self_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota + 1e-9)))  # 1.5 CPUs of quota: one busy core
    return cpus


@dataclass
class LessonProgress:
    """How far the lesson warm-up got: lessons ready (trained before, or just now) of all."""

    total: int
    ready: int
    failed: list[str]          # lesson names whose training failed
    running: str | None        # the lesson training now

    @property
    def finished(self) -> bool:
        """True once no lesson is left to train."""
        return self.ready + len(self.failed) >= self.total


class JobManager:
    """Queue and run training jobs in warm worker processes; safe to call from any thread."""

    def __init__(self, root: str | Path, max_concurrent: int | None = None,
                 threads_per_job: int | None = None, *, cpus: int | None = None,
                 max_active_per_session: int | None = None,
                 idle_exit_s: float | None = None, backend: Backend | None = None) -> None:
        """``backend``: where jobs execute; default: a Ray cluster when $NNVIZ_RAY_ADDRESS is
        set, else ``max_concurrent`` worker processes of this machine."""
        cpus = max(1, int(cpus or available_cpus()))
        self.root = Path(root)
        self.cpus = cpus
        slots = max(1, int(max_concurrent or env_number(MAX_JOBS_ENV, int, 1)
                           or default_concurrency(cpus)[0]))
        threads = max(1, int(threads_per_job or cpus // slots))
        self._backend = backend if backend is not None else make_backend(slots, threads)
        self.threads_per_job = self._backend.threads_per_job
        self.max_active_per_session = max(1, int(
            max_active_per_session or env_number(MAX_ACTIVE_ENV, int, 1)
            or MAX_ACTIVE_PER_SESSION))
        self.idle_exit_s = float(idle_exit_s or env_number(IDLE_EXIT_ENV, float, 1.0)
                                 or IDLE_EXIT_S)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[str, JobInfo] = {}          # insertion order = submission order
        self._queue: deque[str] = deque()
        self._running: dict[str, Future] = {}
        self._cancel_wanted: set[str] = set()
        self._done: queue.Queue[str] = queue.Queue()  # job ids whose future finished
        self._listener: threading.Thread | None = None
        self._closed = False
        self._preloading = False
        self._idle_since = time.monotonic()
        self._run_owner: dict[str, str] = self._read_owners()  # run id -> session, oldest first
        self._per_unit_s: deque[float] = deque(maxlen=THROUGHPUT_SAMPLES)  # s per epoch-example
        self._lessons: dict[str, str] | None = None  # lesson name -> job id, once warming
        _MANAGERS.add(self)

    # --- public API ---

    @property
    def closed(self) -> bool:
        """True after shutdown(): the manager takes no more jobs."""
        return self._closed

    @property
    def workers_alive(self) -> bool:
        """True while worker processes are up (they exit after ``idle_exit_s`` without work)."""
        return self._backend.alive

    @property
    def max_concurrent(self) -> int:
        """Jobs trained at once: the local pool's size, or what the Ray cluster holds."""
        return self._backend.slots

    @property
    def backend(self) -> str:
        """Where jobs execute: "local" (this machine's worker processes) or "ray"."""
        return self._backend.name

    def warm(self) -> None:
        """Start the worker processes now (in the background) so the first job starts fast.

        Only the first call starts them: workers that exited while idle come back with the next
        job. With ``$NNVIZ_WARM=1`` the first call also queues every lesson (``warm_lessons``).
        """
        with self._lock:
            self._check_open()
            if self._preloading:
                return
            self._ensure_workers()
            # submit() reads the run store, whose first import loads torch (~1.5 s): do
            # it in the background now rather than inside the first Train click
            self._preloading = True
            lessons = os.environ.get(WARM_ENV, "").strip().lower() in ("1", "true", "yes")
        threading.Thread(target=self._preload, args=(lessons,), name="nnviz-jobs-preload",
                         daemon=True).start()

    def _preload(self, lessons: bool) -> None:
        _preload()
        if lessons:
            try:
                self.warm_lessons()
            except NnvizError as exc:  # shut down meanwhile
                log.warning("lesson warm-up stopped: %s", exc)

    def warm_lessons(self) -> LessonProgress:
        """Queue every lesson preset once (finished ones are reused); idempotent."""
        with self._lock:
            if self._lessons is None:
                self._lessons = {}
        for name, lesson in PRESETS.items():
            with self._lock:
                known = self._lessons.get(name)
                if known is not None and self._jobs.get(known) is not None:
                    continue
            job = self.submit(lesson.config(), reuse=True, owner=None)
            with self._lock:
                self._lessons[name] = job.job_id
        return self.lesson_progress()  # type: ignore[return-value]

    def lesson_progress(self) -> LessonProgress | None:
        """How far the lesson warm-up got, or None when it was never started."""
        with self._lock:
            if self._lessons is None:
                return None
            ready, failed, running = 0, [], None
            for name, job_id in self._lessons.items():
                job = self._jobs.get(job_id)
                if job is None:
                    continue
                if job.state == "done":
                    ready += 1
                elif job.state in ("failed", "cancelled"):
                    failed.append(name)
                elif job.state == "running":
                    running = name
            return LessonProgress(len(PRESETS), ready, failed, running)

    def submit(self, cfg: RunConfig, reuse: bool = True, owner: str | None = None) -> JobInfo:
        """Queue a training job (or return the identical finished run or active job).

        ``owner`` is the session asking; QueueFull when it already has ``max_active_per_session``
        jobs queued or running (joining someone else's identical job is always allowed).
        """
        return self.submit_many([cfg], reuse=reuse, owner=owner)[0]

    def submit_many(self, cfgs: list[RunConfig], reuse: bool = True,
                    owner: str | None = None) -> list[JobInfo]:
        """Queue several jobs (a tuning sweep) all or nothing; each new job counts to the limit."""
        now = time.time()
        plans: list[tuple[RunConfig, str, tuple[str, str, int] | None, str | None]] = []
        for cfg in cfgs:
            try:  # a RunConfig is valid once made; this catches ``unchecked`` copies
                cfg.validate()
            except ConfigError as exc:
                plans.append((cfg, "", None, str(exc)))
                continue
            digest = config_hash(cfg)
            plans.append((cfg, digest, self._reusable_run(digest) if reuse else None, None))
        with self._lock:
            self._check_open()
            out: list[JobInfo | None] = [None] * len(plans)
            new: list[int] = []
            for i, (cfg, digest, found, error) in enumerate(plans):
                if error is not None:
                    out[i] = JobInfo(_new_id(), cfg, "", "failed", status_detail=error,
                                     submitted=now, finished=now, owner=owner)
                    continue
                if reuse:
                    active, found = self._match(digest, found, cfg)
                    if active is not None:
                        out[i] = active
                        continue
                if found is not None:
                    run_id, detail, epochs_done, status = found
                    out[i] = JobInfo(
                        _new_id(), cfg, digest, "done", run_id=run_id, reused=True,
                        progress={"epoch": epochs_done, "epochs": cfg.epochs},
                        status_detail=detail, submitted=now, started=now, finished=now,
                        owner=owner, run_status=status)
                    continue
                new.append(i)
            if owner is not None and new:
                mine = sum(1 for j in self._jobs.values() if j.owner == owner and j.active)
                # identical configs inside one sweep share one job: count them once
                wanted = len({plans[i][1] for i in new})
                if mine + wanted > self.max_active_per_session:
                    raise QueueFull(t(
                        "You already have {mine} training job(s) queued or running, and this "
                        "adds {wanted}; each person may have {most} at once so that everyone "
                        "gets a turn. Wait for one to finish, or cancel one.", mine=mine,
                        wanted=wanted, most=self.max_active_per_session))
            results: list[JobInfo] = []
            for i, info in enumerate(out):
                if i in new:
                    digest = plans[i][1]
                    twin = next((self._jobs[j] for j in self._queue
                                 if self._jobs[j].config_hash == digest), None) if reuse else None
                    if twin is not None:  # the same config earlier in this sweep
                        results.append(self._copy(twin))
                        continue
                    job = JobInfo(_new_id(), plans[i][0], digest, "queued", submitted=now,
                                  owner=owner)
                    self._jobs[job.job_id] = job
                    self._queue.append(job.job_id)
                    results.append(job)
                elif info is not None and info.state in ACTIVE:
                    results.append(info)  # already a copy of the live job
                else:
                    assert info is not None
                    self._jobs[info.job_id] = info
                    results.append(info)
            if new:
                self._ensure_workers()
                self._dispatch()
            self._forget_old()
            self._changed.notify_all()
            return [self._copy(self._jobs.get(j.job_id, j)) for j in results]

    def _match(self, digest: str, found: tuple[str, str, int, str] | None, cfg: RunConfig
               ) -> tuple[JobInfo | None, tuple[str, str, int, str] | None]:
        """(an active identical job, or None; a finished identical run, if any)."""
        for job in reversed(list(self._jobs.values())):
            if job.config_hash == digest and job.state in ACTIVE:
                return self._copy(job), found
            if found is None and job.config_hash == digest and job.state == "done" \
                    and job.run_id and (self.root / job.run_id).is_dir():
                # finished after the store was read
                found = (job.run_id, job.status_detail,
                         job.progress.get("epochs_done") or cfg.epochs, job.run_status)
        return None, found

    def get(self, job_id: str) -> JobInfo:
        """The job's current state; NnvizError for an unknown id."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NnvizError(t("No training job {job} here (it may belong to an app that "
                                   "has since restarted). Start it again from Train.",
                                   job=repr(job_id)))
            return self._copy(job)

    def jobs(self) -> list[JobInfo]:
        """Every remembered job, newest first."""
        with self._lock:
            etas = self._etas()
            return [self._copy(j, etas) for j in reversed(list(self._jobs.values()))]

    def cancel(self, job_id: str, actor: Actor = SERVER) -> None:
        """Cancel a job: a queued one leaves the queue, a running one stops within one step.

        ``actor`` is who asks: NotAllowed unless it is the job's owner or the teacher (the
        default, SERVER, is the app itself).
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NnvizError(t("No training job {job} to cancel.", job=repr(job_id)))
            check_cancel(actor, job.owner)
            if job.state == "queued":
                self._queue.remove(job_id)
                job.state, job.finished = "cancelled", time.time()
                job.status_detail = CANCELLED_QUEUED
                self._changed.notify_all()
            elif job.state == "running":
                self._cancel_wanted.add(job_id)
                if job.run_id:
                    self._request_cancel(job.run_id)

    def clear_queue(self, actor: Actor) -> int:
        """The teacher empties the queue (running jobs go on); how many jobs were cancelled."""
        if not actor.admin:
            raise NotAllowed(t("Only the teacher can clear the queue."))
        with self._lock:
            ids = list(self._queue)
            for job_id in ids:
                self.cancel(job_id, actor)
            return len(ids)

    def run_owner(self, run_id: str) -> str | None:
        """The session that trained (or imported) this run here; None for lessons and others."""
        with self._lock:
            return self._run_owner.get(run_id)

    def claim_run(self, run_id: str, owner: str) -> None:
        """Record that a session made this run (an import from the Runs page)."""
        with self._lock:
            self._own(run_id, owner)

    def owned_runs(self, owner: str) -> list[str]:
        """Run ids a session owns, newest first."""
        with self._lock:
            return [r for r, o in reversed(self._run_owner.items()) if o == owner]

    def forget_run(self, run_id: str) -> None:
        """Drop a deleted run's owner entry."""
        with self._lock:
            if self._run_owner.pop(run_id, None) is not None:
                self._write_owners()

    def ever_owned(self, run_id: str) -> bool:
        """True when a session of this server (now or before a restart) made this run."""
        with self._lock:
            return run_id in self._run_owner

    def wait(self, job_id: str, timeout: float, run: bool = False) -> JobInfo:
        """Block until the job is finished (``run``: or its run exists, which is once its
        first snapshot is on disk) or ``timeout`` seconds passed; its state then."""
        deadline = time.monotonic() + timeout
        with self._lock:
            job = self._jobs.get(job_id) or self.get(job_id)  # get() raises for unknown ids
            while job.state in ACTIVE and not (run and job.run_id):
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
        self._backend.shutdown(timeout)
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
            raise NnvizError(t("The training service has shut down; reload the app."))

    def _copy(self, job: JobInfo, etas: dict[str, float | None] | None = None) -> JobInfo:
        position, eta = None, None
        if job.state == "queued":
            position = self._queue.index(job.job_id) + 1
            eta = (etas if etas is not None else self._etas()).get(job.job_id)
        return dataclasses.replace(job, progress=dict(job.progress), queue_position=position,
                                   eta_s=eta)

    def _estimate(self, cfg: RunConfig) -> float | None:
        """Seconds this config should take, from the measured throughput (None: no data yet)."""
        if not self._per_unit_s:
            return None
        ordered = sorted(self._per_unit_s)
        return ordered[len(ordered) // 2] * _work_units(cfg)

    def _etas(self) -> dict[str, float | None]:
        """Estimated seconds until each queued job starts: the queue played out on the slots."""
        now = time.time()
        slots: list[float] = []
        for job_id in self._running:
            job = self._jobs[job_id]
            total = self._estimate(job.config)
            if total is None:
                return dict.fromkeys(self._queue)
            slots.append(max(0.0, total - (now - (job.started or now))))
        slots += [0.0] * max(0, self.max_concurrent - len(slots))
        out: dict[str, float | None] = {}
        for job_id in self._queue:
            slots.sort()
            start = slots.pop(0)
            cost = self._estimate(self._jobs[job_id].config)
            if cost is None:
                return {**dict.fromkeys(self._queue), **out}
            out[job_id] = start
            slots.append(start + cost)
        return out

    def _own(self, run_id: str, owner: str | None) -> None:
        if owner is None or run_id in self._run_owner:
            return
        self._run_owner[run_id] = owner
        while len(self._run_owner) > MAX_OWNED_RUNS:
            del self._run_owner[next(iter(self._run_owner))]
        self._write_owners()

    def _read_owners(self) -> dict[str, str]:
        """The owners file: who made which run, kept across restarts (sessions are not, so a
        restarted server shows those runs to nobody but the teacher, as before)."""
        import json

        try:
            data = json.loads((self.root / OWNERS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring an unreadable %s: %s", OWNERS_FILE, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        out = {str(k): str(v) for k, v in data.items() if isinstance(v, str)}
        return dict(list(out.items())[-MAX_OWNED_RUNS:])

    def _write_owners(self) -> None:
        import json

        from nnviz.store.runs import atomic_write

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(self.root / OWNERS_FILE, json.dumps(self._run_owner).encode("utf-8"))
        except OSError as exc:
            log.warning("could not write %s: %s", OWNERS_FILE, exc)

    def _claim(self, job: JobInfo) -> None:
        """A job's new run belongs to its owner (never a lesson run)."""
        if job.run_id and not job.reused and not is_lesson(job.config_hash):
            self._own(job.run_id, job.owner)

    def _reusable_run(self, digest: str) -> tuple[str, str, int, str] | None:
        """(run_id, status detail, epochs done, status) of a finished run with this hash."""
        from nnviz.store.runs import RunStore

        try:
            row = RunStore(self.root).find_by_hash(digest, REUSABLE_STATUSES)
        except OSError:
            return None
        if row is None:
            return None
        return (row["run_id"], row.get("status_detail") or "", row.get("epochs_done", 0),
                row.get("status") or "")

    def _ensure_workers(self) -> None:
        if not self._backend.alive:
            self._idle_since = time.monotonic()
        self._backend.warm()
        self._ensure_listener()

    def _ensure_listener(self) -> None:
        if self._listener is None or not self._listener.is_alive():
            self._listener = threading.Thread(target=self._listen, name="nnviz-jobs-listener",
                                              daemon=True)
            self._listener.start()

    def _dispatch(self) -> None:
        """Hand queued jobs to the backend while fewer than max_concurrent run."""
        while self._queue and len(self._running) < self.max_concurrent and not self._closed:
            job_id = self._queue.popleft()
            job = self._jobs[job_id]
            try:
                future = self._backend.submit(job_id, job.config.to_dict(), str(self.root))
            except (WorkerDied, OSError) as exc:
                self._finish(job_id, "failed", str(exc))
                continue
            self._ensure_listener()
            job.state, job.started = "running", time.time()
            self._idle_since = time.monotonic()
            self._running[job_id] = future
            future.add_done_callback(lambda _f, jid=job_id: self._done.put(jid))
        self._changed.notify_all()

    def _reap_idle(self) -> None:
        """Listener thread: stop workers that had no job for idle_exit_s (not under the lock)."""
        with self._lock:
            if not self._backend.alive or self._running or self._queue or self._closed or \
                    time.monotonic() - self._idle_since < self.idle_exit_s:
                return
            self._idle_since = time.monotonic()
            self._backend.stop_idle()  # under the lock: no job slips in meanwhile
        log.info("training workers idle for %.0f s: stopping them", self.idle_exit_s)

    def _listen(self) -> None:
        """Listener thread: worker progress events and finished futures -> JobInfo updates."""
        while True:
            with self._lock:
                if self._closed and not self._running and self._done.empty():
                    return
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
            self._reap_idle()
            try:
                message = self._backend.next_event(0.1)
            except Exception:  # never let the backend stop the listener
                log.exception("could not read progress events")
                time.sleep(0.1)
                continue
            if message is None:
                continue
            try:
                job_id, event = message
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
            self._claim(job)
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
        if future is None:
            return
        self._cancel_wanted.discard(job_id)
        try:
            result = self._backend.result(future)
        except WorkerDied as exc:
            job = self._jobs[job_id]
            if self._closed:  # the workers were stopped on purpose
                if job.run_id:
                    self._mark_run(job.run_id, "cancelled", SHUT_DOWN)
                self._finish(job_id, "cancelled", SHUT_DOWN)
            else:
                if job.run_id:
                    self._mark_run(job.run_id, "failed", str(exc))
                self._finish(job_id, "failed", str(exc))
        except CancelledError:
            self._finish(job_id, "cancelled", SHUT_DOWN)
        except BaseException as exc:  # e.g. KeyboardInterrupt in the worker, unpicklable result
            self._finish(job_id, "failed", f"Training failed: {type(exc).__name__}: {exc}")
        else:
            job = self._jobs[job_id]
            job.run_id = result.get("run_id") or job.run_id
            self._claim(job)
            if not result["ok"]:
                self._finish(job_id, "failed", result["error"])
            else:
                state = "cancelled" if result["status"] == "cancelled" else \
                    "failed" if result["status"] == "failed" else "done"
                job.run_status = result["status"]
                if state == "done" and job.started:
                    self._per_unit_s.append((time.time() - job.started)
                                            / _work_units(job.config))
                self._finish(job_id, state, result["detail"])
        self._idle_since = time.monotonic()
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
        from nnviz.backends.base import mark_unfinished
        from nnviz.store.runs import RunStore

        try:
            mark_unfinished(RunStore(self.root), run_id, status, message)
        except (StorageError, OSError) as exc:
            log.warning("could not mark run %s failed: %s", run_id, exc)

    def _forget_old(self) -> None:
        finished = [j for j, info in self._jobs.items() if info.state not in ACTIVE]
        for job_id in finished[:max(0, len(finished) - MAX_FINISHED_KEPT)]:
            del self._jobs[job_id]


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _work_units(cfg: RunConfig) -> float:
    """How much training a config asks for: epochs times examples (the throughput unit)."""
    return max(1.0, float(cfg.epochs) * float(cfg.n_samples or 1))


class QueueFull(NnvizError):
    """A session asked for more jobs than it may have queued or running at once."""


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
