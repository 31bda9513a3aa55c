"""Weight initializers: apply them to a model and say what distribution each parameter should have.

Facts this module teaches (checked against torch in ``tests/test_initializers.py``):

* PyTorch's default init for BOTH ``nn.Linear`` and ``nn.Conv2d`` weights is
  ``kaiming_uniform_(w, a=sqrt(5))``, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
  std = 1/sqrt(3 * fan_in). Biases default to U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the
  weight's fan_in. (It is not "Kaiming for conv, Xavier for linear".)
* A conv weight of shape (out, in, kh, kw) has fan_in = in*kh*kw and fan_out = out*kh*kw.
* BatchNorm starts with weight = 1 and bias = 0; initializers leave it that way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from nnviz.config import INIT_MODES
from nnviz.errors import ConfigError
from nnviz.i18n import N_

TOO_SMALL_STD = 1e-3
TOO_LARGE_STD = 1.0
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "linear")
DEFAULT_LEAKY_SLOPE = 0.01

# Truncation used by "trunc_normal": N(0, s^2) cut at ±TRUNC_AT·s.
TRUNC_AT = 2.0

_LAYER_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")
_NORM_TYPES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm")


@dataclass(frozen=True)
class InitParams:
    """Which initializer to use and its settings (settings it does not use are ignored)."""

    name: str = "default"
    mode: str = "fan_in"
    std: float = 0.01
    a: float = 0.1
    value: float = 0.0
    bias: str = "default"
    bias_value: float = 0.0


def _choices(options: Sequence[str]) -> str:
    """Format valid choices for an error message."""
    return ", ".join(repr(o) for o in options)


def validate(init: InitParams) -> None:
    """Raise ConfigError if `init` names an unknown initializer or has a bad number."""
    if not isinstance(init.name, str) or init.name not in INITIALIZERS:
        raise ConfigError(
            f"Unknown initializer {init.name!r}; valid choices: {_choices(list(INITIALIZERS))}."
        )
    if not isinstance(init.bias, str) or init.bias not in BIAS_INITS:
        raise ConfigError(
            f"Unknown bias initializer {init.bias!r}; valid choices: {_choices(list(BIAS_INITS))}."
        )
    if not isinstance(init.mode, str) or init.mode not in INIT_MODES:
        raise ConfigError(f"Unknown Kaiming mode {init.mode!r}; valid choices: "
                          f"{_choices(INIT_MODES)}.")
    for setting in ("std", "a", "value", "bias_value"):
        v = getattr(init, setting)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"Initializer setting {setting} must be a finite number, got {v!r}.")
    used = INITIALIZERS[init.name].uses
    if "std" in used and init.std <= 0:
        raise ConfigError(f"std must be > 0 for {init.name!r}, got {init.std!r}.")
    if "a" in used and init.a <= 0:
        raise ConfigError(f"a must be > 0 for 'uniform' (it draws from U(-a, a)), got {init.a!r}.")


def _check_activation(activation: str) -> None:
    """Raise ConfigError for an activation not in ACTIVATIONS."""
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"Unknown activation {activation!r}; valid choices: {_choices(ACTIVATIONS)}."
        )


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape, exactly as torch's _calculate_fan_in_and_fan_out."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan_in/fan_out need a weight with at least 2 dimensions, got shape {shape}; "
            "for a bias pass its layer's weight shape"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def gain(activation: str, leaky_slope: float = DEFAULT_LEAKY_SLOPE) -> float:
    """Recommended gain for an activation, as torch.nn.init.calculate_gain (gelu: as relu)."""
    _check_activation(activation)
    if activation == "gelu":
        # torch has no gain for GELU; GELU is close to ReLU away from 0, so use ReLU's √2.
        return math.sqrt(2.0)
    return float(nn.init.calculate_gain(activation, leaky_slope))


def _kaiming_nonlinearity(activation: str) -> str:
    """Name torch's kaiming_* functions accept for our activation (gelu treated as relu)."""
    return "relu" if activation == "gelu" else activation


def _trunc_std_factor(k: float = TRUNC_AT) -> float:
    """Std of N(0, 1) truncated to [-k, k] (≈0.8796 for k = 2)."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    z = math.erf(k / math.sqrt(2))
    return math.sqrt(1.0 - 2.0 * k * phi / z)


@dataclass(frozen=True)
class Theory:
    """The distribution a parameter's elements should follow right after initialization."""

    kind: str
    mean: float
    std: float | None
    low: float | None = None
    high: float | None = None
    scale: float | None = None
    formula: str = ""

    def pdf(self, x: np.ndarray) -> np.ndarray | None:
        """Density at x (to draw over a histogram); None for point/orthogonal/unknown kinds."""
        x = np.asarray(x, dtype=float)
        if self.kind == "uniform" and self.low is not None and self.high is not None:
            inside = (x >= self.low) & (x <= self.high)
            return np.where(inside, 1.0 / (self.high - self.low), 0.0)
        if self.kind == "normal" and self.scale is not None:
            z = (x - self.mean) / self.scale
            return np.exp(-0.5 * z * z) / (self.scale * math.sqrt(2 * math.pi))
        if self.kind == "trunc_normal" and None not in (self.scale, self.low, self.high):
            s, lo, hi = self.scale, self.low, self.high
            mass = 0.5 * (
                math.erf((hi - self.mean) / (s * math.sqrt(2)))
                - math.erf((lo - self.mean) / (s * math.sqrt(2)))
            )
            z = (x - self.mean) / s
            dens = np.exp(-0.5 * z * z) / (s * math.sqrt(2 * math.pi) * mass)
            return np.where((x >= lo) & (x <= hi), dens, 0.0)
        return None

    def to_dict(self) -> dict:
        """JSON-safe dict (a NaN mean becomes None)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}  # scalars: asdict's result
        if isinstance(d["mean"], float) and math.isnan(d["mean"]):
            d["mean"] = None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Theory:
        """Inverse of to_dict; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "kind" not in kw:
            raise ConfigError(f"A Theory needs a 'kind'; got keys {sorted(d)}.")
        kw["mean"] = math.nan if kw.get("mean") is None else float(kw["mean"])
        for k in ("std", "low", "high", "scale"):
            if kw.get(k) is not None:
                kw[k] = float(kw[k])
        return cls(**kw)


def _g(x: float) -> str:
    """Short number for formulas."""
    return f"{x:.3g}"


def _fan_text(shape: tuple[int, ...], which: str) -> str:
    """E.g. 'fan_in = 3×3×3 = 27' or 'fan_in = 4096'."""
    fan_in, fan_out = fans(shape)
    fan = fan_in if which == "fan_in" else fan_out
    if len(shape) <= 2:
        return f"{which} = {fan}"
    first = shape[1] if which == "fan_in" else shape[0]
    parts = "×".join(str(s) for s in (first, *shape[2:]))
    return f"{which} = {parts} = {fan}"


def _point(value: float, formula: str) -> Theory:
    """A point mass at value."""
    return Theory("point", float(value), 0.0, float(value), float(value), None, formula)


def _uniform(bound: float, formula: str) -> Theory:
    """U(-bound, bound), or a point at 0 when bound is 0."""
    if bound <= 0:
        return _point(0.0, formula)
    return Theory("uniform", 0.0, bound / math.sqrt(3.0), -bound, bound, None, formula)


def _normal(std: float, formula: str) -> Theory:
    """N(0, std²)."""
    return Theory("normal", 0.0, std, None, None, std, formula)


def _default_bias_theory(weight_shape: tuple[int, ...]) -> Theory:
    """PyTorch's default bias: U(±1/√fan_in) with the weight's fan_in."""
    fan_in, _ = fans(weight_shape)
    if fan_in <= 0:
        return _point(0.0, "fan_in = 0 → bias = 0")
    bound = 1.0 / math.sqrt(fan_in)
    return _uniform(
        bound,
        f"U(±1/√fan_in), {_fan_text(weight_shape, 'fan_in')} → bound = {_g(bound)}, "
        f"std = 1/√(3·{fan_in}) = {_g(bound / math.sqrt(3))}",
    )


# --- what each weight initializer draws, and the distribution that gives -----------------
# draw(t, init, activation, leaky_slope, g) fills t in place from generator g only;
# theory(shape, init, activation, leaky_slope) is the Theory of every element afterwards.


def _theory_default(shape: tuple[int, ...], init: InitParams, act: str, slope: float) -> Theory:
    fan_in, _ = fans(shape)
    if fan_in <= 0:
        return _point(0.0, "fan_in = 0 → nothing to draw")
    bound = 1.0 / math.sqrt(fan_in)
    return _uniform(
        bound,
        f"kaiming_uniform_(a=√5) = U(±1/√fan_in), {_fan_text(shape, 'fan_in')} → "
        f"std = 1/√(3·{fan_in}) = {_g(bound / math.sqrt(3))}",
    )


def _theory_xavier(normal: bool) -> Callable[..., Theory]:
    def theory(shape: tuple[int, ...], init: InitParams, act: str, slope: float) -> Theory:
        # Glorot & Bengio's formula has no activation gain (torch's xavier_*_ default gain=1)
        fan_in, fan_out = fans(shape)
        std = math.sqrt(2.0 / (fan_in + fan_out))
        base = (f"{_fan_text(shape, 'fan_in')}, {_fan_text(shape, 'fan_out')} → "
                f"std = √(2/(fan_in+fan_out)) = {_g(std)}")
        if normal:
            return _normal(std, f"N(0, std²), {base}")
        return _uniform(math.sqrt(3.0) * std, f"U(±√3·std), {base}")
    return theory


def _theory_kaiming(normal: bool) -> Callable[..., Theory]:
    def theory(shape: tuple[int, ...], init: InitParams, act: str, slope: float) -> Theory:
        fan_in, fan_out = fans(shape)
        g = gain(act, slope)
        fan = fan_in if init.mode == "fan_in" else fan_out
        std = g / math.sqrt(fan)
        base = (f"gain({act}) = {_g(g)}, {_fan_text(shape, init.mode)} → "
                f"std = gain/√{init.mode} = {_g(std)}")
        if normal:
            return _normal(std, f"N(0, std²), {base}")
        return _uniform(math.sqrt(3.0) * std, f"U(±√3·std), {base}")
    return theory


def _draw_kaiming(normal: bool) -> Callable[..., object]:
    def draw(t: torch.Tensor, init: InitParams, act: str, slope: float,
             g: torch.Generator) -> object:
        nl = _kaiming_nonlinearity(act)
        a = slope if nl == "leaky_relu" else 0.0
        fn = nn.init.kaiming_normal_ if normal else nn.init.kaiming_uniform_
        return fn(t, a=a, mode=init.mode, nonlinearity=nl, generator=g)
    return draw


def _theory_orthogonal(shape: tuple[int, ...], init: InitParams, act: str,
                       slope: float) -> Theory:
    g = gain(act, slope)
    rows, cols = shape[0], math.prod(shape[1:])
    std = g / math.sqrt(max(rows, cols))
    return Theory("orthogonal", 0.0, std, formula=(
        f"gain({act}) = {_g(g)} × (semi-)orthogonal {rows}×{cols} matrix → "
        f"element std = gain/√max(rows, cols) = {_g(std)}"))


def _theory_trunc_normal(shape: tuple[int, ...], init: InitParams, act: str,
                         slope: float) -> Theory:
    s = init.std
    true_std = s * _trunc_std_factor()
    return Theory("trunc_normal", 0.0, true_std, -TRUNC_AT * s, TRUNC_AT * s, s,
                  f"N(0, {_g(s)}²) cut at ±2·{_g(s)} → true std = {_trunc_std_factor():.4f}·"
                  f"{_g(s)} = {_g(true_std)}")


@dataclass(frozen=True)
class InitSpec:
    """A registry entry: the initializer as shown to a student, the settings it reads, what it
    draws and the distribution that gives. Adding an initializer is adding one entry: the
    config's choices, the CLI, the Train form and the theory curves all read the registry."""

    name: str
    label: str
    description: str
    uses: tuple[str, ...] = ()
    uses_activation: bool = False
    # weights: draw(t, init, activation, leaky_slope, g); biases: draw(t, init, weight_shape, g)
    draw: Callable[..., object] = field(kw_only=True, repr=False)
    # weights: theory(shape, init, activation, leaky_slope); biases: theory(weight_shape, init)
    theory: Callable[..., Theory] = field(kw_only=True, repr=False)


_ini = nn.init

INITIALIZERS: dict[str, InitSpec] = {
    s.name: s
    for s in (
        InitSpec(
            "default",
            N_("PyTorch default"),
            N_("What nn.Linear and nn.Conv2d both do on creation: kaiming_uniform_(a=√5), which is "
            "U(-1/√fan_in, 1/√fan_in), so std = 1/√(3·fan_in). It ignores the activation."),
            draw=lambda t, init, act, slope, g: _ini.kaiming_uniform_(t, a=math.sqrt(5),
                                                                      generator=g),
            theory=_theory_default,
        ),
        InitSpec(
            "xavier_uniform",
            N_("Xavier (Glorot) uniform"),
            N_("U(±√(6/(fan_in+fan_out))), std = √(2/(fan_in+fan_out)) (Glorot & Bengio 2010, "
            "no activation gain): balances the signal's variance going forward and the "
            "gradient's going backward. Made for tanh/linear-like activations; on ReLU the "
            "variance halves per layer (He et al. 2015)."),
            draw=lambda t, init, act, slope, g: _ini.xavier_uniform_(t, gain=1.0, generator=g),
            theory=_theory_xavier(normal=False),
        ),
        InitSpec(
            "xavier_normal",
            N_("Xavier (Glorot) normal"),
            N_("N(0, std²) with std = √(2/(fan_in+fan_out)): same spread as Xavier uniform, "
            "drawn from a bell curve."),
            draw=lambda t, init, act, slope, g: _ini.xavier_normal_(t, gain=1.0, generator=g),
            theory=_theory_xavier(normal=True),
        ),
        InitSpec(
            "kaiming_uniform",
            N_("Kaiming (He) uniform"),
            N_("U(±gain·√(3/fan)), std = gain/√fan, with fan = fan_in (keeps activations' size "
            "steady) or fan_out (keeps gradients' size steady). For ReLU gain = √2 makes up "
            "for ReLU zeroing half its inputs."),
            uses=("mode",),
            uses_activation=True,
            draw=_draw_kaiming(normal=False),
            theory=_theory_kaiming(normal=False),
        ),
        InitSpec(
            "kaiming_normal",
            N_("Kaiming (He) normal"),
            N_("N(0, std²) with std = gain/√fan (fan = fan_in or fan_out); for ReLU gain = √2, "
            "so std = √(2/fan_in)."),
            uses=("mode",),
            uses_activation=True,
            draw=_draw_kaiming(normal=True),
            theory=_theory_kaiming(normal=True),
        ),
        InitSpec(
            "orthogonal",
            N_("Orthogonal"),
            N_("A random (semi-)orthogonal matrix times gain (conv kernels flattened to "
            "out × in·kh·kw): every singular value equals gain. With gain 1 and at least as many "
            "rows (outputs) as columns (inputs) a linear layer keeps every vector's length; a "
            "layer with fewer outputs than inputs drops the part of the input it does not "
            "see. Element std = gain/√max(rows, cols)."),
            uses_activation=True,
            draw=lambda t, init, act, slope, g: _ini.orthogonal_(t, gain=gain(act, slope),
                                                                 generator=g),
            theory=_theory_orthogonal,
        ),
        InitSpec(
            "normal",
            N_("Normal N(0, std²)"),
            N_("Every weight drawn from N(0, std²) with the std you choose. It ignores the layer's "
            "size, so a std that suits a small layer is too big for a wide one."),
            uses=("std",),
            draw=lambda t, init, act, slope, g: _ini.normal_(t, 0.0, init.std, generator=g),
            theory=lambda shape, init, act, slope: _normal(init.std, f"N(0, {_g(init.std)}²)"),
        ),
        InitSpec(
            "uniform",
            N_("Uniform U(-a, a)"),
            N_("Every weight drawn from U(-a, a), so std = a/√3. It ignores the layer's size."),
            uses=("a",),
            draw=lambda t, init, act, slope, g: _ini.uniform_(t, -init.a, init.a, generator=g),
            theory=lambda shape, init, act, slope: _uniform(
                init.a, f"U(±{_g(init.a)}) → std = a/√3 = {_g(init.a / math.sqrt(3))}"),
        ),
        InitSpec(
            "trunc_normal",
            N_("Truncated normal"),
            N_("N(0, std²) with draws beyond ±2·std redrawn (trunc_normal_ with a=-2·std, "
            "b=2·std). Cutting the tails shrinks the real std to about 0.88·std."),
            uses=("std",),
            draw=lambda t, init, act, slope, g: _ini.trunc_normal_(
                t, 0.0, init.std, -TRUNC_AT * init.std, TRUNC_AT * init.std, generator=g),
            theory=_theory_trunc_normal,
        ),
        InitSpec(
            "zeros",
            N_("All zeros"),
            N_("Every weight is 0: each layer's output ignores its input, earlier layers get zero "
            "gradient at first, and units that start identical get identical updates "
            "(symmetry is never broken) unless their biases differ."),
            draw=lambda t, init, act, slope, g: t.zero_(),
            theory=lambda shape, init, act, slope: _point(0.0, "all weights = 0"),
        ),
        InitSpec(
            "constant",
            N_("Constant"),
            N_("Every weight equals the value you choose: all units in a layer compute the same "
            "thing and get the same gradient, so they stay copies of each other unless their "
            "biases differ."),
            uses=("value",),
            draw=lambda t, init, act, slope, g: t.fill_(init.value),
            theory=lambda shape, init, act, slope: _point(
                init.value, f"all weights = {_g(init.value)}"),
        ),
        InitSpec(
            "too_small",
            N_("Too small: N(0, 0.001²)"),
            N_("N(0, 0.001²), far below 1/√fan_in: the signal shrinks layer after layer toward 0, "
            "and so do the gradients (vanishing)."),
            draw=lambda t, init, act, slope, g: _ini.normal_(t, 0.0, TOO_SMALL_STD,
                                                             generator=g),
            theory=lambda shape, init, act, slope: _normal(
                TOO_SMALL_STD, f"N(0, {TOO_SMALL_STD:g}²) (too small)"),
        ),
        InitSpec(
            "too_large",
            N_("Too large: N(0, 1)"),
            N_("N(0, 1), far above 1/√fan_in: the signal grows layer after layer (exploding); with "
            "tanh or sigmoid the units saturate and their gradients vanish."),
            draw=lambda t, init, act, slope, g: _ini.normal_(t, 0.0, TOO_LARGE_STD,
                                                             generator=g),
            theory=lambda shape, init, act, slope: _normal(
                TOO_LARGE_STD, f"N(0, {TOO_LARGE_STD:g}²) (too large)"),
        ),
    )
}


def _draw_default_bias(t: torch.Tensor, init: InitParams, weight_shape: tuple[int, ...],
                       g: torch.Generator) -> object:
    fan_in, _ = fans(weight_shape)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    return _ini.uniform_(t, -bound, bound, generator=g)


BIAS_INITS: dict[str, InitSpec] = {
    s.name: s
    for s in (
        InitSpec(
            "default",
            N_("PyTorch default"),
            N_("U(-1/√fan_in, 1/√fan_in) using the weight's fan_in, so std = 1/√(3·fan_in): "
            "what nn.Linear and nn.Conv2d do on creation."),
            draw=_draw_default_bias,
            theory=lambda weight_shape, init: _default_bias_theory(weight_shape),
        ),
        InitSpec(
            "zeros",
            N_("Zeros"),
            N_("Every bias is 0, the common choice: the random weights already make units differ."),
            draw=lambda t, init, weight_shape, g: t.zero_(),
            theory=lambda weight_shape, init: _point(0.0, "all biases = 0"),
        ),
        InitSpec(
            "constant",
            N_("Constant"),
            N_("Every bias equals the value you choose (a small positive value such as 0.01 keeps "
            "ReLU units switched on at the start)."),
            uses=("bias_value",),
            draw=lambda t, init, weight_shape, g: t.fill_(init.bias_value),
            theory=lambda weight_shape, init: _point(
                init.bias_value, f"all biases = {_g(init.bias_value)}"),
        ),
    )
}


def _unknown(formula: str) -> Theory:
    """No theoretical distribution."""
    return Theory("unknown", math.nan, None, formula=formula)


def theory_for(
    param_name: str,
    shape: tuple[int, ...],
    module_type: str,
    weight_shape: tuple[int, ...] | None,
    init: InitParams,
    activation: str,
    *,
    leaky_slope: float = DEFAULT_LEAKY_SLOPE,
) -> Theory:
    """Theoretical distribution of one parameter ('weight', 'bias' or dotted) after apply_init."""
    validate(init)
    _check_activation(activation)
    kind = param_name.rsplit(".", 1)[-1]
    shape = tuple(int(s) for s in shape)
    if module_type in _NORM_TYPES:
        if kind == "weight":
            return _point(1.0, f"{module_type} weight starts at 1")
        if kind == "bias":
            return _point(0.0, f"{module_type} bias starts at 0")
        return _unknown(f"no theory for {module_type}.{kind}")
    if module_type not in _LAYER_TYPES:
        return _unknown(f"{module_type} is not re-initialized")
    if kind == "weight":
        return INITIALIZERS[init.name].theory(shape, init, activation, leaky_slope)
    if kind == "bias":
        if weight_shape is None:
            raise ValueError(
                "theory_for a bias needs its layer's weight_shape (fan_in comes from it)"
            )
        return BIAS_INITS[init.bias].theory(tuple(int(s) for s in weight_shape), init)
    return _unknown(f"no theory for {module_type}.{kind}")


def _module_type(module: nn.Module) -> str:
    """Canonical type name used by theory_for (subclasses map to their torch base class)."""
    for cls in (
        nn.Linear,
        nn.Conv1d,
        nn.Conv2d,
        nn.Conv3d,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.BatchNorm3d,
        nn.LayerNorm,
        nn.GroupNorm,
    ):
        if isinstance(module, cls):
            return cls.__name__
    return type(module).__name__


def _fill(param: torch.Tensor, fn: Callable[[torch.Tensor], object], g: torch.Generator) -> None:
    """Run an in-place init on param; via a contiguous buffer on g's device when needed.

    Drawing on the generator's device (usually the CPU) gives the same numbers whether the model
    already sits on a GPU or not.
    """
    if param.numel() == 0:
        return
    if param.is_contiguous() and param.device == g.device:
        fn(param)
    else:
        tmp = torch.empty(param.shape, dtype=param.dtype, device=g.device)
        fn(tmp)
        param.copy_(tmp)


def _init_weight(
    w: torch.Tensor, init: InitParams, activation: str, leaky_slope: float, g: torch.Generator
) -> None:
    """Fill a Linear/Conv weight with its initializer's draw, from generator g only."""
    draw = INITIALIZERS[init.name].draw
    _fill(w, lambda t: draw(t, init, activation, leaky_slope, g), g)


def _init_bias(b: torch.Tensor, weight: torch.Tensor, init: InitParams, g: torch.Generator) -> None:
    """Fill a bias with its bias initializer's draw (default: U(±1/√fan_in) of the weight)."""
    draw = BIAS_INITS[init.bias].draw
    _fill(b, lambda t: draw(t, init, tuple(weight.shape), g), g)


@torch.no_grad()
def apply_init(
    model: nn.Module,
    init: InitParams,
    activation: str,
    generator: torch.Generator,
    *,
    leaky_slope: float = DEFAULT_LEAKY_SLOPE,
) -> None:
    """Re-initialise Linear/Conv layers with `init` and BatchNorm to 1/0, using only `generator`."""
    validate(init)
    _check_activation(activation)
    for module in model.modules():
        mtype = _module_type(module)
        if mtype in _LAYER_TYPES:
            _init_weight(module.weight, init, activation, leaky_slope, generator)
            if module.bias is not None:
                _init_bias(module.bias, module.weight, init, generator)
        elif mtype in _NORM_TYPES:
            module.reset_parameters()  # weight = 1, bias = 0 (and running stats reset); no RNG


def theories(
    model: nn.Module,
    init: InitParams,
    activation: str,
    *,
    leaky_slope: float = DEFAULT_LEAKY_SLOPE,
) -> dict[str, Theory]:
    """Theory for every parameter of `model`, keyed as in model.named_parameters()."""
    validate(init)
    _check_activation(activation)
    modules = dict(model.named_modules())
    out: dict[str, Theory] = {}
    for pname, p in model.named_parameters():
        owner_name, _, local = pname.rpartition(".")
        module = modules[owner_name]
        weight = getattr(module, "weight", None)
        weight_shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else None
        out[pname] = theory_for(
            local,
            tuple(p.shape),
            _module_type(module),
            weight_shape,
            init,
            activation,
            leaky_slope=leaky_slope,
        )
    return out
