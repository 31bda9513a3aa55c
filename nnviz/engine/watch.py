"""Record any PyTorch training loop as an ordinary nnviz run: ``nnviz.watch(model, optimizer)``.

Two lines in the user's loop::

    rec = nnviz.watch(model, optimizer, probe=x_val[:64], name="my resnet")
    for epoch in range(1, epochs + 1):
        ...                                   # the loop as it was
        rec.snapshot(epoch=epoch, metrics={"val_loss": val_loss})
    rec.close()                               # or: with nnviz.watch(...) as rec:

What is recorded, and how (torch's own hooks, no change to the loop):

* snapshot 0 at ``watch()`` (the weights as they are then), then one per ``snapshot()`` call
  (or every N optimizer steps with ``every=N``): for each watched parameter the same statistics,
  fixed-bin histogram, values and drift from snapshot 0 as a run nnviz trains itself
  (``nnviz.analysis.stats``; the run format of ``nnviz.store.runs``).
* gradients: ``Tensor.register_post_accumulate_grad_hook`` marks each parameter that received a
  gradient; with an optimizer, ``Optimizer.register_step_pre_hook`` counts the marked ones right
  before every step (after AMP's unscaling and any clipping: ``grad.steps``) and measures
  (‖g‖, mean |g|, std g) on sampled steps (``grad.sampled_steps``; ``norm`` etc. are their
  means, ``last_*`` the last sampled step). Without an optimizer every backward is measured.
  A parameter that got no gradient since the last snapshot (frozen, unused) is stored with
  ``grad_status: "no gradient"`` and no ``grad`` entry, never zeros.
* sampled steps, by an overhead budget (``SamplingBudget``): the work of a sampled step
  (gradient triplets, a copy of the weights, update norms) and the loop's own time per step are
  timed, and steps are sampled so that the work stays within SAMPLE_BUDGET (0.5 %) of the loop's
  time: every step at first, then at most UPDATE_SAMPLES and at least MIN_SAMPLES per snapshot
  interval (its length known from the previous one), as the budget allows. On them the update
  ratio ‖ΔW‖/‖W‖ of that single step is measured too (step pre / post hooks) into one reused
  flat copy of the weights (``UpdateBuffer``: ``torch._foreach`` copy and difference, one
  row-norm call for every parameter). Each snapshot's ``sampling`` says what its figures rest
  on: ``{"steps", "sampled_steps", "budget", "sample_ms", "step_ms"}``; each parameter's
  ``update_samples`` counts its update ratios. Other steps cost a few Python flags
  (``benchmarks/bench_watch.py`` measures it against TensorBoard and W&B).
* activations: forward hooks on every module with parameters of its own and every activation
  module, on the probe batch, in eval mode under ``no_grad``; hooks removed and the training
  mode restored in a ``finally``.
* the snapshot itself in two parts, as the trainer's (``SnapshotQueue``): ``capture`` on the
  caller's thread takes what must be taken there (the watched weights copied into a reused
  buffer, at most MAX_COPIES of them; the gradient and update accumulators; the probe pass, each
  layer's output copied, up to ACTIVATION_COPIES bytes, beyond that measured there) and
  ``compute`` makes the statistics, histograms, drifts and the file, written in order on one
  background thread when torch runs one thread and the model has INLINE_BELOW parameters or
  more (else inline; the bytes are the same either way). An error there fails the run and is
  raised at the next ``snapshot()`` or ``close()``; ``close()``, the context manager and an
  exception in the loop wait for what is queued (at most one snapshot waits behind the one
  being written).
* ``torch.compile``d (``_orig_mod``) and ``DataParallel`` / ``DistributedDataParallel``
  (``.module``) models are unwrapped: parameters keep their plain names. Under
  ``torch.distributed`` only rank 0 records (other ranks get a recorder that does nothing).

``params=`` picks parameters: a glob pattern on the name (``"layer4.*"``), a list of them, or a
predicate ``(name, parameter) -> bool``. The run's ``source`` says where it came from:
``{"kind": "watch", "model_class", "n_params", "n_watched", "wrapper", "optimizer"}``.
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import functools
import math
import re
import statistics
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nnviz.analysis import stats
from nnviz.config import RunConfig
from nnviz.engine.default_inits import default_theory, torch_type
from nnviz.engine.recorder import (  # weight_entry: also checkpoints' import from here
    ACTIVATION_TYPES,
    UPDATE_SAMPLES,
    SnapshotQueue,
    describe_params,
    init_digest,
    ratio_summary,
    signal_std,
    weight_entry,
)
from nnviz.engine.training import environment
from nnviz.errors import ConfigError, StorageError
from nnviz.store.runs import RunStore, RunWriter

ParamSelector = str | Sequence[str] | Callable[[str, nn.Parameter], bool] | None
HEARTBEAT_S = 30.0  # run.json is touched at least this often while the loop runs
NO_GRADIENT = "no gradient"
SAMPLE_BUDGET = 0.005  # the sampled steps' work: at most this share of the loop's own time
MIN_SAMPLES = 2       # sampled steps per snapshot interval whatever the budget
ROW = 1024            # elements per row of UpdateBuffer (one float32 norm per row)
MAX_COPIES = 2        # weight copies for snapshots in flight (one computed, one waiting)
ACTIVATION_COPIES = 64 << 20  # bytes of probe outputs a snapshot copies for its background
                              # thread (the rest is measured on the caller's thread)


def unwrap(model: nn.Module) -> tuple[nn.Module, str | None]:
    """The module under torch.compile / DataParallel / DDP wrappers, and the outermost wrapper."""
    wrapper = None
    while True:
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            wrapper = wrapper or "torch.compile"
            model = inner
        elif isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel):
            wrapper = wrapper or type(model).__name__
            model = model.module
        else:
            return model, wrapper


def select_params(model: nn.Module, params: ParamSelector) -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs ``params`` picks, in named_parameters order."""
    named = list(model.named_parameters())
    if params is None:
        chosen = named
    elif callable(params):
        chosen = [(n, p) for n, p in named if params(n, p)]
    else:
        patterns = [params] if isinstance(params, str) else list(params)
        if not patterns or not all(isinstance(s, str) for s in patterns):
            raise ConfigError("params= takes a name pattern, a list of them, or a function "
                              "(name, parameter) -> bool.")
        chosen = [(n, p) for n, p in named if any(fnmatch.fnmatchcase(n, s) for s in patterns)]
    if not chosen:
        some = ", ".join(n for n, _ in named[:6]) or "none: the model has no parameters"
        raise ConfigError(f"params={params!r} selects no parameter of the model; its "
                          f"parameters are named like: {some}.")
    return chosen


def _first_tensor(out: Any) -> torch.Tensor | None:
    """The first floating tensor of a module's output (tensor, tuple, list, dict, ModelOutput)."""
    if isinstance(out, torch.Tensor):
        return out if out.is_floating_point() else None
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, list | tuple):
        for item in out:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def measured_layers(model: nn.Module) -> list[dict[str, str]]:
    """Modules whose outputs are measured on the probe: own parameters, or an activation."""
    layers = []
    for name, module in model.named_modules():
        kind = ACTIVATION_TYPES.get(type(module))
        if kind is None and any(True for _ in module.parameters(recurse=False)):
            kind = "linear"
        if kind is not None and name:
            layers.append({"name": name, "kind": kind, "type": type(module).__name__})
    return layers


def _to_device(probe: Any, device: torch.device) -> Any:
    """The probe (a tensor, a tuple / list or dict of them) on the model's device."""
    if isinstance(probe, torch.Tensor):
        return probe.to(device)
    if isinstance(probe, dict):
        return {k: _to_device(v, device) for k, v in probe.items()}
    if isinstance(probe, list | tuple):
        return type(probe)(_to_device(v, device) for v in probe)
    return probe


def _grad_triplets(grads: list[torch.Tensor]) -> torch.Tensor:
    """(k, 3) float64 on the grads' device: ‖g‖, mean |g|, std g (unbiased) per gradient."""
    grads = [(g.coalesce().values() if g.is_sparse else g) for g in grads]
    grads = [g if g.dtype in (torch.float32, torch.float64) else g.float() for g in grads]
    l2 = torch.stack(torch._foreach_norm(grads, 2)).double()
    # L1 by a cascade sum per tensor: twice as fast as the fused 1-norm on the CPU, and ~1e-7
    # from float64 where the fused one's sequential float32 sum drifts by ~1e-4
    l1 = torch.stack([g.abs().sum() for g in grads]).double()
    total = torch.stack([g.sum() for g in grads]).double()
    n = torch.tensor([float(g.numel()) for g in grads], dtype=torch.float64, device=l2.device)
    var = (l2 * l2 - total * total / n) / (n - 1).clamp_min(1)
    return torch.stack((l2, l1 / n, var.clamp_min(0).sqrt()), dim=1)


class SamplingBudget:
    """Which optimizer steps are sampled (gradients and update measured), and what they cost.

    The work of a sampled step and the loop's own time per step (between sampled steps'
    pre-hooks, less that work; the gap across a snapshot is left out) are timed in the training
    thread's own CPU time (``time.thread_time``: on a busy machine wall time jumps by whole time
    slices, and the process's CPU time would also count the snapshots' background thread). A
    sample's cost is the median of the last few. The gap between sampled steps (the stride) is
    the smallest that keeps work / loop time within ``budget``, bounded by the last interval's
    length (steps between snapshots): at least length // UPDATE_SAMPLES (1 in the first
    interval, whose length is unknown; doubled after every UPDATE_SAMPLES samples of an
    interval), and at most length // MIN_SAMPLES until the interval has MIN_SAMPLES samples."""

    def __init__(self, budget: float = SAMPLE_BUDGET,
                 clock: Callable[[], float] = time.thread_time) -> None:
        self.budget, self.clock = budget, clock
        self.stride, self.floor, self.ceiling = 1, 1, None
        self.samples = 0
        self.recent: deque[float] = deque(maxlen=9)  # the last samples' work (s): median
        self.loop_s, self.loop_steps = 0.0, 0   # the loop's own time, every step so far
        self.interval_samples = 0
        self._next, self._k = 1, 0
        self._mark: float | None = None  # when the last step began (None after a snapshot)
        self._spent = self._work = 0.0   # work since the mark / in the current sample

    def step_begins(self, k: int) -> bool:
        """Step k of the interval begins (1-based): is it sampled? Only a sampled step reads
        the clock: the loop's time is taken from one sampled step's beginning to the next's,
        less the work between (the steps between cost a comparison)."""
        if k < self._next:
            return False
        now = self.clock()
        if self._mark is not None:
            self.loop_s += max(0.0, now - self._mark - self._spent)
            self.loop_steps += k - self._k
        self._mark, self._spent, self._k = now, 0.0, k
        return True

    def spent(self, seconds: float) -> None:
        self._spent += seconds
        self._work += seconds

    def sampled(self, seconds: float) -> None:
        """The sampled step's last work is done (its update measured)."""
        self.spent(seconds)
        self.recent.append(self._work)
        self._work = 0.0
        self.samples += 1
        self.interval_samples += 1
        if self.interval_samples % UPDATE_SAMPLES == 0:
            self.floor *= 2
        self.stride = self._choose()
        self._next = self._k + self.stride

    def interval_ends(self, steps: int) -> None:
        """A snapshot after `steps` steps: the next interval is expected as long."""
        self._mark = None
        if steps:
            self.floor = max(1, steps // UPDATE_SAMPLES)
            self.ceiling = max(1, steps // MIN_SAMPLES)
        self.interval_samples = 0
        self.stride = self._choose()
        self._next = self.stride

    def _choose(self) -> int:
        stride = self.floor
        if self.samples and self.loop_steps:
            step_s = self.loop_s / self.loop_steps
            want = self.sample_s() / (self.budget * step_s) if step_s > 0 else math.inf
            stride = max(stride, math.ceil(min(want, 1e9) * (1 - 1e-9)))  # 10.000…01: 10
        if self.ceiling is not None and self.interval_samples < MIN_SAMPLES:
            stride = min(stride, self.ceiling)  # the interval's first MIN_SAMPLES, whatever
        return max(1, stride)

    def sample_s(self) -> float:
        """A sampled step's work: the median of the last few (the very first, which pays for
        first calls and allocations, left out once there are others)."""
        recent = list(self.recent)[1:] if self.samples == len(self.recent) > 1 else self.recent
        return statistics.median(recent) if recent else 0.0

    def record(self, steps: int) -> dict[str, Any]:
        """What this interval's gradient and update figures rest on (the snapshot's
        ``sampling``)."""
        step_s = self.loop_s / self.loop_steps if self.loop_steps else None
        return {"steps": steps, "sampled_steps": self.interval_samples, "budget": self.budget,
                "sample_ms": round(self.sample_s() * 1e3, 3),
                "step_ms": None if step_s is None else round(step_s * 1e3, 3)}


class UpdateBuffer:
    """One flat copy of the watched weights for update ratios, taken only on sampled steps.

    Each parameter's values sit at the start of whole rows of ROW elements (zero padding after
    them), so one ``vector_norm`` over the rows measures every parameter at once: float32 row
    norms (~1e-9 relative here) squared and summed per parameter in float64. Allocated once and
    reused (a fresh copy of a ResNet's weights costs more in page faults than its norms); copy
    and difference are ``torch._foreach`` calls over all parameters. None where the parameters
    do not share one float32 / float64 dtype and device (then ``update_ratios_slow`` clones
    them per sample, and drift is ``stats.drift``'s)."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        p0 = params[0]
        rows = [-(-p.numel() // ROW) for p in params]
        self.flat = torch.zeros(sum(rows) * ROW, dtype=p0.dtype, device=p0.device)
        starts = np.cumsum([0, *rows[:-1]]) * ROW
        self.views = [self.flat[int(s):int(s) + p.numel()].view_as(p)
                      for s, p in zip(starts, params, strict=True)]
        self.owner = torch.repeat_interleave(torch.arange(len(params), device=p0.device),
                                             torch.tensor(rows, device=p0.device))
        self.n = len(params)

    @classmethod
    def fits(cls, params: list[torch.Tensor]) -> bool:
        return bool(params) and len({(p.dtype, p.device) for p in params}) == 1 and \
            params[0].dtype in (torch.float32, torch.float64)

    def _sum_squares(self) -> torch.Tensor:
        """(n,) float64 on the device: each parameter's Σ x² over its rows."""
        r = torch.linalg.vector_norm(self.flat.view(-1, ROW), dim=1).double()
        return torch.zeros(self.n, dtype=torch.float64, device=r.device).index_add_(
            0, self.owner, r * r)

    def keep(self, params: list[torch.Tensor]) -> torch.Tensor:
        """Copy the weights in; returns Σ W_before² per parameter."""
        torch._foreach_copy_(self.views, params)
        return self._sum_squares()

    def update(self, params: list[torch.Tensor], before_sq: torch.Tensor) -> torch.Tensor:
        """‖W − W_before‖ / ‖W_before‖ per parameter (NaN for 0/0, inf for x/0)."""
        torch._foreach_sub_(self.views, params)  # W_before − W: the same norm as the update
        return self._sum_squares().sqrt() / before_sq.sqrt()

    def drift_squares(self, params: list[torch.Tensor], w0: list[torch.Tensor]) -> torch.Tensor:
        """Σ (W − W0)² per parameter (the buffer is free between steps)."""
        torch._foreach_copy_(self.views, params)
        torch._foreach_sub_(self.views, w0)
        return self._sum_squares()


def update_ratios_slow(params: list[torch.Tensor], before: list[torch.Tensor]) -> torch.Tensor:
    """UpdateBuffer.update for parameters of mixed dtypes or devices: float64 norms per one."""
    num = [torch.linalg.vector_norm((p.detach() - b).double()).to(params[0].device)
           for p, b in zip(params, before, strict=True)]
    den = [torch.linalg.vector_norm(b.double()).to(params[0].device) for b in before]
    return torch.stack(num) / torch.stack(den)


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def _drain(snapshots: SnapshotQueue) -> None:
    """At exit: write what an unclosed recorder still has queued (its errors: too late)."""
    with contextlib.suppress(BaseException):
        snapshots.wait()


def _activation_entry(kind: str, a: torch.Tensor) -> dict[str, Any]:
    """A layer's activation statistics on the probe batch."""
    return {"kind": kind, **stats.activation_stats(a, kind), "signal_std": signal_std(a)}


@dataclass
class _Moment:
    """What ``Watcher.capture`` takes on the caller's thread for ``compute``."""

    epoch: float
    step: int
    weights: list[torch.Tensor]        # copies of the watched weights (views of ``copy``)
    copy: UpdateBuffer | None          # the pooled buffer holding them (None: clones)
    grad_sum: np.ndarray               # (n, 3) Σ of the sampled (‖g‖, mean |g|, std g)
    grad_last: np.ndarray              # (n, 3) the last sampled step's
    grad_count: np.ndarray             # (n,) steps in which each got a gradient
    grad_samples: list[int]            # (n,) of them, sampled
    requires_grad: list[bool]
    ratios: list[torch.Tensor]         # per sampled step: (n,) ‖ΔW‖ / ‖W‖
    sampling: dict[str, Any] | None
    activations: dict[str, Any]        # per layer: its statistics, or (kind, output copy)


def run_id_base(label: str, kind: str) -> str:
    """'20260101-120000-watch-my-resnet': a run id that says what the run is."""
    label = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{label[:40] or 'model'}"


def rename_run(writer: RunWriter, store: RunStore, base: str) -> None:
    """Rename a just-created run folder (RunStore names runs after nnviz's own models)."""
    run_id, k = base, 1
    while (store.root / run_id).exists():
        k += 1
        run_id = f"{base}-{k}"
    try:
        writer.folder.rename(store.root / run_id)
    except OSError:
        return  # keep RunStore's name
    writer.folder = store.root / run_id
    writer.meta["run_id"] = run_id
    writer.flush()


class Watcher:
    """Records a user's training loop into one nnviz run; see the module docstring."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 params: ParamSelector = None, every: str | int = "epoch",
                 probe: Any = None, name: str = "", runs_dir: Any = None,
                 source: dict[str, Any] | None = None, enabled: bool = True,
                 manual_steps: bool = False, background: bool = True) -> None:
        if every != "epoch" and not (isinstance(every, int) and not isinstance(every, bool)
                                     and every >= 1):
            raise ConfigError(f"every={every!r}: use 'epoch' (you call snapshot()) or a "
                              "number of optimizer steps >= 1.")
        if isinstance(every, int) and optimizer is None and not manual_steps:
            raise ConfigError(f"every={every} counts optimizer steps: pass the optimizer too "
                              "(nnviz.watch(model, optimizer, every=...)).")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise ConfigError(f"optimizer= must be a torch.optim.Optimizer, got "
                              f"{type(optimizer).__name__}.")
        self.model, wrapper = unwrap(model)
        self.optimizer = optimizer
        self.every = every
        self._every_steps = every if isinstance(every, int) else 0  # read every step
        self.probe = probe
        self.enabled = enabled
        self.manual_steps = manual_steps  # the caller calls before_step() / after_step()
        # optimizer steps are counted (and sampled); else every backward is measured as a step
        self._counts_steps = optimizer is not None or manual_steps
        self.closed = False
        self.step = 0
        self.epoch = 0.0
        self.writer: RunWriter | None = None
        self._hooks: list[Any] = []
        self._queue: SnapshotQueue | None = None
        chosen = select_params(self.model, params)
        self.names = [n for n, _ in chosen]
        self.params = [p for _, p in chosen]
        if not enabled:
            return
        n = len(self.params)
        device = self.params[0].device
        self.probe = _to_device(probe, device)
        # per step, plain Python lists only (a step's own hooks run with the caches cold
        # after its backward: a numpy or no_grad call costs 10-30 us there, a list item ~0.1)
        self._steps_taken = 0  # optimizer steps begun (step pre-hooks seen)
        self._seen = [-1] * n  # the step (its index in _steps_taken) each last got a gradient
        self._grad_count = [0] * n  # steps in which it got a gradient, since the last snapshot
        self._grad_sum = torch.zeros(n, 3, dtype=torch.float64, device=device)
        self._grad_last = torch.zeros(n, 3, dtype=torch.float64, device=device)
        self._grad_samples = [0] * n  # of them, sampled steps whose gradient was measured
        self._ratios: list[torch.Tensor] = []
        self._before: Any = None  # on a sampled step: Σ W² (UpdateBuffer) or weight clones
        self._buffer = UpdateBuffer(self.params) \
            if self._counts_steps and UpdateBuffer.fits(self.params) \
            else None
        self.sampling = SamplingBudget()
        self._interval_steps, self._last_beat = 0, time.monotonic()
        self._pending = False  # before_step() ran, after_step() not yet
        self.w0 = [p.detach().clone() for p in self.params]
        # drift: W − W0 of every parameter in one fused pass through this buffer (None: the
        # weights do not share one dtype and device; then stats.drift per parameter)
        self._drift_buffer = UpdateBuffer(self.w0) if UpdateBuffer.fits(self.w0) else None
        self._w0_sq = self._drift_buffer.keep(self.w0).cpu() \
            if self._drift_buffer is not None else None
        self._free_copies: list[UpdateBuffer] = []  # weight copies for snapshots, reused
        self._copies = 0  # of them, made so far (at most MAX_COPIES)
        self._queued = 0  # snapshots asked for (the next one's index)
        self._hints: list[dict] = [{} for _ in self.params]  # per parameter, across snapshots
        self.layers = measured_layers(self.model)
        self._write_header(name, runs_dir, wrapper, source or {})
        # snapshots computed and written in order, on a background thread when torch runs one
        # thread and the model is not tiny (SnapshotQueue's rule); at most one waits
        self._queue = SnapshotQueue(self.writer, background=background, max_pending=1,
                                    n_params=sum(p.numel() for p in self.params))
        self._at_exit = functools.partial(_drain, self._queue)
        atexit.register(self._at_exit)  # an unclosed recorder's last snapshot is still written
        try:
            self._attach()
            self._add_snapshot(0.0, None)
            self._queue.wait()  # snapshot 0 written: its errors are raised by watch() itself
        except BaseException as exc:
            self._shut("failed", f"the first snapshot failed: {type(exc).__name__}: {exc}")
            raise

    # --- set-up ------------------------------------------------------------------------------

    def _write_header(self, name: str, runs_dir: Any, wrapper: str | None,
                      source: dict[str, Any]) -> None:
        theories = {n: default_theory(self.model, n) for n in self.names}
        info_all = describe_params(self.model, {n: theories[n] for n in self.names})
        modules = dict(self.model.named_modules())
        info = {n: {**info_all[n], "requires_grad": bool(p.requires_grad),
                    "module_type": torch_type(modules[info_all[n]["module"]]),
                    "module_class": info_all[n]["module_type"],
                    "theory_source": "pytorch_default"
                    if theories[n].kind != "unknown" else "unknown"}
                for n, p in zip(self.names, self.params, strict=True)}
        self.edges = {n: np.asarray(i["edges"]) for n, i in info.items()}
        device = self.params[0].device
        cfg = RunConfig(name=name or type(self.model).__name__, epochs=1,
                        device=device.type if device.type in ("cpu", "cuda", "mps") else "auto")
        store = RunStore(runs_dir)
        self.writer = store.create(cfg, f"watch-{uuid.uuid4().hex}", {
            "params": info,
            "layers": self.layers,
            "environment": environment(device),
            "init_digest": init_digest(self.model),
            "source": {
                "kind": "watch",
                "model_class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
                "n_params": int(sum(p.numel() for p in self.model.parameters())),
                "n_watched": int(sum(p.numel() for p in self.params)),
                "wrapper": wrapper,
                "optimizer": type(self.optimizer).__name__ if self.optimizer else None,
                "every": self.every,
                **source,
            },
            "data": {},
        })
        rename_run(self.writer, store, run_id_base(name or type(self.model).__name__, 'watch'))

    def _attach(self) -> None:
        for i, p in enumerate(self.params):
            if p.requires_grad:
                self._hooks.append(p.register_post_accumulate_grad_hook(self._grad_hook(i)))
        if self.optimizer is not None and not self.manual_steps:
            self._hooks.append(self.optimizer.register_step_pre_hook(
                lambda *_: self.before_step()))
            self._hooks.append(self.optimizer.register_step_post_hook(
                lambda *_: self.after_step()))

    def _detach(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    # --- hooks -------------------------------------------------------------------------------

    def _grad_hook(self, i: int) -> Callable[[torch.Tensor], None]:
        seen, count = self._seen, self._grad_count  # the same lists for the run's life
        if self._counts_steps:
            def hook(_p: torch.Tensor) -> None:
                # the step this gradient is for: counted once however many backwards feed it
                if seen[i] != self._steps_taken:
                    seen[i] = self._steps_taken
                    count[i] += 1
            return hook

        def measure(p: torch.Tensor) -> None:
            with torch.no_grad():  # no optimizer: every backward is a step
                row = _grad_triplets([p.grad])[0]
                self._grad_sum[i] += row
                self._grad_last[i] = row
                count[i] += 1
                self._grad_samples[i] += 1
        return measure

    def before_step(self) -> None:
        """Count the step the marked gradients are for; on sampled steps, measure them and keep
        the weights for the update ratio (the optimizer's step pre-hook calls this). Other
        steps cost a few attribute reads: no numpy, no torch, no clock."""
        if self.closed or not self.enabled:
            return
        self._pending = True
        self._interval_steps += 1
        taken = self._steps_taken
        self._steps_taken = taken + 1  # later gradients are for the next step
        if not self.sampling.step_begins(self._interval_steps):
            return
        t0 = self.sampling.clock()
        with torch.no_grad():
            idx = [i for i, s in enumerate(self._seen)
                   if s == taken and self.params[i].grad is not None]
            if idx:
                rows = _grad_triplets([self.params[i].grad for i in idx])
                where = torch.tensor(idx, device=rows.device)
                self._grad_sum.index_add_(0, where, rows)
                self._grad_last[where] = rows
                for i in idx:
                    self._grad_samples[i] += 1
            weights = [p.detach() for p in self.params]
            self._before = self._buffer.keep(weights) if self._buffer is not None \
                else [w.clone() for w in weights]
        self.sampling.spent(self.sampling.clock() - t0)

    def after_step(self) -> None:
        """Count the step and measure its update (the step post-hook calls it)."""
        if self.closed or not self.enabled or not self._pending:
            return
        self._pending = False
        self.step += 1
        if self._before is not None:
            t0 = self.sampling.clock()
            with torch.no_grad():
                weights = [p.detach() for p in self.params]
                self._ratios.append(self._buffer.update(weights, self._before)
                                    if self._buffer is not None
                                    else update_ratios_slow(weights, self._before))
            self._before = None
            self.sampling.sampled(self.sampling.clock() - t0)
        if self._every_steps and self.step % self._every_steps == 0:
            self.snapshot(epoch=self.step / self._every_steps)
        elif time.monotonic() - self._last_beat > HEARTBEAT_S:
            self._last_beat = time.monotonic()
            # keeps the run "running", not "interrupted" (behind the queued snapshots)
            self._guarded(self._queue.call, self.writer.flush)

    # --- snapshots ---------------------------------------------------------------------------

    def snapshot(self, epoch: float | None = None, metrics: dict[str, Any] | None = None,
                 step: int | None = None) -> int | None:
        """Record this moment (default epoch: the last one + 1); returns the snapshot index."""
        if self.closed:
            raise ConfigError("This nnviz recorder is closed; call nnviz.watch() again.")
        if not self.enabled:
            return None
        epoch = self.epoch + 1 if epoch is None else epoch
        try:
            epoch = float(epoch)
        except (TypeError, ValueError):
            raise ConfigError(f"epoch={epoch!r} is not a number.") from None
        if not math.isfinite(epoch) or epoch <= self.epoch:
            raise ConfigError(f"epoch={epoch:g} must be finite and after the last snapshot's "
                              f"epoch {self.epoch:g} (snapshot 0 holds the weights as they "
                              "were at watch(); in a loop counting from 0 pass epoch + 1).")
        row = {"epoch": epoch, "step": self.step if step is None else int(step)}
        for key, value in (metrics or {}).items():
            if not isinstance(key, str):
                raise ConfigError(f"metrics keys are names (str), got {key!r}.")
            if key in ("epoch", "step"):
                raise ConfigError(f"metrics[{key!r}]: pass epoch= and step= as arguments.")
            try:
                row[key] = float(value.detach() if isinstance(value, torch.Tensor) else value)
            except (TypeError, ValueError):
                raise ConfigError(f"metrics[{key!r}] = {value!r} is not a number.") from None
        if step is not None:
            self.step = int(step)
        index = self._add_snapshot(epoch, row)
        self.sampling.interval_ends(self._interval_steps)
        self._interval_steps = 0
        self._last_beat = time.monotonic()
        return index

    def _add_snapshot(self, epoch: float, row: dict[str, Any] | None) -> int:
        """Capture this moment here; compute and write it in order (on the queue's thread when
        it has one). Returns the snapshot's index."""
        moment = self.capture(epoch)
        self.epoch = epoch
        index, self._queued = self._queued, self._queued + 1
        self._guarded(self._queue.call, self._write, moment, row)
        return index

    def _write(self, moment: _Moment, row: dict[str, Any] | None) -> None:
        tensors, snap = self.compute(moment)
        if row is not None:
            self.writer.meta["history"].append(row)
        cfg = self.writer.meta["config"]
        cfg["epochs"] = max(1, math.ceil(moment.epoch))
        self.writer.add_snapshot(tensors, snap)

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        """A call on the snapshot queue; an error of its thread (an earlier snapshot's) fails
        the run and is raised here, said plainly."""
        try:
            fn(*args)
        except Exception as exc:
            if not self._queue.background:
                raise  # raised by the caller's own call: as it is
            message = (f"nnviz could not record a snapshot of run {self.run_id} in the "
                       f"background ({type(exc).__name__}: {exc}); the run is marked failed "
                       "and recording has stopped.")
            self._shut("failed", message)
            raise StorageError(message) from exc

    @torch.no_grad()
    def collect(self, epoch: float) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and statistics of this moment; resets the per-step accumulators."""
        return self.compute(self.capture(epoch))

    @torch.no_grad()
    def capture(self, epoch: float) -> _Moment:
        """What must be taken on the caller's thread (cheap): the weights copied into a reused
        buffer, the accumulators handed over (and reset), the probe's activations."""
        copy, weights = self._weights_copy()
        ratios, self._ratios = self._ratios, []
        moment = _Moment(
            epoch=epoch, step=self.step, weights=weights, copy=copy,
            grad_sum=self._grad_sum.cpu().numpy().copy(),
            grad_last=self._grad_last.cpu().numpy().copy(),
            grad_count=self._steps_with_gradient(), grad_samples=self._grad_samples,
            requires_grad=[bool(p.requires_grad) for p in self.params], ratios=ratios,
            sampling=self.sampling.record(self._interval_steps)
            if self._counts_steps else None,
            activations=self.activations(keep=self._queue.background))
        self._grad_sum.zero_()
        self._grad_samples = [0] * len(self.params)
        self.last_sampling = moment.sampling
        return moment

    def _steps_with_gradient(self) -> np.ndarray:
        """Each parameter's steps with a gradient in this interval, and the counts reset. A
        gradient marked for a step not yet taken (a backward since the last step) is left to
        the next interval, where that step is taken."""
        count, taken = self._grad_count, self._steps_taken
        pending = [int(s == taken) for s in self._seen]  # (none without counted steps)
        out = np.array([c - w for c, w in zip(count, pending, strict=True)], dtype=np.int64)
        count[:] = pending  # in place: the gradient hooks hold this list
        return out

    def _weights_copy(self) -> tuple[UpdateBuffer | None, list[torch.Tensor]]:
        """The watched weights copied into a buffer from the pool (at most MAX_COPIES exist:
        beyond that, wait for the queue to hand one back), or cloned when the weights do not
        share one dtype and device."""
        weights = [p.detach() for p in self.params]
        if not UpdateBuffer.fits(weights):
            return None, [w.clone() for w in weights]
        if not self._free_copies and self._copies >= MAX_COPIES:
            self._guarded(self._queue.wait)
        if self._free_copies:
            copy = self._free_copies.pop()
        else:
            copy = UpdateBuffer(weights)
            self._copies += 1
        torch._foreach_copy_(copy.views, weights)
        return copy, copy.views

    @torch.no_grad()
    def compute(self, m: _Moment) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and statistics of a captured moment (on the queue's thread, in order)."""
        ratios = [r.cpu().numpy() for r in m.ratios]
        ratio_mean, ratio_last = ratio_summary(np.stack(ratios)) if ratios else ([], [])
        tensors: dict[str, torch.Tensor] = {}
        per_param: dict[str, Any] = {}
        drifts = self._drifts(m.weights) if self._w0_sq is not None else None
        for i, (name, w) in enumerate(zip(self.names, m.weights, strict=True)):
            entry = weight_entry(name, w, None if drifts else self.w0[i],
                                 self.edges[name], i, tensors, self._hints[i])
            if drifts:
                entry["drift"] = drifts[i]
            count, k = int(m.grad_count[i]), m.grad_samples[i]
            if count:
                mean = m.grad_sum[i] / k if k else [None] * 3
                last = m.grad_last[i] if k else [None] * 3
                entry["grad"] = {
                    "norm": _f(mean[0]), "mean_abs": _f(mean[1]), "std": _f(mean[2]),
                    "last_norm": _f(last[0]), "last_mean_abs": _f(last[1]),
                    "last_std": _f(last[2]), "steps": count, "sampled_steps": k,
                }
            elif m.epoch > 0:
                entry["grad_status"] = NO_GRADIENT
                entry["grad_reason"] = "frozen (requires_grad=False)" \
                    if not m.requires_grad[i] \
                    else "unused: no gradient reached it since the last snapshot"
            if ratios and count:
                entry["update_ratio"] = ratio_mean[i]
                entry["update_ratio_last"] = ratio_last[i]
                entry["update_samples"] = len(ratios)
            per_param[name] = entry
        if m.copy is not None:  # read: back to the pool
            self._free_copies.append(m.copy)
        return tensors, {"epoch": m.epoch, "step": m.step, "params": per_param,
                         "activations": {name: a if isinstance(a, dict) else
                                         _activation_entry(*a)
                                         for name, a in m.activations.items()},
                         **({"sampling": m.sampling} if m.sampling else {})}

    @torch.no_grad()
    def _drifts(self, weights: list[torch.Tensor]) -> list[float | None]:
        """Every parameter's ‖W − W0‖ / ‖W0‖ by one fused pass (an UpdateBuffer kept for it),
        with ``stats.drift``'s conventions (None for 0/0, inf for x/0); a parameter holding
        NaN / Inf is measured by ``stats.drift`` itself."""
        num = self._drift_buffer.drift_squares(weights, self.w0).cpu().tolist()
        out: list[float | None] = []
        for i, (a, b) in enumerate(zip(num, self._w0_sq.tolist(), strict=True)):
            if not (math.isfinite(a) and math.isfinite(b)):
                out.append(_f(stats.drift(self.w0[i], weights[i])))
            elif b == 0.0:
                out.append(None if a == 0.0 else math.inf)
            else:
                out.append(math.sqrt(a) / math.sqrt(b))
        return out

    @torch.no_grad()
    def activations(self, keep: bool = False) -> dict[str, Any]:
        """Activation statistics of every measured layer on the probe batch (eval mode);
        ``keep``: each layer's (kind, copy of its output) instead, measured later
        (``_activation_entry``; a copy, since a later in-place layer may change the output),
        while the copies stay within ACTIVATION_COPIES bytes (beyond: measured here)."""
        if self.probe is None:
            return {}
        modules = dict(self.model.named_modules())
        out: dict[str, Any] = {}
        hooks = []
        room = [ACTIVATION_COPIES if keep else 0]  # bytes the copies may still take

        def hook_for(name: str, kind: str) -> Callable[..., None]:
            def hook(_module: nn.Module, _inp: Any, output: Any) -> None:
                a = _first_tensor(output)
                if a is not None and name not in out:
                    a = a.detach()
                    size = a.numel() * a.element_size()
                    if size <= room[0]:
                        room[0] -= size
                        out[name] = (kind, a.clone())
                    else:
                        out[name] = _activation_entry(kind, a)
            return hook

        was_training = self.model.training
        try:
            for layer in self.layers:
                hooks.append(modules[layer["name"]].register_forward_hook(
                    hook_for(layer["name"], layer["kind"])))
            self.model.eval()
            probe = self.probe
            if isinstance(probe, dict):
                self.model(**probe)
            elif isinstance(probe, tuple | list):
                self.model(*probe)
            else:
                self.model(probe)
        finally:
            for h in hooks:
                h.remove()
            self.model.train(was_training)
        return out

    # --- the end -----------------------------------------------------------------------------

    def close(self, status: str = "completed", detail: str = "") -> None:
        """Write what is still queued, remove every hook and mark the run finished
        (idempotent). An error of the background writes fails the run and is raised here
        (unless the run is already failing: then it is added to ``detail``)."""
        if self.closed:
            return
        try:
            if self._queue is not None:
                self._queue.close()
        except Exception as exc:
            message = (f"nnviz could not record a snapshot of run {self.run_id} in the "
                       f"background ({type(exc).__name__}: {exc}).")
            if status == "failed":  # the loop's own error comes first: keep it, add this
                self._shut(status, f"{detail}; {message}" if detail else message)
                return
            self._shut("failed", message + " The run is marked failed.")
            raise StorageError(message + " The run is marked failed.") from exc
        self._shut(status, detail)

    def _shut(self, status: str, detail: str) -> None:
        """Remove the hooks, free the weight copies, finish the run (nothing left queued)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._queue is not None:
                atexit.unregister(self._at_exit)
                self._queue.close()  # stops its thread (after an error: drops what is queued)
        except Exception:
            pass  # already raised, or the run is failing for another reason
        finally:
            self._detach()
            self._buffer, self.w0 = None, []  # copies of the weights: not kept past the run
            self._free_copies, self._drift_buffer = [], None
            if self.writer is not None:
                self.writer.finish(status, detail)

    @property
    def run_id(self) -> str | None:
        return self.writer.run_id if self.writer else None

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, exc_type: Any, exc: Any, _tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}")

    def __del__(self) -> None:
        try:
            self._detach()
        except Exception:
            pass


def _rank_zero() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def watch(model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
          params: ParamSelector = None, every: str | int = "epoch", probe: Any = None,
          name: str = "", runs_dir: Any = None) -> Watcher:
    """Start recording ``model``'s training into a new nnviz run (see nnviz.engine.watch)."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"nnviz.watch needs a torch.nn.Module, got {type(model).__name__}.")
    return Watcher(model, optimizer, params, every, probe, name, runs_dir,
                   enabled=_rank_zero())
