"""Model registry: the tutorial's two models plus a configurable deep MLP and a small CNN.

Every model names its layers so that parameter names read well in the app (``conv1.weight``,
``fc3.bias``) and marks its nonlinearities as ``act<i>`` modules, which the recorder hooks to
measure activations on a probe batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nnviz.config import RunConfig
from nnviz.errors import ConfigError
from nnviz.i18n import N_, t

LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope; Kaiming's gain uses the same value


# The activation registry: the config's `activation` choices are these names.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def make_activation(name: str) -> nn.Module:
    """The nn.Module for an activation name of ACTIVATIONS."""
    return ACTIVATIONS[name]()


class SimpleNet(nn.Module):
    """The tutorial's SimpleNet: one Linear(2, 1), y = w1*x1 + w2*x2 + b."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2) -> (B, 1)
        return self.linear(x)


class SimpleCNN(nn.Module):
    """The tutorial's SimpleCNN exactly: Conv2d(3, 16, 3, padding=1) -> MaxPool2d(2) -> Linear."""

    # the trainer's CPU layout (training.image_layout): a training step is 1.5x faster
    # channels_last, and bit for bit NCHW's (tests/test_training.py; bench_layout.py)
    channels_last_on_cpu = True

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2)
        self.fc = nn.Linear(16 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) -> (B, 10)
        x = self.pool(self.conv1(x))  # (B, 16, 16, 16)
        x = x.flatten(1)  # (B, 4096)
        return self.fc(x)


class MLP(nn.Module):
    """``depth`` hidden Linear layers of ``width`` units, one activation, then an output layer."""

    def __init__(self, in_features: int, out_features: int, depth: int, width: int,
                 activation: str, dropout: float) -> None:
        super().__init__()
        self.depth = depth
        sizes = [in_features] + [width] * depth
        for i in range(depth):
            self.add_module(f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
            self.add_module(f"act{i + 1}", make_activation(activation))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, *) -> (B, out)
        x = x.flatten(1)
        for i in range(1, self.depth + 1):
            x = getattr(self, f"act{i}")(getattr(self, f"fc{i}")(x))
        return self.out(self.drop(x))


class CNN(nn.Module):
    """``depth`` blocks of conv -> [BatchNorm] -> activation -> MaxPool 2, then a Linear.

    The first conv is ``kernel_size`` × ``kernel_size`` (odd, padded to keep the image's size),
    the later ones 3×3.
    """

    def __init__(self, in_shape: tuple[int, ...], out_features: int, depth: int, width: int,
                 activation: str, batch_norm: bool, dropout: float, kernel_size: int = 3) -> None:
        super().__init__()
        channels, height, width_px = in_shape
        self.depth = depth
        # the trainer's CPU layout (training.image_layout): 2+ blocks train 1.5-1.7x faster
        # channels_last; one block with ReLU measured 0.8-0.96x there (bench_layout.py)
        self.channels_last_on_cpu = depth >= 2
        for i in range(1, depth + 1):
            out_ch = width * 2 ** (i - 1)
            k = kernel_size if i == 1 else 3
            self.add_module(f"conv{i}", nn.Conv2d(channels, out_ch, k, padding=k // 2))
            if batch_norm:
                self.add_module(f"bn{i}", nn.BatchNorm2d(out_ch))
            self.add_module(f"act{i}", make_activation(activation))
            self.add_module(f"pool{i}", nn.MaxPool2d(2))
            channels, height, width_px = out_ch, height // 2, width_px // 2
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels * height * width_px, out_features)
        self.feature_shape = (channels, height, width_px)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, out)
        for i in range(1, self.depth + 1):
            x = getattr(self, f"conv{i}")(x)
            if hasattr(self, f"bn{i}"):
                x = getattr(self, f"bn{i}")(x)
            x = getattr(self, f"pool{i}")(getattr(self, f"act{i}")(x))
        return self.fc(self.drop(x.flatten(1)))


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: what the model is, what input it expects, how to build it, and which
    config options it reads. Adding a model is adding one entry: the config's choices, the CLI,
    the Train form (which shows the options in ``uses``) and the fit checks read the registry."""

    name: str
    label: str
    description: str
    expects: str  # the input it takes, in words
    build: Callable[[RunConfig, tuple[int, ...], int], nn.Module]
    # (input_shape, n_classes, out) -> why it does not fit, or None
    check: Callable[[tuple[int, ...], int, int], str | None]
    uses: tuple[str, ...] = ()  # the RunConfig options it reads (depth, width, activation, ...)
    # The nonlinearity the init is matched to when the model has none to choose ("linear" for
    # the tutorial's models); None: the config's activation.
    fixed_activation: str | None = None

    def activation(self, cfg: RunConfig) -> str:
        """The nonlinearity the init should be matched to."""
        return self.fixed_activation or cfg.activation


def _check_simple_net(shape: tuple[int, ...], n_classes: int, out: int) -> str | None:
    if shape != (2,):
        return t("simple_net takes 2 input features: use regression, moons, circles, xor or "
                 "spiral.")
    if out != 1:
        return t("simple_net has a single output: use the regression data set, or a 2-class set "
                 "(moons, circles, xor) with the BCE loss.")
    return None


def _check_simple_cnn(shape: tuple[int, ...], n_classes: int, out: int) -> str | None:
    if shape != (3, 32, 32) or out != 10:
        return t("simple_cnn takes 32×32 RGB images in 10 classes: use shapes32 or cifar10.")
    return None


def _check_cnn(shape: tuple[int, ...], n_classes: int, out: int) -> str | None:
    if len(shape) != 3:
        return t("cnn takes images: use shapes32, shapes28, mnist, fashion_mnist or cifar10.")
    return None


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("simple_net", N_("SimpleNet"), N_("The tutorial's one-layer linear model "
                  "Linear(2, 1)."), N_("2 features (regression or a 2-class set with BCE)"),
                  lambda cfg, shape, out: SimpleNet(), _check_simple_net,
                  fixed_activation="linear"),
        ModelSpec("simple_cnn", N_("SimpleCNN"), N_("The tutorial's CNN: Conv2d(3, 16, 3) -> "
                  "MaxPool2d(2) -> Linear(4096, 10), no activation."), N_("32×32 RGB, 10 classes"),
                  lambda cfg, shape, out: SimpleCNN(), _check_simple_cnn,
                  fixed_activation="linear"),
        ModelSpec("mlp", N_("Deep MLP"), N_("A stack of `depth` Linear layers with one activation: "
                  "the place to watch signals vanish or explode with depth."), N_("any input "
                  "(flattened)"),
                  lambda cfg, shape, out: MLP(math.prod(shape), out, cfg.depth, cfg.width,
                                              cfg.activation, cfg.dropout),
                  lambda shape, n, out: None,
                  uses=("depth", "width", "activation", "dropout")),
        ModelSpec("cnn", N_("Small CNN"), N_("1-4 conv blocks (conv, optional BatchNorm, "
                  "activation, max-pool) and a Linear classifier."),
                  N_("32×32 RGB or 28×28 grey images"),
                  lambda cfg, shape, out: CNN(shape, out, cfg.depth, cfg.width, cfg.activation,
                                              cfg.batch_norm, cfg.dropout, cfg.kernel_size),
                  _check_cnn,
                  uses=("depth", "width", "activation", "batch_norm", "kernel_size", "dropout")),
    )
}


def output_size(task: str, n_classes: int, loss: str) -> int:
    """Output units: 1 for regression and binary BCE, else one logit per class."""
    if task == "regression" or (loss in ("bce", "focal") and n_classes == 2):
        return 1
    return n_classes


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], n_classes: int, task: str,
                loss: str) -> nn.Module:
    """Build the configured model for this data, or raise ConfigError saying what fits."""
    spec = MODELS[cfg.model]
    out = output_size(task, n_classes, loss)
    why = spec.check(tuple(input_shape), n_classes, out)
    if why:
        raise ConfigError(t("Model {model} does not fit data set {dataset}: {why}",
                            model=cfg.model, dataset=cfg.dataset, why=why))
    return spec.build(cfg, tuple(input_shape), out)
