"""``nnviz diagnose RUN``: a run's flags as text or JSON, from the diagnostics package."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnviz.analysis.diagnostics import diagnose, flags_at, format_flag
from nnviz.store.runs import RunStore


def _cli(args: argparse.Namespace, store: RunStore) -> int:
    run = store.load(args.run)
    upto = None
    if args.epoch is not None:
        upto = run.snapshot_for_epoch(args.epoch).index
    flags = flags_at(run, upto if upto is not None else -1) if args.at else diagnose(run, upto)
    if args.json:
        print(json.dumps({"run_id": run.run_id, "status": run.status,
                          "flags": [f.to_dict() for f in flags]}, allow_nan=False))
        return 0
    noun = "flag" if len(flags) == 1 else "flags"
    print(f"{run.run_id} [{run.status}]: {len(flags)} {noun}")
    for f in flags:
        print(format_flag(f))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``python -m nnviz diagnose RUN [--json] [--epoch E] [--at]``."""
    p = subparsers.add_parser("diagnose", help="flag vanishing, exploding and other problems "
                              "of a run, with evidence and a fix")
    p.add_argument("run")
    p.add_argument("--epoch", type=float, default=None,
                   help="diagnose up to this epoch (default: the whole run)")
    p.add_argument("--at", action="store_true",
                   help="only the flags that hold at that epoch (default: all seen up to it)")
    p.add_argument("--json", action="store_true", help="print the flags as JSON")
    p.set_defaults(handler=_cli)
