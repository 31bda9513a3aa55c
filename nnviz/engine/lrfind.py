"""The learning-rate range test (Smith 2017; torch-lr-finder, fastai ``lr_find``).

Starting from the run's freshly initialised model, take ``num_iter`` optimizer steps while the
learning rate grows exponentially from ``start_lr`` to ``end_lr`` (step i uses
``start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))``). Each step records the loss of the
batch it trains on, *before* its update. The curve is smoothed with an exponential moving average
with bias correction (``beta = 1 - smooth``; ``smooth = 0`` keeps the raw loss). The test stops
early once the smoothed loss exceeds ``diverge_th`` times the best smoothed loss so far, or the
loss is not finite (that last point is not kept: ``stop_lr`` names the LR it happened at).

The suggestion is the LR at the steepest descent of the smoothed loss against log LR, ignoring
the first 10% and last 5% of the recorded points as fastai and torch-lr-finder do (the start is
noise, the end is the explosion), and anything after the lowest smoothed loss. The slope at a
point is taken across a window of ±5% of the usable points (at least ±1, which is
``np.gradient``), so a wiggle of the flat start cannot beat the real descent. Fewer than 5
usable points: no suggestion.

Edge cases: ``num_iter`` 2 to 10 000; ``start_lr < end_lr``; a loss that never stops falling
gives ``stopped_early = False``. Deterministic for a seed (same batches, same weights); the run
store is never touched.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from nnviz.config import RunConfig
from nnviz.errors import ConfigError
from nnviz.store.format import finite_or_none

SKIP_START = 0.10  # share of the first points left out of the suggestion (noise)
SKIP_END = 0.05    # share of the last points left out (the explosion)
MIN_POINTS = 5     # fewer usable points than this: no suggestion
WINDOW_DIV = 20    # slopes are taken across ±(usable points / 20), at least ±1 point


@dataclass
class LRFindResult:
    """The LR range test's curve, its suggestion and why it stopped."""

    lrs: list[float]               # LR of every recorded step
    losses: list[float]            # raw batch loss at each step (before that step's update)
    smoothed: list[float]          # bias-corrected exponential moving average of the loss
    suggested_lr: float | None     # LR at the steepest descent of the smoothed loss (or None)
    stopped_early: bool            # True when the loss exploded (or went non-finite) before end_lr
    best_loss: float               # lowest smoothed loss
    best_lr: float = math.nan      # LR at the lowest smoothed loss
    stop_lr: float | None = None   # LR of the step that stopped the test (None: ran to end_lr)
    reason: str = ""               # why it stopped, in words
    settings: dict[str, Any] = field(default_factory=dict)  # start_lr, end_lr, num_iter, ...

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (NaN becomes None)."""
        return {k: finite_or_none(v) if isinstance(v, float) else v
                for k, v in asdict(self).items()}


def lr_schedule(start_lr: float, end_lr: float, num_iter: int) -> np.ndarray:
    """The exponential LR sweep: num_iter values from start_lr to end_lr, evenly spaced in log."""
    return start_lr * (end_lr / start_lr) ** (np.arange(num_iter) / max(num_iter - 1, 1))


def smooth_losses(losses: list[float] | np.ndarray, smooth: float) -> np.ndarray:
    """Bias-corrected exponential moving average, beta = 1 - smooth (0: the raw losses)."""
    out = np.empty(len(losses))
    avg = 0.0
    for i, loss in enumerate(losses):
        avg, out[i] = _smooth_step(avg, float(loss), i, smooth)
    return out


def _smooth_step(avg: float, value: float, i: int, smooth: float) -> tuple[float, float]:
    """One step of fastai's SmoothenValue: (new running average, bias-corrected value)."""
    if smooth == 0.0:  # smoothing off, as torch-lr-finder's smooth_f = 0
        return value, value
    beta = 1.0 - smooth
    avg = beta * avg + smooth * value
    return avg, avg / (1.0 - beta ** (i + 1))


def steepest_lr(lrs: list[float] | np.ndarray, smoothed: list[float] | np.ndarray
                ) -> float | None:
    """LR where the smoothed loss falls fastest against log LR (first 10% / last 5% skipped)."""
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    n = len(lrs)
    lo, hi = round(SKIP_START * n), n - round(SKIP_END * n)
    if hi - lo < MIN_POINTS:
        return None
    lowest = int(np.argmin(smoothed))
    if lowest + 1 - lo >= MIN_POINTS:  # the descent that leads to the lowest loss, not a later dip
        hi = min(hi, lowest + 1)
    x, y = np.log(lrs[lo:hi]), smoothed[lo:hi]
    # Slope across ±k points (k = 1 is np.gradient's central difference): a wider window keeps
    # a noisy wiggle of the flat start from beating the real, longer descent.
    k = max(1, (hi - lo) // WINDOW_DIV)
    i = np.arange(len(x))
    a, b = np.clip(i - k, 0, len(x) - 1), np.clip(i + k, 0, len(x) - 1)
    slope = (y[b] - y[a]) / (x[b] - x[a])
    best = int(np.argmin(slope))
    if not slope[best] < 0:  # the loss never fell: nothing to suggest
        return None
    return float(lrs[lo + best])


def check_settings(start_lr: float, end_lr: float, num_iter: int, smooth: float,
                   diverge_th: float) -> None:
    """Raise ConfigError for range-test settings out of range, naming the option."""
    if not (math.isfinite(start_lr) and 0 < start_lr):
        raise ConfigError(f"start_lr: must be a number above 0, got {start_lr!r}.")
    if not (math.isfinite(end_lr) and start_lr < end_lr <= 1e6):
        raise ConfigError(f"end_lr: must be above start_lr ({start_lr:g}) and at most 1e6, "
                          f"got {end_lr!r}.")
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or not 2 <= num_iter <= 10_000:
        raise ConfigError(f"num_iter: use a whole number from 2 to 10000, got {num_iter!r}.")
    if not (math.isfinite(smooth) and 0.0 <= smooth < 1.0):
        raise ConfigError(f"smooth: use 0 (no smoothing) up to below 1, got {smooth!r}.")
    if not (math.isfinite(diverge_th) and diverge_th > 1.0):
        raise ConfigError(f"diverge_th: must be above 1 (stop when the loss is this many times "
                          f"the best), got {diverge_th!r}.")


def lr_find(cfg: RunConfig, start_lr: float = 1e-7, end_lr: float = 10.0, num_iter: int = 100,
            smooth: float = 0.05, diverge_th: float = 5.0, progress: Any = None,
            cancel: Any = None) -> LRFindResult:
    """Run the LR range test on ``cfg``'s data, model, init, optimizer and loss."""
    from nnviz.engine.seeding import run_generators
    from nnviz.engine.training import compute_loss, make_optimizer, prepare, resolve_device

    check_settings(start_lr, end_lr, num_iter, smooth, diverge_th)
    device = resolve_device(cfg.device)
    data, model, loss_name, _ = prepare(cfg, device)  # train's set-up, seeds and layout too
    order = run_generators(cfg.seed).order
    model.to(device).train()
    x, y = data.x_train.to(device), data.y_train.to(device)
    params = list(model.parameters())
    opt = make_optimizer(cfg, params, 1)  # adam_then_sgd: the first phase (Adam) is tested
    schedule = lr_schedule(start_lr, end_lr, num_iter)
    batch = min(cfg.batch_size, len(x))
    perm, pos = torch.randperm(len(x), generator=order).to(device), 0
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, best_lr = 0.0, math.inf, math.nan
    stop_lr, reason = None, f"reached end_lr {end_lr:g}"
    for i, lr in enumerate(schedule):
        if cancel is not None and cancel.is_set():
            stop_lr, reason = float(lr), "cancelled"
            break
        if pos + batch > len(x):  # a new pass over the data, in a new seeded order
            perm, pos = torch.randperm(len(x), generator=order).to(device), 0
        idx = perm[pos:pos + batch]
        pos += batch
        for group in opt.param_groups:
            group["lr"] = float(lr)
        loss = compute_loss(loss_name, model(x[idx]), y[idx], cfg.focal_gamma)
        value = float(loss.detach())
        if not math.isfinite(value):
            stop_lr, reason = float(lr), f"the loss became {value} at lr {lr:.3g}"
            break
        avg, s = _smooth_step(avg, value, i, smooth)
        lrs.append(float(lr))
        losses.append(value)
        smoothed.append(s)
        if s < best:
            best, best_lr = s, float(lr)
        if progress is not None:
            progress({"event": "step", "step": i + 1, "num_iter": num_iter, "lr": float(lr),
                      "loss": value})
        if s > diverge_th * best:
            stop_lr = float(lr)
            reason = (f"the smoothed loss {s:.3g} passed {diverge_th:g} × the best "
                      f"({best:.3g}) at lr {lr:.3g}")
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    settings = {"start_lr": start_lr, "end_lr": end_lr, "num_iter": num_iter, "smooth": smooth,
                "diverge_th": diverge_th, "optimizer": cfg.optimizer, "loss": loss_name,
                "batch_size": batch}
    return LRFindResult(
        lrs=lrs, losses=losses, smoothed=smoothed, suggested_lr=steepest_lr(lrs, smoothed),
        stopped_early=stop_lr is not None and reason != "cancelled", best_loss=best,
        best_lr=best_lr, stop_lr=stop_lr, reason=reason, settings=settings,
    )
