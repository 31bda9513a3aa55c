"""Training jobs as Ray tasks on a Ray cluster (the optional ``nnviz[ray]`` extra).

Chosen with ``$NNVIZ_RAY_ADDRESS`` (the app) or ``--ray ADDRESS`` (``nnviz sweep``): ``auto``
(the cluster this machine belongs to, as ``ray start`` left it), ``ray://HOST:10001`` (Ray
Client) or ``HOST:6379`` (the head's GCS address). Only this module imports ``ray``, and only
the job manager or the CLI imports this module, once Ray is chosen: the default install never
loads it.

Each job is one Ray task (``max_retries=0``: a run is never silently trained twice) asking for
``num_cpus`` CPUs and ``num_gpus`` GPUs; both may be fractions, so four small jobs can share one
GPU at ``num_gpus=0.25``. Ray's scheduler places them; ``slots`` (how many the caller keeps
submitted) is what the cluster's CPUs (and GPUs) hold, read again every few seconds so a node
that joins adds slots. Progress events go to the driver through a ``ray.util.queue.Queue``
(an actor that takes no CPU).

Where runs go: every node writes into the same runs folder, mounted at the same path on every
node (NFS, a cloud file share, a Kubernetes volume). Run writes are atomic renames inside the
run's folder (``nnviz.store.runs``), which NFS keeps atomic, so a reader on any node never sees
a half-written file; a run that is being trained can be opened live; a cancel is the run's
CANCEL file, which the trainer on whichever node looks for at every step. A task whose node
does not see the folder fails at once with a message saying so (it writes nothing).

A worker process killed (out of memory, ``kill``) or a node that left the cluster comes back as
``WorkerDied`` with what happened; the caller marks the run failed (what it recorded stays) and
goes on with the next job.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

try:
    import ray
    import ray.exceptions
    from ray.util.queue import Empty, Queue
except ImportError as exc:  # the extra is not installed
    raise ImportError(f"Ray is an optional extra of nnviz ({exc}): pip install -r "
                      "requirements-ray.txt, or pip install \"nnviz[ray]\".") from None

from nnviz.backends.base import Backend, WorkerDied, run_job
from nnviz.errors import NnvizError

log = logging.getLogger(__name__)

CPUS_ENV, GPUS_ENV = "NNVIZ_RAY_CPUS", "NNVIZ_RAY_GPUS"  # resources per job (fractions allowed)
SLOTS_TTL_S = 5.0          # the cluster's size is read again after this long
NAMESPACE = "nnviz"
RAY_WORKER_DIED = (
    "The Ray worker training this run stopped ({reason}): its process was killed or ran out of "
    "memory, or its machine left the cluster. What it recorded so far is kept in the runs "
    "folder; train it again to start it anew.")
NOT_MOUNTED = ("The Ray node {node} does not see the runs folder {root}: mount the same folder "
               "at the same path on every node (README, \"More than one machine\").")


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (no-op when this process already joined one)."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False,
                 ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise NnvizError(
            f"Cannot reach a Ray cluster at {address!r} ({exc}). Start one with `ray start "
            "--head` (README, \"More than one machine\"), or unset NNVIZ_RAY_ADDRESS / drop "
            "--ray to train on this machine.") from None


def _ray_job(job_id: str, cfg_data: dict[str, Any], root: str, threads: int,
             events: Queue) -> dict[str, Any]:
    """The Ray task: train one config on whichever node Ray chose."""
    if not Path(root).is_dir():
        return {"ok": False, "run_id": None,
                "error": NOT_MOUNTED.format(node=ray.util.get_node_ip_address(), root=root)}

    def emit(event: dict[str, Any]) -> None:
        try:
            events.put_nowait((job_id, event))
        except Exception as exc:  # the driver went away: training goes on, unwatched
            log.debug("progress event lost: %s", exc)

    return run_job(cfg_data, root, threads, emit)


_REMOTE: list[Any] = []


def _remote_job() -> Any:
    if not _REMOTE:
        _REMOTE.append(ray.remote(max_retries=0)(_ray_job))
    return _REMOTE[0]


def _env_resource(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise NnvizError(f"${name}={text!r}: expected a number of CPUs or GPUs, 0 or more "
                         "(fractions allowed, e.g. 0.25).")
    return value


class RayBackend(Backend):
    """Jobs as Ray tasks with ``num_cpus`` / ``num_gpus`` each (fractions allowed)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float | None = None,
                 num_gpus: float | None = None) -> None:
        if address is not None:
            connect(address)
        elif not ray.is_initialized():
            raise NnvizError("RayBackend needs a cluster address (or ray.init() first).")
        self.num_cpus = _env_resource(CPUS_ENV, 1.0) if num_cpus is None else float(num_cpus)
        self.num_gpus = _env_resource(GPUS_ENV, 0.0) if num_gpus is None else float(num_gpus)
        if self.num_cpus <= 0 and self.num_gpus <= 0:
            raise NnvizError("A Ray job needs some CPUs or GPUs (num_cpus or num_gpus > 0).")
        self._events = Queue(actor_options={"num_cpus": 0})
        self._refs: dict[Future, Any] = {}
        self._slots: tuple[float, int] = (0.0, 1)

    @property
    def slots(self) -> int:
        now = time.monotonic()
        if now - self._slots[0] > SLOTS_TTL_S:
            self._slots = (now, cluster_slots(self.num_cpus, self.num_gpus))
        return self._slots[1]

    @property
    def threads_per_job(self) -> int:
        return max(1, int(self.num_cpus))

    def submit(self, job_id: str, cfg_data: dict[str, Any], root: str) -> Future:
        Path(root).mkdir(parents=True, exist_ok=True)  # so a node can tell "not mounted"
        try:
            ref = _remote_job().options(
                num_cpus=self.num_cpus, num_gpus=self.num_gpus, name=f"nnviz-{job_id}",
            ).remote(job_id, cfg_data, root, self.threads_per_job, self._events)
        except ray.exceptions.RayError as exc:
            raise WorkerDied(f"Could not hand the job to Ray: {exc}") from exc
        future = ref.future()
        self._refs[future] = ref
        return future

    def result(self, future: Future) -> dict[str, Any]:
        self._refs.pop(future, None)
        try:
            return future.result()
        except ray.exceptions.TaskCancelledError:
            raise WorkerDied("cancelled: the job's Ray task was stopped") from None
        except ray.exceptions.RayTaskError as exc:  # run_job raised (it should not): a bug
            return {"ok": False, "run_id": None, "error": f"Training crashed: {exc}"}
        except ray.exceptions.RayError as exc:  # worker crashed, node died, out of memory ...
            raise WorkerDied(RAY_WORKER_DIED.format(reason=type(exc).__name__)) from None

    def next_event(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        try:
            job_id, event = self._events.get(block=True, timeout=timeout)
        except Empty:
            return None
        except ray.exceptions.RayError:  # the queue's actor is gone (shutting down)
            time.sleep(timeout)
            return None
        return job_id, event

    def shutdown(self, timeout: float) -> None:
        """Wait up to ``timeout`` for running tasks (their runs were asked to cancel), then
        force-stop what is left; the progress queue goes too."""
        refs = list(self._refs.values())
        if refs:
            _, left = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            for ref in left:
                ray.cancel(ref, force=True)
        try:
            self._events.shutdown(force=True)
        except ray.exceptions.RayError:
            pass


def cluster_slots(num_cpus: float, num_gpus: float) -> int:
    """How many jobs of this size the cluster holds at once (at least 1)."""
    total = ray.cluster_resources()
    fits = []
    if num_cpus > 0:
        fits.append(int(total.get("CPU", 0.0) / num_cpus + 1e-9))
    if num_gpus > 0:
        fits.append(int(total.get("GPU", 0.0) / num_gpus + 1e-9))
    return max(1, min(fits))
