"""The ``nnviz`` command line: the parser, the list of command modules, and error handling.

Each command module exposes ``register_cli(subparsers)``, which adds its sub-commands with a
``handler(args, store) -> exit status``. Every RunConfig field is an option of ``train`` and
``lr-find`` (generated from the field's declaration: ``--lr 0.01``, ``--batch-norm true``); a bad
value is a clear message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from nnviz.cli import diagnose, doctor, inspect, registries, runs, sweep, train, warm
from nnviz.errors import NnvizError
from nnviz.store.runs import RunStore

EXIT_USER_ERROR = 2
# Command modules, in the order --help lists them. A new command: a module with register_cli.
COMMANDS: tuple[ModuleType, ...] = (train, sweep, runs, diagnose, registries, inspect, doctor,
                                     warm)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnviz", description=(
        "nnviz: train seeded runs that record per-epoch weight snapshots, and inspect them."))
    parser.add_argument("--runs-dir", default=None, help="runs folder (default: $NNVIZ_RUNS_DIR "
                        "or ./runs)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 on success, 2 on a user error, 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    try:
        status = args.handler(args, RunStore(args.runs_dir))
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        return status
    except NnvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`nnviz show RUN | head`): stop quietly, as `cat` does. Point
        # stdout at /dev/null so the interpreter's final flush cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
