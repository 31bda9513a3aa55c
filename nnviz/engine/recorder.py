"""Recording: what a run keeps at every snapshot.

Per parameter: values (all up to VALUE_LIMIT elements, else a SAMPLE_SIZE sample), exact
statistics (``stats.tensor_stats``), counts on bin edges fixed at init for the whole run
(``stats.weight_edges``; values outside them are counted as under/overflow, never dropped),
gradient statistics (norm, mean |g|, std: averaged over the sampled steps since the last
snapshot, and at the last of them), the update ratio ‖ΔW‖/‖W‖ of single optimizer steps, and
drift from init ‖W_t − W_0‖/‖W_0‖. Per layer, on a fixed probe batch: activation mean, std,
exact-zero, dead and saturated fractions, and ``signal_std`` (the spread across examples, which
biases do not add to).

Which steps are measured: the caller decides (every call of ``after_backward`` is one sampled
step, every ``before_step`` / ``after_step`` pair one update ratio). nnviz's trainer samples, per
epoch, GRAD_SAMPLES evenly spaced steps for gradients (every step when an epoch has no more,
always the last step before each snapshot) and UPDATE_SAMPLES for update ratios (as CS231n and
Karpathy plot it); ``sample_steps`` gives those steps.

Cost. A sampled step is one flat copy of all gradients (models up to DEFER_LIMIT parameters:
one C++ flatten into a new flat tensor, stacked and reduced in float64 at the snapshot for
all parameters at once) or three vectorised reductions per tensor (larger models, float32
cascade sums, ~1e-7 relative); an update ratio is two such copies (weights before and after
the step); nothing is read back before the snapshot. A snapshot is taken in two parts:
``capture`` (on the training thread: one fused copy of the weights and buffers, the
accumulators handed over) and ``compute`` (statistics, histograms, the probe pass on a private
copy of the model, made when first needed, so the training model is never touched;
``probe_within`` lets the trainer measure the probe inside its validation pass instead, and
``probe_now`` on its own model at init). Small models' weights are one flat float32 copy, and
their statistics, histograms and drifts one vectorised pass over it
(``stats.stats_and_histograms_flat``); the probe's small layer outputs (up to
``stats.MANY_MAX`` elements) are copied as their layers return and measured together after
the pass (``stats.activation_stats_many``, ``_signal_stds``). Spectral norms by Lanczos start
from each parameter's Ritz vector of the snapshot before (``weight_entry``'s hint): a few
steps instead of up to 30.
``SnapshotQueue`` runs ``compute`` and the writes in order, one file at a time, on one
background thread for models of INLINE_BELOW parameters or more, so training goes on meanwhile
(``benchmarks/bench_side_by_side.py`` and ``benchmarks/bench_recording.py`` measure it).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nnviz.analysis import stats
from nnviz.engine.initializers import Theory

VALUE_LIMIT = 1_000_000   # parameters up to this many elements are stored whole
SAMPLE_SIZE = 65_536      # above it, a fixed-size uniform sample (exact statistics still kept)
SIGNAL_UNITS = 4096       # signal_std averages over at most this many units (evenly spread)
UPDATE_SAMPLES = 8        # optimizer steps per epoch at which ‖ΔW‖/‖W‖ is measured
GRAD_SAMPLES = 16         # steps per epoch at which gradient statistics are measured
DEFER_LIMIT = 1 << 18     # models up to this many parameters copy gradients, reduce later
INLINE_BELOW = 20_000     # models with fewer parameters snapshot on the training thread
ACTIVATION_TYPES = {
    nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
    nn.GELU: "gelu",
}
LAYER_TYPES = (nn.Linear, nn.Conv2d)


def init_digest(model: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of every parameter's bytes in name order."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(memoryview(p.detach().float().cpu().contiguous().numpy()))  # no copy
    return h.hexdigest()[:16]


_NO_VALUES = np.empty(0, dtype=np.float32)  # for weight_edges when it is given max |w|


def describe_params(model: nn.Module, theories: dict[str, Theory]) -> dict[str, dict[str, Any]]:
    """Static facts per parameter: shape, module, kind, theoretical distribution, fixed edges."""
    modules = dict(model.named_modules())
    info: dict[str, dict[str, Any]] = {}
    named = list(model.named_parameters())
    tops: list[float | None] = [None] * len(named)
    data = [p.detach() for _, p in named]
    if data and all(t.dtype == torch.float32 and t.numel() for t in data):
        # every max |w| in one fused call (NaN / Inf give a non-finite one: read per tensor)
        tops = torch.stack(torch._foreach_norm(data, math.inf)).tolist()
    for depth, (name, p) in enumerate(named):
        module_name, _, leaf = name.rpartition(".")
        module = modules[module_name]
        theory = theories.get(name)
        top = tops[depth]
        # the values are read only without a finite max |w| from the fused call
        values = _NO_VALUES if top is not None and math.isfinite(top) else \
            data[depth].float().cpu().flatten().numpy()
        edges = stats.weight_edges(values, theory_std=theory.std if theory else None,
                                   maxabs=top)
        info[name] = {
            "shape": list(p.shape),
            "numel": p.numel(),
            "module": module_name,
            "module_type": type(module).__name__,
            "kind": leaf,  # "weight" or "bias"
            "order": depth,
            "theory": theory.to_dict() if theory else None,
            "edges": edges.tolist(),
            "stored": "all" if p.numel() <= VALUE_LIMIT else f"sample of {SAMPLE_SIZE}",
        }
    return info


def describe_layers(model: nn.Module) -> list[dict[str, Any]]:
    """Modules whose outputs are measured on the probe batch, in forward order."""
    layers = []
    for name, module in model.named_modules():
        kind = ACTIVATION_TYPES.get(type(module))
        if kind is None and isinstance(module, LAYER_TYPES):
            kind = "linear"
        if kind is not None:
            layers.append({"name": name, "kind": kind, "type": type(module).__name__})
    return layers


def sample_steps(steps_per_epoch: int, snapshot_steps: Iterable[int] = ()
                 ) -> tuple[set[int], set[int]]:
    """(gradient steps, update-ratio steps): 0-based steps of an epoch that are measured.

    GRAD_SAMPLES and UPDATE_SAMPLES evenly spaced steps (all of them when the epoch has no more);
    the gradient steps also hold the step before every snapshot (``snapshot_steps`` counts steps
    from 1, as the snapshot after step s of the epoch).
    """
    last = steps_per_epoch - 1

    def even(k: int) -> set[int]:
        if last <= 0:
            return {0} if steps_per_epoch > 0 else set()
        return {round(last * j / max(k - 1, 1)) for j in range(k)}

    grads = even(GRAD_SAMPLES) | {s - 1 for s in snapshot_steps if 1 <= s <= steps_per_epoch}
    return grads, even(UPDATE_SAMPLES)


class _Rows:
    """Flat copies of a list of tensors (all gradients, or all weights), one per ``add``: each
    a new flat tensor made by one C++ call (``flatten_dense_tensors``, or ``torch.cat`` of the
    caller's flat views), in the tensors' common dtype (float64 when they differ: exact for
    every float dtype), kept in a list; a missing tensor (no gradient) is zeros. ``take``
    stacks them into one (rows, total) tensor for the snapshot's vectorised reductions and
    starts afresh. (Copies into rows of a preallocated buffer cost twice as much per call on
    small models: a row view, a copy and a check each time.)"""

    def __init__(self, like: list[torch.Tensor]) -> None:
        self.shapes = [t.shape for t in like]
        self.sizes = [t.numel() for t in like]
        dtypes = {t.dtype for t in like}
        self.dtype = dtypes.pop() if len(dtypes) == 1 else torch.float64
        self.device = like[0].device if like else torch.device("cpu")
        self.copies: list[torch.Tensor] = []

    @property
    def n(self) -> int:
        return len(self.copies)

    def add(self, tensors: list[torch.Tensor | None],
            flat: list[torch.Tensor] | None = None) -> None:
        """Copy the tensors (detached ones: nothing is recorded by autograd) as the next row;
        ``flat``: their flat views, when the caller keeps them (the weights')."""
        self.copies.append(self.copy(tensors, flat))

    def copy(self, tensors: list[torch.Tensor | None],
             flat: list[torch.Tensor] | None = None) -> torch.Tensor:
        """One flat copy of the tensors, in the rows' dtype."""
        dtype = self.dtype
        if all(t is not None and t.dtype is dtype for t in tensors):
            if flat is not None:
                return torch.cat(flat)
            if len(tensors) > 1:  # one C++ call for them all (of one tensor: a view)
                return torch._C._nn.flatten_dense_tensors(tensors)
        return torch.cat([t.reshape(-1).to(dtype) if t is not None else  # cat: a new tensor
                          torch.zeros(size, dtype=dtype, device=self.device)  # no gradient
                          for t, size in zip(tensors, self.sizes, strict=True)])

    def drop_last(self) -> None:
        self.copies.pop()

    def take(self) -> torch.Tensor | None:
        """The rows so far as one (rows, total) tensor (None if none); starts afresh."""
        if not self.copies:
            return None
        rows, self.copies = torch.stack(self.copies), []
        return rows


def _flat_views(tensors: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """Flat views of the tensors (they follow in-place updates), or None if one is not
    contiguous (then each copy flattens it anew)."""
    if all(t.is_contiguous() for t in tensors):
        return [t.view(-1) for t in tensors]
    return None


@dataclass
class Moment:
    """What ``capture`` takes on the training thread for ``compute`` to turn into a snapshot."""

    epoch: float
    step: int
    params: list[torch.Tensor]                    # copies of the weights
    buffers: list[torch.Tensor]                   # copies of the buffers (BatchNorm statistics)
    grad_rows: torch.Tensor | None                # small models: (steps, total) gradients
    grad_sums: list[tuple[list[torch.Tensor], ...]]  # large models: (l2, l1, sum) per step
    grad_steps: int
    ratios: list[tuple[Any, Any]]  # large models, per update step: (‖ΔW‖, ‖W‖) per parameter
    ratio_rows: tuple[torch.Tensor, torch.Tensor] | None = None  # small: (W before, W after)
    activations: dict[str, Any] | None = None     # probed at capture when no model copy exists
    flat: torch.Tensor | None = None              # small models: the weights, flat (params
                                                  # are views of it)


class Recorder:
    """Accumulates sampled gradient and update statistics and takes snapshots."""

    def __init__(self, model: nn.Module, probe_x: torch.Tensor, sample_seed: int) -> None:
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        self.params = [p for _, p in model.named_parameters()]
        self.probe_x = probe_x
        self.sample_seed = sample_seed
        self.w0 = [p.detach().clone() for p in self.params]
        self.layers = describe_layers(model)
        self.edges: dict[str, np.ndarray] = {}
        self._defer = sum(p.numel() for p in self.params) <= DEFER_LIMIT
        self._shadow: nn.Module | None = None  # the probe's model copy, made when first needed
        self._shadow_made = False
        self._buffers = [b for _, b in model.named_buffers()]
        self._hints: list[dict] = [{} for _ in self.params]  # per parameter, across snapshots
        self._probed: dict[str, Any] | None = None  # from probe_within, for the next capture
        # the weights' tensors without autograd (the per-step copies need no no_grad around
        # them); renewed at every capture if a parameter's storage was replaced
        self._data = [p.detach() for p in self.params]
        self._flat_data = _flat_views(self._data)
        if self._defer:  # small models: flat copies into preallocated rows, reduced later
            self._grad_rows = _Rows(self.params)
            self._before_rows = _Rows(self.params)
            self._after_rows = _Rows(self.params)
            self._weight_rows = _Rows(self.params)
        # the vectorised snapshot (stats.stats_and_histograms_flat): float32 weights, each
        # stored whole, flat
        self._flat_stats = self._defer and bool(self.params) and \
            all(p.dtype == torch.float32 for p in self.params)
        self._w0_flat: np.ndarray | None = None
        self._reset_grads()
        self._before: list[torch.Tensor] | None = None
        self._ratios: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []
        self._pending_update = False

    def set_edges(self, params_info: dict[str, dict[str, Any]]) -> None:
        self.edges = {n: np.asarray(i["edges"]) for n, i in params_info.items()}

    def _reset_grads(self) -> None:
        self._grad_sums: list[tuple[list[torch.Tensor], ...]] = []
        self._grad_steps = 0

    def after_backward(self) -> None:
        """Measure this step's gradients (‖g‖, mean |g|, std g); nothing is read back."""
        grads = [p.grad for p in self.params]
        if self._defer:  # one flat copy; reduced at the snapshot, all parameters at once
            if self.params:
                self._grad_rows.add(grads)
            self._grad_steps += 1
            return
        with torch.no_grad():
            self._grad_sums_of(grads)
        self._grad_steps += 1

    def _grad_sums_of(self, grads: list[torch.Tensor | None]) -> None:
        if any(g is not None for g in grads):  # three passes per tensor, vectorised cascade
            # sums (~1e-7 relative)
            full = [g if g is not None else torch.zeros_like(p)
                    for g, p in zip(grads, self.params, strict=True)]
            self._grad_sums.append((_norms(full, 2), _norms(full, 1), [g.sum() for g in full]))
        else:
            self._grad_sums.append(([], [], []))

    def before_step(self) -> None:
        """Keep a copy of the weights so the next ``after_step`` can measure ‖ΔW‖/‖W‖."""
        if self._defer:
            if self._pending_update:  # a before_step without its after_step: replaced
                self._before_rows.drop_last()
            if self.params:
                self._before_rows.add(self._data, self._flat_data)
                self._pending_update = True
        else:
            self._before = torch._foreach_mul(self._data, 1.0) if self.params else []

    def after_step(self) -> None:
        if self._defer:  # the weights after; ΔW and the norms in float64 at the snapshot
            if self._pending_update:
                self._after_rows.add(self._data, self._flat_data)
                self._pending_update = False
            return
        if self._before is None:
            return
        if self.params:
            with torch.no_grad():
                diff = torch._foreach_sub(self._data, self._before)
                self._ratios.append((_norms(diff, 2), _norms(self._before, 2)))
        self._before = None

    @torch.no_grad()
    def capture(self, epoch: float, step: int) -> Moment:
        """This moment's weights and accumulators (cheap; resets the accumulators)."""
        flat = None
        if any(d.data_ptr() != p.data_ptr() for d, p in zip(self._data, self.params,
                                                            strict=True)):
            self._data = [p.detach() for p in self.params]  # p.data was replaced
            self._flat_data = _flat_views(self._data)
        if self._defer and self.params:  # one flat copy; the parameters are views of it
            flat = self._weight_rows.copy(self._data, self._flat_data)
            params = [v.view(shape) for v, shape in zip(
                flat.split(self._weight_rows.sizes), self._weight_rows.shapes, strict=True)]
        else:
            params = torch._foreach_mul(self.params, 1.0) if self.params else []
        ratio_rows = None
        grad_rows = None
        if self._defer and self.params:
            if self._pending_update:  # an unfinished before_step is not a sample
                self._before_rows.drop_last()
                self._pending_update = False
            grad_rows = self._grad_rows.take()
            before = self._before_rows.take()
            after = self._after_rows.take()
            ratio_rows = (before, after) if before is not None else None
        moment = Moment(
            epoch=epoch, step=step, params=params,
            buffers=[b.detach().clone() for b in self._buffers],
            grad_rows=grad_rows, grad_sums=self._grad_sums,
            grad_steps=self._grad_steps, ratios=self._ratios, ratio_rows=ratio_rows,
            flat=flat,
        )
        if self._probed is not None:  # measured in the validation pass just before
            moment.activations, self._probed = self._probed, None
        else:
            if not self._shadow_made:  # on the training thread, once, when first needed
                self._shadow, self._shadow_made = _private_copy(self.model), True
            if self._shadow is None:
                moment.activations = self.probe()
        self._reset_grads()
        self._ratios = []
        return moment

    @torch.no_grad()
    def compute(self, m: Moment) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and statistics of a captured moment (may run on another thread)."""
        grad_mean, grad_last = _grad_table(m, self.params)
        ratios = None
        if m.ratio_rows is not None:
            ratios = _flat_ratios(*m.ratio_rows, self.params)  # (samples, params)
        elif m.ratios:
            ratios = np.array([[_ratio(a, b) for a, b in zip(num, den, strict=True)]
                               for num, den in m.ratios])
        tensors: dict[str, torch.Tensor] = {}
        per_param: dict[str, Any] = {}
        flat = self._flat_entries(m) if self._flat_stats and m.flat is not None \
            else [None] * len(self.names)
        gm, gl = grad_mean.tolist(), grad_last.tolist()  # Python floats, all at once
        ratio_mean, ratio_last = ratio_summary(ratios) if ratios is not None else ([], [])
        for i, (name, w) in enumerate(zip(self.names, m.params, strict=True)):
            if flat[i] is None:
                entry = weight_entry(name, w, self.w0[i], self.edges[name],
                                     self.sample_seed + i, tensors, self._hints[i])
            else:
                entry, tensors[f"values/{name}"], tensors[f"hist/{name}"] = flat[i]
            if m.grad_steps:
                entry["grad"] = {
                    "norm": gm[i][0], "mean_abs": gm[i][1], "std": gm[i][2],
                    "last_norm": gl[i][0], "last_mean_abs": gl[i][1], "last_std": gl[i][2],
                    "steps": m.grad_steps,
                }
            if ratios is not None:
                entry["update_ratio"] = ratio_mean[i]
                entry["update_ratio_last"] = ratio_last[i]
            per_param[name] = entry
        activations = m.activations
        if activations is None:
            activations = self._probe_copy(m)
        return tensors, {"epoch": m.epoch, "step": m.step, "params": per_param,
                         "activations": activations}

    def _flat_entries(self, m: Moment
                      ) -> list[tuple[dict[str, Any], torch.Tensor, torch.Tensor] | None]:
        """``weight_entry`` of every parameter at once from the moment's flat float32 weights
        (``stats.stats_and_histograms_flat``, ``stats.drift_flat``): the same numbers, in one
        vectorised pass, with the values and counts tensors; None for a parameter the fast
        path does not cover (NaN / Inf, empty), which then takes ``weight_entry``. Values are
        stored whole (small models)."""
        assert m.flat is not None
        flat = m.flat.detach().cpu().numpy()
        if self._w0_flat is None:
            self._w0_flat = torch.cat([w.reshape(-1) for w in self.w0]).cpu().numpy()
        shapes = [tuple(p.shape) for p in self.params]
        results = stats.stats_and_histograms_flat(
            flat, shapes, [self.edges[n] for n in self.names], self._hints)
        drifts = stats.drift_flat(self._w0_flat, flat, self._weight_rows.sizes)
        out: list[tuple[dict[str, Any], torch.Tensor, torch.Tensor] | None] = []
        start = 0
        for size, result, d in zip(self._weight_rows.sizes, results, drifts, strict=True):
            if result is None:
                out.append(None)
            else:
                entry, hist = result
                entry["hist_outside"] = {"underflow": hist.underflow,
                                         "overflow": hist.overflow, "nan": 0, "posinf": 0,
                                         "neginf": 0}
                entry["drift"] = d
                out.append((entry, torch.from_numpy(flat[start:start + size]),
                            torch.from_numpy(hist.counts)))
            start += size
        return out

    @torch.no_grad()
    def snapshot(self, epoch: float, step: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and statistics of this moment; resets the per-step accumulators."""
        return self.compute(self.capture(epoch, step))

    def _probe_copy(self, m: Moment) -> dict[str, Any]:
        """The probe pass on the private model copy, loaded with the moment's weights."""
        shadow = self._shadow
        assert shadow is not None
        params = list(shadow.parameters())
        if params:
            torch._foreach_copy_(params, m.params)
        for b, v in zip(shadow.buffers(), m.buffers, strict=True):
            b.copy_(v)
        return self.probe(shadow)

    @torch.no_grad()
    def probe(self, model: nn.Module | None = None) -> dict[str, Any]:
        """Activation statistics of every measured layer on the probe batch (eval mode)."""
        model = self.model if model is None else model
        was_training = model.training
        with self._probe_hooks(model) as out:
            try:
                model.eval()
                model(self.probe_x)
            finally:
                model.train(was_training)
        return out

    def probe_now(self) -> None:
        """Measure the probe on the live model now, for the next ``capture`` (which then needs
        no model copy): for a caller that owns the model and has no hooks on it (the
        trainer's snapshot at init, before any validation pass). Hooks of others on the model
        would run; ``capture`` alone probes a private copy."""
        self._probed = self.probe()

    @contextlib.contextmanager
    def probe_within(self, batch: int) -> Iterator[None]:
        """Measure the probe's activations inside the live model's next forward pass, whose
        first rows are the probe batch (the trainer's validation pass: its first batch of
        ``batch`` rows starts with the probe's, in eval mode, with the weights the next
        ``capture`` takes). That capture then needs no probe pass of its own. If the pass
        does not fit (a layer's output is not batch-first), the capture probes as usual."""
        n = len(self.probe_x)
        seen: list[int] = []
        with self._probe_hooks(self.model, rows=n, batch=batch, calls=seen) as out:
            yield
        if seen and all(k == batch for k in seen) and len(out) == len(self.layers):
            self._probed = out

    @contextlib.contextmanager
    def _probe_hooks(self, model: nn.Module, rows: int | None = None, batch: int | None = None,
                     calls: list[int] | None = None) -> Iterator[dict[str, Any]]:
        """Forward hooks measuring every layer's output (its first ``rows`` rows, only in the
        first forward pass), removed on exit."""
        modules = dict(model.named_modules())
        out: dict[str, Any] = {}
        hooks = []
        done: set[str] = set()
        kept: dict[str, tuple[str, torch.Tensor]] = {}  # small outputs, measured at the end

        def hook_for(name: str, kind: str):
            def hook(module: nn.Module, _inp: Any, output: torch.Tensor) -> None:
                if rows is not None:
                    if name in done:  # a later batch of the same pass
                        return
                    calls.append(output.shape[0] if output.ndim else -1)  # type: ignore[union-attr]
                    if output.ndim == 0 or output.shape[0] != batch:
                        return
                    output = output[:rows]
                output = output.detach()
                # measured in NCHW order and memory (a channels_last output, the trainer's
                # layout for CNNs on the CPU, would make every reduction a strided one)
                if output.device.type == "cpu" and output.numel() <= stats.MANY_MAX:
                    out[name] = None  # its place in forward order: measured with the others
                    # a copy: a later in-place op must not reach it
                    kept[name] = (kind, output.clone(memory_format=torch.contiguous_format))
                else:
                    kept.pop(name, None)
                    out[name] = _layer_stats({name: (kind, output.contiguous())})[name]
            return hook

        try:
            for layer in self.layers:
                hooks.append(modules[layer["name"]].register_forward_hook(
                    hook_for(layer["name"], layer["kind"])))
            if rows is not None:  # the first pass is over once the model's forward returns
                hooks.append(model.register_forward_hook(
                    lambda *_: done.update(x["name"] for x in self.layers)))
            yield out
            if kept:  # every small output in one vectorised pass (keys keep forward order)
                out.update(_layer_stats(kept))
        finally:
            for h in hooks:
                h.remove()


def _layer_stats(kept: dict[str, tuple[str, torch.Tensor]]) -> dict[str, dict[str, Any]]:
    """Per layer name, ``{"kind", **activation_stats, "signal_std"}`` of its (kind, output):
    small finite CPU outputs in one vectorised pass (``stats.activation_stats_many``,
    ``_signal_stds``), any other one by itself."""
    names = list(kept)
    kinds = [kept[n][0] for n in names]
    acts = [kept[n][1] for n in names]
    many: list[dict | None] = []
    signals: dict[int, float | None] = {}
    chunk: list[int] = []
    size = 0
    for i, a in enumerate([*acts, None]):  # passes of at most stats.MANY_TOTAL elements
        if chunk and (a is None or size + a.numel() > stats.MANY_TOTAL):
            many += stats.activation_stats_many([acts[j] for j in chunk],
                                                [kinds[j] for j in chunk])
            fast = [j for j in chunk if many[j] is not None]
            signals.update(zip(fast, _signal_stds([acts[j] for j in fast]), strict=True))
            chunk, size = [], 0
        if a is not None:
            chunk.append(i)
            size += a.numel()
    out: dict[str, dict[str, Any]] = {}
    for i, (name, kind, a, m) in enumerate(zip(names, kinds, acts, many, strict=True)):
        if m is None:
            out[name] = {"kind": kind, **stats.activation_stats(a, kind),
                         "signal_std": signal_std(a)}
        else:
            out[name] = {"kind": kind, **m, "signal_std": signals[i]}
    return out


def _signal_stds(acts: list[torch.Tensor]) -> list[float | None]:
    """``signal_std`` of each finite, non-empty CPU float tensor of ordinary magnitudes (what
    ``stats.activation_stats_many`` takes), those of one batch size in one float64 pass over
    their units side by side: per unit the two-pass variance across examples, summed per
    tensor. The same units as ``signal_std`` (above SIGNAL_UNITS, the same strided sample)."""
    out: list[float | None] = [None] * len(acts)
    groups: dict[int, list[int]] = {}
    for i, a in enumerate(acts):
        if a.ndim >= 1 and a.shape[0] >= 2:  # else None: no spread across examples
            groups.setdefault(a.shape[0], []).append(i)
    for b, members in groups.items():
        cols = []
        for i in members:
            x = acts[i].reshape(b, -1)  # (B, units)
            if x.shape[1] > SIGNAL_UNITS:
                x = x[:, :: -(-x.shape[1] // SIGNAL_UNITS)]
            cols.append(x.numpy())
        units = np.array([c.shape[1] for c in cols], dtype=np.intp)
        m = np.concatenate(cols, axis=1, dtype=np.float64)  # (B, all units)
        d = m - m.mean(axis=0)
        ss = np.add.reduceat(np.square(d, out=d).sum(axis=0), np.cumsum(units) - units)
        for i, v in zip(members, np.sqrt(ss / (b - 1) / units).tolist(), strict=True):
            out[i] = v if math.isfinite(v) else None
    return out


@torch.no_grad()
def weight_entry(name: str, w: torch.Tensor, w0: torch.Tensor | None, edges: np.ndarray,
                 seed: int, tensors: dict[str, torch.Tensor], hint: dict | None = None
                 ) -> dict[str, Any]:
    """A parameter's snapshot statistics, histogram and drift; adds its two tensors (values,
    counts) to ``tensors``. Used by the trainer, ``nnviz.watch`` and checkpoint folders;
    ``hint`` is the parameter's own dict, kept across snapshots (its spectral norm's warm
    start: ``stats.tensor_stats_and_histogram``). ``w0=None``: no drift here (the caller
    measures it: ``nnviz.watch`` does every parameter in one fused call)."""
    whole = w.numel() <= VALUE_LIMIT
    values = stats.sample_values(w, VALUE_LIMIT if whole else SAMPLE_SIZE, seed=seed)
    tensors[f"values/{name}"] = torch.from_numpy(np.ascontiguousarray(values))
    if whole and w.dtype != torch.float32:  # the stored float32 values are binned
        entry, hist = stats.tensor_stats(w), stats.histogram(values, edges)
    else:  # the same values as the tensor's: one sort gives both
        entry, hist = stats.tensor_stats_and_histogram(w, edges, hint)
    tensors[f"hist/{name}"] = torch.from_numpy(hist.counts.astype(np.int64))
    entry["hist_outside"] = {
        "underflow": hist.underflow, "overflow": hist.overflow, "nan": hist.nan,
        "posinf": hist.posinf, "neginf": hist.neginf,
    }
    if w0 is not None:
        entry["drift"] = _f(stats.drift(w0, w))
    return entry


def _private_copy(model: nn.Module) -> nn.Module | None:
    """A copy of the model for the probe pass (None if it cannot be copied: probe the live one)."""
    try:
        shadow = copy.deepcopy(model)
    except Exception:  # a model holding something deepcopy refuses: probe on the live model
        return None
    for p in shadow.parameters():
        p.requires_grad_(False)
        p.grad = None
    for module in shadow.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        module._backward_hooks.clear()
    return shadow


def _ratio(num: Any, den: Any) -> float:
    """‖ΔW‖ / ‖W‖ from their norms (NaN for 0/0, inf for x/0)."""
    n, d = float(num), float(den)
    return n / d if d != 0.0 else (math.nan if n == 0.0 else math.inf)


class _Segments:
    """Per-parameter sums over (rows, total) arrays of flat concatenations, by np.add.reduceat
    (one call for all parameters; empty parameters get 0)."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.sizes = np.array([p.numel() for p in params], dtype=np.intp)
        self.nonempty = self.sizes > 0
        self.starts = (np.cumsum(self.sizes) - self.sizes)[self.nonempty]

    def spread(self, a: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Per parameter Σ (a − its mean)² (two passes: exact where sums of squares are not)."""
        return self.sum(np.square(a - np.repeat(mean, self.sizes, axis=1)))

    def sum(self, a: np.ndarray, dtype: Any = None) -> np.ndarray:
        out = np.zeros((a.shape[0], self.sizes.size))
        if self.starts.size:
            out[:, self.nonempty] = np.add.reduceat(a, self.starts, axis=1, dtype=dtype)
        return out


def _rows(rows: torch.Tensor) -> np.ndarray:
    """A (rows, total) float64 array of flat copies (cast by numpy: torch's casts are several
    times slower on a busy machine)."""
    t = rows.cpu()
    if t.dtype not in (torch.float16, torch.float32, torch.float64):  # bfloat16: no numpy
        t = t.double()
    return t.numpy().astype(np.float64)


def _flat_ratios(before: torch.Tensor, after: torch.Tensor, params: list[nn.Parameter]
                 ) -> np.ndarray:
    """(samples, params) ‖ΔW‖ / ‖W‖ from flat rows of W before and after each sampled step,
    ΔW and the norms in float64 (the difference of the float32 copies is exact)."""
    seg = _Segments(params)
    with np.errstate(all="ignore"):  # 0/0 is NaN, x/0 inf, as _ratio; NaN / Inf propagate
        w = _rows(before)
        num = np.sqrt(seg.sum(np.square(_rows(after) - w)))
        den = np.sqrt(seg.sum(np.square(w)))
        return num / den


def ratio_summary(ratios: np.ndarray) -> tuple[list[float | None], list[float]]:
    """Per parameter (column of a (samples, params) array of ‖ΔW‖/‖W‖): the geometric mean of
    its finite positive ratios (0.0 when its finite ones are all 0, None when none is
    finite), and the last sample."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(ratios)
        positive = finite & (ratios > 0)
        logs = np.where(positive, np.log(np.where(positive, ratios, 1.0)), 0.0)
        count = positive.sum(axis=0)
        mean = np.exp(logs.sum(axis=0) / np.maximum(count, 1))
    out: list[float | None] = [
        g if c else (0.0 if any_finite else None)
        for g, c, any_finite in zip(mean.tolist(), count.tolist(), finite.any(axis=0).tolist(),
                                    strict=True)]
    return out, ratios[-1].tolist()


def _norms(tensors: list[torch.Tensor], order: int) -> list[torch.Tensor]:
    """Per-tensor 1- or 2-norms by torch's cascade sums: ~1e-7 relative on millions of float32
    values, where torch.linalg.vector_norm and torch._foreach_norm drift by ~1e-4."""
    if order == 1:
        return [t.abs().sum() for t in tensors]
    return [torch.tensor(math.sqrt(stats.sum_of_squares(t))) for t in tensors]


def _flat_grad_rows(m: Moment, params: list[nn.Parameter], rows: np.ndarray) -> np.ndarray:
    """rows[step, param] = (‖g‖, mean |g|, std g) from the flat gradient copies, every sum in
    float64 (|g| and g summed from their float32 values by a float64 accumulator, g² from a
    float64 copy). std is the unbiased one from Σg² − n·mean², exact to ~1e-13 while that
    keeps more than a thousandth of Σg²; columns where it does not (a mean far larger than the
    spread) are summed again in two passes, as torch.std."""
    seg = _Segments(params)
    assert m.grad_rows is not None
    t = m.grad_rows.cpu()
    if t.dtype not in (torch.float32, torch.float64):  # float16 / bfloat16: float64 first
        t = t.double()
    g = t.numpy()
    size = np.maximum(seg.sizes, 1)
    g64 = g.astype(np.float64)  # once: reduceat casting float32 as it sums is 2x slower
    total = seg.sum(g64)
    abs_sum = seg.sum(np.abs(g64))  # the same sums as of float32 |g| summed in float64
    sq = seg.sum(np.square(g64, out=g64))
    rows[:, :, 0] = np.sqrt(sq)
    rows[:, :, 1] = abs_sum / size
    mean = total / size
    ss = sq - size * mean * mean
    redo = ~(ss > 1e-3 * sq)  # also NaN / Inf: their columns are summed again (NaN stays)
    if redo.any():
        cols = np.flatnonzero(redo.any(axis=0))
        exact = seg.spread(_rows(m.grad_rows), mean)
        ss[:, cols] = exact[:, cols]
    rows[:, :, 2] = np.sqrt(np.maximum(ss, 0.0) / np.maximum(seg.sizes - 1, 1))
    rows[:, seg.sizes <= 1, 2] = 0.0
    return rows


def _grad_table(m: Moment, params: list[nn.Parameter]) -> tuple[np.ndarray, np.ndarray]:
    """(mean over the sampled steps, last sampled step) of (‖g‖, mean |g|, std g) per parameter.

    Norms and sums are accumulated in float64; std is the unbiased one (0.0 for one element).
    """
    n = len(params)
    if not m.grad_steps or not n:
        empty = np.zeros((n, 3))
        return empty, empty
    rows = np.zeros((m.grad_steps, n, 3))  # (steps, params, [l2, mean_abs, std])
    numel = np.array([float(p.numel()) for p in params])
    if m.grad_rows is not None:  # all parameters at once: (steps, total) float64, per parameter
        with np.errstate(all="ignore"):  # NaN / Inf gradients give NaN / Inf, as torch's do
            rows = _flat_grad_rows(m, params, rows)
    else:
        for k, (l2, l1, total) in enumerate(m.grad_sums):
            if not l2:
                continue
            a = torch.stack([*l2, *l1, *total]).reshape(3, n).double().cpu().numpy()
            rows[k, :, 0] = a[0]
            rows[k, :, 1] = a[1] / numel
            var = (a[0] * a[0] - a[2] * a[2] / numel) / np.maximum(numel - 1, 1)
            rows[k, :, 2] = np.sqrt(np.maximum(var, 0.0))
    return rows.mean(axis=0), rows[-1]


class SnapshotQueue:
    """Snapshots and run.json updates of one run, written in order by one background thread.

    ``snapshot`` captures the moment on the caller's thread (cheap) and queues the rest:
    ``Recorder.compute`` and ``RunWriter.add_snapshot`` (a snapshot file, then its line in
    run.json, each written atomically). ``call`` queues any other writer call (history, status),
    so every write happens in the order it was asked for. At most ``max_pending`` items wait
    (the caller blocks beyond that, bounding memory). An error in the worker is raised on the
    caller's thread at its next call or at ``close``. ``background=False`` does everything on
    the caller's thread; so does a process whose torch runs more than one thread (the training
    then uses the cores itself, and torch's thread setting is process-wide), and a recorder of
    fewer than INLINE_BELOW parameters: its snapshot is a few milliseconds of Python that a
    second thread cannot overlap with a Python-bound training loop (one GIL), only delay with
    hand-offs; and a queue without a recorder (recording off: a history row per epoch and the
    status, nothing a thread would save time on). While idle, the thread saves a run.json the
    writer deferred once it is due (``RunWriter.save_due_in``); without a thread, ``tick`` does
    (the trainer calls it as it polls for a cancel).
    """

    def __init__(self, writer: Any, recorder: Recorder | None = None,
                 background: bool = True, max_pending: int = 2,
                 n_params: int | None = None) -> None:
        self.writer, self.recorder = writer, recorder
        self._error: BaseException | None = None
        self._queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        # without a recorder there is only history and status to write: no thread either,
        # unless the caller queues snapshots of n_params parameters itself (nnviz.watch)
        if n_params is None:
            n_params = 0 if recorder is None else sum(p.numel() for p in recorder.params)
        small = n_params < INLINE_BELOW
        if background and torch.get_num_threads() == 1 and not small:
            self._thread = threading.Thread(target=self._work, name="nnviz-snapshots",
                                            daemon=True)
            self._thread.start()

    def snapshot(self, epoch: float, step: int) -> None:
        """Capture this moment now; compute and write it in order."""
        assert self.recorder is not None
        moment = self.recorder.capture(epoch, step)
        recorder, writer = self.recorder, self.writer
        self._put(lambda: writer.add_snapshot(*recorder.compute(moment)))

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``fn(*args, **kwargs)`` behind everything asked before."""
        self._put(lambda: fn(*args, **kwargs))

    def tick(self) -> None:
        """Without a thread: save a deferred run.json if it is due (cheap when it is not)."""
        if self._thread is None:
            due = getattr(self.writer, "save_due_in", lambda: None)()
            if due is not None and due <= 0.0:
                self.writer.save_soon()

    def wait(self) -> None:
        """Block until everything queued is written; raise the worker's error if any."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def close(self) -> None:
        """Write everything queued, stop the thread; raise the worker's error if any."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise()

    def _put(self, job: Callable[[], Any]) -> None:
        self._raise()
        if self._thread is None:
            job()
        else:
            self._queue.put(job)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def background(self) -> bool:
        """Whether a background thread does the work (else the caller's thread does)."""
        return self._thread is not None

    def _work(self) -> None:
        due_in = getattr(self.writer, "save_due_in", lambda: None)
        while True:
            try:  # waiting for work, save the run.json a writer deferred once it is due
                job = self._queue.get(timeout=due_in() if self._error is None else None)
            except queue.Empty:
                try:
                    self.writer.save_soon()
                except BaseException as exc:  # handed to the training thread
                    self._error = exc
                continue
            try:
                if job is None:
                    return
                if self._error is None:  # after an error, drop the rest (the run fails)
                    job()
            except BaseException as exc:  # handed to the training thread
                self._error = exc
            finally:
                self._queue.task_done()


@torch.no_grad()
def signal_std(a: torch.Tensor) -> float | None:
    """√(mean over units of the variance across examples) of a (B, ...) output; None if B < 2.

    Units are the features of (B, F) and the channel x position entries of (B, C, H, W); above
    SIGNAL_UNITS of them, an evenly strided sample is averaged.

    A bias spreads values across units but not across examples, so this is the part of a
    layer's spread that still depends on the input: the "signal" whose variance He et al. (2015)
    follow through depth. NaN / Inf make it None (they are counted elsewhere).
    """
    if a.ndim < 1 or a.shape[0] < 2 or a.numel() == 0:
        return None
    x = a.reshape(a.shape[0], -1)  # (B, units)
    if x.shape[1] > SIGNAL_UNITS:  # an evenly spread sample of units: the mean needs no more
        x = x[:, :: -(-x.shape[1] // SIGNAL_UNITS)]
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    amax = float(x.abs().amax())
    if not np.isfinite(amax):
        return None
    if x.dtype == torch.float32 and amax != 0 and not 1e-15 <= amax <= 1e15:
        x = x.double()  # float32 squares would under/overflow
    # var over examples (two passes, as torch.var; not its slow Welford loop), mean over units
    d = x - x.mean(dim=0, keepdim=True)
    value = math.sqrt(float(torch.sum(d.mul_(d), dtype=torch.float64)) / (d.shape[0] - 1)
                      / d.shape[1])
    return value if np.isfinite(value) else None


def _f(x: Any) -> float | None:
    """A JSON-friendly float (NaN / Inf kept as floats: JSON writes them as NaN / Infinity)."""
    return None if x is None else float(x)

