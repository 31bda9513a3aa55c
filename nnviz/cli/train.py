"""``train`` (one recorded run) and ``lr-find`` (the LR range test, nothing saved)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnviz.cli.options import add_config_options, config_from_args
from nnviz.cli.output import ProgressBar
from nnviz.store.runs import RunStore


def register_cli(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train one run and record its snapshots",
                              description="Train one seeded run and record its snapshots; "
                              "prints the run id.")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p)
    p.set_defaults(handler=_train)

    p = subparsers.add_parser(
        "lr-find", help="LR range test: sweep the LR exponentially and suggest one",
        description="Train the configured model for num-iter steps while the learning rate grows "
                    "exponentially; report the loss curve and the LR at its steepest descent. "
                    "Nothing is saved to the runs folder.")
    p.add_argument("--start-lr", type=float, default=1e-7, help="first LR (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last LR (default 10)")
    p.add_argument("--num-iter", type=int, default=100, help="steps of the sweep (default 100)")
    p.add_argument("--smooth", type=float, default=0.05,
                   help="smoothing of the loss curve, 0 = none (default 0.05)")
    p.add_argument("--diverge-th", type=float, default=5.0,
                   help="stop when the smoothed loss is this many times the best (default 5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_options(p)
    p.set_defaults(handler=_lr_find)


def _train(args: argparse.Namespace, store: RunStore) -> int:
    from nnviz.engine.training import train

    cfg = config_from_args(args)
    bar = ProgressBar(args.quiet or args.json)
    try:
        result = train(cfg, store, progress=bar)
    finally:
        bar.close()
    if args.json:
        print(json.dumps({"run_id": result.run_id, "status": result.status,
                          "detail": result.detail}))
    else:
        print(f"{result.run_id} {result.status} {result.detail}".rstrip())
    return 0


def _lr_find(args: argparse.Namespace, store: RunStore) -> int:
    """Prints the suggestion and a dozen points of the curve (or everything as JSON)."""
    from nnviz.engine.lrfind import lr_find

    cfg = config_from_args(args)
    result = lr_find(cfg, start_lr=args.start_lr, end_lr=args.end_lr, num_iter=args.num_iter,
                     smooth=args.smooth, diverge_th=args.diverge_th)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"LR range test: {len(result.lrs)} steps from {args.start_lr:g} "
          f"({cfg.model} on {cfg.dataset}, {result.settings['optimizer']}, "
          f"{result.settings['loss']} loss, batch {result.settings['batch_size']}); "
          f"stopped: {result.reason}.")
    n = len(result.lrs)
    picks = sorted({round(i * (n - 1) / 11) for i in range(12)}) if n else []
    for i in picks:
        print(f"  lr {result.lrs[i]:10.3g}   loss {result.losses[i]:10.4g}   "
              f"smoothed {result.smoothed[i]:10.4g}")
    if result.suggested_lr is None:
        print("No suggestion: the loss did not fall over the sweep (widen it with --end-lr or "
              "--num-iter).")
    else:
        print(f"Suggested lr: {result.suggested_lr:.3g} (steepest descent of the smoothed loss); "
              f"lowest loss {result.best_loss:.4g} at lr {result.best_lr:.3g}.")
    return 0
