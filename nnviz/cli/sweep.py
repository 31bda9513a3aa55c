"""``nnviz sweep``: train a grid of runs (init × lr × seed ...) in parallel, print the results.

Every run option of ``train`` is an option here too, and takes a comma-separated list:
``--init xavier_uniform,kaiming_normal --lr 1e-3,1e-2 --seed 0,1`` is a grid of 8 runs. They run
on this machine's worker processes (``--jobs`` at once), or as Ray tasks on a Ray cluster with
``--ray ADDRESS`` (or ``$NNVIZ_RAY_ADDRESS``), as many at once as the cluster holds. Runs whose
exact config already finished in the runs folder are reused, not trained again. One progress
bar on stderr; the results table (or ``--json``) on stdout. Exit status 1 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from nnviz.backends import make_backend
from nnviz.backends.sweep import SweepRow, grid, run_sweep
from nnviz.cli.options import add_config_options, config_from_args, given_options
from nnviz.cli.output import print_table, stderr
from nnviz.errors import NnvizError
from nnviz.store.runs import RunStore


def register_cli(subparsers: Any) -> None:
    """Add ``sweep`` to the nnviz command line."""
    p = subparsers.add_parser(
        "sweep", help="train a grid of runs in parallel (every option takes a,b,c)",
        description="Train every combination of the listed option values (--init a,b --lr "
                    "1e-3,1e-2 --seed 0,1 is 8 runs) in parallel on this machine or on a Ray "
                    "cluster, with one progress bar; print the results table. Finished "
                    "identical runs are reused. Exit status 1 when a run failed.")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="train on this Ray cluster: auto, ray://HOST:10001 or HOST:6379 "
                        "(default: $NNVIZ_RAY_ADDRESS, else this machine)")
    p.add_argument("--ray-cpus", type=float, default=None, metavar="N",
                   help="CPUs per run on Ray (default 1, or $NNVIZ_RAY_CPUS; fractions allowed)")
    p.add_argument("--ray-gpus", type=float, default=None, metavar="N",
                   help="GPUs per run on Ray (default 0, or $NNVIZ_RAY_GPUS; 0.25 puts four "
                        "runs on one GPU)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="runs at once on this machine (default: half its CPUs, 1 to 4)")
    p.add_argument("--no-reuse", action="store_true",
                   help="train every point even when an identical finished run exists")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p)
    p.set_defaults(handler=_sweep)


def grid_values(args: argparse.Namespace) -> dict[str, list[str]]:
    """Options given with several comma-separated values; those fields are cleared in args
    (the rest, single values, make the base config)."""
    values = {}
    for name, text in given_options(args).items():
        parts = [v.strip() for v in str(text).split(",")]
        if any(not v for v in parts):
            raise NnvizError(f"--{name.replace('_', '-')} {text!r}: an empty value in the list.")
        if len(parts) > 1:
            values[name] = parts
            setattr(args, name, None)
        else:
            setattr(args, name, parts[0])
    return values


def _sweep(args: argparse.Namespace, store: RunStore) -> int:
    values = grid_values(args)
    points = grid(config_from_args(args), values)
    slots, threads = _local_size(args.jobs)
    backend = make_backend(slots, threads, ray=args.ray, ray_cpus=args.ray_cpus,
                           ray_gpus=args.ray_gpus)
    bar = _Bar(len(points), backend.name, backend.slots, quiet=args.quiet or args.json)
    try:
        rows = run_sweep(points, store, backend, on_event=bar.event, reuse=not args.no_reuse)
    finally:
        bar.close()
        backend.shutdown(timeout=10.0)
    if args.json:
        print(json.dumps([r.to_json() for r in rows]))
    else:
        print_table([_table_row(r, list(values)) for r in rows],
                    title=f"sweep: {len(rows)} runs on {backend.name}")
    return 1 if any(r.action == "failed" for r in rows) else 0


def _local_size(jobs: int | None) -> tuple[int, int]:
    """(runs at once, torch threads each) on this machine."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    if jobs is not None and jobs < 1:
        raise NnvizError("--jobs: expected 1 or more.")
    slots = jobs or max(1, min(4, cpus // 2))
    return slots, max(1, cpus // slots)


def _table_row(row: SweepRow, names: list[str]) -> dict[str, Any]:
    return {**{n: row.varied.get(n) for n in names}, "result": row.action,
            "status": row.status or "-", "val_loss": row.val_loss, "val_acc": row.val_acc,
            "run": row.run_id or "-", "s": round(row.seconds, 1) if row.seconds else None,
            "detail": row.detail if row.action == "failed" else ""}


class _Bar:
    """One rich progress bar over the whole sweep (each run's share fills as it trains)."""

    def __init__(self, total: int, backend: str, slots: int, quiet: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.total, self.done = total, [0.0] * total
        self._progress = None if quiet else Progress(
            TextColumn(f"sweep on {backend} ({slots} at once)"), BarColumn(),
            TextColumn("{task.fields[runs]}"), TimeElapsedColumn(), console=stderr())
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("sweep", total=total, runs=f"0/{total} runs")

    def event(self, index: int, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "step" and event.get("epochs") and event.get("steps_per_epoch"):
            spe = event["steps_per_epoch"]
            self.done[index] = min(1.0, ((event["epoch"] - 1) * spe + event["step"])
                                   / (event["epochs"] * spe))
        elif kind == "finished":
            self.done[index] = 1.0
        else:
            return
        if self._progress is not None:
            finished = sum(1 for d in self.done if d >= 1.0)
            self._progress.update(self._task, completed=sum(self.done),
                                  runs=f"{finished}/{self.total} runs")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.total)
            self._progress.stop()
            self._progress = None
