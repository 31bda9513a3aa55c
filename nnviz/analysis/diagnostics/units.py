"""Checks on the units of a layer: copies of each other (``symmetry``), weights that did not move
(``frozen``), ReLUs that never fire (``dead_relu``) and sigmoid / tanh units stuck on their
rails (``saturation``). Each explanation is chosen from the run: its init, whether it diverged,
whether the units were dead from the start.
"""

from __future__ import annotations

import math

import numpy as np

from nnviz.analysis.diagnostics.context import (
    RANDOM_FREE_INITS,
    Context,
    Layer,
    dead_layers,
    grad_of,
    loss_trend,
    order_acts,
)
from nnviz.analysis.diagnostics.flags import (
    DEAD_GREW,
    DEAD_INFO,
    DEAD_WARN,
    SATURATION_INFO,
    SATURATION_WARN,
    SYMMETRY_RTOL,
    SYMMETRY_STABLE_RANK,
    Flag,
    Text,
)
from nnviz.i18n import N_


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


def _symmetry_kind(ctx: Context, i: int, layer: Layer) -> str | None:
    """How a layer's units are copies of each other, or None (see the kinds below)."""
    # 'units': weights and biases identical; 'weights': rows identical, biases differ;
    # 'parallel': rows differ only in scale (rank 1)
    s = ctx.stats(i).params[layer.weight]
    if layer.units < 2 or not layer.stored_whole or s.nan_count or s.inf_count:
        return None
    rank = s.stable_rank  # None: all zero
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


def _kinds(ctx: Context, i: int) -> dict[str, str]:
    """module -> symmetry kind at snapshot i (computed once per snapshot)."""
    key = ("symmetry", i)
    if key not in ctx.memo:
        ctx.memo[key] = {layer.module: kind for layer in ctx.layers
                         if (kind := _symmetry_kind(ctx, i, layer)) is not None}
    return ctx.memo[key]


def check_symmetry(ctx: Context, i: int) -> Flag | None:
    # Symmetry is an init's failure: units that start as copies stay copies. Rows that become
    # parallel later (a diverging run's weights collapse to rank 1) are a symptom of that blow-up,
    # which non_finite / exploding report, so only layers already symmetric at init count.
    at_init = _kinds(ctx, 0)
    hits = [(layer, kind) for layer in ctx.layers
            if (kind := _kinds(ctx, i).get(layer.module)) is not None
            and layer.module in at_init]
    if not hits:
        return None
    text = {"units": N_("{n} identical units (weights and bias)"),
            "weights": N_("{n} units with identical weights (biases differ)"),
            "parallel": N_("{n} units whose weights differ only in scale (rank 1)")}
    evidence: dict[str, float | str] = {Text(N_("symmetric layers")): float(len(hits))}
    evidence[Text(N_("init"))] = ctx.init
    for layer, kind in hits[:6]:
        evidence[layer.module] = Text(text[kind], n=layer.units)
    permanent = any(kind == "units" for _, kind in hits)
    moved = i > 0 and _moved(ctx, i, [lay for lay, _ in hits])
    if ctx.init == "zeros":
        cause = Text(N_("This run's init is all zeros: every unit of a layer starts with the "
                        "same weights"))
    elif ctx.init == "constant":
        cause = Text(N_("This run's init is one constant for every weight: every unit of a layer "
                        "starts as a copy of the others"))
    else:
        cause = Text(N_("These layers started with identical (or proportional) rows of weights"))
    if permanent and moved:
        effect = Text(N_("Units that also share their bias compute the same output and get the "
                         "same gradient, so gradient descent keeps them identical forever: the "
                         "layer acts like a single unit. The weights do change over the epochs, "
                         "but every row changes the same way."))
    elif permanent:
        effect = Text(N_("Units that also share their bias compute the same output and get the "
                         "same gradient, so gradient descent keeps them identical forever: the "
                         "layer acts like a single unit."))
    else:
        effect = Text(N_("Their biases differ, so the units' gradients differ a little and the "
                         "symmetry breaks only slowly."))
    return Flag(
        "symmetry", "critical" if permanent else "warning", [lay.module for lay, _ in hits],
        [ctx.epochs[i]], evidence,
        Text(N_("{cause}, so they all respond to the same feature of their input. {effect} Random "
                "initialization breaks the symmetry."), cause=cause, effect=effect),
        Text(N_("Initialize weights randomly (Kaiming for ReLU, Xavier for tanh); zeros are fine "
                "only for biases.")),
        1,
    )


def _moved(ctx: Context, i: int, layers: list[Layer]) -> bool:
    """Some of these layers' weights changed since init."""
    now, start = ctx.stats(i).params, ctx.stats(0).params
    return any(getattr(now[lay.weight], k) != getattr(start[lay.weight], k)
               for lay in layers for k in ("l2", "mean", "min", "max"))


def check_frozen(ctx: Context, i: int) -> Flag | None:
    if i == 0:
        return None
    cur, prev = ctx.stats(i).params, ctx.stats(i - 1).params
    hits = []
    snap = prev_snap = None
    for layer in ctx.layers:
        s = cur[layer.weight]
        if s.grad is None or s.nan_count or s.inf_count:
            continue
        if s.update_ratio not in (None, 0.0):
            continue
        if layer.stored_whole:
            snap = snap or ctx.run.snapshot(i)
            prev_snap = prev_snap or ctx.run.snapshot(i - 1)
            same = np.array_equal(snap.values(layer.weight), prev_snap.values(layer.weight))
        else:
            p = prev[layer.weight]
            same = all(getattr(s, k) == getattr(p, k) for k in ("l2", "mean", "std", "min", "max"))
        if same:
            hits.append((layer.module, grad_of(s, "norm")))
    if not hits:
        return None
    total = len(ctx.layers)
    if ctx.init == "zeros":
        cause = Text(N_("Here the init is all zeros: the weights after a layer pass back no "
                        "gradient to it (symmetry)."))
        fix = Text(N_("Initialize weights randomly (Kaiming for ReLU, Xavier for tanh)."))
    elif dead_layers(ctx, i, 0.99):
        cause = Text(N_("Here whole ReLU layers are dead, so no gradient gets back through them."))
        fix = Text(N_("Use Kaiming init with zero biases and a lower learning rate, or LeakyReLU "
                      "(step 7)."))
    else:
        cause = Text(N_("Zero gradients come from dead units or from gradients that vanished on "
                        "the way back (see the vanishing flag)."))
        fix = Text(N_("Use a variance-preserving init (Kaiming for ReLU, Xavier for tanh) instead "
                      "of tiny weights, and ReLU instead of sigmoid in deep stacks."))
    evidence: dict[str, float | str] = {
        Text(N_("frozen layers")): float(len(hits)),
        Text(N_("layers with weights")): float(total),
        Text(N_("largest gradient norm among them")): max((g or 0.0) for _, g in hits),
    }
    return Flag(
        "frozen", "warning", [m for m, _ in hits], [ctx.epochs[i]], evidence,
        Text(N_("These layers' weights did not change at all since the previous snapshot: their "
                "gradient was exactly zero, or so small that a step could not change a single "
                "float32 number. A frozen layer learns nothing. {cause}"), cause=cause),
        fix,
        1,
    )


def check_dead_relu(ctx: Context, i: int) -> Flag | None:
    hits = dead_layers(ctx, i)
    if not hits:
        return None
    worst = max(d for _, d in hits)
    evidence: dict[str, float | str] = {Text(N_("largest dead fraction")): worst,
                                        Text(N_("ReLU layers with dead units")): float(len(hits))}
    for name, dead in sorted(hits, key=lambda h: -h[1])[:4]:
        evidence[Text(N_("{layer}: dead fraction"), layer=name)] = dead
    # dead from the start only if about as many were dead at init as now
    at_start = max((dd for _, dd in dead_layers(ctx, 0, 0.0)), default=0.0)
    at_init = at_start >= DEAD_INFO and worst <= at_start + DEAD_GREW
    trend = loss_trend(ctx, ctx.epochs[i])
    blew_up = ctx.diverged or trend["spiked"] or trend["diverged"]
    n_relu = sum(1 for _, kind in ctx.activation_layers if kind == "relu")
    n_in = math.prod(ctx.input_shape) if ctx.input_shape else 0
    step = 7
    if ctx.init in RANDOM_FREE_INITS:
        evidence[Text(N_("init"))] = ctx.init
        why = (Text(N_("This run's init gives every unit of a layer the same weights, so all its "
                       "units compute the same pre-activation and switch off together (with zero "
                       "weights it is just the bias, and a bias of 0 or below leaves every unit "
                       "at 0): this is the symmetry problem, not depth."))
               if ctx.init == "zeros" else
               Text(N_("This run's init gives every unit of a layer the same weights, so all its "
                       "units compute the same pre-activation and switch off together: this is "
                       "the symmetry problem, not depth.")))
        fix = Text(N_("Initialize weights randomly (Kaiming for ReLU); zeros are fine only for "
                      "biases."))
        step = 1
    elif blew_up and not at_init:
        why = Text(N_("They died while the run blew up: huge steps push pre-activations far "
                      "below 0 for every example."))
        fix = Text(N_("Lower the learning rate (step 4); LeakyReLU keeps a small gradient flowing "
                      "through units that are off (step 7)."))
        step = 4
    elif at_init and n_relu >= 8:
        why = (Text(N_("They were dead from the start. In a deep ReLU stack (here {n} ReLU layers) "
                       "the representations of different examples grow more alike with depth, so "
                       "a unit tends to be on for every example or for none (Lu et al. 2019, "
                       "\"Dying ReLU and initialization\"); a narrow input ({inputs} features) "
                       "makes this worse."), n=n_relu, inputs=n_in) if 0 < n_in <= 4 else
               Text(N_("They were dead from the start. In a deep ReLU stack (here {n} ReLU layers) "
                       "the representations of different examples grow more alike with depth, so "
                       "a unit tends to be on for every example or for none (Lu et al. 2019, "
                       "\"Dying ReLU and initialization\")."), n=n_relu))
        fix = Text(N_("Use fewer or wider layers, or BatchNorm (step 5); LeakyReLU keeps a small "
                      "gradient flowing through units that are off (step 7)."))
    elif at_init:
        why = Text(N_("They were dead from the start: their pre-activation is below 0 for every "
                      "probe example, from weights and biases that happen to point away from the "
                      "data."))
        fix = Text(N_("Use Kaiming init with zero biases (step 1), or LeakyReLU, which keeps a "
                      "small gradient flowing through units that are off (step 7)."))
    else:
        why = Text(N_("They died during training: a too-high learning rate knocks units into this "
                      "state (CS231n: up to 40% of a network), as do large negative biases."))
        fix = Text(N_("Lower the learning rate (step 4), or use LeakyReLU, whose small negative "
                      "slope keeps a gradient flowing (step 7)."))
    return Flag(
        "dead_relu", "warning" if worst >= DEAD_WARN else "info", order_acts(ctx, hits),
        [ctx.epochs[i]], evidence,
        Text(N_("Some ReLU units output 0 for every example of the probe batch. A dead ReLU passes "
                "no gradient, so it may never switch on again: capacity the network pays for and "
                "cannot use. {why}"), why=why),
        fix,
        step,
    )


def check_saturation(ctx: Context, i: int) -> Flag | None:
    hits = []
    for name, a in ctx.stats(i).activations.items():
        if a.kind not in ("tanh", "sigmoid"):
            continue
        sat = a.saturated_frac
        if sat is not None and sat >= SATURATION_INFO:
            hits.append((name, a.kind, sat))
    if not hits:
        return None
    worst = max(s for _, _, s in hits)
    evidence: dict[str, float | str] = {Text(N_("largest saturated fraction")): worst}
    for name, _kind, sat in sorted(hits, key=lambda h: -h[2])[:4]:
        evidence[Text(N_("{layer}: saturated fraction"), layer=name)] = sat
    sigmoid = any(k == "sigmoid" for _, k, _ in hits)
    return Flag(
        "saturation", "warning" if worst >= SATURATION_WARN else "info", order_acts(ctx, hits),
        [ctx.epochs[i]], evidence,
        Text(N_("Many sigmoid / tanh outputs sit on their flat rails (tanh beyond ±0.97, sigmoid "
                "below 0.03 or above 0.97). There the slope is nearly zero, so almost no gradient "
                "passes: the unit is stuck and the layers before it stop learning. Inputs to the "
                "activation that are too large (weights too large) push units there.")),
        (Text(N_("Use ReLU (with Kaiming init) in the hidden layers and keep sigmoid for a binary "
                 "output (step 7): sigmoid's slope is at most 1/4 even off the rails, so no init "
                 "keeps a deep sigmoid stack's signal at one size.")) if sigmoid else
         Text(N_("Scale the init to tanh: Xavier (Glorot) keeps a tanh layer's inputs in its "
                 "unsaturated middle (step 1)."))),
        7 if sigmoid else 1,
    )


