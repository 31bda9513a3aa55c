"""A Hugging Face ``TrainerCallback`` that records training as an nnviz run
(``pip install nnviz[huggingface]``).

    Trainer(model=model, args=args, train_dataset=ds, callbacks=[NnvizCallback()])

The Trainer's conventions: the model arrives in ``on_train_begin``; gradients are read in
``on_pre_optimizer_step`` (after clipping, before the step), the update in ``on_optimizer_step``;
one snapshot per ``on_epoch_end`` with the numbers logged since the last one
(``state.log_history``); only ``state.is_world_process_zero`` writes.
"""

from __future__ import annotations

from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as exc:  # an optional extra: say how to get it
    raise ImportError(f"{__name__} needs transformers: pip install -r requirements-extras.txt "
                      f"({exc})") from exc

from nnviz.engine.watch import ParamSelector, Watcher


class NnvizCallback(TrainerCallback):
    """Record weights, gradients, updates and (with ``probe``) activations once per epoch."""

    def __init__(self, params: ParamSelector = None, probe: Any = None, name: str = "",
                 runs_dir: Any = None) -> None:
        self.params, self.probe, self.name, self.runs_dir = params, probe, name, runs_dir
        self.recorder: Watcher | None = None
        self._logged = 0

    @property
    def run_id(self) -> str | None:
        return self.recorder.run_id if self.recorder else None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        if not state.is_world_process_zero or model is None:
            return
        probe = self.probe
        if isinstance(probe, dict):
            probe = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in probe.items()}
        self.recorder = Watcher(model, params=self.params, probe=probe,
                                name=self.name or type(model).__name__,
                                runs_dir=self.runs_dir, manual_steps=True,
                                source={"integration": "huggingface"})

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder.before_step()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder.after_step()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is None:
            return
        metrics: dict[str, float] = {}
        for entry in state.log_history[self._logged:]:
            metrics.update({k: float(v) for k, v in entry.items()
                            if isinstance(v, int | float) and k not in ("epoch", "step")})
        self._logged = len(state.log_history)
        self.recorder.snapshot(epoch=float(state.epoch), step=state.global_step, metrics=metrics)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder.close()
