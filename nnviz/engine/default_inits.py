"""PyTorch's own default initialization, per layer type: the theory for a model nnviz did not build.

``default_theory(model, name)`` returns the ``Theory`` a parameter follows right after PyTorch
constructs its layer (torch 2.x ``reset_parameters``), or a Theory of kind ``"unknown"`` when
the layer type's default is not known here (custom modules, bare ``nn.Parameter``s)::

    Linear, Conv1d/2d/3d, ConvTranspose1d/2d/3d, Bilinear
        weight  kaiming_uniform_(a=√5) = U(±1/√fan_in)     bias  U(±1/√fan_in)
        (fan_in as torch's _calculate_fan_in_and_fan_out; Bilinear: U(±1/√in1_features))
    Embedding, EmbeddingBag          weight  N(0, 1)
    BatchNorm*, InstanceNorm*, LayerNorm, GroupNorm, RMSNorm
                                     weight  1            bias  0
    MultiheadAttention               in_proj_weight, q/k/v_proj_weight  xavier_uniform_
                                     in_proj_bias, out_proj.bias  0
                                     bias_k, bias_v  xavier_normal_
                                     (out_proj.weight is a Linear: its default above)
    RNN, LSTM, GRU (and their Cells) every parameter U(±1/√hidden_size)
    PReLU                            weight  0.25
    inside nn.Transformer            every parameter with dim > 1: xavier_uniform_

The model's own code may re-initialize a layer (torchvision's ResNet draws conv weights with
kaiming_normal_); the theory then states what PyTorch's default would have been, and the formula
says so.
"""

from __future__ import annotations

import math

from torch import nn

from nnviz.engine.initializers import Theory, fans

_LINEAR_LIKE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
_RNNS = (nn.RNNBase, nn.RNNCellBase)
DEFAULT_NOTE = "PyTorch's default for {type} (if the model keeps it)"


def torch_type(module: nn.Module) -> str:
    """The torch layer class a module is (subclasses such as MultiheadAttention's
    NonDynamicallyQuantizableLinear map to Linear), else its own class name."""
    for cls in (*_LINEAR_LIKE, nn.Embedding, nn.MultiheadAttention):
        if isinstance(module, cls):
            return cls.__name__
    return type(module).__name__


def _point(value: float, why: str) -> Theory:
    return Theory("point", float(value), 0.0, float(value), float(value), None, why)


def _uniform(bound: float, why: str) -> Theory:
    if bound <= 0:
        return _point(0.0, why)
    return Theory("uniform", 0.0, bound / math.sqrt(3.0), -bound, bound, None,
                  f"{why}: U(±{bound:.3g}), std = {bound / math.sqrt(3.0):.3g}")


def _normal(std: float, why: str) -> Theory:
    return Theory("normal", 0.0, std, None, None, std, f"{why}: N(0, {std:.3g}²)")


def unknown(why: str) -> Theory:
    """No known theoretical distribution."""
    return Theory("unknown", math.nan, None, formula=why)


def _xavier_uniform(shape: tuple[int, ...], why: str) -> Theory:
    fan_in, fan_out = fans(shape)
    return _uniform(math.sqrt(6.0 / (fan_in + fan_out)), f"{why}, xavier_uniform_")


def default_theory(model: nn.Module, name: str) -> Theory:
    """The distribution of parameter ``name`` (as in named_parameters) under PyTorch's defaults."""
    modules = dict(model.named_modules())
    owner_name, _, local = name.rpartition(".")
    module = modules[owner_name]
    param = getattr(module, local)
    shape = tuple(int(s) for s in param.shape)
    t = type(module).__name__
    note = DEFAULT_NOTE.format(type=t)
    ancestors = [modules[".".join(owner_name.split(".")[:i])]
                 for i in range(owner_name.count(".") + 1 if owner_name else 0)]
    if any(isinstance(a, nn.Transformer) for a in [*ancestors, module]) and len(shape) > 1:
        return _xavier_uniform(shape, "nn.Transformer's default")
    parent = ancestors[-1] if ancestors else None
    if isinstance(parent, nn.MultiheadAttention) and owner_name.endswith("out_proj") \
            and local == "bias":
        return _point(0.0, "MultiheadAttention sets out_proj.bias to 0")
    if isinstance(module, _LINEAR_LIKE):
        weight_shape = tuple(int(s) for s in module.weight.shape)
        fan_in, _ = fans(weight_shape)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        if local in ("weight", "bias"):
            return _uniform(bound, f"{note}, U(±1/√fan_in), fan_in = {fan_in}")
    if isinstance(module, nn.Bilinear) and local in ("weight", "bias"):
        bound = 1.0 / math.sqrt(module.weight.shape[1])
        return _uniform(bound, f"{note}, U(±1/√in1_features)")
    if isinstance(module, nn.Embedding | nn.EmbeddingBag) and local == "weight":
        return _normal(1.0, note)
    if isinstance(module, _NORMS):
        if local == "weight":
            return _point(1.0, f"{note}: starts at 1")
        if local == "bias":
            return _point(0.0, f"{note}: starts at 0")
    if isinstance(module, nn.MultiheadAttention):
        if local in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            return _xavier_uniform(shape, note)
        if local == "in_proj_bias":
            return _point(0.0, f"{note}: starts at 0")
        if local in ("bias_k", "bias_v"):
            fan_in, fan_out = fans(shape)
            return _normal(math.sqrt(2.0 / (fan_in + fan_out)), f"{note}, xavier_normal_")
    if isinstance(module, _RNNS):
        return _uniform(1.0 / math.sqrt(module.hidden_size),
                        f"{note}, U(±1/√hidden_size), hidden_size = {module.hidden_size}")
    if isinstance(module, nn.PReLU) and local == "weight":
        return _point(module.init, f"{note}: starts at {module.init}")
    return unknown(f"unknown: no known default for {t}.{local}")
