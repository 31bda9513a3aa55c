"""The run options of ``train`` and ``lr-find``, generated from RunConfig's field declarations.

Every RunConfig field becomes ``--field-name VALUE``; its help, choices or range and default come
from ``nnviz.config.option`` (declared once, on the field), so ``--help`` lists what each option
accepts. Values stay strings here and are coerced and validated once, by ``RunConfig.from_dict``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from nnviz.config import RunConfig, field_type, options
from nnviz.errors import NnvizError
from nnviz.presets import PRESETS, preset

_METAVARS = {bool: "BOOL", int: "INT", float: "NUMBER", str: "TEXT"}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--preset``, ``--config`` and one option per RunConfig field."""
    parser.add_argument("--preset", default=None, metavar="NAME",
                        help=f"start from a lesson preset: one of {', '.join(PRESETS)}")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="JSON file of options (applied after --preset; options given on "
                        "the command line win)")
    group = parser.add_argument_group("run options (every field of the run's config)")
    defaults = RunConfig()
    for name, opt in options().items():
        kind = field_type(name)
        accepts = opt.accepts() or ("true or false" if kind is bool else "")
        facts = "; ".join(x for x in (accepts, f"default: {_shown(getattr(defaults, name))}") if x)
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                           metavar="NAME" if opt.choices is not None else _METAVARS[kind],
                           help=f"{opt.help} ({facts})".replace("%", "%%"))


def _shown(value: Any) -> str:
    """A default as it would be typed: true, 0.001, simple_cnn, "" (empty text)."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if value != "" else '""'


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields set on the command line (as the strings typed)."""
    out = {}
    for f in dataclasses.fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            out[f.name] = value
    return out


def config_from_args(args: argparse.Namespace, fit_data: bool = True) -> RunConfig:
    """Preset, then --config file, then explicit options; validated once.

    With ``fit_data``, a model that cannot read the data set nobody asked for (the default data
    set, when neither the options, the preset nor the file name one) gets the first data set it
    can read, as the app does, and a note on stderr says so.
    """
    data: dict[str, Any] = {}
    if args.preset:
        data.update(preset(args.preset).overrides)
    if args.config:
        try:
            loaded = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NnvizError(f"--config {args.config}: cannot read it ({exc}).") from None
        if not isinstance(loaded, dict):
            raise NnvizError(f"--config {args.config}: expected a JSON object of options.")
        data.update(loaded)
    data.update(given_options(args))
    if fit_data and "dataset" not in data:
        data = _fit_dataset(data)
    return RunConfig.from_dict(data)


def _fit_dataset(data: dict[str, Any]) -> dict[str, Any]:
    """Switch the default data set for one the model reads, when it does not read it."""
    from nnviz.engine.fitting import fit_problem, fitting_datasets

    cfg = RunConfig.from_dict(data)  # reports bad values before any guessing
    if fit_problem(cfg) is None:
        return data
    choices = fitting_datasets(cfg)
    if not choices:
        return data  # from_dict's caller reports the misfit with its reason
    print(f"note: {cfg.model} cannot read the default data set {cfg.dataset}; using "
          f"{choices[0]} (choose with --dataset: {', '.join(choices)}).", file=sys.stderr)
    return {**data, "dataset": choices[0]}
