"""The Train form: every RunConfig option in the sidebar, grouped, read from the fields.

What a widget accepts (its choices, range, label, step, help text and default) is read from the
option's declaration on the RunConfig field (``nnviz.config.option``), so the form, the CLI and
URL validation cannot disagree. This module adds only what is about the screen: the groups and
their order, when an option is shown (only the ones that matter for the chosen model,
initializer, data set, optimizer and scheduler), and which registry choices fit the choices above.

Session-state keys start with the ``prefix`` a page passes (``train_...``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import streamlit as st

from nnviz.config import Option, RunConfig, field_type, option
from nnviz.engine.fitting import fit_problem, fitting_datasets, unchecked
from nnviz.errors import ConfigError
from nnviz.i18n import N_, t
from ui.services.urlstate import config_to_query
from ui.text import literal


def _registry(field_name: str) -> dict[str, Any]:
    """The registry whose entries are the choices of a field (label and description each)."""
    if field_name == "model":
        from nnviz.engine.models import MODELS

        return MODELS
    if field_name in ("init", "bias_init"):
        from nnviz.engine.initializers import BIAS_INITS, INITIALIZERS

        return INITIALIZERS if field_name == "init" else BIAS_INITS
    from nnviz.engine.data import DATASETS

    return DATASETS


def _registry_help(field_name: str) -> str:
    return "\n\n".join(f"**{s.name}**: {t(s.description)}"
                       for s in _registry(field_name).values())


def _devices() -> list[str]:
    from nnviz.engine.training import available_devices

    return available_devices()


@dataclasses.dataclass
class _Field:
    """One widget of the form: which option and when it is shown (the rest is the option's)."""

    name: str
    shown: Callable[[dict[str, Any]], bool] = lambda v: True
    # The choices that fit the other values (default: every choice the option declares).
    options: Callable[[dict[str, Any]], list[str]] | None = None
    registry: bool = False  # label and explain each choice from its registry entry

    @property
    def option(self) -> Option:
        return option(self.name)

    @property
    def label(self) -> str:
        return self.option.label  # English: t() it where it is shown

    def choices(self, values: dict[str, Any]) -> list[str] | None:
        if self.options is not None:
            return self.options(values)
        declared = self.option.valid_choices()
        return list(declared) if declared is not None else None


def _uses(setting: str) -> Callable[[dict[str, Any]], bool]:
    def shown(v: dict[str, Any]) -> bool:
        spec = _registry("init").get(v["init"])
        return spec is not None and setting in spec.uses
    return shown


def _dataset_options(v: dict[str, Any]) -> list[str]:
    return fitting_datasets(_loose(v, loss="auto")) or list(option("dataset").valid_choices())


def _loss_options(v: dict[str, Any]) -> list[str]:
    return [loss for loss in option("loss").valid_choices()
            if fit_problem(_loose(v, loss=loss)) is None] or ["auto"]


def _task(v: dict[str, Any]) -> str:
    spec = _registry("dataset").get(v["dataset"])
    return spec.task if spec else "classification"


def _builtin(v: dict[str, Any]) -> bool:
    spec = _registry("dataset").get(v["dataset"])
    return bool(spec and spec.builtin)


def _model_uses(setting: str) -> Callable[[dict[str, Any]], bool]:
    """Shown when the chosen model reads the option (its registry entry's ``uses``)."""
    def shown(v: dict[str, Any]) -> bool:
        spec = _registry("model").get(v["model"])
        return spec is not None and setting in spec.uses
    return shown


GROUPS: list[tuple[str, bool, list[_Field]]] = [
    (N_("Model"), True, [
        _Field("model", registry=True),
        _Field("depth", shown=_model_uses("depth")),
        _Field("width", shown=_model_uses("width")),
        _Field("activation", shown=_model_uses("activation")),
        _Field("batch_norm", shown=_model_uses("batch_norm")),
        _Field("dropout", shown=_model_uses("dropout")),
    ]),
    (N_("Initialization"), True, [
        _Field("init", registry=True),
        _Field("init_mode", shown=_uses("mode")),
        _Field("init_std", shown=_uses("std")),
        _Field("init_a", shown=_uses("a")),
        _Field("init_value", shown=_uses("value")),
        _Field("bias_init", registry=True),
        _Field("bias_value", shown=lambda v: v["bias_init"] == "constant"),
    ]),
    (N_("Data"), True, [
        _Field("dataset", options=_dataset_options, registry=True),
        _Field("n_samples"),
        _Field("noise", shown=_builtin),
        _Field("val_fraction"),
        _Field("data_dir", shown=lambda v: not _builtin(v)),
        _Field("imbalance", shown=lambda v: _task(v) == "classification"),
        _Field("outlier_fraction", shown=lambda v: _task(v) == "regression"),
    ]),
    (N_("Optimization"), True, [
        _Field("optimizer"),
        _Field("lr"),
        _Field("momentum", shown=lambda v: v["optimizer"] in ("sgd", "adam_then_sgd")),
        _Field("weight_decay"),
        _Field("switch_epoch", shown=lambda v: v["optimizer"] == "adam_then_sgd"),
        _Field("scheduler"),
        _Field("step_size", shown=lambda v: v["scheduler"] == "step"),
        _Field("gamma", shown=lambda v: v["scheduler"] in ("step", "plateau")),
        _Field("patience", shown=lambda v: v["scheduler"] == "plateau"),
        _Field("loss", options=_loss_options),
        _Field("focal_gamma", shown=lambda v: v["loss"] == "focal"),
        _Field("batch_size"),
        _Field("epochs"),
        _Field("early_stopping"),
    ]),
    (N_("Recording & device"), False, [
        _Field("snapshots_per_epoch"),
        _Field("probe_size"),
        _Field("seed"),
        _Field("deterministic"),
        _Field("device", options=lambda v: ["auto", *_devices()]),
        _Field("threads"),
        _Field("name"),
    ]),
]


_OPTION_NAMES = frozenset(RunConfig().to_dict())  # once: not a config per key per widget


def _loose(values: dict[str, Any], **changes: Any) -> RunConfig:
    """An unvalidated config from form values (for fit checks)."""
    known = {k: v for k, v in values.items() if k in _OPTION_NAMES}
    return unchecked(RunConfig(), **{**known, **changes})


def _signature(cfg: RunConfig) -> dict[str, str]:
    return config_to_query(cfg)


def last_config(prefix: str) -> RunConfig | None:
    """The last valid config the form with this prefix returned in this session."""
    data = st.session_state.get(f"{prefix}__valid")
    try:
        return RunConfig.from_dict(data) if data else None
    except ConfigError:
        return None


def config_form(prefix: str, initial: RunConfig) -> RunConfig | None:
    """Every RunConfig option in the sidebar, grouped; the valid config, or None (error shown).

    The form starts from ``initial`` and keeps the user's edits across reruns and page
    switches; it is reset to ``initial`` only when ``initial`` changes to something the form did
    not produce itself (a new link). Only the options that matter for the chosen model,
    initializer, data set, optimizer and scheduler are shown; the others keep their values.
    """
    state = st.session_state
    values_key, seen_key = f"{prefix}__values", f"{prefix}__seen"
    values: dict[str, Any] | None = state.get(values_key)
    if values is None or _signature(initial) != state.get(seen_key):
        kept = {k: values[k] for k in ("data_dir", "threads") if values and k in values}
        values = {**initial.to_dict(), **kept}
        state[values_key] = values
        state[seen_key] = _signature(initial)
    with st.sidebar:
        st.header(t("Settings"))
        for title, expanded, group in GROUPS:
            with st.expander(t(title), expanded=expanded):
                for spec in group:
                    if spec.shown(values):
                        values[spec.name] = _widget(prefix, spec, values)
    state[values_key] = values
    try:
        cfg = RunConfig.from_dict(values)
    except ConfigError as exc:
        st.sidebar.error(literal(exc))  # it can echo a URL value: text, never Markdown
        return None
    why = fit_problem(cfg)
    if why:
        st.sidebar.error(literal(why))
        return None
    state[f"{prefix}__valid"] = cfg.to_dict()
    state[seen_key] = _signature(cfg)
    return cfg


def _keep(prefix: str, name: str) -> None:
    """on_change: copy a widget's new value into the form's kept values."""
    values = st.session_state.get(f"{prefix}__values")
    if values is not None:
        values[name] = st.session_state[f"{prefix}_{name}"]


def _widget(prefix: str, spec: _Field, values: dict[str, Any]) -> Any:
    """Draw one option's widget; its value comes from the kept values, never stale state.

    Streamlit may hold on to an old value for a widget that was not drawn for a while (after a
    page switch), so every widget is set from ``values`` before it is drawn, and ``_keep``
    copies the user's changes into ``values`` before the rerun.
    """
    key = f"{prefix}_{spec.name}"
    state = st.session_state
    opt, kind = spec.option, field_type(spec.name)
    value = values[spec.name]
    help_text = t(opt.help)
    label = t(opt.label)
    if spec.registry:
        help_text = f"{help_text}\n\n{_registry_help(spec.name)}"
    common: dict[str, Any] = {"key": key, "help": help_text, "on_change": _keep,
                              "args": (prefix, spec.name)}
    choices = spec.choices(values)
    if choices is not None:
        if value not in choices:
            st.caption(t("{label}: {value} does not fit the settings above; using {used}.",
                         label=label, value=repr(value), used=repr(choices[0])))
            value = choices[0]
        state[key] = value
        fmt: Callable[[str], str] = str
        if spec.registry:
            registry = _registry(spec.name)
            fmt = lambda n: f"{t(registry[n].label)} ({n})" if n in registry else n  # noqa: E731
        return st.selectbox(label, choices, format_func=fmt, **common)
    if kind is bool:
        state[key] = bool(value)
        return st.checkbox(label, **common)
    if kind is str:
        state[key] = str(value)[: opt.max_len]
        return st.text_input(label, max_chars=opt.max_len, **common)
    low, high = opt.low, opt.high
    if spec.name == "depth" and values["model"] == "cnn":
        low, high = 2, 4  # RunConfig.validate: the cnn model has 2 to 4 conv blocks
    if spec.name == "n_samples" and _builtin(values):
        from nnviz.engine.data.spec import MIN_BUILTIN_SAMPLES

        low = MIN_BUILTIN_SAMPLES
    if kind is int:
        low, high, step = int(low), int(high), int(opt.step or 1)
        state[key] = min(max(int(value), low), high)
        return int(st.number_input(label, min_value=low, max_value=high, step=step,
                                   **common))
    low, high = float(low), float(high)
    number = float(value)
    state[key] = min(max(number if math.isfinite(number) else low, low), high)
    if opt.slider:
        return float(st.slider(label, min_value=low, max_value=high,
                               step=float(opt.step or 0.01), **common))
    return float(st.number_input(label, min_value=low, max_value=high,
                                 step=float(opt.step or 0.01), format="%g", **common))
