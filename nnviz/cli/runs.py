"""Commands on recorded runs: ``list``, ``show``, ``export``, ``import`` and ``delete``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nnviz.cli.output import print_table
from nnviz.errors import NnvizError
from nnviz.store.runs import Run, RunStore, Snapshot

_EPOCH_TOL = 5e-4  # an epoch typed to 4 digits (1.083 for 1 + 1/12) finds its snapshot


def register_cli(subparsers: Any) -> None:
    p = subparsers.add_parser("list", help="list recorded runs")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(handler=_list)

    p = subparsers.add_parser("show", help="per-layer table of one snapshot of a run")
    p.add_argument("run")
    p.add_argument("--epoch", type=float, default=None,
                   help="epoch of a recorded snapshot, e.g. 0 (at init) or 2.5 (default: last)")
    p.add_argument("--json", action="store_true", help="print the snapshot's table as JSON")
    p.set_defaults(handler=_show)

    p = subparsers.add_parser("export", help="write a run to one zip file")
    p.add_argument("run")
    p.add_argument("-o", "--output", default=None, help="zip path (default: RUN.zip)")
    p.set_defaults(handler=_export)

    p = subparsers.add_parser("import", help="add a run from a zip made by export")
    p.add_argument("zip")
    p.set_defaults(handler=_import)

    p = subparsers.add_parser("delete", help="delete a run")
    p.add_argument("run")
    p.set_defaults(handler=_delete)


def snapshot_at(run: Run, epoch: float | None) -> Snapshot:
    """The snapshot recorded at ``epoch`` (None: the last); an NnvizError naming the run's epochs
    for an epoch it has no snapshot at (never another snapshot instead)."""
    if run.n_snapshots == 0:
        raise NnvizError(f"run {run.run_id} has no snapshots yet.")
    last = run.snapshot(-1)
    if epoch is None:
        return last
    snap = run.snapshot_for_epoch(epoch + _EPOCH_TOL)
    if abs(snap.epoch - epoch) > _EPOCH_TOL:
        raise NnvizError(
            f"--epoch {epoch:g}: run {run.run_id} has no snapshot there; it has "
            f"{run.n_snapshots} snapshot(s), from epoch 0 (at init) to epoch {last.epoch:.4g}.")
    return snap


def layer_table(run: Run, snap: Snapshot) -> list[dict[str, Any]]:
    """One row per parameter of a snapshot: statistics beside the theoretical std."""
    rows = []
    for name, info in run.record.params.items():
        s = snap.record.params[name]
        rows.append({
            "param": name, "shape": "×".join(map(str, info.shape)), "numel": info.numel,
            "mean": s.mean, "std": s.std, "theory_std": info.theory.std if info.theory else None,
            "min": s.min, "max": s.max, "zero_frac": s.zero_frac,
            "nan": s.nan_count, "inf": s.inf_count, "spectral_norm": s.spectral_norm,
            "drift": s.drift, "update_ratio": s.update_ratio,
            "grad_norm": s.grad.norm if s.grad else None,
        })
    return rows


def _list(args: argparse.Namespace, store: RunStore) -> int:
    rows, problems = store.list_runs()
    if args.json:
        print(json.dumps({"runs": rows, "problems": problems}, default=str))
        return 0
    print_table([{k: r[k] for k in ("run_id", "status", "model", "init", "dataset", "seed",
                                    "epochs_done", "val_loss", "val_acc")} for r in rows])
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, store: RunStore) -> int:
    run = store.load(args.run)
    snap = snapshot_at(run, args.epoch)
    rows = layer_table(run, snap)
    if args.json:
        print(json.dumps({"run_id": run.run_id, "status": run.status, "epoch": snap.epoch,
                          "snapshot": snap.index, "layers": rows,
                          "history": [h.to_json() for h in run.record.history]},
                         default=str))
        return 0
    print(f"{run.run_id} [{run.status}] snapshot {snap.index}, epoch {snap.epoch:g}; "
          f"init digest {run.record.init_digest}")
    print_table(rows)
    missing = run.incomplete_snapshots()
    if missing:
        print(f"warning: incomplete snapshot file(s) not loaded: {', '.join(missing)}",
              file=sys.stderr)
    return 0


def _export(args: argparse.Namespace, store: RunStore) -> int:
    out = Path(args.output or f"{args.run}.zip")
    data = store.export_zip(args.run)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise NnvizError(f"cannot write {out}: {exc.strerror}") from None
    print(out)
    return 0


def _import(args: argparse.Namespace, store: RunStore) -> int:
    try:
        data = Path(args.zip).read_bytes()
    except OSError as exc:
        raise NnvizError(f"cannot read {args.zip}: {exc.strerror}") from None
    print(store.import_zip(data))
    return 0


def _delete(args: argparse.Namespace, store: RunStore) -> int:
    store.delete(args.run)
    print(f"deleted {args.run}")
    return 0
