"""Checks on how training goes: steps too big (``lr_too_high``) or too small (``lr_too_low``)
for the weights, validation loss rising while training loss falls (``overfitting``), and
accuracy stuck at chance (``not_learning``). Each reads the update ratios and the loss and
accuracy history, and chooses its advice from the run's optimizer and other evidence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnviz.analysis.diagnostics.context import (
    Context,
    all_dead,
    loss_trend,
    update_ratio,
    update_ratios,
    val_accuracies,
)
from nnviz.analysis.diagnostics.flags import (
    CHANCE_MARGIN,
    CHANCE_SE,
    GENERALIZATION_LOSS,
    LEARNED,
    LOSS_REL_CHANGE,
    NOT_LEARNING_EPOCHS,
    OVERFIT_EPOCHS,
    OVERFIT_NOISE,
    TINY_WEIGHTS,
    UPDATE_RATIO_HIGH,
    UPDATE_RATIO_LOW,
    UPDATE_RATIO_REF,
    Flag,
    Joined,
    Text,
    format_value,
)
from nnviz.analysis.diagnostics.magnitude import explodes_at_init, vanishes
from nnviz.i18n import N_
from nnviz.store.format import finite_or_none


def _not_tiny(ctx: Context, i: int) -> set[str]:
    """Layers whose weight std is at least TINY_WEIGHTS x 1/√fan_in (PyTorch's default scale).

    ‖ΔW‖/‖W‖ of a layer with far smaller weights (a too-small init) is large for any step, so
    it says nothing about the learning rate.
    """
    params = ctx.stats(i).params
    out = set()
    for layer in ctx.layers:
        std = params[layer.weight].std
        if std is not None and std * math.sqrt(layer.fan_in) >= TINY_WEIGHTS:
            out.add(layer.module)
    return out


def _step_evidence(ctx: Context, trend: dict[str, Any],
                   evidence: dict[str, float | str]) -> dict[str, float | str]:
    """The evidence plus what the step size depends on: optimizer, learning rate and (when
    ``trend`` has it) the last epoch's change of the training loss."""
    evidence[Text(N_("optimizer"))] = ctx.optimizer
    evidence[Text(N_("learning rate"))] = ctx.lr
    if "change" in trend:
        evidence[Text(N_("train loss change, last epoch"))] = trend["change"]
    return evidence


def check_lr_high(ctx: Context, i: int) -> Flag | None:
    params = ctx.stats(i).params
    # every layer's ratio counts, 0 included: when most layers barely move (vanishing
    # gradients) a few fast layers near the output do not make the learning rate too high
    every = [r for layer in ctx.layers
             if (r := update_ratio(params[layer.weight])) is not None]
    sized = _not_tiny(ctx, i)
    ratios = [(m, r) for m, r in update_ratios(ctx, i) if m in sized]
    if not every or not ratios:
        return None
    median = float(np.median(every))
    if median < UPDATE_RATIO_HIGH or max(r for _, r in ratios) < UPDATE_RATIO_HIGH:
        return None
    trend = loss_trend(ctx, ctx.epochs[i])
    # Big steps alone are not a fault: Adam moves every weight by about lr per step, so small
    # weights (PyTorch's default init on a wide layer) show ratios above 1e-2 while the loss
    # falls steadily. It is a fault when the loss rose, spiked or diverged.
    if not (trend["rose"] or trend["diverged"] or trend["spiked"]):
        return None
    if explodes_at_init(ctx):
        return None  # the steps are big because the init already blew the signal up
    evidence = _step_evidence(ctx, trend, {
        Text(N_("median update ratio")): median,
        Text(N_("healthy update ratio")): UPDATE_RATIO_REF,
        Text(N_("largest update ratio")): max(r for _, r in ratios)})
    if trend["spiked"]:
        evidence[Text(N_("epoch train loss / val loss"))] = trend["spike"]
    if trend["diverged"]:
        evidence[Text(N_("loss"))] = Text(N_("diverged"))
    what = (Text(N_("diverged")) if trend["diverged"] else
            Text(N_("spiked during an epoch")) if trend["spiked"] else Text(N_("went up")))
    return Flag(
        "lr_too_high", "warning", [m for m, r in ratios if r >= UPDATE_RATIO_HIGH],
        [ctx.epochs[i]], evidence,
        Text(N_("Each optimizer step changes the weights by ‖ΔW‖/‖W‖ = {ratio} (median over "
                "layers), far above the ~1e-3 rule of thumb (CS231n), and the loss {what}: the "
                "steps overshoot the minimum."), ratio=format_value(median), what=what),
        Text(N_("Lower the learning rate (3-10x), or add a scheduler (cosine or step decay) that "
                "shrinks it as training goes on.")),
        4,
    )


def check_lr_low(ctx: Context, i: int) -> Flag | None:
    ratios = update_ratios(ctx, i)
    if not ratios:
        return None
    largest = max(r for _, r in ratios)
    if largest >= UPDATE_RATIO_LOW:
        return None
    if all_dead(ctx, i):
        return None  # dead ReLUs block the gradient: a larger step would not revive them
    if vanishes(ctx, i):
        return None  # the gradient vanishes on its way back: fix the init (step 1), not the lr
    trend = loss_trend(ctx, ctx.epochs[i])
    evidence = _step_evidence(ctx, trend, {
        Text(N_("largest update ratio")): largest,
        Text(N_("healthy update ratio")): UPDATE_RATIO_REF})
    fix = (Text(N_("Raise the learning rate (3-10x).")) if ctx.adaptive else
           Text(N_("Raise the learning rate (3-10x), or use Adam, which adapts the step size per "
                   "weight.")))
    return Flag(
        "lr_too_low", "warning" if trend["flat"] else "info", [m for m, _ in ratios],
        [ctx.epochs[i]], evidence,
        (Text(N_("Even the fastest-moving layer changes by only ‖ΔW‖/‖W‖ = {ratio} per step, far "
                 "below the ~1e-3 rule of thumb (CS231n): training crawls and the loss has "
                 "flattened."), ratio=format_value(largest)) if trend["flat"] else
         Text(N_("Even the fastest-moving layer changes by only ‖ΔW‖/‖W‖ = {ratio} per step, far "
                 "below the ~1e-3 rule of thumb (CS231n): training crawls."),
              ratio=format_value(largest))),
        fix,
        4,
    )


def learned_something(ctx: Context, epoch: float) -> bool:
    """Validation accuracy well above chance, or (no accuracies) validation loss well down."""
    accs, chance = val_accuracies(ctx, epoch), ctx.chance
    if accs and chance is not None:
        return max(accs) >= chance + LEARNED * (1 - chance)
    vals = [v for h in ctx.history_upto(epoch) if (v := finite_or_none(h.val_loss)) is not None]
    return len(vals) >= 2 and min(vals) <= (1 - LEARNED) * vals[0]


def check_overfitting(ctx: Context, i: int) -> Flag | None:
    epoch = ctx.epochs[i]
    hist = ctx.history_upto(epoch)
    pts = [(h.epoch, finite_or_none(h.train_loss), finite_or_none(h.val_loss), h.val_acc)
           for h in hist]
    pts = [p for p in pts if p[1] is not None and p[2] is not None]
    if len(pts) < OVERFIT_EPOCHS + 1 or not learned_something(ctx, epoch):
        return None
    vals = [v for _, _, v, _ in pts]
    b = int(np.argmin(vals))
    best_epoch, train_at_best, best, acc_at_best = pts[b][0], pts[b][1], pts[b][2], pts[b][3]
    last_e, last_t, last_v, last_acc = pts[-1]
    after = vals[b:]
    if len(after) < OVERFIT_EPOCHS + 1 or best <= 0:
        return None  # the validation loss is still at its best (or rose for one epoch only)
    gl = last_v / best - 1
    if gl <= GENERALIZATION_LOSS or last_t >= train_at_best * (1 - LOSS_REL_CHANGE):
        return None  # not 5% above its best, or the training loss stopped falling too
    # the rise must stand out of the jitter: a straight line through the validation losses
    # since the best epoch must rise by more than OVERFIT_NOISE x the scatter around it
    xs = np.arange(len(after), dtype=float)
    slope, icpt = np.polyfit(xs, after, 1)
    scatter = float(np.std(np.asarray(after) - (slope * xs + icpt)))
    if slope <= 0 or slope * xs[-1] <= OVERFIT_NOISE * scatter:
        return None
    if last_acc is not None and acc_at_best is not None and last_acc > acc_at_best:
        return None  # accuracy still improves: not memorising (e.g. BatchNorm's eval gap)
    if last_v <= last_t:
        return None  # still better on held-out data than on its own: nothing memorised (a bump)
    evidence: dict[str, float | str] = {
        Text(N_("val loss")): last_v, Text(N_("best val loss")): best,
        Text(N_("best epoch")): float(best_epoch), Text(N_("val loss above its best")): gl,
        Text(N_("train loss")): last_t, Text(N_("train loss at the best epoch")): train_at_best}
    if last_acc is not None:
        evidence[Text(N_("val accuracy"))] = last_acc
    return Flag(
        "overfitting", "warning", [], [epoch], evidence,
        Text(N_("For {n} epochs since its best (epoch {best}) the validation loss has risen, now "
                "{above}% above that best, while the training loss kept falling ({before} → "
                "{after}): the network is memorising the training examples instead of learning "
                "what generalizes (Prechelt 1998 stops training when the validation loss is 5% "
                "above its best)."), n=last_e - best_epoch, best=best_epoch,
             above=format_value(100 * gl), before=format_value(train_at_best),
             after=format_value(last_t)),
        Text(N_("Stop at the best epoch ({best}) with early stopping (step 3), add dropout "
                "(0.2-0.5) or L2 weight decay (step 8), or use more training data."),
             best=best_epoch),
        8,
    )


def check_not_learning(ctx: Context, i: int) -> Flag | None:
    epoch = ctx.epochs[i]
    chance = ctx.chance
    accs = val_accuracies(ctx, epoch)
    if chance is None or len(accs) < NOT_LEARNING_EPOCHS or ctx.diverged:
        return None
    best = max(accs)
    # "At chance" up to the validation set's sampling noise: a network that always guesses one
    # class scores that class's share of the validation set, a binomial draw around 1 / classes
    n_val = ctx.n_val or 0
    noise = CHANCE_SE * math.sqrt(chance * (1 - chance) / n_val) if n_val else 0.0
    ceiling = chance + max(CHANCE_MARGIN * (1 - chance), noise)
    if best > ceiling:
        return None
    evidence = _step_evidence(ctx, {}, {
        Text(N_("epochs trained")): float(len(accs)), Text(N_("best val accuracy")): best,
        Text(N_("chance (1 / classes)")): chance, Text(N_("at chance up to")): ceiling})
    n_layers = len(ctx.layers)
    tips = []
    if ctx.adaptive and ctx.lr >= 1e-2:
        tips.append(Text(N_("lower Adam's learning rate (10x below {lr})"),
                         lr=format_value(ctx.lr)))
    elif not ctx.adaptive:
        tips.append(Text(N_("find a better learning rate with the LR range test, or use Adam")))
    if n_layers > 8 and not ctx.has_norm:
        tips.append(Text(N_("use fewer layers ({n} weight layers now) or BatchNorm"),
                         n=n_layers))
    tips.append(Text(N_("train for more epochs, and check that the labels match the inputs")))
    seen = Text(N_("the validation accuracy is {best} at best, no better than guessing ({chance} "
                   "for {classes} classes, up to the sampling noise of {n} validation "
                   "examples)"), best=format_value(best), chance=format_value(chance),
                classes=ctx.n_classes, n=n_val)
    return Flag(
        "not_learning", "warning", [], [epoch], evidence,
        Text(N_("After {n} epochs {seen}, and no other check explains why: the network has not "
                "learned anything useful yet."), n=len(accs), seen=seen),
        Text(N_("{tips}."), tips=Joined(Text(N_("; ")), tips, capital=True)),
        4,
    )

