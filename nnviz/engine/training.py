"""Training: one seeded run, recorded snapshot by snapshot into the run store.

``train(cfg, store)`` builds data, model and optimizer from a ``RunConfig``, records a snapshot at
init (epoch 0) and after every epoch (or ``snapshots_per_epoch`` times per epoch), and saves
each one before going on, so finished epochs can be explored while later ones train.

A step whose loss is not finite stops the run after its update: it is marked ``diverged`` at
that epoch and step, with a last snapshot of the weights that step left (their NaN / Inf counts
are evidence, never dropped). Weights are checked too (one fused reduction) before every
snapshot and at every epoch's end; weights that turn non-finite in between make the next loss
non-finite, which stops the run at that step. A cancel (``threading.Event``-like object, looked
at every step, or the run's CANCEL file, which any process may create, looked for every
CANCEL_POLL_S seconds and before every epoch is recorded) stops the run and keeps what was
recorded.

Reproducibility: with ``deterministic`` (the default) a CPU run trains on one torch thread,
whatever ``threads`` or the machine say, because torch's multi-threaded CPU kernels (conv and
matmul backward, reductions) add in an order that depends on the thread count; so one config
gives bit-identical weights, losses and snapshots at any thread count on the same kind of CPU
and torch version. ``deterministic=False`` uses ``threads`` (or the caller's setting), faster on
an idle multi-core machine, reproducible only at the same thread count.

Speed: the loop does what a bare PyTorch loop does plus, per step, one host read of the loss
(and, when recording, the sampled steps of ``recorder.sample_steps``); training accuracy is
counted once per epoch from the kept outputs; the epoch snapshot's probe activations are
measured inside the validation pass (the probe is the validation set's head), not by a second
forward pass; snapshots and run.json writes go to a ``SnapshotQueue`` that writes them in
order (on a background thread for models of INLINE_BELOW parameters or more), run.json at
most every SAVE_S (first within SAVE_S, at the end, or, with a ``progress`` callback, before
the "started" event: one write for a run shorter than SAVE_S), saved without the format
reader's check (built here from typed values; every read checks it, and so do the tests,
``NNVIZ_CHECK_WRITES``), and the run's files are fsynced once at its end, on the process's one
fsync thread (``benchmarks/bench_side_by_side.py`` measures it against a bare loop).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from nnviz import __version__
from nnviz.config import RunConfig, config_hash
from nnviz.engine.data import DataBundle, load_dataset
from nnviz.engine.initializers import InitParams, apply_init, theories
from nnviz.engine.models import MODELS, build_model
from nnviz.engine.recorder import (
    Recorder,
    SnapshotQueue,
    describe_layers,
    describe_params,
    init_digest,
    sample_steps,
)
from nnviz.engine.seeding import run_generators, seed_globals
from nnviz.errors import ConfigError, DeviceError
from nnviz.i18n import t
from nnviz.store.runs import RunStore, RunWriter

Progress = Callable[[dict[str, Any]], None]
VAL_BATCH = 1024  # examples per forward pass of the validation set
CANCEL_POLL_S = 0.1  # the CANCEL file is looked for at most this often (and at every epoch end)
SAVE_S = 1.0  # run.json is saved at most this often while training (and at the end; with a
             # progress callback, before "started"): new epochs and snapshots are listed
             # within SAVE_S


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


def available_devices() -> list[str]:
    """Devices torch can use here, best first (always ends with 'cpu')."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; an absent device is a DeviceError."""
    devices = available_devices()
    if name == "auto":
        return torch.device(devices[0])
    if name not in devices:
        raise DeviceError(
            t("Device {name!r} is not available on this machine; available: {devices} (or "
              "'auto').", name=name, devices=", ".join(devices))
        )
    return torch.device(name)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def resolve_loss(cfg: RunConfig, task: str, n_classes: int) -> str:
    """The loss used for this data: 'auto' by task and model; mismatches are ConfigErrors."""
    loss = cfg.loss
    if loss == "auto":
        if task == "regression":
            return "mse"
        return "bce" if cfg.model == "simple_net" else "cross_entropy"
    if task == "regression" and loss not in ("mse", "mae"):
        raise ConfigError(t("loss: {loss} is a classification loss; {dataset} is a regression "
                            "data set, use mse or mae.", loss=loss, dataset=cfg.dataset))
    if task == "classification" and loss in ("mse", "mae"):
        raise ConfigError(t("loss: {loss} is a regression loss; {dataset} is a classification "
                            "data set, use cross_entropy, bce or focal.", loss=loss,
                            dataset=cfg.dataset))
    return loss


def focal_loss(logits: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 − p_t)^γ; γ = 0 is plain CE."""
    if logits.shape[1] == 1:  # binary: one logit
        target = y.float().unsqueeze(1)
        logp = F.logsigmoid(logits)
        log1mp = F.logsigmoid(-logits)
        logpt = target * logp + (1 - target) * log1mp
    else:
        logpt = F.log_softmax(logits, dim=1).gather(1, y.unsqueeze(1))
    pt = logpt.exp()
    return (-(1 - pt) ** gamma * logpt).mean()


def compute_loss(name: str, out: torch.Tensor, y: torch.Tensor, focal_gamma: float
                 ) -> torch.Tensor:
    """Loss by name; classification targets are class ids, regression targets (B, 1)."""
    if name == "mse":
        return F.mse_loss(out, y)
    if name == "mae":
        return F.l1_loss(out, y)
    if name == "cross_entropy":
        return F.cross_entropy(out, y)
    if name == "bce":
        target = y.float().unsqueeze(1) if out.shape[1] == 1 else \
            F.one_hot(y, out.shape[1]).float()
        return F.binary_cross_entropy_with_logits(out, target)
    return focal_loss(out, y, focal_gamma)


def predictions(out: torch.Tensor) -> torch.Tensor:
    """Class ids from logits (one logit: sigmoid > 0.5)."""
    return (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(1)


def make_optimizer(cfg: RunConfig, params: list[nn.Parameter], epoch: int
                   ) -> torch.optim.Optimizer:
    """The optimizer for ``epoch`` (adam_then_sgd switches to SGD at ``switch_epoch``)."""
    kind = cfg.optimizer
    if kind == "adam_then_sgd":
        kind = "sgd" if epoch >= cfg.switch_epoch else "adam"
    if kind == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: RunConfig, opt: torch.optim.Optimizer) -> Any:
    """The LR scheduler (stepped once per epoch), or None."""
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.gamma,
                                                          patience=cfg.patience)
    return None


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "nnviz": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device_label(device),
        "threads": torch.get_num_threads(),
    }


@dataclass
class TrainResult:
    run_id: str
    status: str
    detail: str


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_name: str,
             focal_gamma: float, task: str, batch: int = VAL_BATCH
             ) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) over a data set, in eval mode."""
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    try:
        for i in range(0, len(x), batch):
            out = model(x[i:i + batch])
            yb = y[i:i + batch]
            total += float(compute_loss(loss_name, out, yb, focal_gamma)) * len(yb)
            if task == "classification":
                correct += int((predictions(out) == yb).sum())
            n += len(yb)
    finally:
        model.train(was_training)
    return total / max(n, 1), (correct / n if task == "classification" and n else None)


def prepare(cfg: RunConfig, device: torch.device | None = None
            ) -> tuple[DataBundle, nn.Module, str, str]:
    """The one set-up of training and the LR range test: data, initialised model (on CPU), loss
    name and matched activation; torch's threads and the global generators set for the run.
    For training on the CPU (``device``), a CNN's colour images are made channels_last here
    (``image_layout``; in place of the NCHW ones: no second copy is kept).

    The model's weights come from the run's ``init`` stream only; the global generators
    (dropout) are seeded after the model is built, so building it cannot shift them.
    """
    if cfg.threads and not cfg.deterministic:  # a deterministic run trains on one thread
        torch.set_num_threads(cfg.threads)
    data = load_dataset(
        cfg.dataset, n_samples=cfg.n_samples, seed=cfg.seed, noise=cfg.noise,
        val_fraction=cfg.val_fraction, data_dir=cfg.data_dir or None,
        imbalance=cfg.imbalance, outlier_fraction=cfg.outlier_fraction,
    )
    loss_name = resolve_loss(cfg, data.task, data.n_classes)
    model = build_model(cfg, data.input_shape, data.n_classes, data.task, loss_name)
    activation = MODELS[cfg.model].activation(cfg)
    apply_init(model, init_params(cfg), activation, run_generators(cfg.seed).init)
    seed_globals(cfg.seed, cfg.deterministic)
    if device is not None and device.type == "cpu":
        data.x_train = image_layout(data.x_train, model)
        data.x_val = image_layout(data.x_val, model)
    return data, model, loss_name, activation


def image_layout(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Colour images (N, C > 1, H, W) in channels_last for a model that trains faster so on the
    CPU (its ``channels_last_on_cpu``: SimpleCNN, and CNNs of 2 or more blocks), anything else as
    it is (an MLP flattens its input: a layout would only cost it a copy).

    PyTorch's CPU max-pool is several times faster on channels_last input (SimpleCNN's
    MaxPool2d: 5.4 ms NCHW, 1.4 ms channels_last on a batch of 64), and a conv fed
    channels_last input answers in channels_last, so every layer after it runs in that layout:
    a training step of SimpleCNN or a 2-4 block CNN is 1.5-1.7x faster. A 1-block CNN with ReLU
    measured 0.8-0.96x, so it keeps NCHW (``benchmarks/bench_layout.py``). The values are the
    same function of the same numbers; SimpleCNN's weights and outputs are bit for bit NCHW's
    (``tests/test_training.py``), deeper convs' differ by float rounding. A rule per model, not
    a timing at run time: one config always trains in one layout, so its run repeats to the bit.
    A batch ``x[idx]`` keeps the layout; a grey image (C = 1) is the same either way.
    """
    if x.device.type == "cpu" and x.ndim == 4 and x.shape[1] > 1 and x.is_floating_point() \
            and getattr(model, "channels_last_on_cpu", False):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def init_params(cfg: RunConfig) -> InitParams:
    return InitParams(name=cfg.init, mode=cfg.init_mode, std=cfg.init_std, a=cfg.init_a,
                      value=cfg.init_value, bias=cfg.bias_init, bias_value=cfg.bias_value)


def training_threads(cfg: RunConfig, device: torch.device) -> int:
    """torch threads a run trains on: 1 for a deterministic CPU run, else ``threads`` or now."""
    if cfg.deterministic and device.type == "cpu":
        return 1
    return cfg.threads or torch.get_num_threads()


def train(cfg: RunConfig, store: RunStore | None = None, progress: Progress | None = None,
          cancel: CancelFlag | None = None, record: bool = True) -> TrainResult:
    """Train one run and record it; returns its id and final status."""
    store = store or RunStore()
    device = resolve_device(cfg.device)
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(training_threads(cfg, device))
    try:
        return _train(cfg, store, device, progress, cancel, record)
    finally:
        torch.set_num_threads(saved_threads)


def _train(cfg: RunConfig, store: RunStore, device: torch.device, progress: Progress | None,
           cancel: CancelFlag | None, record: bool) -> TrainResult:
    data, model, loss_name, activation = prepare(cfg, device)
    gens = run_generators(cfg.seed)
    if device.type != "cpu":  # prepare builds the model on the CPU
        model.to(device)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)  # in prepare's layout
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    probe_x = x_val[: cfg.probe_size]  # a slice: in x_val's layout
    params = list(model.parameters())
    recorder = Recorder(model, probe_x, gens.sample_seed) if record else None
    info = describe_params(model, theories(model, init_params(cfg), activation))
    if recorder is not None:
        recorder.set_edges(info)
    n_train = len(x_train)
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    writer = store.create(cfg, config_hash(cfg), {
        "params": info,
        "layers": describe_layers(model),
        "environment": environment(device),
        "init_digest": init_digest(model),
        "loss": loss_name,
        "activation": activation,
        "data": {"task": data.task, "n_classes": data.n_classes,
                 "input_shape": list(data.input_shape), "class_names": data.class_names,
                 "n_train": n_train, "n_val": len(x_val),
                 "extra": _jsonable({k: v for k, v in data.extra.items()
                                     if k != "outlier_indices"})},
        "steps_per_epoch": steps_per_epoch,
        "pid": os.getpid(),
    }, save_in=SAVE_S)  # saved within SAVE_S, before "started", or at the end
    writer.save_interval_s = SAVE_S  # deferred saves: done by the queue's thread or its tick
    writer.check = False  # built here from typed values: checked on every read (and in tests)
    writer.list_first = False  # the init snapshot too (the queue saves it when due)
    queue = SnapshotQueue(writer, recorder)
    loop = _Loop(cfg, model, params, recorder, writer, queue, progress, cancel, loss_name,
                 data.task, record)
    try:
        if record:
            recorder.probe_now()  # type: ignore[union-attr]  # the trainer's own model
            queue.snapshot(0.0, 0)
        if progress is not None:
            queue.wait()  # "started" promises the init snapshot is on disk (ui/services/jobs)
            if writer.save_due_in() is not None:
                queue.call(writer.flush)  # and the run listed (recording off: run.json)
                queue.wait()
            progress({"event": "started", "run_id": writer.run_id, "epoch": 0,
                      "epochs": cfg.epochs, "steps_per_epoch": steps_per_epoch})
        status, detail = loop.run(x_train, y_train, x_val, y_val, gens.order, steps_per_epoch)
        queue.close()
    except BaseException as exc:
        try:
            queue.close()
        except BaseException:  # noqa: S110  # the first error is the one to report
            pass
        writer.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    writer.finish(status, detail)
    if progress is not None:
        progress({"event": "finished", "run_id": writer.run_id, "status": status,
                  "detail": detail})
    return TrainResult(writer.run_id, status, detail)


class _Loop:
    """The epoch loop with its divergence, cancel and early-stopping checks."""

    def __init__(self, cfg: RunConfig, model: nn.Module, params: list[nn.Parameter],
                 recorder: Recorder | None, writer: RunWriter, queue: SnapshotQueue,
                 progress: Progress | None, cancel: CancelFlag | None, loss_name: str,
                 task: str, record: bool) -> None:
        self.cfg, self.model, self.params = cfg, model, params
        self.recorder, self.writer, self.queue = recorder, writer, queue
        self.progress = progress
        self.cancel, self.loss_name, self.task, self.record = cancel, loss_name, task, record
        self.step = 0
        self._next_poll = 0.0
        self._data = [p.detach() for p in params]  # for the finiteness checks (no autograd)

    def cancelled(self, now: float | None = None) -> bool:
        """The cancel flag (every call); the CANCEL file when ``now`` is None or it is due."""
        if self.cancel is not None and self.cancel.is_set():
            return True
        if now is not None and now < self._next_poll:
            return False
        self._next_poll = time.perf_counter() + CANCEL_POLL_S
        self.queue.tick()
        return self.writer.cancel_requested()

    def weights_finite(self) -> bool:
        """Whether every weight is finite: one fused Σ|w| per tensor summed and read back once
        (NaN and Inf propagate; 2.5x faster than max |w|), and max |w| only to confirm when
        that sum is not finite (finite weights whose sum overflows)."""
        if not self.params:
            return True
        data = self._data
        if math.isfinite(torch.stack(torch._foreach_norm(data, 1)).sum().item()):
            return True
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(data, math.inf))).all())

    def diverged(self, epoch: int, what: str, snapshot_epoch: float) -> tuple[str, str]:
        self.queue.call(self.writer.update, diverged_at={"epoch": epoch, "step": self.step,
                                                         "what": what})
        if self.record:
            self.queue.snapshot(snapshot_epoch, self.step)
        return "diverged", f"diverged at epoch {epoch}, step {self.step} (non-finite {what})"

    def run(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
            order_gen: torch.Generator, steps_per_epoch: int) -> tuple[str, str]:
        cfg, model, recorder, progress = self.cfg, self.model, self.recorder, self.progress
        opt = make_optimizer(cfg, self.params, 1)
        sched = make_scheduler(cfg, opt)
        best_val, bad_epochs = math.inf, 0
        k = cfg.snapshots_per_epoch
        snap_steps = {round(steps_per_epoch * j / k) for j in range(1, k + 1)}
        grad_steps, update_steps = sample_steps(steps_per_epoch, snap_steps)
        if recorder is None:
            grad_steps, update_steps = set(), set()
        classify = self.task == "classification"
        model.train()
        for epoch in range(1, cfg.epochs + 1):
            if cfg.optimizer == "adam_then_sgd" and epoch == cfg.switch_epoch:
                lr = opt.param_groups[0]["lr"]
                opt = make_optimizer(cfg, self.params, epoch)
                for g in opt.param_groups:
                    g["lr"] = lr
                sched = make_scheduler(cfg, opt) if cfg.scheduler != "none" else None
            t0 = time.perf_counter()
            perm = torch.randperm(len(x), generator=order_gen).to(x.device)
            loss_sum, seen = 0.0, 0
            outs: list[torch.Tensor] = []  # this epoch's outputs: accuracy counted once
            for i in range(steps_per_epoch):
                if (self.cancel is not None or time.perf_counter() >= self._next_poll) and \
                        self.cancelled(time.perf_counter()):  # the file: when its poll is due
                    return "cancelled", f"cancelled at epoch {epoch}, step {self.step}"
                idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                xb, yb = x[idx], y[idx]
                out = model(xb)
                loss = compute_loss(self.loss_name, out, yb, cfg.focal_gamma)
                self.step += 1
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if i in grad_steps:
                    recorder.after_backward()  # type: ignore[union-attr]  # set when recording
                if i in update_steps:
                    recorder.before_step()  # type: ignore[union-attr]
                    opt.step()
                    recorder.after_step()  # type: ignore[union-attr]
                else:
                    opt.step()
                loss_v = loss.item()
                if not math.isfinite(loss_v):  # the step is taken: its weights are evidence
                    return self.diverged(epoch, "loss", epoch - 1 + (i + 1) / steps_per_epoch)
                n_batch = yb.shape[0]  # (len() of a tensor is a Python call)
                loss_sum += loss_v * n_batch
                seen += n_batch
                if classify:
                    outs.append(out.detach())
                if progress is not None:
                    progress({"event": "step", "epoch": epoch, "epochs": cfg.epochs,
                              "step": i + 1, "steps_per_epoch": steps_per_epoch,
                              "loss": loss_v,
                              "samples_per_s": seen / max(time.perf_counter() - t0, 1e-9)})
                if self.record and (i + 1) in snap_steps and (i + 1) != steps_per_epoch:
                    at = epoch - 1 + (i + 1) / steps_per_epoch
                    if not self.weights_finite():
                        return self.diverged(epoch, "weights", at)
                    self.queue.snapshot(at, self.step)
            seconds = time.perf_counter() - t0
            if not self.weights_finite():
                return self.diverged(epoch, "weights", float(epoch))
            correct = 0
            if classify and outs:
                labels = y[perm[:seen]]
                correct = int((predictions(torch.cat(outs)) == labels).sum())
            del outs
            batch = min(len(x_val), VAL_BATCH)
            with recorder.probe_within(batch) if recorder is not None and \
                    0 < len(recorder.probe_x) <= batch else contextlib.nullcontext():
                # the probe is the validation set's head: its activations are measured in
                # this pass, for the epoch's snapshot (same weights, eval mode)
                val_loss, val_acc = evaluate(model, x_val, y_val, self.loss_name,
                                             cfg.focal_gamma, self.task, batch=VAL_BATCH)
            if self.cancelled():
                return "cancelled", f"cancelled at epoch {epoch}, step {self.step}"
            lr_now = opt.param_groups[0]["lr"]
            row = {
                "epoch": epoch, "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / seen if classify and seen else None,
                "val_loss": val_loss, "val_acc": val_acc, "lr": lr_now, "seconds": seconds,
                "samples_per_s": seen / max(seconds, 1e-9), "step": self.step,
            }
            self.queue.call(self._add_history, row)
            if self.record:
                self.queue.snapshot(float(epoch), self.step)
            if progress is not None:
                progress({"event": "epoch", "epoch": epoch, "epochs": cfg.epochs,
                          "val_loss": val_loss, "val_acc": val_acc})
            if not math.isfinite(val_loss):
                self.queue.call(self.writer.update, diverged_at={
                    "epoch": epoch, "step": self.step, "what": "validation loss"})
                return "diverged", f"diverged at epoch {epoch}, step {self.step} " \
                                   "(non-finite validation loss)"
            if sched is not None:
                if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    sched.step(val_loss)
                else:
                    sched.step()
            if val_loss < best_val - 1e-12:
                best_val, bad_epochs = val_loss, 0
            else:
                bad_epochs += 1
            if cfg.early_stopping and bad_epochs >= cfg.early_stopping:
                self.queue.call(self.writer.update, stopped_early={
                    "epoch": epoch, "best_val_loss": best_val})
                return "completed", f"stopped early at epoch {epoch}: validation loss did " \
                                    f"not improve for {bad_epochs} epochs"
        return "completed", ""

    def _add_history(self, row: dict[str, Any]) -> None:
        """On the queue's thread: the epoch's row; run.json is saved at most every SAVE_S
        (``finish`` saves the rest)."""
        self.writer.meta["history"].append(row)
        self.writer.save_soon()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    return str(obj)
