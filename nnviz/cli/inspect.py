"""``nnviz inspect PATH``: a checkpoint (or a folder of them) as an nnviz run, and its table."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnviz.cli.output import fmt
from nnviz.store.checkpoints import checkpoint_run
from nnviz.store.runs import RunStore


def run_inspect(args: argparse.Namespace, store: RunStore) -> int:
    """Write the run, then print one row per tensor of its last snapshot."""
    run_id = checkpoint_run(args.path, store, name=args.name or "")
    run = store.load(run_id)
    snap = run.snapshot(-1)
    rows = []
    for name, info in run.record.params.items():
        s = snap.record.params[name]
        rows.append({"name": name, "shape": list(info.shape), "mean": s.mean, "std": s.std,
                     "spectral_norm": s.spectral_norm, "stable_rank": s.stable_rank,
                     "nan": s.nan_count, "inf": s.inf_count, "drift": s.drift})
    source = run.record.source
    if args.json:
        print(json.dumps({"run_id": run_id, "snapshots": run.n_snapshots,
                          "source": source.to_json(), "tensors": rows}, indent=1, allow_nan=True))
        return 0
    extra = source.extra  # the checkpoint reader's facts (paths, format, n_params, notes)
    print(f"{run_id}: {run.n_snapshots} snapshot(s) from {len(extra.get('paths', []))} "
          f"checkpoint(s), {extra.get('format')}, {extra.get('n_params', 0):,} values")
    for note in extra.get("notes", []):
        print(f"  note: {note}")
    width = max(len(r["name"]) for r in rows)
    print(f"{'tensor':<{width}}  {'shape':<18} {'mean':>10} {'std':>10} {'spectral':>10} "
          f"{'stable rk':>9} {'NaN':>5} {'Inf':>5} {'drift':>9}")
    for r in rows:
        print(f"{r['name']:<{width}}  {str(r['shape']):<18} {fmt(r['mean']):>10} "
              f"{fmt(r['std']):>10} {fmt(r['spectral_norm']):>10} {fmt(r['stable_rank']):>9} "
              f"{r['nan']:>5} {r['inf']:>5} {fmt(r['drift']):>9}")
    print(f"Open it: python -m nnviz show {run_id}, or the app's Explore page.")
    return 0


def register_cli(sub: Any) -> None:
    """Add ``inspect`` to the nnviz command line."""
    p = sub.add_parser("inspect", help="open a checkpoint (.safetensors, sharded index, .pt/"
                       ".pth/.bin/.ckpt via weights_only) or a folder of them as a run")
    p.add_argument("path", help="a checkpoint file, a Hugging Face checkpoint folder, or a "
                   "folder of checkpoints (one snapshot each, in order)")
    p.add_argument("--name", default=None, help="label of the run (default: the file name)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run_inspect)
