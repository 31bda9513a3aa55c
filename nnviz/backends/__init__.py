"""Where training jobs execute: this machine's worker processes (default) or a Ray cluster.

``make_backend`` picks one: Ray when an address is given (``--ray ADDRESS``) or
``$NNVIZ_RAY_ADDRESS`` is set, else the local process pool. ``ray`` is imported only then.
"""

from __future__ import annotations

from nnviz.backends.base import RAY_ADDRESS_ENV, Backend, WorkerDied, ray_address, run_job
from nnviz.backends.local import LocalPool
from nnviz.errors import NnvizError

__all__ = ["RAY_ADDRESS_ENV", "Backend", "LocalPool", "WorkerDied", "make_backend",
           "ray_address", "run_job"]


def make_backend(slots: int, threads_per_job: int, ray: str | None = None,
                 ray_cpus: float | None = None, ray_gpus: float | None = None) -> Backend:
    """A Ray backend when ``ray`` (or $NNVIZ_RAY_ADDRESS) names a cluster (``ray_cpus`` /
    ``ray_gpus`` per job, default $NNVIZ_RAY_CPUS / $NNVIZ_RAY_GPUS or 1 / 0), else a LocalPool
    of ``slots`` workers with ``threads_per_job`` torch threads each."""
    address = ray_address(ray)
    if address is None:
        return LocalPool(slots, threads_per_job)
    try:
        from nnviz.backends.ray import RayBackend
    except ImportError as exc:
        raise NnvizError(f"Training on Ray was asked for ({RAY_ADDRESS_ENV} or --ray = "
                         f"{address!r}), but {exc}") from None
    return RayBackend(address, num_cpus=ray_cpus, num_gpus=ray_gpus)
