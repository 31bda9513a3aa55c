"""Diagnostics: what is wrong with a run, the numbers that prove it, and the step that fixes it.

Everything is computed from recorded data only (``run.meta``, each snapshot's statistics, and
the stored values of weight tensors for the symmetry check), so a run imported from a zip file
is diagnosed exactly like one trained here.

A ``Flag`` has a stable ``code`` (see CODES), a ``severity`` (critical / warning / info), the
layers (module names such as ``fc3``) and snapshot epochs where it holds, ``evidence`` (plain
numbers and short strings), a plain ``explanation``, a ``fix`` and the ``guide_step`` (1-8) of the
tuning guide's order: 1 initialization, 2 batch size, 3 epochs / early stopping, 4 learning
rate & scheduler, 5 model structure, 6 loss, 7 activation, 8 regularization.

Checks run per snapshot (``flags_at``); ``diagnose`` merges snapshots 0..upto into one flag per
code (severity = the worst seen, evidence from the latest snapshot where it held) and
``timeline`` lists the codes that hold at each snapshot.

Depth profiles (vanishing / exploding) follow the chain of Linear / Conv layers in model order.
A normalization layer (BatchNorm, ...) between two of them resets the scale, so the chain is cut
there. The activation "signal" of a layer is ``signal_std`` (the spread of its output across the
probe examples, which biases do not add to; older runs without it fall back to the plain std).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnviz.store.runs import Run, RunStore

SEVERITIES = ("critical", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
CODES = (
    "non_finite", "exploding", "vanishing", "symmetry", "frozen", "dead_relu", "saturation",
    "lr_too_high", "lr_too_low", "overfitting",
)
TITLES = {
    "non_finite": "NaN or Inf values",
    "exploding": "Exploding signal or gradients",
    "vanishing": "Vanishing signal or gradients",
    "symmetry": "Identical units (symmetry not broken)",
    "frozen": "Frozen layer",
    "dead_relu": "Dead ReLU units",
    "saturation": "Saturated sigmoid / tanh units",
    "lr_too_high": "Learning rate too high",
    "lr_too_low": "Learning rate too low",
    "overfitting": "Overfitting",
}

# The tuning guide's order (the seed tutorial, section 7): step -> (title, anchor on the page).
GUIDE_STEPS: dict[int, tuple[str, str]] = {
    1: ("Initialization", "step-1"),
    2: ("Batch size", "step-2"),
    3: ("Epochs and early stopping", "step-3"),
    4: ("Learning rate and scheduler", "step-4"),
    5: ("Model structure", "step-5"),
    6: ("Loss function", "step-6"),
    7: ("Activation", "step-7"),
    8: ("Regularization", "step-8"),
}
GUIDE_PAGE = "pages/5_Tuning_guide.py"  # the app's tuning-guide page (st.page_link target)
GUIDE_URL = "/Tuning_guide"             # its URL path

# ---------------------------------------------------------------------------------- thresholds
# Update ratio ‖ΔW‖/‖W‖ of one optimizer step: about 1e-3 is healthy (CS231n "Neural Networks 3",
# section "Ratio of weights:updates"; Karpathy's makemore part 3 plots it against a line at
# 1e-3). "Far from" = more than 10x away on either side.
UPDATE_RATIO_REF = 1e-3
UPDATE_RATIO_HIGH = 1e-2    # above: steps too big for the weights (lr_too_high evidence)
UPDATE_RATIO_LOW = 1e-4     # below: weights barely move (lr_too_low / vanishing evidence)
# Depth profiles: a variance-preserving init keeps the signal's std roughly constant through
# depth (Glorot & Bengio 2010; He et al. 2015, who call a steady shrink or growth with depth the
# failure to avoid). We flag a change of more than two orders of magnitude along the chain: at
# He et al.'s "variance halves per layer" rate (Xavier on ReLU) that takes about 14 layers, so
# a 30-layer Xavier-ReLU MLP (std ratio about 2^-15 = 3e-5) is flagged and a 5-layer one (2^-2)
# is not.
DEPTH_RATIO = 100.0
# One layer that multiplies (or divides) the signal's std by 10x or more on its own: a
# variance-preserving layer has gain about 1, PyTorch's default init about 0.4-0.6. The same
# factor on the weights alone: std 10x Kaiming's √(2/fan_in) (the largest standard init)
# multiplies the signal by about 10x per layer (He et al. 2015, section 2.2).
LAYER_GAIN = 10.0
MIN_CHAIN_VANISHING = 3     # a trend with depth (and the gradient / update profiles) needs 3+
# Gradient spike: the network's gradient norm √(Σ‖g‖²) over 10x the running median of earlier
# snapshots (the rule; Pascanu, Mikolov & Bengio 2013 describe exploding gradients as
# such sudden spikes of this norm, and clip it).
GRAD_SPIKE = 10.0
# Weights growing: ‖W‖ at least doubling per epoch while the layer is already larger than the
# largest variance-preserving scale, std > √(2/fan_in) (He et al. 2015, ReLU gain √2). Growth
# from a small init up to that scale is ordinary learning.
WEIGHT_GROWTH_PER_EPOCH = 2.0
HE_GAIN = math.sqrt(2.0)
# Dead ReLU: CS231n ("Neural Networks 1", ReLU) warns that "as much as 40% of your network can
# be dead" with a too-high learning rate; keras-contrib's DeadReLUDetector reports every
# layer with dead units. We warn from 40% and note from 10% of a layer's units.
DEAD_WARN = 0.40
DEAD_INFO = 0.10
# Saturation: Karpathy's makemore part 3 counts tanh outputs with |t| > 0.97 and shows a
# well-initialised tanh stack (gain 5/3) at about 3-5%; stats.py uses the same rails for
# sigmoid (< 0.03 or > 0.97). We note from 10% and warn from 20% (4x the healthy level).
SATURATION_WARN = 0.20
SATURATION_INFO = 0.10
# Symmetry: weight rows (and biases) equal within float32 rounding of the layer's scale.
SYMMETRY_RTOL = 1e-6
SYMMETRY_STABLE_RANK = 1.0 + 1e-3  # identical rows have stable rank exactly 1 (cheap pre-check)
# Loss trend per epoch: "rose" / "flat" at a 1% relative change. torch's ReduceLROnPlateau calls
# less than 1e-4 relative "no improvement"; 1% is a plateau a student can see on the curve.
LOSS_REL_CHANGE = 0.01
# Loss spike inside an epoch: the epoch's mean training loss 10x (or more) the validation loss
# measured at its end. The two differ by little in a steady run (dropout, the epoch's own
# progress); an order of magnitude means the loss blew up for a while during the epoch.
LOSS_SPIKE = 10.0
# Overfitting: Prechelt (1998), "Early stopping - but when?": generalization loss
# GL(t) = 100 * (E_val(t) / min E_val - 1); GL > 5 (val loss 5% above its best) is his GL_5 rule.
GENERALIZATION_LOSS = 0.05
GAP_EPOCHS = 2              # info: train/val gap grew in each of the last 2 epochs

LAYER_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")


@dataclass
class Flag:
    """One diagnosis: what holds, where, when, the evidence, why, and what fixes it."""

    code: str
    severity: str
    layers: list[str]
    epochs: list[float]
    evidence: dict[str, float | str]
    explanation: str
    fix: str
    guide_step: int
    first_seen: dict[str, Any] | None = None
    snapshots: list[int] = field(default_factory=list)  # snapshot indices where it holds

    @property
    def title(self) -> str:
        """Short human title of the code."""
        return TITLES.get(self.code, self.code)

    @property
    def guide_title(self) -> str:
        return GUIDE_STEPS[self.guide_step][0]

    @property
    def guide_url(self) -> str:
        """Link to the tuning guide's step, e.g. '/Tuning_guide#step-4'."""
        return guide_url(self.guide_step)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become strings)."""
        d = asdict(self)
        d["evidence"] = {k: _json_number(v) for k, v in self.evidence.items()}
        d["title"] = self.title
        d["guide_title"] = self.guide_title
        d["guide_url"] = self.guide_url
        return d


def guide_url(step: int) -> str:
    """URL of a tuning-guide step."""
    return f"{GUIDE_URL}#{GUIDE_STEPS[step][1]}"


def format_value(value: Any) -> str:
    """Evidence value as text: whole numbers as such, else 3 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        if value == 0:
            return "0"
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.3g}"
        return f"{value:.2e}"
    return str(value)


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return format_value(v)
    return v


# -------------------------------------------------------------------------- run structure


@dataclass
class _Layer:
    """A Linear / Conv module: its parameters and place in the chain."""

    module: str
    weight: str
    bias: str | None
    module_type: str
    units: int
    fan_in: int
    stored_whole: bool
    norm_after: bool = False  # a normalization module follows before the next layer


class _Context:
    """Run-level facts every check reads (layers in order, history, loss)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        params = run.params
        order = sorted(params, key=lambda n: params[n].get("order", 0))
        modules: list[tuple[str, str]] = []  # (module, module_type) in model order
        for name in order:
            info = params[name]
            if not modules or modules[-1][0] != info["module"]:
                modules.append((info["module"], info["module_type"]))
        self.layers: list[_Layer] = []
        for module, mtype in modules:
            if mtype in LAYER_TYPES and f"{module}.weight" in params:
                info = params[f"{module}.weight"]
                shape = [int(s) for s in info["shape"]]
                bias = f"{module}.bias" if f"{module}.bias" in params else None
                self.layers.append(_Layer(
                    module, f"{module}.weight", bias, mtype, shape[0] if shape else 1,
                    int(np.prod(shape[1:])) if len(shape) > 1 else 1,
                    info.get("stored", "all") == "all"))
            elif "Norm" in mtype and self.layers:
                self.layers[-1].norm_after = True
        self.activation_layers = [(layer["name"], layer["kind"]) for layer in run.layers]
        self.position: dict[str, int] = {}
        for name in [n for n, _ in self.activation_layers] + [m for m, _ in modules]:
            self.position.setdefault(name, len(self.position))
        self.history = run.history
        self.epochs = [float(e["epoch"]) for e in run.meta.get("snapshots", [])]
        self.n_snapshots = len(self.epochs)
        self.depth: dict[int, dict[str, Any]] = {}

    def stats(self, i: int) -> dict[str, Any]:
        return self.run.snapshot(i).stats

    def history_upto(self, epoch: float) -> list[dict[str, Any]]:
        return [h for h in self.history if float(h["epoch"]) <= epoch + 1e-9]

    def chains(self) -> list[list[_Layer]]:
        """Runs of consecutive layers not separated by a normalization module."""
        out: list[list[_Layer]] = [[]]
        for layer in self.layers:
            out[-1].append(layer)
            if layer.norm_after:
                out.append([])
        return [c for c in out if c]


def _num(x: Any) -> float | None:
    """A finite float, or None."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _signal(acts: dict[str, Any], module: str) -> float | None:
    a = acts.get(module)
    if not a:
        return None
    value = a.get("signal_std", a.get("std"))
    return _num(value)


def _grad(pstats: dict[str, Any], key: str = "std") -> float | None:
    g = pstats.get("grad") or {}
    return _num(g.get(key))


# ------------------------------------------------------------------------------ the checks


def _check_non_finite(ctx: _Context, i: int) -> Flag | None:
    st = ctx.stats(i)
    layers: list[str] = []
    evidence: dict[str, float | str] = {}
    what: list[str] = []
    nan_w = inf_w = 0
    grad_layers = []
    for layer in ctx.layers:
        for p in (layer.weight, layer.bias):
            s = st["params"].get(p) if p else None
            if not s:
                continue
            if s.get("nan_count", 0) or s.get("inf_count", 0):
                nan_w += int(s.get("nan_count", 0))
                inf_w += int(s.get("inf_count", 0))
                if layer.module not in layers:
                    layers.append(layer.module)
            g = s.get("grad") or {}
            if any(isinstance(g.get(k), float) and not math.isfinite(g[k])
                   for k in ("norm", "last_norm")):
                if layer.module not in grad_layers:
                    grad_layers.append(layer.module)
    for name, s in st["params"].items():  # other parameters (BatchNorm, ...)
        module = name.rpartition(".")[0]
        if any(name in (lay.weight, lay.bias) for lay in ctx.layers):
            continue
        if s.get("nan_count", 0) or s.get("inf_count", 0):
            nan_w += int(s.get("nan_count", 0))
            inf_w += int(s.get("inf_count", 0))
            if module not in layers:
                layers.append(module)
    if nan_w or inf_w:
        what.append("weights")
        evidence["NaN weights"] = float(nan_w)
        evidence["Inf weights"] = float(inf_w)
    if grad_layers:
        what.append("gradients")
        evidence["layers with non-finite gradients"] = float(len(grad_layers))
        layers += [m for m in grad_layers if m not in layers]
    bad_acts = [(n, a) for n, a in st.get("activations", {}).items()
                if a.get("nan_count", 0) or a.get("inf_count", 0)]
    if bad_acts:
        what.append("activations")
        evidence["NaN activations"] = float(sum(int(a.get("nan_count", 0)) for _, a in bad_acts))
        evidence["Inf activations"] = float(sum(int(a.get("inf_count", 0)) for _, a in bad_acts))
        evidence["first layer with NaN/Inf output"] = bad_acts[0][0]
    epoch = ctx.epochs[i]
    bad_loss = [h for h in ctx.history_upto(epoch)  # a loss not logged (own loops) is no flag
                if any(k in h and _num(h[k]) is None for k in ("train_loss", "val_loss"))]
    diverged = ctx.run.meta.get("diverged_at")
    if diverged and i == len(ctx.epochs) - 1 and ctx.run.status == "diverged":
        what.append(str(diverged.get("what", "loss")))
        evidence["diverged at step"] = float(diverged.get("step", 0))
    elif bad_loss:
        what.append("loss")
        evidence["epoch with non-finite loss"] = float(bad_loss[0]["epoch"])
    if not what:
        return None
    evidence["non-finite"] = ", ".join(dict.fromkeys(what))
    at_init = _explodes_at_init(ctx)
    if at_init:
        evidence["signal already exploding at init"] = "yes"
    return Flag(
        "non_finite", "critical", layers, [epoch], evidence,
        "Some numbers became NaN (not a number) or Inf (infinite): "
        f"{evidence['non-finite']}. Once one NaN appears it spreads to every value it touches, "
        "so the run cannot recover. It usually follows exploding values: steps far too large "
        "for the weights, or weights so large that the outputs overflow"
        + (" (here the signal was already exploding at init)." if at_init else "."),
        ("Use a variance-preserving init (Kaiming for ReLU, Xavier for tanh), then lower the "
         "learning rate if it still diverges; check the data for NaN or huge values."
         if at_init else
         "Lower the learning rate (try 10x smaller), use a variance-preserving init (Kaiming "
         "for ReLU, Xavier for tanh), and check the data for NaN or huge values."),
        1 if at_init else 4,
    )


def _explodes_at_init(ctx: _Context) -> bool:
    """The signal grows with depth, or a layer's weights are far too large, at snapshot 0."""
    return bool(ctx.n_snapshots and (_depth_evidence(ctx, 0)["explode"] or _weight_scale(ctx, 0)))


def _chain_profile(ctx: _Context, i: int, value: Callable[[_Layer], float | None]
                   ) -> list[list[tuple[_Layer, float]]]:
    """Per chain: (layer, value) for layers with a finite value >= 0."""
    out = []
    for chain in ctx.chains():
        pts = [(layer, v) for layer in chain if (v := value(layer)) is not None and v >= 0]
        out.append(pts)
    return out


def _depth_evidence(ctx: _Context, i: int) -> dict[str, Any]:
    """Signal and gradient ratios along every chain of this snapshot (computed once)."""
    if i not in ctx.depth:
        ctx.depth[i] = _depth_evidence_uncached(ctx, i)
    return ctx.depth[i]


def _depth_evidence_uncached(ctx: _Context, i: int) -> dict[str, Any]:
    st = ctx.stats(i)
    acts = st.get("activations", {})
    params = st["params"]
    found: dict[str, Any] = {"vanish": [], "explode": []}

    for pos in _chain_profile(ctx, i, lambda layer: _signal(acts, layer.module)):
        # signal: the chain's first layer is the reference (no signal there: nothing to say)
        if len(pos) < 2 or pos[0][1] <= 0:
            continue
        first, last = pos[0], pos[-1]
        ratio = last[1] / first[1]
        gains = [(b[0], b[1] / a[1]) for a, b in zip(pos, pos[1:], strict=False) if a[1] > 0]
        big = [(lay, g) for lay, g in gains if g >= LAYER_GAIN]
        small = [(lay, g) for lay, g in gains if g <= 1 / LAYER_GAIN]
        base = {"signal std, first layer": first[1], "signal std, last layer": last[1],
                "signal ratio last/first": ratio, "from": first[0].module, "to": last[0].module}
        if ratio >= DEPTH_RATIO or big:
            found["explode"].append({
                **base, "largest layer gain": max(g for _, g in gains) if gains else ratio,
                "layers": [lay.module for lay, v in pos if v / first[1] >= LAYER_GAIN]
                or [lay.module for lay, _ in big] or [last[0].module]})
        if (len(pos) >= MIN_CHAIN_VANISHING and ratio <= 1 / DEPTH_RATIO) or small:
            found["vanish"].append({
                **base, "smallest layer gain": min(g for _, g in gains) if gains else ratio,
                "layers": [lay.module for lay, v in pos if v / first[1] <= 1 / DEPTH_RATIO]
                or [lay.module for lay, _ in small]})

    for pts in _chain_profile(ctx, i, lambda layer: _grad(params.get(layer.weight, {}))):
        if len(pts) < MIN_CHAIN_VANISHING or pts[-1][1] <= 0:
            continue
        first, last = pts[0], pts[-1]
        ratio = first[1] / last[1]
        base = {"grad std, input side": first[1], "grad std, output side": last[1],
                "grad ratio input/output": ratio, "from": first[0].module,
                "to": last[0].module}
        if ratio <= 1 / DEPTH_RATIO:
            found["vanish"].append({**base, "layers": [
                lay.module for lay, v in pts if v / last[1] <= 1 / DEPTH_RATIO]})
        elif ratio >= DEPTH_RATIO:
            found["explode"].append({**base, "layers": [
                lay.module for lay, v in pts if v / last[1] >= DEPTH_RATIO]})

    for pts in _chain_profile(ctx, i, lambda layer: _num(
            params.get(layer.weight, {}).get("update_ratio"))):
        if len(pts) < MIN_CHAIN_VANISHING or pts[-1][1] <= 0:
            continue
        first, last = pts[0], pts[-1]
        if first[1] < UPDATE_RATIO_LOW and first[1] <= last[1] / DEPTH_RATIO:
            found["vanish"].append({
                "update ratio, input side": first[1], "update ratio, output side": last[1],
                "from": first[0].module, "to": last[0].module,
                "layers": [lay.module for lay, v in pts if v < UPDATE_RATIO_LOW]})
    return found


def _merge_evidence(items: list[dict[str, Any]]) -> tuple[list[str], dict[str, float | str]]:
    layers: list[str] = []
    evidence: dict[str, float | str] = {}
    for item in items:
        for m in item.get("layers", []):
            if m not in layers:
                layers.append(m)
        for k, v in item.items():
            if k in ("layers", "from", "to"):
                continue
            evidence.setdefault(k, v)
    return layers, evidence


def _order(ctx: _Context, layers: Iterable[str]) -> list[str]:
    """Module names in forward order (probed modules first by their order, then the rest)."""
    return sorted(dict.fromkeys(layers), key=lambda m: ctx.position.get(m, len(ctx.position)))


def _check_vanishing(ctx: _Context, i: int) -> Flag | None:
    found = _depth_evidence(ctx, i)["vanish"]
    if not found:
        return None
    layers, evidence = _merge_evidence(found)
    return Flag(
        "vanishing", "warning", _order(ctx, layers), [ctx.epochs[i]], evidence,
        "The signal shrinks layer after layer: each layer passes on a smaller spread than it "
        "received, so deep layers see almost nothing of the input, and going backward the "
        "gradients shrink the same way, so the layers near the input barely learn. Weights "
        "that are too small do this; so does Xavier init on ReLU (ReLU zeroes half the "
        "signal, so its variance halves per layer, He et al. 2015), sigmoid, whose slope "
        "is at most 0.25, and dead ReLUs, which pass nothing at all.",
        "Use Kaiming (He) init for ReLU and Xavier for tanh (step 1); prefer ReLU over sigmoid "
        "in hidden layers (step 7); BatchNorm or fewer layers also help (step 5).",
        1,
    )


def _weight_scale(ctx: _Context, i: int) -> list[dict[str, Any]]:
    """Layers whose weight std is LAYER_GAIN x (or more) Kaiming's √(2/fan_in)."""
    params = ctx.stats(i)["params"]
    out = []
    for layer in ctx.layers:
        std = _num(params.get(layer.weight, {}).get("std"))
        if std is None or layer.norm_after:
            continue  # a normalization layer right after resets the scale
        scale = std * math.sqrt(layer.fan_in) / HE_GAIN
        if scale >= LAYER_GAIN:
            out.append({"weight std / Kaiming std": scale, "layers": [layer.module]})
    if len(out) > 1:  # report the largest; list every layer
        worst = max(out, key=lambda d: d["weight std / Kaiming std"])
        out = [{**worst, "layers": [m for d in out for m in d["layers"]]}]
    return out


def _weight_growth(ctx: _Context, i: int) -> list[dict[str, Any]]:
    """Layers whose ‖W‖ grew WEIGHT_GROWTH_PER_EPOCH x per epoch while above Kaiming's scale."""
    if i == 0:
        return []
    prev, cur = ctx.stats(i - 1)["params"], ctx.stats(i)["params"]
    span = max(ctx.epochs[i] - ctx.epochs[i - 1], 1e-9)
    out = []
    for layer in ctx.layers:
        a = _num(prev.get(layer.weight, {}).get("l2"))
        b = _num(cur.get(layer.weight, {}).get("l2"))
        std = _num(cur.get(layer.weight, {}).get("std"))
        if not a or b is None or std is None:
            continue
        per_epoch = (b / a) ** (1.0 / span)
        scale = std * math.sqrt(layer.fan_in) / HE_GAIN  # 1.0 = Kaiming's std for ReLU
        if per_epoch >= WEIGHT_GROWTH_PER_EPOCH and scale > 1.0:
            out.append({"weight norm growth per epoch": per_epoch,
                        "weight std / Kaiming std": scale, "layers": [layer.module]})
    return out


def _total_grad_norm(params: dict[str, Any], layers: list[_Layer], key: str) -> float | None:
    """√(Σ ‖g‖²) over the weight layers (the norm Pascanu et al. clip), or None."""
    norms = [_grad(params.get(layer.weight, {}), key) for layer in layers]
    norms = [g for g in norms if g is not None]
    return math.sqrt(sum(g * g for g in norms)) if norms else None


def _grad_spikes(ctx: _Context, i: int) -> list[dict[str, Any]]:
    """The whole network's gradient norm jumping over GRAD_SPIKE x its running median."""
    if i < 2:
        return []
    earlier = [_total_grad_norm(ctx.stats(j)["params"], ctx.layers, "norm") for j in range(1, i)]
    earlier = [g for g in earlier if g is not None]
    cur = ctx.stats(i)["params"]
    now = [g for k in ("norm", "last_norm")
           if (g := _total_grad_norm(cur, ctx.layers, k)) is not None]
    if not earlier or not now:
        return []
    median = statistics.median(earlier)
    if median <= 0 or max(now) < GRAD_SPIKE * median:
        return []
    jumps = []
    for layer in ctx.layers:
        before = [_grad(ctx.stats(j)["params"].get(layer.weight, {}), "norm") for j in range(1, i)]
        before = [g for g in before if g is not None]
        after = _grad(cur.get(layer.weight, {}), "norm")
        if before and after is not None and statistics.median(before) > 0:
            jumps.append((after / statistics.median(before), layer.module))
    jumps.sort(reverse=True)
    return [{"grad norm now": max(now), "grad norm running median": median,
             "spike factor": max(now) / median,
             "layers": [m for f, m in jumps if f >= GRAD_SPIKE] or [m for _, m in jumps[:1]]}]


def _check_exploding(ctx: _Context, i: int) -> Flag | None:
    found = (_depth_evidence(ctx, i)["explode"] + _weight_scale(ctx, i)
             + _weight_growth(ctx, i) + _grad_spikes(ctx, i))
    if not found:
        return None
    layers, evidence = _merge_evidence(found)
    at_init = i == 0 or _explodes_at_init(ctx)
    return Flag(
        "exploding", "warning", _order(ctx, layers), [ctx.epochs[i]], evidence,
        "Values grow out of proportion: the signal's spread is multiplied layer after layer "
        "(or the weights or gradients jump by orders of magnitude). Outputs get huge, the "
        "loss is enormous and confident-wrong, steps overshoot, and NaN is often next. "
        "Weights that are too large for the layer's fan-in do this from the start; a learning "
        "rate that is too high does it during training.",
        ("Use a variance-preserving init: Kaiming (He) for ReLU, Xavier for tanh, so each "
         "layer keeps the signal's size (step 1); BatchNorm also helps (step 5)."
         if at_init else
         "Lower the learning rate (try 3-10x smaller) or add a scheduler that lowers it "
         "(step 4)."),
        1 if at_init else 4,
    )


def _rows_identical(values: np.ndarray, units: int, bias: np.ndarray | None) -> tuple[bool, float]:
    """(all rows equal within rounding, largest difference from row 0); bias: an extra column."""
    m = values.astype(np.float64).reshape(units, -1)
    if bias is not None and bias.size == units:
        m = np.concatenate([m, bias.astype(np.float64).reshape(units, 1)], axis=1)
    if not np.all(np.isfinite(m)):
        return False, float("nan")
    diff = float(np.max(np.abs(m - m[0]))) if m.size else 0.0
    scale = float(np.max(np.abs(m))) if m.size else 0.0
    return diff <= SYMMETRY_RTOL * scale, diff


def _symmetry_kind(ctx: _Context, i: int, layer: _Layer) -> str | None:
    """How a layer's units are copies of each other, or None (see the kinds below)."""
    # 'units': weights and biases identical; 'weights': rows identical, biases differ;
    # 'parallel': rows differ only in scale (rank 1)
    s = ctx.stats(i)["params"].get(layer.weight, {})
    if layer.units < 2 or not layer.stored_whole or s.get("nan_count", 0) or \
            s.get("inf_count", 0):
        return None
    rank = _num(s.get("stable_rank"))  # None: all zero
    if rank is not None and rank > SYMMETRY_STABLE_RANK:
        return None  # rows not parallel, so not identical: no need to read the values
    snap = ctx.run.snapshot(i)
    weights = snap.values(layer.weight)
    same_w, _ = _rows_identical(weights, layer.units, None)
    if same_w:
        if layer.bias is None:
            return "units"
        bias = snap.values(layer.bias).astype(np.float64)
        same_b = bool(np.all(np.isfinite(bias))) and \
            float(np.max(np.abs(bias - bias[0]))) <= SYMMETRY_RTOL * float(np.max(np.abs(bias)))
        return "units" if same_b else "weights"
    return "parallel" if rank is not None and layer.fan_in >= 2 else None


def _check_symmetry(ctx: _Context, i: int) -> Flag | None:
    hits = [(layer, kind) for layer in ctx.layers
            if (kind := _symmetry_kind(ctx, i, layer)) is not None]
    if not hits:
        return None
    text = {"units": "{n} identical units (weights and bias)",
            "weights": "{n} units with identical weights (biases differ)",
            "parallel": "{n} units whose weights differ only in scale (rank 1)"}
    evidence: dict[str, float | str] = {"symmetric layers": float(len(hits))}
    for layer, kind in hits[:6]:
        evidence[layer.module] = text[kind].format(n=layer.units)
    permanent = any(kind == "units" for _, kind in hits)
    after = " after training" if i > 0 else ""
    return Flag(
        "symmetry", "critical" if permanent else "warning", [lay.module for lay, _ in hits],
        [ctx.epochs[i]], evidence,
        f"The units of these layers are copies of each other{after}: their weights are "
        "identical (or differ only in scale), so they all respond to the same feature of their "
        "input. Units that also share their bias compute the same output and get the same "
        "gradient, so gradient descent keeps them identical forever and the layer acts like a "
        "single unit; with different biases the symmetry breaks only slowly. This is what "
        "all-zero or constant initialization does; random initialization breaks the symmetry.",
        "Initialize weights randomly (Kaiming for ReLU, Xavier for tanh); zeros are fine only "
        "for biases.",
        1,
    )


def _check_frozen(ctx: _Context, i: int) -> Flag | None:
    if i == 0:
        return None
    cur, prev = ctx.stats(i)["params"], ctx.stats(i - 1)["params"]
    hits = []
    snap = prev_snap = None
    for layer in ctx.layers:
        s = cur.get(layer.weight, {})
        if "grad" not in s or s.get("nan_count", 0) or s.get("inf_count", 0):
            continue
        ratio = s.get("update_ratio")
        if ratio not in (None, 0.0):
            continue
        if layer.stored_whole:
            snap = snap or ctx.run.snapshot(i)
            prev_snap = prev_snap or ctx.run.snapshot(i - 1)
            same = np.array_equal(snap.values(layer.weight), prev_snap.values(layer.weight))
        else:
            p = prev.get(layer.weight, {})
            same = all(s.get(k) == p.get(k) for k in ("l2", "mean", "std", "min", "max"))
        if same:
            hits.append((layer.module, _grad(s, "norm")))
    if not hits:
        return None
    total = len(ctx.layers)
    evidence: dict[str, float | str] = {
        "frozen layers": float(len(hits)), "layers with weights": float(total),
        "largest gradient norm among them": max((g or 0.0) for _, g in hits),
    }
    return Flag(
        "frozen", "warning", [m for m, _ in hits], [ctx.epochs[i]], evidence,
        "These layers' weights did not change at all since the previous snapshot: their "
        "gradient was exactly zero, or so small that a step could not change a single float32 "
        "number. A frozen layer learns nothing. Zero gradients come from all-zero weights "
        "downstream (symmetry), dead units, or gradients that vanished on the way back.",
        "Look at the other flags for the cause: use a random variance-preserving init (Kaiming "
        "or Xavier) instead of zeros or tiny weights, and ReLU instead of sigmoid in deep "
        "stacks.",
        1,
    )


def _dead_layers(ctx: _Context, i: int) -> list[tuple[str, float]]:
    """(ReLU layer, dead fraction) for layers at or above DEAD_INFO at snapshot i."""
    hits = []
    for name, a in ctx.stats(i).get("activations", {}).items():
        if a.get("kind") != "relu" or a.get("nan_count", 0) or a.get("inf_count", 0):
            continue
        dead = _num(a.get("dead_frac"))
        if dead is not None and dead >= DEAD_INFO:
            hits.append((name, dead))
    return hits


def _check_dead_relu(ctx: _Context, i: int) -> Flag | None:
    hits = _dead_layers(ctx, i)
    if not hits:
        return None
    worst = max(d for _, d in hits)
    evidence: dict[str, float | str] = {"largest dead fraction": worst,
                                        "ReLU layers with dead units": float(len(hits))}
    for name, dead in sorted(hits, key=lambda h: -h[1])[:4]:
        evidence[f"{name}: dead fraction"] = dead
    at_init = bool(_dead_layers(ctx, 0))
    if at_init:
        why = ("They were dead from the start. In a deep ReLU stack the representations of "
               "different examples grow more alike with depth, so a unit tends to be on for "
               "every example or for none (Lu et al. 2019, \"Dying ReLU and initialization\"); "
               "a narrow input (2 features) makes this worse.")
        fix = ("Use fewer or wider layers, or BatchNorm (step 5); LeakyReLU keeps a small "
               "gradient flowing through units that are off (step 7).")
    else:
        why = ("A too-high learning rate knocks units into this state during training (CS231n: "
               "up to 40% of a network), as do large negative biases.")
        fix = ("Lower the learning rate (step 4), or use LeakyReLU, whose small negative slope "
               "keeps a gradient flowing (step 7).")
    return Flag(
        "dead_relu", "warning" if worst >= DEAD_WARN else "info", _order_acts(ctx, hits),
        [ctx.epochs[i]], evidence,
        "Some ReLU units output 0 for every example of the probe batch. A dead ReLU passes "
        "no gradient, so it may never switch on again: capacity the network pays for and "
        f"cannot use. {why}",
        fix,
        7,
    )


def _order_acts(ctx: _Context, hits: Iterable[tuple[Any, ...]]) -> list[str]:
    return _order(ctx, (h[0] for h in hits))


def _check_saturation(ctx: _Context, i: int) -> Flag | None:
    acts = ctx.stats(i).get("activations", {})
    hits = []
    for name, a in acts.items():
        if a.get("kind") not in ("tanh", "sigmoid"):
            continue
        sat = _num(a.get("saturated_frac"))
        if sat is not None and sat >= SATURATION_INFO:
            hits.append((name, a["kind"], sat))
    if not hits:
        return None
    worst = max(s for _, _, s in hits)
    evidence: dict[str, float | str] = {"largest saturated fraction": worst}
    for name, _kind, sat in sorted(hits, key=lambda h: -h[2])[:4]:
        evidence[f"{name}: saturated fraction"] = sat
    sigmoid = any(k == "sigmoid" for _, k, _ in hits)
    return Flag(
        "saturation", "warning" if worst >= SATURATION_WARN else "info", _order_acts(ctx, hits),
        [ctx.epochs[i]], evidence,
        "Many sigmoid / tanh outputs sit on their flat rails (tanh beyond ±0.97, sigmoid "
        "below 0.03 or above 0.97). There the slope is nearly zero, so almost no gradient "
        "passes: the unit is stuck and the layers before it stop learning. Inputs to the "
        "activation that are too large (weights too large) push units there.",
        "Scale the init to the activation: Xavier for tanh / sigmoid (step 1); or use ReLU in "
        "hidden layers and keep sigmoid for a binary output (step 7).",
        7 if sigmoid else 1,
    )


def _loss_trend(ctx: _Context, epoch: float) -> dict[str, Any]:
    """Train-loss trend up to ``epoch``: rose (in one of the last 2 epochs), flat, spiked."""
    hist = ctx.history_upto(epoch)
    losses = [_num(h.get("train_loss")) for h in hist]
    out: dict[str, Any] = {"epochs": len(hist), "rose": False, "flat": False, "spiked": False,
                           "diverged": ctx.run.status == "diverged" and epoch >= ctx.epochs[-1]}
    if any(v is None for v in losses):
        out["diverged"] = True
        return out
    for h, train in zip(hist, losses, strict=True):
        val = _num(h.get("val_loss"))
        if train is not None and val and val > 0 and train >= LOSS_SPIKE * val:
            out["spiked"] = True
            out["spike"] = train / val
    changes = [(b - a) / max(abs(a), 1e-12) for a, b in zip(losses, losses[1:], strict=False)]
    if changes:
        out["change"] = changes[-1]
        out["rose"] = any(c > LOSS_REL_CHANGE for c in changes[-2:])
        out["flat"] = abs(changes[-1]) < LOSS_REL_CHANGE
    return out


def _update_ratios(ctx: _Context, i: int) -> list[tuple[str, float]]:
    params = ctx.stats(i)["params"]
    out = []
    for layer in ctx.layers:
        r = _num(params.get(layer.weight, {}).get("update_ratio"))
        if r is not None and r > 0:
            out.append((layer.module, r))
    return out


def _check_lr_high(ctx: _Context, i: int) -> Flag | None:
    ratios = _update_ratios(ctx, i)
    if not ratios:
        return None
    median = float(np.median([r for _, r in ratios]))
    if median < UPDATE_RATIO_HIGH:
        return None
    trend = _loss_trend(ctx, ctx.epochs[i])
    bad_loss = trend["rose"] or trend["diverged"] or trend["spiked"]
    evidence: dict[str, float | str] = {
        "median update ratio": median, "healthy update ratio": UPDATE_RATIO_REF,
        "largest update ratio": max(r for _, r in ratios)}
    if "change" in trend:
        evidence["train loss change, last epoch"] = trend["change"]
    if trend["spiked"]:
        evidence["epoch train loss / val loss"] = trend["spike"]
    if trend["diverged"]:
        evidence["loss"] = "diverged"
    return Flag(
        "lr_too_high", "warning" if bad_loss else "info",
        [m for m, r in ratios if r >= UPDATE_RATIO_HIGH], [ctx.epochs[i]], evidence,
        "Each optimizer step changes the weights by ‖ΔW‖/‖W‖ = "
        f"{format_value(median)} (median over layers), far above the ~1e-3 rule of thumb "
        "(CS231n). "
        + ("The loss went up, spiked or diverged: steps overshoot the minimum."
           if bad_loss else
           "The loss still falls, so this is a note, but if it starts to oscillate or rise, "
           "the steps are too big."),
        "Lower the learning rate (3-10x), or add a scheduler (cosine or step decay) that "
        "shrinks it as training goes on.",
        4,
    )


def _check_lr_low(ctx: _Context, i: int) -> Flag | None:
    ratios = _update_ratios(ctx, i)
    if not ratios:
        return None
    largest = max(r for _, r in ratios)
    if largest >= UPDATE_RATIO_LOW:
        return None
    trend = _loss_trend(ctx, ctx.epochs[i])
    evidence: dict[str, float | str] = {
        "largest update ratio": largest, "healthy update ratio": UPDATE_RATIO_REF}
    if "change" in trend:
        evidence["train loss change, last epoch"] = trend["change"]
    return Flag(
        "lr_too_low", "warning" if trend["flat"] else "info", [m for m, _ in ratios],
        [ctx.epochs[i]], evidence,
        "Even the fastest-moving layer changes by only ‖ΔW‖/‖W‖ = "
        f"{format_value(largest)} per step, far below the ~1e-3 rule of thumb (CS231n): "
        "training crawls"
        + (" and the loss has flattened." if trend["flat"] else "."),
        "Raise the learning rate (3-10x), or use Adam, which adapts the step size per weight.",
        4,
    )


def _check_overfitting(ctx: _Context, i: int) -> Flag | None:
    hist = ctx.history_upto(ctx.epochs[i])
    pts = [(int(h["epoch"]), _num(h.get("train_loss")), _num(h.get("val_loss"))) for h in hist]
    pts = [(e, t, v) for e, t, v in pts if t is not None and v is not None]
    if len(pts) < 2:
        return None
    vals = [v for _, _, v in pts]
    best = min(vals)
    best_epoch = pts[vals.index(best)][0]
    last_e, last_t, last_v = pts[-1]
    train_at_best = pts[vals.index(best)][1]
    gl = last_v / best - 1 if best > 0 else 0.0
    gaps = [v - t for _, t, v in pts]
    evidence: dict[str, float | str] = {
        "val loss": last_v, "best val loss": best, "best epoch": float(best_epoch),
        "train loss": last_t, "train/val gap": gaps[-1]}
    # ... while the training loss still falls (by over 1% since the best epoch): a network that
    # is not learning (loss at chance, val loss jittering) is not overfitting
    if gl > GENERALIZATION_LOSS and last_t < train_at_best * (1 - LOSS_REL_CHANGE):
        severity = "warning"
        evidence["val loss above its best"] = gl
        what = (f"The validation loss is {format_value(100 * gl)}% above its best (epoch "
                f"{best_epoch}) while the training loss keeps falling")
    elif (len(gaps) > GAP_EPOCHS and gaps[-1] > 0
          and all(b > a for a, b in zip(gaps[-GAP_EPOCHS - 1:], gaps[-GAP_EPOCHS:],
                                        strict=False))):
        severity = "info"
        what = (f"The gap between validation and training loss has grown for {GAP_EPOCHS} "
                "epochs in a row (validation still improves)")
    else:
        return None
    return Flag(
        "overfitting", severity, [], [ctx.epochs[i]], evidence,
        f"{what}: the network is starting to memorise the training examples instead of "
        "learning what generalizes (Prechelt 1998 stops training when the validation loss "
        "is 5% above its best).",
        "Add dropout (0.2-0.5) and L2 weight decay (step 8), stop early at the best epoch "
        "(step 3), or use more training data.",
        8,
    )


_CHECKS: tuple[Callable[[_Context, int], Flag | None], ...] = (
    _check_non_finite, _check_exploding, _check_vanishing, _check_symmetry, _check_frozen,
    _check_dead_relu, _check_saturation, _check_lr_high, _check_lr_low, _check_overfitting,
)

# Per-run cache of per-snapshot results: a committed snapshot never changes, so its flags do
# not either (they read only snapshots <= it and history up to its epoch).
_CACHE: weakref.WeakKeyDictionary[Run, dict[int, list[Flag]]] = weakref.WeakKeyDictionary()


def _snapshot_flags(run: Run, i: int, ctx: _Context | None = None) -> list[Flag]:
    per_run = _CACHE.setdefault(run, {})
    if i not in per_run:
        ctx = ctx or _Context(run)
        flags = [f for check in _CHECKS if (f := check(ctx, i)) is not None]
        step = int(run.meta["snapshots"][i].get("step", 0))
        for f in flags:
            f.snapshots = [i]
            f.first_seen = {"snapshot": i, "epoch": ctx.epochs[i], "step": step}
            if f.code == "non_finite":
                f.first_seen["what"] = f.evidence.get("non-finite", "")
                f.first_seen["layers"] = list(f.layers)
        per_run[i] = flags
    return per_run[i]


def _check_index(run: Run, index: int | None) -> int:
    n = run.n_snapshots
    if n == 0:
        return -1
    if index is None:
        return n - 1
    if index < 0:
        index += n
    return max(0, min(index, n - 1))


def _merge(run: Run, upto: int) -> dict[str, Flag]:
    """One flag per code over snapshots 0..upto (worst severity, latest evidence)."""
    ctx = _Context(run)
    merged: dict[str, Flag] = {}
    for i in range(upto + 1):
        for f in _snapshot_flags(run, i, ctx):
            if f.code not in merged:
                merged[f.code] = Flag(**{**asdict(f), "layers": list(f.layers),
                                         "epochs": list(f.epochs)})
                continue
            m = merged[f.code]
            worst = min(m.severity, f.severity, key=_RANK.__getitem__)
            m.layers = _order(ctx, [*m.layers, *f.layers])
            m.epochs.append(ctx.epochs[i])
            m.snapshots.append(i)
            if f.code != "non_finite":  # non_finite keeps the evidence of its first sight
                m.evidence, m.explanation, m.fix = f.evidence, f.explanation, f.fix
                m.guide_step = f.guide_step
            m.severity = worst
    return merged


def _sorted(flags: Iterable[Flag]) -> list[Flag]:
    return sorted(flags, key=lambda f: (_RANK[f.severity], CODES.index(f.code)))


def diagnose(run: Run, upto: int | None = None) -> list[Flag]:
    """Flags over snapshots 0..upto (default: all), worst first."""
    last = _check_index(run, upto)
    if last < 0:
        return []
    return _sorted(_merge(run, last).values())


def flags_at(run: Run, index: int) -> list[Flag]:
    """Flags that hold at snapshot ``index``, with their history up to it, worst first."""
    i = _check_index(run, index)
    if i < 0:
        return []
    now = {f.code: f for f in _snapshot_flags(run, i)}
    merged = _merge(run, i)
    out = []
    for code, f in now.items():
        m = merged[code]
        out.append(Flag(**{**asdict(f), "layers": list(f.layers), "epochs": list(m.epochs),
                           "snapshots": list(m.snapshots), "first_seen": m.first_seen}))
    return _sorted(out)


def timeline(run: Run) -> list[tuple[int, list[str]]]:
    """(snapshot index, codes that hold there) for every snapshot."""
    return [(i, [f.code for f in _sorted(_snapshot_flags(run, i))])
            for i in range(run.n_snapshots)]


def timeline_severities(run: Run) -> list[tuple[int, float, dict[str, str]]]:
    """(snapshot index, epoch, {code: severity}) for every snapshot: the health strip's data."""
    epochs = [float(e["epoch"]) for e in run.meta.get("snapshots", [])]
    return [(i, epochs[i], {f.code: f.severity for f in _snapshot_flags(run, i)})
            for i in range(run.n_snapshots)]


def signal_profile(run: Run, index: int) -> pd.DataFrame:
    """Per Linear / Conv layer in depth order: weight std, activation (signal) std, gradients."""
    columns = ["depth", "layer", "type", "weight_std", "activation_std", "activation_std_all",
               "grad_norm", "grad_std", "update_ratio", "norm_after"]
    i = _check_index(run, index)
    if i < 0:
        return pd.DataFrame(columns=columns)
    ctx = _Context(run)
    st = ctx.stats(i)
    acts = st.get("activations", {})
    rows = []
    for depth, layer in enumerate(ctx.layers, start=1):
        p = st["params"].get(layer.weight, {})
        a = acts.get(layer.module, {})
        rows.append({
            "depth": depth, "layer": layer.module, "type": layer.module_type,
            "weight_std": _num(p.get("std")),
            "activation_std": _signal(acts, layer.module),
            "activation_std_all": _num(a.get("std")),
            "grad_norm": _grad(p, "norm"), "grad_std": _grad(p, "std"),
            "update_ratio": _num(p.get("update_ratio")), "norm_after": layer.norm_after,
        })
    df = pd.DataFrame(rows, columns=columns)
    for c in ("weight_std", "activation_std", "activation_std_all", "grad_norm", "grad_std",
              "update_ratio"):
        df[c] = df[c].astype(float)
    return df


# ------------------------------------------------------------------------------------ CLI


def epochs_text(flag: Flag) -> str:
    """Where a flag holds, runs of consecutive snapshots shortened: '0-3, 5, 7.5-10'."""
    snaps = flag.snapshots if len(flag.snapshots) == len(flag.epochs) else \
        list(range(len(flag.epochs)))
    parts: list[str] = []
    start = 0
    for k in range(1, len(snaps) + 1):
        if k == len(snaps) or snaps[k] != snaps[k - 1] + 1:
            a, b = flag.epochs[start], flag.epochs[k - 1]
            parts.append(f"{a:g}" if k - 1 == start else f"{a:g}-{b:g}")
            start = k
    return ", ".join(parts)


def format_flag(flag: Flag) -> str:
    """A flag as a few lines of plain text."""
    lines = [f"[{flag.severity.upper()}] {flag.code}: {flag.title}"]
    if flag.layers:
        lines.append(f"  layers: {', '.join(flag.layers)}")
    lines.append(f"  epochs: {epochs_text(flag)}")
    for k, v in flag.evidence.items():
        lines.append(f"  {k}: {format_value(v)}")
    lines.append(f"  why: {flag.explanation}")
    lines.append(f"  fix: {flag.fix}")
    lines.append(f"  guide: step {flag.guide_step} ({flag.guide_title}) {flag.guide_url}")
    return "\n".join(lines)


def _cli(args: argparse.Namespace, store: RunStore) -> int:
    run = store.load(args.run)
    upto = None
    if args.epoch is not None:
        upto = run.snapshot_for_epoch(args.epoch).index
    flags = flags_at(run, upto if upto is not None else -1) if args.at else diagnose(run, upto)
    if args.json:
        print(json.dumps({"run_id": run.run_id, "status": run.status,
                          "flags": [f.to_dict() for f in flags]}, allow_nan=False))
        return 0
    print(f"{run.run_id} [{run.status}]: {len(flags)} flag(s)")
    for f in flags:
        print(format_flag(f))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``python -m nnviz diagnose RUN [--json] [--epoch E] [--at]``."""
    p = subparsers.add_parser("diagnose", help="flag vanishing, exploding and other problems "
                              "of a run, with evidence and a fix")
    p.add_argument("run")
    p.add_argument("--epoch", type=float, default=None,
                   help="diagnose up to this epoch (default: the whole run)")
    p.add_argument("--at", action="store_true",
                   help="only the flags that hold at that epoch (default: all seen up to it)")
    p.add_argument("--json", action="store_true", help="print the flags as JSON")
    p.set_defaults(handler=_cli)
