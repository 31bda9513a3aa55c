"""``nnviz diagnose RUN``: a run's flags as text or JSON, from the diagnostics package.

The text is English unless ``--lang`` names another language (``zh-Hans``, ``zh-Hant``);
``--json`` is for scripts and stays English whatever ``--lang`` says.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnviz.analysis.diagnostics import diagnose, flags_at, format_report
from nnviz.i18n import LANGUAGES, language, normalize
from nnviz.store.runs import RunStore


def _language(tag: str) -> str:
    """argparse type of --lang: a supported language, or a clear error listing them."""
    code = normalize(tag)
    if code is None:
        raise argparse.ArgumentTypeError(
            f"unknown language {tag!r}; use one of {', '.join(LANGUAGES)}")
    return code


def _cli(args: argparse.Namespace, store: RunStore) -> int:
    with language("en" if args.json else args.lang):  # errors, too, in the text's language
        run = store.load(args.run)
        upto = None
        if args.epoch is not None:
            upto = run.snapshot_for_epoch(args.epoch).index
        flags = flags_at(run, upto if upto is not None else -1) if args.at else \
            diagnose(run, upto)
        if args.json:
            print(json.dumps({"run_id": run.run_id, "status": run.status,
                              "flags": [f.to_dict() for f in flags]}, allow_nan=False))
        else:
            print(format_report(run, flags))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``python -m nnviz diagnose RUN [--json] [--epoch E] [--at] [--lang L]``."""
    p = subparsers.add_parser("diagnose", help="flag vanishing, exploding and other problems "
                              "of a run, with evidence and a fix")
    p.add_argument("run")
    p.add_argument("--epoch", type=float, default=None,
                   help="diagnose up to this epoch (default: the whole run)")
    p.add_argument("--at", action="store_true",
                   help="only the flags that hold at that epoch (default: all seen up to it)")
    p.add_argument("--json", action="store_true", help="print the flags as JSON (English)")
    p.add_argument("--lang", type=_language, default="en", metavar="LANG",
                   help=f"language of the text: {', '.join(LANGUAGES)} (default: en)")
    p.set_defaults(handler=_cli)
