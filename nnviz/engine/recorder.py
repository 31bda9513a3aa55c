"""Recording: what a run keeps at every snapshot.

Per parameter: values (all up to VALUE_LIMIT elements, else a SAMPLE_SIZE sample), exact
statistics (``stats.tensor_stats``), counts on bin edges fixed at init for the whole run
(``stats.weight_edges``; values outside them are counted as under/overflow, never dropped),
gradient statistics (norm, mean |g|, std: averaged over the steps since the last snapshot and at
the last step), the update ratio ‖ΔW‖/‖W‖ of single optimizer steps (sampled at up to
UPDATE_SAMPLES steps per epoch, as CS231n and Karpathy plot it), and drift from init
‖W_t − W_0‖/‖W_0‖. Per layer, on a fixed probe batch: activation mean, std, exact-zero, dead and
saturated fractions, and ``signal_std`` (the spread across examples, which biases do not
add to).

Per-step work stays on the device and is read back only at a snapshot, so recording every
epoch costs little against training (``benchmarks/bench_recording.py`` measures it).
"""

from __future__ import annotations

import hashlib
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
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def describe_params(model: nn.Module, theories: dict[str, Theory]) -> dict[str, dict[str, Any]]:
    """Static facts per parameter: shape, module, kind, theoretical distribution, fixed edges."""
    modules = dict(model.named_modules())
    info: dict[str, dict[str, Any]] = {}
    for depth, (name, p) in enumerate(model.named_parameters()):
        module_name, _, leaf = name.rpartition(".")
        module = modules[module_name]
        theory = theories.get(name)
        values = p.detach().float().cpu().flatten().numpy()
        edges = stats.weight_edges(values, theory_std=theory.std if theory else None)
        info[name] = {
            "shape": list(p.shape),
            "numel": p.numel(),
            "module": module_name,
            "module_type": type(module).__name__,
            "kind": leaf,  # "weight" or "bias"
            "order": depth,
            "theory": theory.to_dict() if theory else None,
            "edges": [float(e) for e in edges],
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


class Recorder:
    """Accumulates per-step gradient and update statistics and takes snapshots."""

    def __init__(self, model: nn.Module, probe_x: torch.Tensor, sample_seed: int) -> None:
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        self.params = [p for _, p in model.named_parameters()]
        self.probe_x = probe_x
        self.sample_seed = sample_seed
        self.w0 = [p.detach().clone() for p in self.params]
        self._numel = torch.tensor([float(p.numel()) for p in self.params],
                                   dtype=torch.float64,
                                   device=self.params[0].device if self.params else "cpu")
        self.layers = describe_layers(model)
        self.edges: dict[str, np.ndarray] = {}
        self._reset_grads()
        self._before: list[torch.Tensor] | None = None
        self._ratios: list[torch.Tensor] = []

    def set_edges(self, params_info: dict[str, dict[str, Any]]) -> None:
        self.edges = {n: np.asarray(i["edges"]) for n, i in params_info.items()}

    def _reset_grads(self) -> None:
        n = len(self.params)
        device = self.params[0].device if self.params else "cpu"
        self._grad_sum = torch.zeros(n, 3, dtype=torch.float64, device=device)
        self._grad_last = torch.zeros(n, 3, dtype=torch.float64, device=device)
        self._grad_steps = 0

    @torch.no_grad()
    def after_backward(self) -> None:
        """Accumulate (‖g‖, mean |g|, std g) for every parameter; stays on the device."""
        grads = [p.grad.detach() if p.grad is not None else torch.zeros_like(p)
                 for p in self.params]
        if grads:
            # fused reductions (one kernel per norm for all parameters); std from the same sums
            l2 = torch.stack(torch._foreach_norm(grads, 2)).double()
            l1 = torch.stack(torch._foreach_norm(grads, 1)).double()
            total = torch.stack([g.sum() for g in grads]).double()
            n = self._numel
            var = (l2 * l2 - total * total / n) / (n - 1).clamp_min(1)
            self._grad_last = torch.stack((l2, l1 / n, var.clamp_min(0).sqrt()), dim=1)
            self._grad_sum += self._grad_last
        self._grad_steps += 1

    @torch.no_grad()
    def before_step(self) -> None:
        """Keep a copy of the weights so the next ``after_step`` can measure ‖ΔW‖/‖W‖."""
        self._before = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def after_step(self) -> None:
        if self._before is None:
            return
        num = torch.stack([torch.linalg.vector_norm((p.detach() - b).double())
                           for p, b in zip(self.params, self._before, strict=True)])
        den = torch.stack([torch.linalg.vector_norm(b.double()) for b in self._before])
        self._ratios.append(num / den)
        self._before = None

    @torch.no_grad()
    def snapshot(self, epoch: float, step: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and statistics of this moment; resets the per-step accumulators."""
        grad_mean = (self._grad_sum / max(self._grad_steps, 1)).cpu().numpy()
        grad_last = self._grad_last.cpu().numpy()
        ratios = torch.stack(self._ratios).cpu().numpy() if self._ratios else None
        tensors: dict[str, torch.Tensor] = {}
        per_param: dict[str, Any] = {}
        for i, (name, p) in enumerate(zip(self.names, self.params, strict=True)):
            w = p.detach()
            entry = stats.tensor_stats(w)
            values = stats.sample_values(w, VALUE_LIMIT if w.numel() <= VALUE_LIMIT
                                         else SAMPLE_SIZE, seed=self.sample_seed + i)
            tensors[f"values/{name}"] = torch.from_numpy(np.ascontiguousarray(values))
            hist = stats.histogram(values if w.numel() <= VALUE_LIMIT else w.cpu(),
                                   self.edges[name])
            tensors[f"hist/{name}"] = torch.from_numpy(hist.counts.astype(np.int64))
            entry["hist_outside"] = {
                "underflow": hist.underflow, "overflow": hist.overflow, "nan": hist.nan,
                "posinf": hist.posinf, "neginf": hist.neginf,
            }
            entry["drift"] = _f(stats.drift(self.w0[i], w))
            if self._grad_steps:
                entry["grad"] = {
                    "norm": _f(grad_mean[i, 0]), "mean_abs": _f(grad_mean[i, 1]),
                    "std": _f(grad_mean[i, 2]), "last_norm": _f(grad_last[i, 0]),
                    "last_mean_abs": _f(grad_last[i, 1]), "last_std": _f(grad_last[i, 2]),
                    "steps": self._grad_steps,
                }
            if ratios is not None:
                col = ratios[:, i]
                finite = col[np.isfinite(col)]
                entry["update_ratio"] = _f(np.exp(np.mean(np.log(finite[finite > 0]))))\
                    if (finite > 0).any() else (0.0 if finite.size else None)
                entry["update_ratio_last"] = _f(col[-1])
            per_param[name] = entry
        self._reset_grads()
        self._ratios = []
        return tensors, {"epoch": epoch, "step": step, "params": per_param,
                         "activations": self.probe()}

    @torch.no_grad()
    def probe(self) -> dict[str, Any]:
        """Activation statistics of every measured layer on the probe batch (eval mode)."""
        modules = dict(self.model.named_modules())
        out: dict[str, Any] = {}
        hooks = []

        def hook_for(name: str, kind: str):
            def hook(_module: nn.Module, _inp: Any, output: torch.Tensor) -> None:
                out[name] = {"kind": kind, **stats.activation_stats(output.detach(), kind),
                             "signal_std": signal_std(output.detach())}
            return hook

        was_training = self.model.training
        try:
            for layer in self.layers:
                hooks.append(modules[layer["name"]].register_forward_hook(
                    hook_for(layer["name"], layer["kind"])))
            self.model.eval()
            self.model(self.probe_x)
        finally:
            for h in hooks:
                h.remove()
            self.model.train(was_training)
        return out


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
    value = float(x.var(dim=0).mean().sqrt())  # var over examples, mean over units
    return value if np.isfinite(value) else None


def _f(x: Any) -> float | None:
    """A JSON-friendly float (NaN / Inf kept as floats: JSON writes them as NaN / Infinity)."""
    return None if x is None else float(x)

