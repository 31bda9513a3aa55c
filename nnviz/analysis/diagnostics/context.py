"""Reading a run for the checks: its Linear / Conv layers in model order, where normalization
cuts the depth chain, its history, and the facts a rule needs to choose its explanation (the
optimizer, the init, whether the run diverged, which ReLU layers are dead).

Depth profiles follow the chain of Linear / Conv layers in model order. A normalization layer
(BatchNorm, ...) between two of them resets the scale, so the chain is cut there. The
activation "signal" of a layer is ``signal_std`` (the spread of its output across the probe
examples, which biases do not add to; null, so no signal, when it was not measurable).

Everything is read from the typed records of ``nnviz.store.format`` (``RunRecord``,
``SnapshotStats``); a measurement that is NaN / Inf or not measured counts as missing
(``finite_or_none``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nnviz.analysis.diagnostics.flags import (
    ALL_DEAD,
    DEAD_INFO,
    LAYER_TYPES,
    LOSS_REL_CHANGE,
    LOSS_SPIKE,
)
from nnviz.store.format import (
    ActivationStats,
    HistoryRow,
    ParamStats,
    SnapshotStats,
    finite_or_none,
)
from nnviz.store.runs import Run

RANDOM_FREE_INITS = ("zeros", "constant")  # inits that give every unit of a layer one value


@dataclass
class Layer:
    """A Linear / Conv module: its parameters and place in the chain."""

    module: str
    weight: str
    bias: str | None
    module_type: str
    units: int
    fan_in: int
    stored_whole: bool
    norm_after: bool = False  # a normalization module follows before the next layer


class Context:
    """Run-level facts every check reads (layers in order, history, loss, config)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        rec = run.record
        params = rec.params
        order = sorted(params, key=lambda n: params[n].order)
        modules: list[tuple[str, str]] = []  # (module, module_type) in model order
        for name in order:
            info = params[name]
            if not modules or modules[-1][0] != info.module:
                modules.append((info.module, info.module_type))
        self.layers: list[Layer] = []
        self.has_norm = False
        for module, mtype in modules:
            if mtype in LAYER_TYPES and f"{module}.weight" in params:
                info = params[f"{module}.weight"]
                shape = info.shape
                bias = f"{module}.bias" if f"{module}.bias" in params else None
                self.layers.append(Layer(
                    module, f"{module}.weight", bias, mtype, shape[0] if shape else 1,
                    math.prod(shape[1:]) if len(shape) > 1 else 1, info.stored_whole))
            elif "Norm" in mtype:
                self.has_norm = True
                if self.layers:
                    self.layers[-1].norm_after = True
        self.activation_layers = [(layer.name, layer.kind) for layer in rec.layers]
        self.position: dict[str, int] = {}
        for name in [n for n, _ in self.activation_layers] + [m for m, _ in modules]:
            self.position.setdefault(name, len(self.position))
        self.history: list[HistoryRow] = rec.history
        self.epochs = [e.epoch for e in run.entries]  # readable snapshots: i = snapshot(i)
        self.n_snapshots = len(self.epochs)
        self.depth: dict[int, dict[str, Any]] = {}
        self.memo: dict[Any, Any] = {}  # per-check results worth computing once
        cfg = rec.config
        self.optimizer = cfg.optimizer
        self.init = cfg.init
        self.lr = cfg.lr
        self.loss = rec.loss or cfg.loss
        self.activation = rec.activation or ""
        self.n_classes = rec.data.n_classes if rec.data is not None else 0
        self.n_val = rec.data.n_val if rec.data is not None else 0
        self.input_shape = rec.data.input_shape if rec.data is not None else ()

    @property
    def adaptive(self) -> bool:
        """The optimizer adapts its step per weight (Adam, AdamW)."""
        return self.optimizer.startswith("adam")

    @property
    def chance(self) -> float | None:
        """Accuracy of guessing one class (balanced validation set), or None (regression)."""
        return 1.0 / self.n_classes if self.n_classes >= 2 else None

    @property
    def diverged(self) -> bool:
        """The run stopped on a non-finite loss or weight."""
        return self.run.status == "diverged" or self.run.record.diverged_at is not None

    def stats(self, i: int) -> SnapshotStats:
        return self.run.snapshot(i).record

    def history_upto(self, epoch: float) -> list[HistoryRow]:
        return [h for h in self.history if h.epoch <= epoch + 1e-9]

    def chains(self) -> list[list[Layer]]:
        """Runs of consecutive layers not separated by a normalization module."""
        out: list[list[Layer]] = [[]]
        for layer in self.layers:
            out[-1].append(layer)
            if layer.norm_after:
                out.append([])
        return [c for c in out if c]


def signal_of(acts: dict[str, ActivationStats], module: str) -> float | None:
    """The activation signal std of a module's output (see the module docstring)."""
    a = acts.get(module)
    return finite_or_none(a.signal_std) if a is not None else None


def grad_of(pstats: ParamStats, key: str = "std") -> float | None:
    """A gradient statistic of one parameter (a ``GradStats`` field), or None."""
    return finite_or_none(getattr(pstats.grad, key)) if pstats.grad is not None else None


def order(ctx: Context, layers: Iterable[str]) -> list[str]:
    """Module names in forward order (probed modules first by their order, then the rest)."""
    return sorted(dict.fromkeys(layers), key=lambda m: ctx.position.get(m, len(ctx.position)))


def order_acts(ctx: Context, hits: Iterable[tuple[Any, ...]]) -> list[str]:
    """The first items of ``hits`` (module names) in forward order."""
    return order(ctx, (h[0] for h in hits))


def dead_layers(ctx: Context, i: int, least: float = DEAD_INFO) -> list[tuple[str, float]]:
    """(ReLU layer, dead fraction) for layers at or above ``least`` at snapshot i."""
    hits = []
    for name, a in ctx.stats(i).activations.items():
        if a.kind != "relu" or a.nan_count or a.inf_count:
            continue
        if a.dead_frac is not None and a.dead_frac >= least:
            hits.append((name, a.dead_frac))
    return hits


def all_dead(ctx: Context, i: int) -> list[str]:
    """ReLU layers whose units are (almost) all dead: no gradient gets through them."""
    return [name for name, _ in dead_layers(ctx, i, ALL_DEAD)]


def loss_trend(ctx: Context, epoch: float) -> dict[str, Any]:
    """Train-loss trend up to ``epoch``: rose (in one of the last 2 epochs), flat, spiked."""
    hist = ctx.history_upto(epoch)
    losses = [finite_or_none(h.train_loss) for h in hist]
    out: dict[str, Any] = {"epochs": len(hist), "rose": False, "flat": False, "spiked": False,
                           "diverged": ctx.run.status == "diverged" and epoch >= ctx.epochs[-1]}
    if any(v is None for v in losses):
        out["diverged"] = True
        return out
    for h, train in zip(hist, losses, strict=True):
        val = finite_or_none(h.val_loss)
        if train is not None and val and val > 0 and train >= LOSS_SPIKE * val:
            out["spiked"] = True
            out["spike"] = train / val
    changes = [(b - a) / max(abs(a), 1e-12) for a, b in zip(losses, losses[1:], strict=False)]
    if changes:
        out["change"] = changes[-1]
        out["rose"] = any(c > LOSS_REL_CHANGE for c in changes[-2:])
        out["flat"] = abs(changes[-1]) < LOSS_REL_CHANGE
    return out


def update_ratio(pstats: ParamStats) -> float | None:
    """A parameter's finite update ratio ‖ΔW‖/‖W‖ (None at snapshot 0, or not finite)."""
    return finite_or_none(pstats.update_ratio)


def update_ratios(ctx: Context, i: int) -> list[tuple[str, float]]:
    """(module, update ratio) of every weight layer with a positive finite ratio."""
    params = ctx.stats(i).params
    out = []
    for layer in ctx.layers:
        r = update_ratio(params[layer.weight])
        if r is not None and r > 0:
            out.append((layer.module, r))
    return out


def val_accuracies(ctx: Context, epoch: float) -> list[float]:
    """Finite validation accuracies per epoch up to ``epoch``."""
    return [h.val_acc for h in ctx.history_upto(epoch) if h.val_acc is not None]
