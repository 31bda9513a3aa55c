"""Run a grid of configs through a backend: every job at once, the backend (or Ray) schedules.

``grid(base, {"init": [...], "lr": [...], "seed": [...]})`` is the product of the values, one
config per point. ``run_sweep(configs, store, backend)`` trains them and returns one
``SweepRow`` per config, in order:

- a config whose exact run (its config hash) already finished in the runs folder is reused,
  not trained (``action="reused"``); identical configs inside the grid train once;
- every other config is submitted to the backend at once; the local pool runs ``slots`` at a
  time and queues the rest, Ray schedules its tasks over the cluster (no scheduler here);
- a job whose worker died is ``failed`` with the backend's message, its run marked failed on
  disk (what it recorded stays); the others go on;
- Ctrl-C asks every running run to cancel (each keeps what it recorded) and waits for them.

``on_event(index, event)`` sees every progress event of config ``index`` (for a progress bar).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from nnviz.backends.base import Backend, WorkerDied, mark_unfinished
from nnviz.config import RunConfig, config_hash
from nnviz.errors import ConfigError, StorageError
from nnviz.store.runs import RunStore

REUSABLE = ("completed", "diverged")  # finished runs that training again would only repeat


@dataclass
class SweepRow:
    """What happened to one config of the grid."""

    index: int
    config: RunConfig
    varied: dict[str, Any]          # the grid's values for this point
    action: str = "queued"          # trained | reused | failed | cancelled
    run_id: str | None = None
    status: str = ""                # the run's own status (completed, diverged, ...) or ""
    detail: str = ""                # the run's status detail, or the error message
    val_loss: float | None = None
    val_acc: float | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**self.varied, "action": self.action, "run_id": self.run_id,
                "status": self.status, "detail": self.detail, "val_loss": self.val_loss,
                "val_acc": self.val_acc, "seconds": round(self.seconds, 3)}


def grid(base: RunConfig, values: dict[str, list[Any]]) -> list[tuple[dict[str, Any], RunConfig]]:
    """(the point's values, its validated config) for every point of the product."""
    names = list(values)
    out = []
    for point in itertools.product(*(values[n] for n in names)):
        cfg = RunConfig.from_dict({**base.to_dict(), **dict(zip(names, point, strict=True))})
        out.append(({n: getattr(cfg, n) for n in names}, cfg))  # the values as typed
    return out


def run_sweep(points: list[tuple[dict[str, Any], RunConfig]], store: RunStore, backend: Backend,
              on_event: Callable[[int, dict[str, Any]], None] | None = None,
              reuse: bool = True) -> list[SweepRow]:
    """Train every point (reusing finished identical runs); one row per point, in order."""
    rows = [SweepRow(i, cfg, varied) for i, (varied, cfg) in enumerate(points)]
    finished = _finished_runs(store) if reuse else {}
    first: dict[str, int] = {}          # config hash -> the row that trains it
    twins: dict[int, list[int]] = {}    # that row -> later rows with the same config
    for row in rows:
        try:
            row.config.validate()
        except ConfigError as exc:
            row.action, row.detail = "failed", str(exc)
            continue
        digest = config_hash(row.config)
        if digest in finished:
            _fill(row, finished[digest], "reused")
        elif digest in first:
            twins[first[digest]].append(row.index)
        else:
            first[digest] = row.index
            twins[row.index] = []
    job_ids = {f"sweep{row.index:04d}": row.index for row in rows if row.index in twins}
    pending: dict[Future, int] = {}
    started: dict[int, float] = {}
    try:
        for job_id, index in job_ids.items():
            started[index] = time.monotonic()
            try:
                future = backend.submit(job_id, rows[index].config.to_dict(), str(store.root))
            except (WorkerDied, OSError) as exc:
                rows[index].action, rows[index].detail = "failed", str(exc)
                continue
            pending[future] = index
        _watch(pending, rows, store, backend, job_ids, on_event, started)
    except KeyboardInterrupt:
        _cancel_all(pending, rows, store, backend, job_ids, started)
        raise
    for index, later in twins.items():
        for other in later:
            _copy_outcome(rows[index], rows[other])
    return rows


def _watch(pending: dict[Future, int], rows: list[SweepRow], store: RunStore, backend: Backend,
           job_ids: dict[str, int], on_event: Callable[[int, dict[str, Any]], None] | None,
           started: dict[int, float]) -> None:
    while pending:
        message = backend.next_event(0.1)
        if message is not None:
            job_id, event = message
            index = job_ids.get(job_id)
            if index is not None:
                if event.get("run_id"):
                    rows[index].run_id = event["run_id"]
                if on_event is not None:
                    on_event(index, event)
        for future in [f for f in pending if f.done()]:
            index = pending.pop(future)
            _finish(rows[index], future, store, backend, time.monotonic() - started[index])


def _cancel_all(pending: dict[Future, int], rows: list[SweepRow], store: RunStore,
                backend: Backend, job_ids: dict[str, int], started: dict[int, float]) -> None:
    """Ctrl-C: every running run is asked to stop (keeping what it recorded); wait for them."""
    for index in pending.values():
        if rows[index].run_id:
            try:
                store.request_cancel(rows[index].run_id)
            except (StorageError, OSError):
                pass
    backend.shutdown(timeout=30.0)
    for future, index in pending.items():
        if future.done():
            _finish(rows[index], future, store, backend, time.monotonic() - started[index])


def _finish(row: SweepRow, future: Future, store: RunStore, backend: Backend,
            seconds: float) -> None:
    row.seconds = seconds
    try:
        result = backend.result(future)
    except WorkerDied as exc:
        row.action, row.detail = "failed", str(exc)
        if row.run_id:
            try:
                mark_unfinished(store, row.run_id, "failed", str(exc))
            except (StorageError, OSError):
                pass
        return
    except Exception as exc:  # a cancelled future (shutdown), an unpicklable result
        row.action, row.detail = "failed", f"{type(exc).__name__}: {exc}"
        return
    row.run_id = result.get("run_id") or row.run_id
    if not result["ok"]:
        row.action, row.detail = "failed", result["error"]
        return
    try:
        summary = store.load(row.run_id).summary()
    except StorageError as exc:
        row.action, row.detail = "failed", str(exc)
        return
    _fill(row, summary, "cancelled" if result["status"] == "cancelled" else "trained")


def _fill(row: SweepRow, summary: dict[str, Any], action: str) -> None:
    row.action, row.run_id = action, summary["run_id"]
    row.status, row.detail = summary["status"], summary.get("status_detail") or ""
    row.val_loss, row.val_acc = summary.get("val_loss"), summary.get("val_acc")


def _copy_outcome(source: SweepRow, target: SweepRow) -> None:
    target.action = "reused" if source.action == "trained" else source.action
    target.run_id, target.status, target.detail = source.run_id, source.status, source.detail
    target.val_loss, target.val_acc = source.val_loss, source.val_acc


def _finished_runs(store: RunStore) -> dict[str, dict[str, Any]]:
    """config hash -> the newest finished run's summary row (one scan of the runs folder)."""
    try:
        rows, _ = store.list_runs()
    except OSError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for row in rows:  # newest first: keep the first seen
        if row["status"] in REUSABLE and row["config_hash"] not in out:
            out[row["config_hash"]] = row
    return out
