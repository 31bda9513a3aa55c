"""A Lightning ``Callback`` that records training as an nnviz run (extra: ``nnviz[lightning]``).

    trainer = L.Trainer(callbacks=[NnvizCallback(probe=x_val[:64], name="my model")])

Lightning's conventions: gradients are read in ``on_before_optimizer_step`` (after the precision
plugin has unscaled AMP gradients and before the step), the update in ``on_train_batch_end``,
one snapshot per ``on_train_epoch_end`` (with ``trainer.callback_metrics``, validation metrics
included), and only the global rank-zero process writes (``trainer.is_global_zero``).
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as exc:  # an optional extra: say how to get it
    raise ImportError(f"{__name__} needs lightning: pip install -r requirements-extras.txt "
                      f"({exc})") from exc

from nnviz.engine.watch import ParamSelector, Watcher


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics (NaN / Inf kept: a diverged loss is shown, never dropped)."""
    out = {}
    for key, value in metrics.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue  # not a scalar
    return out


class NnvizCallback(Callback):
    """Record weights, gradients, updates and (with ``probe``) activations once per epoch."""

    def __init__(self, params: ParamSelector = None, probe: Any = None, name: str = "",
                 runs_dir: Any = None) -> None:
        super().__init__()
        self.params, self.probe, self.name, self.runs_dir = params, probe, name, runs_dir
        self.recorder: Watcher | None = None

    @property
    def run_id(self) -> str | None:
        return self.recorder.run_id if self.recorder else None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        probe = self.probe
        if probe is not None and hasattr(probe, "to"):
            probe = probe.to(pl_module.device)
        self.recorder = Watcher(pl_module, params=self.params, probe=probe,
                                name=self.name or type(pl_module).__name__,
                                runs_dir=self.runs_dir, manual_steps=True,
                                source={"integration": "lightning"})

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.recorder is not None:
            self.recorder.before_step()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.recorder is not None:
            self.recorder.after_step()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.recorder is not None:
            self.recorder.snapshot(epoch=trainer.current_epoch + 1, step=trainer.global_step,
                                   metrics=_numbers(trainer.callback_metrics))

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.recorder is not None:
            self.recorder.close("failed", f"{type(exception).__name__}: {exception}")
