"""Command line: train, list, show, export, import and the registries.

Every RunConfig field is an option of ``train`` (``--lr 0.01``, ``--batch-norm true``); bad values
are rejected with the valid choices listed, and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from nnviz.config import PRESETS, RunConfig, field_help, preset
from nnviz.errors import NnvizError
from nnviz.store.runs import RunStore

EXIT_USER_ERROR = 2


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    helps = field_help()
    for f in dataclasses.fields(RunConfig):
        default = getattr(RunConfig(), f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                            metavar=type(default).__name__.upper(),
                            help=f"{helps.get(f.name, '')} (default: {default!r})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nnviz", description=(
        "nnviz: train seeded runs that record per-epoch weight snapshots, and inspect them."))
    parser.add_argument("--runs-dir", default=None, help="runs folder (default: $NNVIZ_RUNS_DIR "
                        "or ./runs)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one run and record its snapshots")
    p.add_argument("--preset", default=None, help=f"start from a lesson preset: "
                   f"{', '.join(PRESETS)}")
    p.add_argument("--config", default=None, help="JSON file with options")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(p)

    p = sub.add_parser("list", help="list recorded runs")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("show", help="per-layer table of one snapshot of a run")
    p.add_argument("run")
    p.add_argument("--epoch", type=float, default=None, help="epoch to show (default: last)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", help="write a run to one zip file")
    p.add_argument("run")
    p.add_argument("-o", "--output", default=None, help="zip path (default: RUN.zip)")

    p = sub.add_parser("import", help="add a run from a zip made by export")
    p.add_argument("zip")

    p = sub.add_parser("delete", help="delete a run")
    p.add_argument("run")

    sub.add_parser("models", help="list the models")
    sub.add_parser("inits", help="list the initializers")
    sub.add_parser("datasets", help="list the data sets")
    sub.add_parser("presets", help="list the lesson presets")
    _register_extra_commands(sub)
    return parser


def _register_extra_commands(sub: Any) -> None:
    """Commands of other modules (diagnose, lr-find) register themselves here."""
    for module_name in ("nnviz.analysis.diagnostics", "nnviz.engine.lrfind",
                        "nnviz.cli.inspect"):
        try:
            module = __import__(module_name, fromlist=["register_cli"])
        except ImportError:
            continue
        if hasattr(module, "register_cli"):
            module.register_cli(sub)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Preset, then --config file, then explicit options; validated."""
    data: dict[str, Any] = {}
    if args.preset:
        data.update(preset(args.preset).overrides)
    if args.config:
        try:
            loaded = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise NnvizError(f"--config {args.config}: cannot read it ({exc}).") from None
        if not isinstance(loaded, dict):
            raise NnvizError(f"--config {args.config}: expected a JSON object of options.")
        data.update(loaded)
    for f in dataclasses.fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    return RunConfig.from_dict(data)


class ProgressBar:
    """A one-line text progress bar on stderr."""

    def __init__(self, quiet: bool, interval: float = 0.1) -> None:
        self.quiet = quiet
        self.interval = interval  # seconds between redraws: a fast run must not flood the log
        self._last = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        kind = event["event"]
        if kind == "started":
            print(f"run {event['run_id']}: {event['epochs']} epochs × "
                  f"{event['steps_per_epoch']} steps", file=sys.stderr)
        elif kind == "step":
            now = time.monotonic()
            if now - self._last < self.interval and event["step"] != event["steps_per_epoch"]:
                return
            self._last = now
            done = (event["epoch"] - 1) * event["steps_per_epoch"] + event["step"]
            total = event["epochs"] * event["steps_per_epoch"]
            filled = int(30 * done / total)
            print(f"\r[{'#' * filled}{'.' * (30 - filled)}] epoch {event['epoch']}/"
                  f"{event['epochs']} step {event['step']}/{event['steps_per_epoch']} "
                  f"loss {event['loss']:.4g} {event['samples_per_s']:.0f} samples/s ",
                  end="", file=sys.stderr, flush=True)
        elif kind == "epoch":
            acc = event.get("val_acc")
            acc_text = f", val acc {acc:.3f}" if acc is not None else ""
            print(f"\n  epoch {event['epoch']}: val loss {event['val_loss']:.4g}{acc_text}",
                  file=sys.stderr)


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}g}"
    return str(x)


def layer_table(run: Any, snap: Any) -> list[dict[str, Any]]:
    """One row per parameter of a snapshot: statistics beside the theoretical std."""
    rows = []
    for name, info in run.params.items():
        s = snap.stats["params"][name]
        theory = info.get("theory") or {}
        rows.append({
            "param": name, "shape": "×".join(map(str, info["shape"])), "numel": info["numel"],
            "mean": s["mean"], "std": s["std"], "theory_std": theory.get("std"),
            "min": s["min"], "max": s["max"], "zero_frac": s["zero_frac"],
            "nan": s["nan_count"], "inf": s["inf_count"], "spectral_norm": s["spectral_norm"],
            "drift": s.get("drift"), "update_ratio": s.get("update_ratio"),
            "grad_norm": (s.get("grad") or {}).get("norm"),
        })
    return rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("(nothing)")
        return
    cols = list(rows[0])
    text = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    store = RunStore(args.runs_dir)
    try:
        return _dispatch(args, store)
    except NnvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace, store: RunStore) -> int:
    cmd = args.command
    if cmd == "train":
        from nnviz.engine.training import train

        cfg = config_from_args(args)
        result = train(cfg, store, progress=ProgressBar(args.quiet or args.json))
        if args.json:
            print(json.dumps({"run_id": result.run_id, "status": result.status,
                              "detail": result.detail}))
        else:
            print(f"\n{result.run_id} {result.status} {result.detail}".rstrip())
        return 0
    if cmd == "list":
        rows, problems = store.list_runs()
        if args.json:
            print(json.dumps({"runs": rows, "problems": problems}, default=str))
        else:
            _print_table([{k: r[k] for k in ("run_id", "status", "model", "init", "dataset",
                                              "seed", "epochs_done", "val_loss", "val_acc")}
                          for r in rows])
            for p in problems:
                print(f"warning: {p}", file=sys.stderr)
        return 0
    if cmd == "show":
        run = store.load(args.run)
        snap = run.snapshot(-1) if args.epoch is None else run.snapshot_for_epoch(args.epoch)
        rows = layer_table(run, snap)
        if args.json:
            print(json.dumps({"run_id": run.run_id, "status": run.status,
                              "epoch": snap.epoch, "snapshot": snap.index, "layers": rows,
                              "history": run.history}, default=str))
        else:
            print(f"{run.run_id} [{run.status}] snapshot {snap.index}, epoch {snap.epoch:g}; "
                  f"init digest {run.meta.get('init_digest')}")
            _print_table(rows)
            missing = run.incomplete_snapshots()
            if missing:
                print(f"warning: incomplete snapshot file(s) not loaded: {', '.join(missing)}",
                      file=sys.stderr)
        return 0
    if cmd == "export":
        out = Path(args.output or f"{args.run}.zip")
        out.write_bytes(store.export_zip(args.run))
        print(out)
        return 0
    if cmd == "import":
        try:
            data = Path(args.zip).read_bytes()
        except OSError as exc:
            raise NnvizError(f"cannot read {args.zip}: {exc.strerror}") from None
        print(store.import_zip(data))
        return 0
    if cmd == "delete":
        store.delete(args.run)
        print(f"deleted {args.run}")
        return 0
    if cmd in ("models", "inits", "datasets", "presets"):
        for name, text in registry_rows(cmd):
            print(f"{name:18s} {text}")
        return 0
    handler = getattr(args, "handler", None)
    if handler is not None:
        return handler(args, store)
    raise NnvizError(f"unknown command {cmd}")


def registry_rows(kind: str) -> list[tuple[str, str]]:
    """(name, description) rows of a registry."""
    if kind == "models":
        from nnviz.engine.models import MODELS

        return [(s.name, f"{s.description} Input: {s.expects}.") for s in MODELS.values()]
    if kind == "inits":
        from nnviz.engine.initializers import INITIALIZERS

        return [(s.name, s.description) for s in INITIALIZERS.values()]
    if kind == "datasets":
        from nnviz.engine.data import DATASETS

        return [(s.name, f"{s.description}{'' if s.builtin else ' (local folder)'}")
                for s in DATASETS.values()]
    return [(p.name, f"{p.label}: {p.lesson}") for p in PRESETS.values()]
