"""``nnviz warm``: train every lesson preset once, so a class opening lessons waits for nothing.

Idempotent: a lesson whose exact config (its config hash) already has a finished run in the
runs folder (completed or diverged: training it again would repeat it, runs are seeded and
deterministic) is skipped. Run it before the class, or let a hosted app do it in the
background on first start (``NNVIZ_WARM=1``, see ui.services.jobs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from nnviz.config import config_hash
from nnviz.errors import NnvizError
from nnviz.presets import PRESETS, preset
from nnviz.store.runs import RunStore

FINISHED = ("completed", "diverged")  # lesson runs that training again would only repeat


@dataclass
class WarmResult:
    """What warming did for one lesson."""

    lesson: str
    run_id: str | None
    action: str        # "trained" | "ready" (found already) | "failed"
    status: str        # the run's status, or the error message when failed
    seconds: float


def warm_lessons(store: RunStore, names: list[str] | None = None,
                 on_result: Callable[[WarmResult], None] | None = None) -> list[WarmResult]:
    """Train each named lesson (default: all) that has no finished run yet; one result each."""
    from nnviz.engine.training import train

    lessons = [preset(n) for n in names] if names else list(PRESETS.values())
    results = []
    for lesson in lessons:
        start = time.monotonic()
        cfg = lesson.config()
        row = store.find_by_hash(config_hash(cfg), FINISHED)
        if row is not None:
            result = WarmResult(lesson.name, row["run_id"], "ready", row["status"], 0.0)
        else:
            try:
                out = train(cfg, store)
            except NnvizError as exc:
                result = WarmResult(lesson.name, None, "failed", str(exc),
                                    time.monotonic() - start)
            else:
                result = WarmResult(lesson.name, out.run_id, "trained", out.status,
                                    time.monotonic() - start)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def register_cli(subparsers: Any) -> None:
    """Add ``warm`` to the nnviz command line."""
    p = subparsers.add_parser(
        "warm", help="train every lesson preset once (skips lessons already trained)",
        description="Train the lesson presets that the runs folder does not hold yet, so that "
                    "lessons open at once. Safe to run again: finished lessons are skipped.")
    p.add_argument("--only", nargs="+", default=None, metavar="PRESET",
                   help=f"warm only these lessons: {', '.join(PRESETS)}")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=_cli_warm)


def _cli_warm(args: argparse.Namespace, store: RunStore) -> int:
    def show(result: WarmResult) -> None:
        if not args.json:
            word = {"trained": f"trained in {result.seconds:.1f} s", "ready": "already trained",
                    "failed": "FAILED"}[result.action]
            print(f"{result.lesson:18s} {word}: {result.run_id or result.status}",
                  file=sys.stderr if result.action == "failed" else sys.stdout)

    results = warm_lessons(store, args.only, on_result=show)
    if args.json:
        print(json.dumps([asdict(r) for r in results]))
    else:
        trained = sum(r.action == "trained" for r in results)
        print(f"{trained} lesson(s) trained, {sum(r.action == 'ready' for r in results)} "
              f"already there, {sum(r.action == 'failed' for r in results)} failed.")
    return 1 if any(r.action == "failed" for r in results) else 0
