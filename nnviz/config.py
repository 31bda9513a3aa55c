"""Run configuration: one dataclass holds every option of a training run, and every fact about it.

Each ``RunConfig`` field declares, once, on the field itself (``dataclasses.field(metadata=...)``,
read back with ``option(name)``): its default, its help text, its label, and what it accepts: a
tuple of choices or the registry that lists them (models, initializers, bias initializers,
activations, data sets: adding an entry to the registry adds the choice everywhere), or a range
``low`` to ``high`` (both included), or a maximum length. The CLI's options and ``--help``, the
Train form's widgets, URL validation and ``validate`` all read these declarations.

A ``RunConfig`` is frozen plain data (JSON in, JSON out), validated once, when it is made: bad
values raise a ``ConfigError`` that names the option and lists the valid choices or range, so a
``RunConfig`` in hand is a valid one. ``from_dict`` is where a config enters from text (CLI, form,
URL, ``run.json``): it coerces strings to the field's type first. The one bypass is
``unchecked`` (form values checked for fit before they are valid); code that accepts configs
from outside (the job manager) still calls ``validate``.
``config_hash`` identifies the run's outcome: two configs with the same hash train to
bit-identical snapshots on the same device type.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from nnviz.errors import ConfigError
from nnviz.i18n import N_, t

OPTIMIZERS = ("sgd", "adam", "adamw", "adam_then_sgd")
SCHEDULERS = ("none", "step", "cosine", "plateau")
LOSSES = ("cross_entropy", "bce", "mse", "mae", "focal")
DEVICES = ("auto", "cpu", "cuda", "mps")
INIT_MODES = ("fan_in", "fan_out")
# Fields that do not change what a run computes: left out of the hash.
_NOT_HASHED = ("threads", "name")
# Options added after runs were recorded, with the value those runs had: hashed only when set
# away from it, so the runs recorded before they existed keep their hash (and their lesson /
# reuse matches); a record read back fills them in.
ADDED_LATER = {"kernel_size": 3}


def _models() -> tuple[str, ...]:
    from nnviz.engine.models import MODELS

    return tuple(MODELS)


def _activations() -> tuple[str, ...]:
    from nnviz.engine.models import ACTIVATIONS

    return tuple(ACTIVATIONS)


def _inits() -> tuple[str, ...]:
    from nnviz.engine.initializers import INITIALIZERS

    return tuple(INITIALIZERS)


def _bias_inits() -> tuple[str, ...]:
    from nnviz.engine.initializers import BIAS_INITS

    return tuple(BIAS_INITS)


def _datasets() -> tuple[str, ...]:
    from nnviz.engine.data import DATASETS

    return tuple(DATASETS)


@dataclass(frozen=True)
class Option:
    """What one RunConfig field accepts and how it is explained (declared once, on the field)."""

    help: str                      # one sentence for --help, the form's tooltip and the docs
    label: str                     # the form's label
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None  # or a registry
    low: float | None = None       # smallest valid number (included)
    high: float | None = None      # largest valid number (included)
    max_len: int | None = None     # text: at most this many characters
    step: float | None = None      # the form's +/- step
    slider: bool = False           # the form draws a slider (needs low and high)

    def valid_choices(self) -> tuple[str, ...] | None:
        """The choices, read from the registry when the field names one (None: not a choice)."""
        return self.choices() if callable(self.choices) else self.choices

    def accepts(self) -> str:
        """What the option accepts, in words: 'one of: a, b', '1 to 40', 'at most 80 characters'."""
        choices = self.valid_choices()
        if choices is not None:
            return t("one of: {choices}", choices=", ".join(choices))
        if self.low is not None and self.high is not None:
            return t("{low} to {high}", low=_num(self.low), high=_num(self.high))
        if self.max_len is not None:
            return t("at most {n} characters", n=self.max_len)
        return ""


def _opt(default: Any, help: str, label: str, **facts: Any) -> Any:
    """A dataclass field whose metadata holds its Option."""
    return field(default=default, metadata={"option": Option(help, label, **facts)})


@dataclass(frozen=True)
class RunConfig:
    """Every option of one training run, with the defaults a first-time user should see."""

    # --- model ---
    model: str = _opt("simple_cnn", N_("The network to train."), N_("Model"), choices=_models)
    depth: int = _opt(3, N_("mlp: hidden layers; cnn: conv blocks (1-4)."), N_("Depth"), low=1,
                      high=40, step=1)
    width: int = _opt(64, N_("mlp: units per hidden layer; cnn: channels of the first block."),
                      N_("Width"), low=1, high=2048, step=8)
    activation: str = _opt("relu", N_("mlp / cnn nonlinearity."), N_("Activation"),
                           choices=_activations)
    batch_norm: bool = _opt(False, N_("cnn only: BatchNorm after each conv."),
                            N_("BatchNorm after each conv"))
    kernel_size: int = _opt(3, N_("cnn: kernel size of the first conv layer (odd; later blocks "
                            "stay 3×3)."), N_("First conv kernel size"), low=3, high=11, step=2)
    dropout: float = _opt(0.0, N_("mlp / cnn: dropout probability before the output layer(s)."),
                          N_("Dropout"), low=0.0, high=0.95, step=0.05, slider=True)
    # --- initialization ---
    init: str = _opt("default", N_("Weight initializer (\"default\" = PyTorch's own)."),
                     N_("Weight initializer"), choices=_inits)
    init_mode: str = _opt("fan_in", N_("kaiming: preserve variance forward (fan_in) or backward "
                          "(fan_out)."), N_("Kaiming fan"), choices=INIT_MODES)
    init_std: float = _opt(0.01, N_("normal / trunc_normal: standard deviation."),
                           N_("Standard deviation"), low=1e-8, high=100.0, step=0.001)
    init_a: float = _opt(0.1, N_("uniform: U(-a, a) (the tutorial's 0.1 and 0.01)."),
                         N_("Bound a of U(-a, a)"), low=1e-8, high=100.0, step=0.01)
    init_value: float = _opt(0.0, N_("constant: every weight = value."), N_("Constant value"),
                             low=-100.0, high=100.0, step=0.01)
    bias_init: str = _opt("default", N_("Bias initializer."), N_("Bias initializer"),
                          choices=_bias_inits)
    bias_value: float = _opt(0.0, N_("Bias constant (bias_init constant)."), N_("Bias value"),
                             low=-100.0, high=100.0, step=0.01)
    # --- data ---
    dataset: str = _opt("shapes32", N_("Data set; must fit the model's input."), N_("Data set"),
                        choices=_datasets)
    n_samples: int = _opt(2000, N_("Examples generated (or read; 0 = all, for local sets)."),
                          N_("Examples"), low=0, high=200_000, step=100)
    noise: float = _opt(0.1, N_("Noise of the generated data sets."), N_("Noise"), low=0.0,
                        high=10.0, step=0.05)
    val_fraction: float = _opt(0.2, N_("Share of the examples held out for validation."),
                               N_("Validation share"), low=0.01, high=0.9, step=0.01, slider=True)
    data_dir: str = _opt("", N_("Folder with MNIST / Fashion-MNIST / CIFAR-10 files."),
                         N_("Data folder (on the server)"), max_len=4096)
    imbalance: float = _opt(1.0, N_("Majority / minority class ratio (1 = balanced)."),
                            N_("Class imbalance (majority / minority)"), low=1.0, high=1000.0,
                            step=1.0)
    outlier_fraction: float = _opt(0.0, N_("regression: share of training targets made outliers."),
                                   N_("Outlier share"), low=0.0, high=0.49, step=0.01, slider=True)
    # --- optimization ---
    optimizer: str = _opt("adam", N_("Optimizer (adam_then_sgd: Adam, then SGD from "
                          "switch_epoch)."), N_("Optimizer"), choices=OPTIMIZERS)
    lr: float = _opt(1e-3, N_("Learning rate."), N_("Learning rate"), low=1e-8, high=100.0,
                     step=0.0001)
    momentum: float = _opt(0.9, N_("sgd momentum."), N_("Momentum"), low=0.0, high=0.999, step=0.05)
    weight_decay: float = _opt(0.0, N_("L2 penalty (decoupled for adamw)."),
                               N_("Weight decay (L2)"), low=0.0, high=10.0, step=0.0001)
    switch_epoch: int = _opt(3, N_("adam_then_sgd: first epoch trained with SGD."),
                             N_("Switch to SGD at epoch"), low=1, high=500, step=1)
    scheduler: str = _opt("none", N_("LR scheduler, stepped once per epoch."), N_("LR scheduler"),
                          choices=SCHEDULERS)
    step_size: int = _opt(2, N_("step: epochs between LR drops."), N_("Epochs between LR drops"),
                          low=1, high=500, step=1)
    gamma: float = _opt(0.5, N_("step / plateau: LR multiplier."), N_("LR multiplier"), low=1e-4,
                        high=1.0, step=0.05)
    patience: int = _opt(1, N_("plateau: epochs without improvement before a drop."),
                         N_("Plateau patience (epochs)"), low=0, high=500, step=1)
    loss: str = _opt("auto", N_("Loss (auto: cross-entropy for classes, MSE for regression)."),
                     N_("Loss"), choices=("auto", *LOSSES))
    focal_gamma: float = _opt(2.0, N_("Focal loss focusing parameter γ."), N_("Focal γ"), low=0.0,
                              high=10.0, step=0.5)
    batch_size: int = _opt(64, N_("Examples per step."), N_("Batch size"), low=1, high=65_536,
                      step=16)
    epochs: int = _opt(3, N_("Passes over the training data."), N_("Epochs"), low=1, high=500,
                      step=1)
    early_stopping: int = _opt(0, N_("Stop after this many epochs without validation improvement "
                               "(0: off)."), N_("Early stopping patience (0: off)"), low=0,
                               high=500, step=1)
    # --- recording ---
    snapshots_per_epoch: int = _opt(1, N_("Snapshots recorded in each epoch (1 = end of epoch "
                                    "only)."), N_("Snapshots per epoch"), low=1, high=20, step=1)
    probe_size: int = _opt(64, N_("Validation examples used to measure activations."),
                           N_("Probe examples (activations)"), low=1, high=4096, step=32)
    # --- reproducibility and hardware ---
    seed: int = _opt(42, N_("Seeds weights, data, data order, dropout and sampling."), N_("Seed"),
                     low=0, high=2**31 - 1, step=1)
    deterministic: bool = _opt(True, N_("cuDNN deterministic algorithms."),
                               N_("Deterministic algorithms"))
    device: str = _opt("auto", N_("auto: cuda, then mps, then cpu."), N_("Device"), choices=DEVICES)
    threads: int = _opt(0, N_("torch threads for this run (0: automatic budget)."),
                        N_("CPU threads (0: automatic)"), low=0, high=256, step=1)
    name: str = _opt("", N_("Optional label shown in lists."), N_("Name (optional)"), max_len=80)

    def __post_init__(self) -> None:
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build and validate a config; unknown keys and wrong types are ConfigErrors."""
        if not isinstance(data, dict):
            raise ConfigError(t("A config must be a JSON object of options, not {kind}.",
                                kind=type(data).__name__))
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(str(k)[:40] for k in set(data) - set(known))
        if unknown:
            raise ConfigError(
                t("Unknown option(s) {unknown}. Valid options: {known}.",
                  unknown=", ".join(unknown), known=", ".join(known))
            )
        values = {k: _coerce(k, v, field_type(k)) for k, v in data.items()}
        return cls(**values)  # validated on construction

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some fields changed."""
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def validate(self) -> None:
        """Raise ConfigError on the first bad value, naming the option and what it accepts."""
        for name, opt in options().items():
            check_value(name, getattr(self, name), opt)
        if self.model == "cnn" and not 1 <= self.depth <= 4:
            raise ConfigError(t("depth: {depth} is out of range; use 1 to 4 (the cnn model has "
                                "1 to 4 conv blocks).", depth=self.depth))
        if self.kernel_size % 2 == 0:
            raise ConfigError(t("kernel_size: {size} is even; use an odd size (3, 5, 7, 9 or 11) "
                                "so the conv keeps the image's size.", size=self.kernel_size))


def options() -> dict[str, Option]:
    """Every RunConfig field's Option, in field order."""
    return {f.name: f.metadata["option"] for f in fields(RunConfig)}


def option(name: str) -> Option:
    """One field's Option (KeyError for a name that is not a field)."""
    return options()[name]


def field_type(name: str) -> type:
    """The Python type of a field's values (bool, int, float or str), read from its default."""
    return type(getattr(_DEFAULTS, name))


def check_value(name: str, value: Any, opt: Option | None = None) -> None:
    """Raise ConfigError if ``value`` (already of the field's type) is not what ``name`` accepts."""
    opt = opt or option(name)
    choices = opt.valid_choices()
    if choices is not None and value not in choices:
        raise ConfigError(t("{name}: {value!r} is not a valid choice. Choose one of: "
                            "{choices}.", name=name, value=value, choices=", ".join(choices)))
    if opt.low is not None and opt.high is not None:
        if not (math.isfinite(value) and opt.low <= value <= opt.high):
            shown = value if isinstance(value, int) else f"{value:g}"
            raise ConfigError(t("{name}: {value} is out of range; use {low} to {high}.",
                                name=name, value=shown, low=_num(opt.low), high=_num(opt.high)))
    if opt.max_len is not None and len(value) > opt.max_len:
        raise ConfigError(t("{name}: at most {n} characters.", name=name, n=opt.max_len))


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the canonical JSON of every field that changes the outcome."""
    data = {k: v for k, v in cfg.to_dict().items()
            if k not in _NOT_HASHED
            and not (k in ADDED_LATER and v == ADDED_LATER[k])}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def _num(x: float) -> str:
    """A range bound as a user types it: 500, 0.95, 1e-08, 2147483647."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _coerce(name: str, value: Any, kind: type) -> Any:
    """Convert strings (CLI, URL) and JSON numbers to the field's type, or raise ConfigError."""
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(str(value).strip())
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(str(value).strip()) if isinstance(value, str) else float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        if not isinstance(value, str):
            raise ValueError
        return value.strip()
    except (TypeError, ValueError, OverflowError):
        kind_name = {bool: t("true or false"), int: t("a whole number"), float: t("a number")}.get(
            kind, t("text")
        )
        raise ConfigError(t("{name}: expected {kind}, got {value}.", name=name, kind=kind_name,
                            value=_brief(value))) from None


def _brief(value: Any) -> str:
    """repr of a user's value, cut to 60 characters (huge ints cannot even be printed)."""
    try:
        text = repr(value)
    except ValueError:
        return t("a number too large to show")
    return text if len(text) <= 60 else text[:57] + "..."


def unchecked(cfg: RunConfig, **changes: Any) -> RunConfig:
    """A copy with some fields changed and *not* validated: the one deliberate bypass of the
    check on construction, for testing combinations that may fail (the form's fit checks).
    Never train one without ``validate()``; unknown fields are still a TypeError."""
    return _unvalidated({**cfg.to_dict(), **changes})


def _unvalidated(values: dict[str, Any]) -> RunConfig:
    unknown = set(values) - {f.name for f in fields(RunConfig)}
    if unknown:
        raise TypeError(f"RunConfig has no field(s) {', '.join(sorted(unknown))}")
    out = object.__new__(RunConfig)
    for name, value in values.items():
        object.__setattr__(out, name, value)  # frozen: set as dataclasses' own __init__ does
    return out


# the defaults, not validated: validating reads the registries, which would import torch here
_DEFAULTS = _unvalidated({f.name: f.default for f in fields(RunConfig)})
