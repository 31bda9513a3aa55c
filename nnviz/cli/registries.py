"""``models``, ``inits``, ``datasets`` and ``presets``: what each registry holds (``--json``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnviz.cli.output import print_table

KINDS = {"models": "list the models", "inits": "list the weight and bias initializers",
         "datasets": "list the data sets", "presets": "list the lesson presets"}


def register_cli(subparsers: Any) -> None:
    for kind, help_text in KINDS.items():
        p = subparsers.add_parser(kind, help=help_text)
        p.add_argument("--json", action="store_true", help="print the entries as JSON")
        p.set_defaults(handler=_show, kind=kind)


def entries(kind: str) -> list[dict[str, Any]]:
    """The entries of one registry as plain, JSON-able dicts (registry order)."""
    if kind == "models":
        from nnviz.engine.models import MODELS

        return [{"name": s.name, "label": s.label, "description": s.description,
                 "input": s.expects} for s in MODELS.values()]
    if kind == "inits":
        from nnviz.engine.initializers import BIAS_INITS, INITIALIZERS

        return [{"name": s.name, "applies_to": part, "label": s.label,
                 "description": s.description, "uses": list(s.uses),
                 "uses_activation": s.uses_activation}
                for part, reg in (("weight", INITIALIZERS), ("bias", BIAS_INITS))
                for s in reg.values()]
    if kind == "datasets":
        from nnviz.engine.data import DATASETS

        return [{"name": s.name, "label": s.label, "description": s.description,
                 "task": s.task, "input_shape": list(s.input_shape), "n_classes": s.n_classes,
                 "builtin": s.builtin, "files": list(s.files)} for s in DATASETS.values()]
    if kind == "presets":
        from nnviz.presets import PRESETS

        return [{"name": p.name, "label": p.label, "lesson": p.lesson,
                 "config": p.overrides} for p in PRESETS.values()]
    raise ValueError(f"unknown registry {kind!r}")


def _show(args: argparse.Namespace, store: Any) -> int:
    rows = entries(args.kind)
    if args.json:
        print(json.dumps({args.kind: rows}))
        return 0
    if args.kind == "models":
        table = [{"name": r["name"], "description": f"{r['description']} Input: {r['input']}."}
                 for r in rows]
    elif args.kind == "inits":
        table = [{"name": r["name"], "for": r["applies_to"], "description": r["description"]}
                 for r in rows]
    elif args.kind == "datasets":
        table = [{"name": r["name"], "task": r["task"],
                  "description": r["description"] + ("" if r["builtin"] else " (local folder)")}
                 for r in rows]
    else:
        table = [{"name": r["name"], "lesson": f"{r['label']}: {r['lesson']}"} for r in rows]
    print_table(table)
    return 0
