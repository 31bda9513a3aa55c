"""Checks on the size of the numbers: NaN / Inf (``non_finite``), and a signal or gradient that
grows (``exploding``) or shrinks (``vanishing``) with depth, read from each snapshot's statistics.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from nnviz.analysis.diagnostics.context import (
    Context,
    Layer,
    dead_layers,
    grad_of,
    order,
    signal_of,
    update_ratio,
)
from nnviz.analysis.diagnostics.flags import (
    DEPTH_RATIO,
    GRAD_SPIKE,
    HE_GAIN,
    LAYER_GAIN,
    MIN_CHAIN_VANISHING,
    UPDATE_RATIO_LOW,
    WEIGHT_GROWTH_PER_EPOCH,
    Flag,
    Joined,
    Text,
    format_value,
)
from nnviz.i18n import N_
from nnviz.store.format import ParamStats


def check_non_finite(ctx: Context, i: int) -> Flag | None:
    st = ctx.stats(i)
    layers: list[str] = []
    evidence: dict[str, float | str] = {}
    what: list[str] = []
    nan_w = inf_w = 0
    grad_layers = []
    for layer in ctx.layers:
        for p in (layer.weight, layer.bias):
            if p is None:
                continue
            s = st.params[p]
            if s.nan_count or s.inf_count:
                nan_w += s.nan_count
                inf_w += s.inf_count
                if layer.module not in layers:
                    layers.append(layer.module)
            g = s.grad
            if g is not None and any(v is not None and not math.isfinite(v)
                                     for v in (g.norm, g.last_norm)):
                if layer.module not in grad_layers:
                    grad_layers.append(layer.module)
    for name, s in st.params.items():  # other parameters (BatchNorm, ...)
        module = name.rpartition(".")[0]
        if any(name in (lay.weight, lay.bias) for lay in ctx.layers):
            continue
        if s.nan_count or s.inf_count:
            nan_w += s.nan_count
            inf_w += s.inf_count
            if module not in layers:
                layers.append(module)
    if nan_w or inf_w:
        what.append(Text(N_("weights")))
        evidence[Text(N_("NaN weights"))] = float(nan_w)
        evidence[Text(N_("Inf weights"))] = float(inf_w)
    if grad_layers:
        what.append(Text(N_("gradients")))
        evidence[Text(N_("layers with non-finite gradients"))] = float(len(grad_layers))
        layers += [m for m in grad_layers if m not in layers]
    bad_acts = [(n, a) for n, a in st.activations.items() if a.nan_count or a.inf_count]
    if bad_acts:
        what.append(Text(N_("activations")))
        evidence[Text(N_("NaN activations"))] = float(sum(a.nan_count for _, a in bad_acts))
        evidence[Text(N_("Inf activations"))] = float(sum(a.inf_count for _, a in bad_acts))
        evidence[Text(N_("first layer with NaN/Inf output"))] = bad_acts[0][0]
    epoch = ctx.epochs[i]
    bad_loss = [h for h in ctx.history_upto(epoch)  # a loss not logged (own loops) is no flag
                if any(v is not None and not math.isfinite(v)
                       for v in (h.train_loss, h.val_loss))]
    diverged = ctx.run.record.diverged_at
    if diverged and i == len(ctx.epochs) - 1 and ctx.run.status == "diverged":
        what.append(_WHAT.get(diverged.what, diverged.what))
        evidence[Text(N_("diverged at step"))] = float(diverged.step)
    elif bad_loss:
        what.append(Text(N_("loss")))
        evidence[Text(N_("epoch with non-finite loss"))] = float(bad_loss[0].epoch)
    if not what:
        return None
    evidence[Text(N_("non-finite"))] = Joined(Text(N_(", ")), dict.fromkeys(what))
    at_init = explodes_at_init(ctx)
    if at_init:
        evidence[Text(N_("signal already exploding at init"))] = Text(N_("yes"))
    return Flag(
        "non_finite", "critical", layers, [epoch], evidence,
        (Text(N_("Some numbers became NaN (not a number) or Inf (infinite): {what}. Once one NaN "
                 "appears it spreads to every value it touches, so the run cannot recover. It "
                 "usually follows exploding values: steps far too large for the weights, or "
                 "weights so large that the outputs overflow (here the signal was already "
                 "exploding at init)."), what=evidence["non-finite"]) if at_init else
         Text(N_("Some numbers became NaN (not a number) or Inf (infinite): {what}. Once one NaN "
                 "appears it spreads to every value it touches, so the run cannot recover. It "
                 "usually follows exploding values: steps far too large for the weights, or "
                 "weights so large that the outputs overflow."), what=evidence["non-finite"])),
        (Text(N_("Use a variance-preserving init (Kaiming for ReLU, Xavier for tanh), then lower "
                 "the learning rate if it still diverges; check the data for NaN or huge "
                 "values."))
         if at_init else
         Text(N_("Lower the learning rate (try 10x smaller), use a variance-preserving init "
                 "(Kaiming for ReLU, Xavier for tanh), and check the data for NaN or huge "
                 "values."))),
        1 if at_init else 4,
    )


# Evidence keys: English ids, said in the reader's language by Flag.localized.
_SIGNAL_FIRST = Text(N_("signal std, first layer"))
_SIGNAL_LAST = Text(N_("signal std, last layer"))
_SIGNAL_RATIO = Text(N_("signal ratio last/first"))
_LARGEST_GAIN = Text(N_("largest layer gain"))
_SMALLEST_GAIN = Text(N_("smallest layer gain"))
_GRAD_IN = Text(N_("grad std, input side"))
_GRAD_OUT = Text(N_("grad std, output side"))
_GRAD_RATIO = Text(N_("grad ratio input/output"))
_UPDATE_IN = Text(N_("update ratio, input side"))
_UPDATE_OUT = Text(N_("update ratio, output side"))
_GRAD_NOW = Text(N_("grad norm now"))
_GRAD_MEDIAN = Text(N_("grad norm running median"))
_SPIKE = Text(N_("spike factor"))
_GROWTH = Text(N_("weight norm growth per epoch"))

# What the trainer records as non-finite when a run diverges (RunRecord.diverged_at.what).
_WHAT = {"loss": Text(N_("loss")), "weights": Text(N_("weights")),
         "gradient": Text(N_("gradient")), "validation loss": Text(N_("validation loss"))}


def explodes_at_init(ctx: Context) -> bool:
    """The signal grows with depth, or a layer's weights are far too large, at snapshot 0."""
    return bool(ctx.n_snapshots and (_depth_evidence(ctx, 0)["explode"] or _weight_scale(ctx, 0)))


def _chain_profile(ctx: Context, i: int, value: Callable[[Layer], float | None]
                   ) -> list[list[tuple[Layer, float]]]:
    """Per chain: (layer, value) for layers with a finite value >= 0."""
    out = []
    for chain in ctx.chains():
        pts = [(layer, v) for layer in chain if (v := value(layer)) is not None and v >= 0]
        out.append(pts)
    return out


def _depth_evidence(ctx: Context, i: int) -> dict[str, Any]:
    """Signal and gradient ratios along every chain of this snapshot (computed once)."""
    if i not in ctx.depth:
        ctx.depth[i] = _depth_evidence_uncached(ctx, i)
    return ctx.depth[i]


def _depth_evidence_uncached(ctx: Context, i: int) -> dict[str, Any]:
    st = ctx.stats(i)
    acts = st.activations
    params = st.params
    found: dict[str, Any] = {"vanish": [], "explode": []}

    for pos in _chain_profile(ctx, i, lambda layer: signal_of(acts, layer.module)):
        # signal: the chain's first layer is the reference (no signal there: nothing to say)
        if len(pos) < 2 or pos[0][1] <= 0:
            continue
        first, last = pos[0], pos[-1]
        ratio = last[1] / first[1]
        gains = [(b[0], b[1] / a[1]) for a, b in zip(pos, pos[1:], strict=False) if a[1] > 0]
        big = [(lay, g) for lay, g in gains if g >= LAYER_GAIN]
        small = [(lay, g) for lay, g in gains if g <= 1 / LAYER_GAIN]
        base = {_SIGNAL_FIRST: first[1], _SIGNAL_LAST: last[1],
                _SIGNAL_RATIO: ratio, "from": first[0].module, "to": last[0].module}
        if ratio >= DEPTH_RATIO or big:
            found["explode"].append({
                **base, _LARGEST_GAIN: max(g for _, g in gains) if gains else ratio,
                "layers": [lay.module for lay, v in pos if v / first[1] >= LAYER_GAIN]
                or [lay.module for lay, _ in big] or [last[0].module]})
        if (len(pos) >= MIN_CHAIN_VANISHING and ratio <= 1 / DEPTH_RATIO) or small:
            found["vanish"].append({
                **base, _SMALLEST_GAIN: min(g for _, g in gains) if gains else ratio,
                "layers": [lay.module for lay, v in pos if v / first[1] <= 1 / DEPTH_RATIO]
                or [lay.module for lay, _ in small]})

    for pts in _chain_profile(ctx, i, lambda layer: grad_of(params[layer.weight])):
        if len(pts) < MIN_CHAIN_VANISHING or pts[-1][1] <= 0:
            continue
        first, last = pts[0], pts[-1]
        ratio = first[1] / last[1]
        base = {_GRAD_IN: first[1], _GRAD_OUT: last[1],
                _GRAD_RATIO: ratio, "from": first[0].module,
                "to": last[0].module}
        if ratio <= 1 / DEPTH_RATIO:
            found["vanish"].append({**base, "layers": [
                lay.module for lay, v in pts if v / last[1] <= 1 / DEPTH_RATIO]})
        elif ratio >= DEPTH_RATIO:
            found["explode"].append({**base, "layers": [
                lay.module for lay, v in pts if v / last[1] >= DEPTH_RATIO]})

    for pts in _chain_profile(ctx, i, lambda layer: update_ratio(params[layer.weight])):
        if len(pts) < MIN_CHAIN_VANISHING or pts[-1][1] <= 0:
            continue
        first, last = pts[0], pts[-1]
        if first[1] < UPDATE_RATIO_LOW and first[1] <= last[1] / DEPTH_RATIO:
            found["vanish"].append({
                _UPDATE_IN: first[1], _UPDATE_OUT: last[1],
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


def vanishes(ctx: Context, i: int) -> bool:
    """Whether the signal or the gradient vanishes through depth at snapshot ``i`` (the
    evidence of ``check_vanishing``, without building its flag)."""
    return bool(_depth_evidence(ctx, i)["vanish"])


def check_vanishing(ctx: Context, i: int) -> Flag | None:
    found = _depth_evidence(ctx, i)["vanish"]
    if not found:
        return None
    layers, evidence = _merge_evidence(found)
    act = ctx.activation
    causes, fixes, step = [], [], 1
    if ctx.init in ("too_small", "normal", "uniform", "trunc_normal"):
        causes.append(Text(N_("this run's init ({init}) draws weights too small for the layers' "
                              "fan-in, so each layer scales the signal down"), init=ctx.init))
        fixes.append(Text(N_("use a variance-preserving init: Kaiming (He) for ReLU, Xavier for "
                             "tanh (step 1)")))
    if ctx.init.startswith("xavier") and act in ("relu", "leaky_relu", "gelu"):
        causes.append(Text(N_("Xavier init does not make up for ReLU zeroing half the signal, so "
                              "its variance halves per layer (He et al. 2015)")))
        fixes.append(Text(N_("use Kaiming (He) init, which doubles the variance for ReLU (step "
                             "1)")))
    if act == "sigmoid":
        causes.append(Text(N_("sigmoid's slope is at most 1/4, so each sigmoid layer passes back "
                              "at most a quarter of the gradient it gets")))
        fixes.append(Text(N_("use ReLU with Kaiming init in the hidden layers (step 7)")))
        step = 1 if fixes[:1] and "init" in fixes[0] else 7
    if dead_layers(ctx, i, 0.99):
        causes.append(Text(N_("whole ReLU layers are dead and pass nothing at all")))
        fixes.append(Text(N_("use Kaiming init with zero biases, or LeakyReLU (step 7)")))
    if not causes:
        causes.append(Text(N_("the layers' weights are too small for their fan-in, or units are "
                              "stuck where their slope is near 0")))
        fixes.append(Text(N_("use Kaiming (He) init for ReLU and Xavier for tanh (step 1)")))
    fixes.append(Text(N_("BatchNorm or fewer layers also help (step 5)")))
    return Flag(
        "vanishing", "warning", order(ctx, layers), [ctx.epochs[i]], evidence,
        Text(N_("The signal shrinks layer after layer: each layer passes on a smaller spread than "
                "it received, so deep layers see almost nothing of the input, and going backward "
                "the gradients shrink the same way, so the layers near the input barely learn. "
                "Here {causes}."), causes=Joined(Text(N_("; and ")), causes)),
        Text(N_("{fixes}."), fixes=Joined(Text(N_("; ")), fixes, capital=True)),
        step,
    )


_KAIMING_SCALE = Text(N_("weight std / Kaiming std"))


def _weight_scale(ctx: Context, i: int) -> list[dict[str, Any]]:
    """Layers whose weight std is LAYER_GAIN x (or more) Kaiming's √(2/fan_in)."""
    params = ctx.stats(i).params
    out = []
    for layer in ctx.layers:
        std = params[layer.weight].std
        if std is None or layer.norm_after:
            continue  # a normalization layer right after resets the scale
        scale = std * math.sqrt(layer.fan_in) / HE_GAIN
        if scale >= LAYER_GAIN:
            out.append({_KAIMING_SCALE: scale, "layers": [layer.module]})
    if len(out) > 1:  # report the largest; list every layer
        worst = max(out, key=lambda d: d[_KAIMING_SCALE])
        out = [{**worst, "layers": [m for d in out for m in d["layers"]]}]
    return out


def _weight_growth(ctx: Context, i: int) -> list[dict[str, Any]]:
    """Layers whose ‖W‖ grew WEIGHT_GROWTH_PER_EPOCH x per epoch while above Kaiming's scale."""
    if i == 0:
        return []
    prev, cur = ctx.stats(i - 1).params, ctx.stats(i).params
    span = max(ctx.epochs[i] - ctx.epochs[i - 1], 1e-9)
    out = []
    for layer in ctx.layers:
        a, b = prev[layer.weight].l2, cur[layer.weight].l2
        std = cur[layer.weight].std
        if not a or b is None or std is None:
            continue
        if b <= 0:
            continue
        # growth per epoch in log space: snapshots a few steps apart make 1 / span large
        per_epoch = math.exp(min(math.log(b / a) / span, 700.0))
        scale = std * math.sqrt(layer.fan_in) / HE_GAIN  # 1.0 = Kaiming's std for ReLU
        if per_epoch >= WEIGHT_GROWTH_PER_EPOCH and scale > 1.0:
            out.append({_GROWTH: per_epoch,
                        _KAIMING_SCALE: scale, "layers": [layer.module]})
    return out


def _total_grad_norm(params: dict[str, ParamStats], layers: list[Layer], key: str
                     ) -> float | None:
    """√(Σ ‖g‖²) over the weight layers (the norm Pascanu et al. clip), or None."""
    norms = [grad_of(params[layer.weight], key) for layer in layers]
    norms = [g for g in norms if g is not None]
    return math.sqrt(sum(g * g for g in norms)) if norms else None


def _grad_spikes(ctx: Context, i: int) -> list[dict[str, Any]]:
    """The whole network's gradient norm jumping over GRAD_SPIKE x its running median."""
    if i < 2:
        return []
    earlier = [_total_grad_norm(ctx.stats(j).params, ctx.layers, "norm") for j in range(1, i)]
    earlier = [g for g in earlier if g is not None]
    cur = ctx.stats(i).params
    now = [g for k in ("norm", "last_norm")
           if (g := _total_grad_norm(cur, ctx.layers, k)) is not None]
    if not earlier or not now:
        return []
    median = statistics.median(earlier)
    if median <= 0 or max(now) < GRAD_SPIKE * median:
        return []
    jumps = []
    for layer in ctx.layers:
        before = [grad_of(ctx.stats(j).params[layer.weight], "norm") for j in range(1, i)]
        before = [g for g in before if g is not None]
        after = grad_of(cur[layer.weight], "norm")
        if before and after is not None and statistics.median(before) > 0:
            jumps.append((after / statistics.median(before), layer.module))
    jumps.sort(reverse=True)
    return [{_GRAD_NOW: max(now), _GRAD_MEDIAN: median,
             _SPIKE: max(now) / median,
             "layers": [m for f, m in jumps if f >= GRAD_SPIKE] or [m for _, m in jumps[:1]]}]


def check_exploding(ctx: Context, i: int) -> Flag | None:
    found = (_depth_evidence(ctx, i)["explode"] + _weight_scale(ctx, i)
             + _weight_growth(ctx, i) + _grad_spikes(ctx, i))
    if not found:
        return None
    layers, evidence = _merge_evidence(found)
    at_init = i == 0 or explodes_at_init(ctx)
    return Flag(
        "exploding", "warning", order(ctx, layers), [ctx.epochs[i]], evidence,
        (Text(N_("Values grow out of proportion: the signal's spread is multiplied layer after "
                 "layer (or the weights or gradients jump by orders of magnitude). Outputs get "
                 "huge, the loss is enormous and confident-wrong, steps overshoot, and NaN is "
                 "often next. Here it starts at init: the weights are too large for the layers' "
                 "fan-in (init {init})."), init=ctx.init)
         if at_init else
         Text(N_("Values grow out of proportion: the signal's spread is multiplied layer after "
                 "layer (or the weights or gradients jump by orders of magnitude). Outputs get "
                 "huge, the loss is enormous and confident-wrong, steps overshoot, and NaN is "
                 "often next. Here it grew during training from a sound start: each step of the "
                 "learning rate ({lr}) overshoots, and the overshoots feed on each other."),
              lr=format_value(ctx.lr))),
        (Text(N_("Use a variance-preserving init: Kaiming (He) for ReLU, Xavier for tanh, so each "
                 "layer keeps the signal's size (step 1); BatchNorm also helps (step 5)."))
         if at_init else
         Text(N_("Lower the learning rate (try 3-10x smaller) or add a scheduler that lowers it "
                 "(step 4)."))),
        1 if at_init else 4,
    )

