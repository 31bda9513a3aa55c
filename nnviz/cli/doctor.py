"""``nnviz doctor``: report damaged runs and damaged snapshots, and clean leftovers of crashes.

Checks every run folder with the format's validating reader (run.json, then every snapshot:
checksum, statistics, tensor sizes) and lists what fails, with the reason. ``--clean`` removes
orphans (``RunStore.clean_orphans``: staging folders of crashed imports, old ``.tmp`` files,
folders without run.json, unlisted snapshot files of runs that are not running); damaged runs
are never removed here (``nnviz delete`` does that, after ``nnviz export`` if wanted).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnviz.store.runs import ORPHAN_AGE_S, RunStore


def register_cli(subparsers: Any) -> None:
    """Add ``doctor`` to the nnviz command line."""
    p = subparsers.add_parser(
        "doctor", help="report damaged runs; --clean removes leftovers of crashes",
        description="Check every run in the runs folder and report damaged runs and "
                    "snapshots, and orphaned files. Nothing is changed without --clean.")
    p.add_argument("--clean", action="store_true",
                   help="remove orphans (temp files, staging folders, unlisted snapshots, "
                        "folders without run.json); damaged runs are kept")
    p.add_argument("--min-age", type=float, default=ORPHAN_AGE_S,
                   help=f"only files older than this many seconds count as orphans "
                        f"(default {ORPHAN_AGE_S:g}; a run being written is never touched)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_cli_doctor)


def check(store: RunStore, clean: bool = False, min_age_s: float = ORPHAN_AGE_S
          ) -> dict[str, Any]:
    """{'ok': [...ids], 'damaged': [{run_id, reason}], 'damaged_snapshots': [...],
    'orphans': [...], 'cleaned': bool}."""
    runs, damaged = store.scan()
    bad_snaps = [{"run_id": r.run_id, "snapshot": e.index, "reason": reason}
                 for r in runs for e, reason in r.damaged_snapshots]
    orphans = store.clean_orphans(min_age_s=min_age_s, dry_run=not clean)
    return {"ok": [r.run_id for r in runs],
            "damaged": [{"run_id": d.run_id, "reason": d.reason} for d in damaged],
            "damaged_snapshots": bad_snaps, "orphans": orphans, "cleaned": clean}


def _cli_doctor(args: argparse.Namespace, store: RunStore) -> int:
    report = check(store, clean=args.clean, min_age_s=args.min_age)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{len(report['ok'])} readable run(s) in {store.root}")
    for d in report["damaged"]:
        print(f"damaged: {d['run_id']}: {d['reason']}")
    for d in report["damaged_snapshots"]:
        print(f"damaged snapshot: {d['run_id']} #{d['snapshot']}: {d['reason']}")
    verb = "removed" if args.clean else "orphan (remove with --clean)"
    for o in report["orphans"]:
        print(f"{verb}: {o}")
    if not (report["damaged"] or report["damaged_snapshots"] or report["orphans"]):
        print("nothing to report")
    return 0
