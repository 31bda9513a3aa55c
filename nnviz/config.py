"""Run configuration: one dataclass holds every option of a training run.

A ``RunConfig`` is plain data (JSON in, JSON out). ``validate`` turns every bad value into a
``ConfigError`` whose message names the option and lists the valid choices, so the CLI, the app
and URL parameters all reject bad input the same way. ``config_hash`` identifies the run's
outcome: two configs with the same hash train to bit-identical snapshots on the same device type.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from nnviz.errors import ConfigError

MODELS = ("simple_net", "simple_cnn", "mlp", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")
OPTIMIZERS = ("sgd", "adam", "adamw", "adam_then_sgd")
SCHEDULERS = ("none", "step", "cosine", "plateau")
LOSSES = ("cross_entropy", "bce", "mse", "mae", "focal")
DEVICES = ("auto", "cpu", "cuda", "mps")
INIT_NAMES = (
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "orthogonal", "normal", "uniform", "trunc_normal", "zeros", "constant", "too_small",
    "too_large",
)
BIAS_INITS = ("default", "zeros", "constant")
INIT_MODES = ("fan_in", "fan_out")
DATASET_NAMES = (
    "regression", "moons", "circles", "spiral", "xor", "shapes32", "shapes28",
    "mnist", "fashion_mnist", "cifar10",
)
# Fields that do not change what a run computes: left out of the hash.
_NOT_HASHED = ("threads", "name")


@dataclass
class RunConfig:
    """Every option of one training run, with the defaults a first-time user should see."""

    # --- model ---
    model: str = "simple_cnn"        # one of MODELS
    depth: int = 3                   # mlp: hidden layers (1-40); cnn: conv blocks (2-4)
    width: int = 64                  # mlp: units per hidden layer; cnn: channels of the first block
    activation: str = "relu"         # mlp / cnn nonlinearity
    batch_norm: bool = False         # cnn only: BatchNorm after each conv
    dropout: float = 0.0             # mlp / cnn: dropout probability before the output layer(s)
    # --- initialization ---
    init: str = "default"            # one of INIT_NAMES ("default" = PyTorch's own)
    init_mode: str = "fan_in"        # kaiming: preserve variance forward (fan_in) or backward
    init_std: float = 0.01           # normal / trunc_normal: standard deviation
    init_a: float = 0.1              # uniform: U(-a, a) (the tutorial's 0.1 and 0.01)
    init_value: float = 0.0          # constant: every weight = value
    bias_init: str = "default"       # one of BIAS_INITS
    bias_value: float = 0.0          # bias constant
    # --- data ---
    dataset: str = "shapes32"        # one of DATASET_NAMES; must fit the model's input
    n_samples: int = 2000            # examples generated (or read, 0 = all for local sets)
    noise: float = 0.1               # noise of the generated data sets
    val_fraction: float = 0.2        # share held out for validation
    data_dir: str = ""               # folder with MNIST / Fashion-MNIST / CIFAR-10 files
    imbalance: float = 1.0           # majority / minority class ratio (1 = balanced)
    outlier_fraction: float = 0.0    # regression: share of training targets made outliers
    # --- optimization ---
    optimizer: str = "adam"          # one of OPTIMIZERS
    lr: float = 1e-3                 # learning rate
    momentum: float = 0.9            # sgd momentum
    weight_decay: float = 0.0        # L2 penalty (decoupled for adamw)
    switch_epoch: int = 3            # adam_then_sgd: first epoch trained with SGD
    scheduler: str = "none"          # one of SCHEDULERS
    step_size: int = 2               # step: epochs between LR drops
    gamma: float = 0.5               # step / plateau: LR multiplier
    patience: int = 1                # plateau: epochs without improvement before a drop
    loss: str = "auto"               # one of LOSSES, or auto (cross-entropy / MSE by task)
    focal_gamma: float = 2.0         # focal loss focusing parameter
    batch_size: int = 64             # examples per step
    epochs: int = 3                  # passes over the training data
    early_stopping: int = 0          # stop after this many epochs without val improvement (0: off)
    # --- recording ---
    snapshots_per_epoch: int = 1     # extra snapshots inside each epoch (1 = end of epoch only)
    probe_size: int = 64             # validation examples used to measure activations
    # --- reproducibility and hardware ---
    seed: int = 42                   # seeds weights, data and data order
    deterministic: bool = True       # cuDNN deterministic algorithms
    device: str = "auto"             # auto: cuda, then mps, then cpu
    threads: int = 0                 # torch threads for this run (0: automatic budget)
    name: str = ""                   # optional label shown in lists

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build and validate a config; unknown keys and wrong types are ConfigErrors."""
        if not isinstance(data, dict):
            raise ConfigError(f"A config must be a JSON object of options, not "
                              f"{type(data).__name__}.")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(str(k)[:40] for k in set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"Unknown option(s) {', '.join(unknown)}. Valid options: {', '.join(known)}."
            )
        values = {k: _coerce(k, v, type(getattr(cls(), k))) for k, v in data.items()}
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some fields changed."""
        return RunConfig.from_dict({**self.to_dict(), **changes})


    def validate(self) -> None:
        """Raise ConfigError on the first bad value, naming the option and the valid range."""
        _choice("model", self.model, MODELS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INIT_NAMES)
        _choice("init_mode", self.init_mode, INIT_MODES)
        _choice("bias_init", self.bias_init, BIAS_INITS)
        _choice("dataset", self.dataset, DATASET_NAMES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("loss", self.loss, ("auto", *LOSSES))
        _choice("device", self.device, DEVICES)
        _int_range("depth", self.depth, 1, 40)
        if self.model == "cnn":
            _int_range("depth", self.depth, 2, 4, why="the cnn model has 2 to 4 conv blocks")
        _int_range("width", self.width, 1, 2048)
        _int_range("n_samples", self.n_samples, 0, 200_000)
        _int_range("batch_size", self.batch_size, 1, 65_536)
        _int_range("epochs", self.epochs, 1, 500)
        _int_range("switch_epoch", self.switch_epoch, 1, 500)
        _int_range("step_size", self.step_size, 1, 500)
        _int_range("patience", self.patience, 0, 500)
        _int_range("early_stopping", self.early_stopping, 0, 500)
        _int_range("snapshots_per_epoch", self.snapshots_per_epoch, 1, 20)
        _int_range("probe_size", self.probe_size, 1, 4096)
        _int_range("seed", self.seed, 0, 2**31 - 1)
        _int_range("threads", self.threads, 0, 256)
        _float_range("dropout", self.dropout, 0.0, 0.95)
        _float_range("lr", self.lr, 1e-8, 100.0)
        _float_range("momentum", self.momentum, 0.0, 0.999)
        _float_range("weight_decay", self.weight_decay, 0.0, 10.0)
        _float_range("gamma", self.gamma, 1e-4, 1.0)
        _float_range("focal_gamma", self.focal_gamma, 0.0, 10.0)
        _float_range("init_std", self.init_std, 1e-8, 100.0)
        _float_range("init_a", self.init_a, 1e-8, 100.0)
        _float_range("init_value", self.init_value, -100.0, 100.0)
        _float_range("bias_value", self.bias_value, -100.0, 100.0)
        _float_range("noise", self.noise, 0.0, 10.0)
        _float_range("val_fraction", self.val_fraction, 0.01, 0.9)
        _float_range("imbalance", self.imbalance, 1.0, 1000.0)
        _float_range("outlier_fraction", self.outlier_fraction, 0.0, 0.49)
        if len(self.name) > 80:
            raise ConfigError("name: at most 80 characters.")


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the canonical JSON of every field that changes the outcome."""
    data = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_HASHED}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def field_help() -> dict[str, str]:
    """Option name -> the help comment written beside its default (used by the CLI and app)."""
    import inspect

    help_text: dict[str, str] = {}
    for line in inspect.getsource(RunConfig).splitlines():
        line = line.strip()
        if ":" in line and "#" in line and not line.startswith(("#", '"', "def")):
            name = line.split(":", 1)[0].strip()
            help_text[name] = line.split("#", 1)[1].strip()
    return help_text


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
        kind_name = {bool: "true or false", int: "a whole number", float: "a number"}.get(
            kind, "text"
        )
        raise ConfigError(f"{name}: expected {kind_name}, got {_brief(value)}.") from None


def _brief(value: Any) -> str:
    """repr of a user's value, cut to 60 characters (huge ints cannot even be printed)."""
    try:
        text = repr(value)
    except ValueError:
        return "a number too large to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not a valid choice. Choose one of: "
                          f"{', '.join(choices)}.")


def _int_range(name: str, value: int, low: int, high: int, why: str = "") -> None:
    if not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise ConfigError(f"{name}: {value} is out of range; use {low} to {high}{reason}.")


def _float_range(name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name}: {value} is out of range; use {low:g} to {high:g}.")


@dataclass(frozen=True)
class Preset:
    """A named lesson: a config and what it shows."""

    name: str
    label: str
    lesson: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> RunConfig:
        """The preset's validated config."""
        return RunConfig.from_dict(self.overrides)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "tutorial_cnn", "Tutorial SimpleCNN, PyTorch default init",
            "The tutorial's model with PyTorch's own init: kaiming_uniform(a=√5), std "
            "1/√(3·fan_in) = 0.111 for conv1 and 0.00902 for fc.",
            {"model": "simple_cnn", "dataset": "shapes32", "init": "default", "epochs": 3},
        ),
        Preset(
            "symmetry", "Symmetry: zeros init",
            "Every weight starts at 0, so every unit gets the same gradient and they stay "
            "identical: the layer behaves like a single unit.",
            {"model": "mlp", "dataset": "moons", "depth": 2, "width": 16,
             "activation": "tanh", "init": "zeros", "bias_init": "zeros",
             "optimizer": "sgd", "lr": 0.1, "epochs": 5},
        ),
        Preset(
            "vanishing", "Vanishing: deep sigmoid MLP, too-small init",
            "20 sigmoid layers with N(0, 0.001²) weights: each layer shrinks the backward "
            "signal, so the first layers barely move.",
            {"model": "mlp", "dataset": "spiral", "depth": 20, "width": 64,
             "activation": "sigmoid", "init": "too_small", "optimizer": "sgd", "lr": 0.1,
             "epochs": 5},
        ),
        Preset(
            "exploding", "Exploding: too-large init",
            "N(0, 1) weights on a 10-layer ReLU MLP: the signal grows about √(width/2)× per "
            "layer, logits blow up and SGD steps overshoot.",
            {"model": "mlp", "dataset": "spiral", "depth": 10, "width": 64,
             "activation": "relu", "init": "too_large", "optimizer": "sgd", "lr": 0.01,
             "epochs": 5},
        ),
        Preset(
            "xavier_deep_relu", "Xavier on a 30-layer ReLU MLP",
            "Xavier ignores that ReLU zeroes half the signal: the variance halves per layer "
            "(He et al. 2015), so deep layers see almost nothing.",
            {"model": "mlp", "dataset": "spiral", "depth": 30, "width": 64,
             "activation": "relu", "init": "xavier_normal", "optimizer": "sgd", "lr": 0.01,
             "epochs": 5},
        ),
        Preset(
            "kaiming_deep_relu", "Kaiming on a 30-layer ReLU MLP",
            "Kaiming doubles the variance to make up for ReLU: the signal keeps its size "
            "through all 30 layers.",
            {"model": "mlp", "dataset": "spiral", "depth": 30, "width": 64,
             "activation": "relu", "init": "kaiming_normal", "optimizer": "sgd", "lr": 0.01,
             "epochs": 5},
        ),
        Preset(
            "healthy", "Healthy baseline",
            "A small CNN with Kaiming init and Adam at lr 1e-3: loss falls, weights move "
            "gently, filters develop edge detectors.",
            {"model": "cnn", "dataset": "shapes32", "depth": 2, "width": 16,
             "init": "kaiming_normal", "batch_norm": True, "optimizer": "adam", "lr": 1e-3,
             "epochs": 4},
        ),
    )
}


def preset(name: str) -> Preset:
    """Look up a preset, or raise ConfigError listing them."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)}."
        ) from None
