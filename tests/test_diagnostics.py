"""Diagnostics on synthetic run-like data: every code flagged when it holds and not when it does
not, the merge over snapshots, the signal profile (checked against numpy), and the figures."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import torch

from nnviz.analysis import diagnostics as d
from nnviz.analysis import stats
from nnviz.config import RunConfig
from nnviz.store.format import (
    FORMAT_VERSION,
    RunRecord,
    SnapshotEntry,
    SnapshotStats,
    parse_run,
    parse_snapshot_stats,
)

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------ fake runs


class FakeSnapshot:
    """A storage.Snapshot without its file: the typed statistics, the values from arrays."""

    def __init__(self, entry: SnapshotEntry, record: SnapshotStats,
                 values: dict[str, np.ndarray]):
        self.index = entry.index
        self.entry = entry
        self.record = record
        self._values = values

    @property
    def epoch(self) -> float:
        return self.record.epoch

    def values(self, param: str) -> np.ndarray:
        return self._values[param]


class FakeRun:
    """A storage.Run without its folder: a RunRecord and snapshot statistics that went through
    the format's validating readers (``parse_run``, ``parse_snapshot_stats``)."""

    def __init__(self, record: RunRecord, snaps: list[FakeSnapshot]):
        self.record = record
        self._snaps = snaps
        self.folder = "/nowhere"

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def config(self) -> RunConfig:
        return self.record.config

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def entries(self) -> list[SnapshotEntry]:
        return [s.entry for s in self._snaps]

    @property
    def n_snapshots(self) -> int:
        return len(self._snaps)

    def snapshot(self, index: int) -> FakeSnapshot:
        return self._snaps[index]


CONFIG = RunConfig(model="mlp", init="kaiming_normal", optimizer="sgd", lr=0.01)


def act(kind: str = "linear", signal: float | None = 1.0, **kw: Any) -> dict[str, Any]:
    """An activation-statistics entry as the recorder writes it."""
    return {"kind": kind, "mean": 0.0, "std": signal, "signal_std": signal, "zero_frac": 0.0,
            "dead_frac": kw.pop("dead", 0.0 if kind == "relu" else None),
            "saturated_frac": kw.pop("sat", 0.0 if kind in ("tanh", "sigmoid") else None),
            "nan_count": kw.pop("nan", 0), "inf_count": 0, **kw}


def _module_type(name: str, shape: tuple[int, ...]) -> str:
    if name.startswith("bn"):
        return "BatchNorm1d"
    return "Conv2d" if len(shape) == 4 else "Linear"


def build(weights: list[dict[str, np.ndarray]], *, acts: list[dict[str, Any]] | None = None,
          grads: list[dict[str, float]] | None = None,
          ratios: list[dict[str, float | None]] | None = None,
          history: list[tuple[float, float]] = (), status: str = "completed",
          epochs: list[float] | None = None, extra: dict[str, Any] | None = None) -> FakeRun:
    """A run whose snapshot i has the weights weights[i] (param name -> array) and so on.

    grads[i][param] is the gradient std (norm = std * sqrt(numel)); ratios[i][param] the update
    ratio; history is (train_loss, val_loss) per epoch. Snapshot 0 has no gradients.
    """
    names = list(weights[0])
    params = {}
    for order, name in enumerate(names):
        w = weights[0][name]
        module, _, kind = name.rpartition(".")
        params[name] = {"shape": list(w.shape), "numel": int(w.size), "module": module,
                        "module_type": _module_type(module, w.shape), "kind": kind,
                        "order": order, "theory": None, "edges": [-1.0, 1.0], "stored": "all"}
    epochs = epochs or [float(i) for i in range(len(weights))]
    acts = acts or [{} for _ in weights]
    stats_json = []
    for i, ws in enumerate(weights):
        per = {}
        for name, w in ws.items():
            entry = stats.tensor_stats(torch.from_numpy(np.asarray(w, dtype=np.float32)))
            entry["drift"] = 0.0
            if i > 0:
                g = (grads[i] if grads else {}).get(name, 0.01)
                entry["grad"] = {"norm": g * math.sqrt(w.size), "mean_abs": g, "std": g,
                                 "last_norm": g * math.sqrt(w.size), "last_mean_abs": g,
                                 "last_std": g, "steps": 10}
                entry["update_ratio"] = (ratios[i] if ratios else {}).get(name, 1e-3)
            per[name] = entry
        stats_json.append({"index": i, "epoch": epochs[i], "step": 10 * i, "params": per,
                           "activations": acts[i]})
    hist = [{"epoch": k + 1, "train_loss": t, "val_loss": v, "train_acc": None,
             "val_acc": None} for k, (t, v) in enumerate(history)]
    layers = [{"name": n, "kind": a["kind"], "type": "x"} for n, a in acts[0].items()]
    record = parse_run({
        "schema_version": FORMAT_VERSION, "run_id": "fake", "config": CONFIG.to_dict(),
        "status": status, "created": 0.0, "loss": "cross_entropy", "history": hist,
        "params": params, "layers": layers,
        "snapshots": [{"index": i, "epoch": epochs[i], "step": 10 * i,
                       "file": f"snapshots/s{i:04d}.safetensors"} for i in range(len(weights))],
        **(extra or {})})
    snaps = [FakeSnapshot(entry, parse_snapshot_stats(st, record, entry), ws)
             for entry, st, ws in zip(record.snapshots, stats_json, weights, strict=True)]
    return FakeRun(record, snaps)


def mlp(widths: list[int], std: float | None = None, bias: float | None = None
        ) -> dict[str, np.ndarray]:
    """fc1..fcN weights (out, in) with Kaiming std (or ``std``) and small random biases."""
    out = {}
    for k, (n_in, n_out) in enumerate(zip(widths, widths[1:], strict=False), start=1):
        s = std if std is not None else math.sqrt(2 / n_in)
        out[f"fc{k}.weight"] = RNG.normal(0, s, (n_out, n_in)).astype(np.float32)
        b = RNG.uniform(-0.1, 0.1, n_out) if bias is None else np.full(n_out, bias)
        out[f"fc{k}.bias"] = b.astype(np.float32)
    return out


def chain_acts(signals: list[float | None]) -> dict[str, Any]:
    return {f"fc{k}": act("linear", s) for k, s in enumerate(signals, start=1)}


def codes(flags: list[d.Flag]) -> list[str]:
    return [f.code for f in flags]


def flag(flags: list[d.Flag], code: str) -> d.Flag:
    found = [f for f in flags if f.code == code]
    assert found, f"{code} not in {codes(flags)}"
    return found[0]


W4 = [8, 16, 16, 16, 4]  # a 4-layer MLP


# ------------------------------------------------------------------------------ non_finite


def test_non_finite_weights_are_critical_with_the_layer_and_first_sight():
    ok = mlp(W4)
    bad = {k: v.copy() for k, v in ok.items()}
    bad["fc3.weight"][0, 0] = np.nan
    bad["fc3.weight"][1, 1] = np.inf
    run = build([ok, ok, bad], history=[(1.0, 1.0), (0.9, 0.9)])
    flags = d.diagnose(run)
    f = flag(flags, "non_finite")
    assert f.severity == "critical" and f.layers == ["fc3"]
    assert f.evidence["NaN weights"] == 1 and f.evidence["Inf weights"] == 1
    assert f.first_seen["snapshot"] == 2 and f.first_seen["epoch"] == 2.0
    assert flags[0].code == "non_finite"  # critical first
    assert "non_finite" not in codes(d.diagnose(run, upto=1))


def test_non_finite_loss_activations_and_divergence():
    w = mlp(W4)
    acts = [chain_acts([1, 1, 1, 1]), {**chain_acts([1, 1, 1, 1]), "fc2": act("linear", None,
                                                                            nan=12)}]
    run = build([w, w], acts=acts, history=[(1.0, 1.0)])
    f = flag(d.flags_at(run, 1), "non_finite")
    assert f.evidence["NaN activations"] == 12 and "activations" in f.evidence["non-finite"]
    run = build([w, w], history=[(float("nan"), 1.0)])
    assert "loss" in flag(d.diagnose(run), "non_finite").evidence["non-finite"]
    run = build([w, w], status="diverged", epochs=[0.0, 0.5], history=[],
                extra={"diverged_at": {"epoch": 1, "step": 7, "what": "loss"}})
    f = flag(d.diagnose(run), "non_finite")
    assert f.evidence["diverged at step"] == 7 and f.first_seen["epoch"] == 0.5
    assert f.guide_step == 4  # nothing exploded at init: the learning rate is the suspect
    assert "non_finite" not in codes(d.diagnose(build([w, w], history=[(1.0, 1.0)])))


# ------------------------------------------------------------------------------ exploding


def test_exploding_signal_grows_with_depth_and_not_when_constant():
    w = mlp(W4)
    run = build([w], acts=[chain_acts([1.0, 10.0, 100.0, 1000.0])])
    f = flag(d.diagnose(run), "exploding")
    assert f.evidence["signal ratio last/first"] == pytest.approx(1000.0)
    assert f.guide_step == 1 and f.layers == ["fc2", "fc3", "fc4"]
    run = build([w], acts=[chain_acts([1.0, 1.3, 0.8, 1.1])])
    assert d.diagnose(run) == []


def test_exploding_single_layer_gain_and_weight_scale():
    w = mlp([8, 16, 4])
    run = build([w], acts=[chain_acts([1.0, 20.0])])  # one layer multiplying the signal by 20
    assert "exploding" in codes(d.diagnose(run))
    big = mlp([8, 64, 4], std=1.0)  # fc1: std 1 vs Kaiming √(2/8) = 0.5: 2x, not flagged
    big["fc2.weight"] = RNG.normal(0, 3.0, (4, 64)).astype(np.float32)  # 17x Kaiming
    f = flag(d.diagnose(build([big])), "exploding")
    assert f.layers == ["fc2"]
    expected = float(np.std(big["fc2.weight"].astype(np.float64), ddof=1)) * 8 / math.sqrt(2)
    assert f.evidence["weight std / Kaiming std"] == pytest.approx(expected, rel=1e-5)
    assert d.diagnose(build([mlp([8, 64, 4])])) == []


def test_exploding_gradient_spike_and_weight_growth():
    w = mlp(W4)
    grads = [{}, {n: 0.01 for n in w}, {n: 0.01 for n in w}, {n: 0.5 for n in w}]
    run = build([w, w, w, w], grads=grads)
    f = flag(d.flags_at(run, 3), "exploding")
    assert f.evidence["spike factor"] == pytest.approx(50.0)
    assert "exploding" not in codes(d.flags_at(run, 2))
    calm = build([w, w, w, w], grads=[{}, *([{n: 0.01 for n in w}] * 2), {n: 0.03 for n in w}])
    assert "exploding" not in codes(d.diagnose(calm))
    grown = {k: v * (3.0 if k.endswith("weight") else 1.0) for k, v in w.items()}
    grown2 = {k: v * (9.0 if k.endswith("weight") else 1.0) for k, v in w.items()}
    f = flag(d.flags_at(build([w, grown, grown2]), 2), "exploding")
    assert f.evidence["weight norm growth per epoch"] == pytest.approx(3.0, rel=1e-5)
    small = mlp(W4, std=1e-3)  # tiny init growing 3x per epoch is ordinary learning
    small3 = {k: v * 3 for k, v in small.items()}
    assert "exploding" not in codes(d.diagnose(build([small, small3])))


# ------------------------------------------------------------------------------ vanishing


def test_vanishing_signal_shrinks_with_depth():
    w = mlp(W4)
    run = build([w], acts=[chain_acts([1.0, 0.1, 0.01, 1e-3])])
    f = flag(d.diagnose(run), "vanishing")
    assert f.severity == "warning" and f.guide_step == 1
    assert f.evidence["signal ratio last/first"] == pytest.approx(1e-3)
    # He et al.: Xavier on ReLU halves the variance per layer; 5 layers are not flagged
    halving = [2 ** (-k / 2) for k in range(5)]
    run = build([mlp([8] + [16] * 4 + [4])], acts=[chain_acts(halving)])
    assert "vanishing" not in codes(d.diagnose(run))
    thirty = [2 ** (-k / 2) for k in range(31)]
    run = build([mlp([8] + [16] * 31)], acts=[chain_acts(thirty)])  # 31 layers
    assert flag(d.diagnose(run), "vanishing").evidence["signal ratio last/first"] == \
        pytest.approx(2 ** -15)


def test_vanishing_gradients_and_update_ratios_toward_the_input():
    w = mlp(W4)
    grads = [{}, {"fc1.weight": 1e-7, "fc2.weight": 1e-5, "fc3.weight": 1e-3,
                  "fc4.weight": 1e-2}]
    f = flag(d.flags_at(build([w, w], grads=grads), 1), "vanishing")
    assert f.evidence["grad ratio input/output"] == pytest.approx(1e-5)
    assert f.layers[:2] == ["fc1", "fc2"]
    ratios = [{}, {"fc1.weight": 1e-8, "fc2.weight": 1e-6, "fc3.weight": 1e-4,
                   "fc4.weight": 1e-3}]
    assert "vanishing" in codes(d.flags_at(build([w, w], ratios=ratios), 1))
    even = [{}, {n: 0.01 for n in w}]
    assert "vanishing" not in codes(d.diagnose(build([w, w], grads=even)))


def test_all_zero_gradients_are_not_vanishing_and_normalization_cuts_the_chain():
    w = mlp(W4)
    zero = [{}, {n: 0.0 for n in w}]
    assert "vanishing" not in codes(d.diagnose(build([w, w], grads=zero)))
    # fc1 -> bn1 -> fc2 -> bn2 -> fc3: each chain has one layer, so no depth profile
    w = mlp([8, 16, 16, 4])
    w = {"fc1.weight": w["fc1.weight"], "fc1.bias": w["fc1.bias"],
         "bn1.weight": np.ones(16, np.float32), "bn1.bias": np.zeros(16, np.float32),
         "fc2.weight": w["fc2.weight"], "fc2.bias": w["fc2.bias"],
         "bn2.weight": np.ones(16, np.float32), "bn2.bias": np.zeros(16, np.float32),
         "fc3.weight": w["fc3.weight"], "fc3.bias": w["fc3.bias"]}
    run = build([w], acts=[chain_acts([1.0, 1e-3, 1e-6])])
    assert d.diagnose(run) == []
    assert list(d.signal_profile(run, 0)["norm_after"]) == [True, True, False]


# ------------------------------------------------------------------------------- symmetry


def test_symmetry_zeros_and_constant_init_are_critical():
    zeros = {k: np.zeros_like(v) for k, v in mlp(W4).items()}
    f = flag(d.diagnose(build([zeros])), "symmetry")
    assert f.severity == "critical" and f.layers == ["fc1", "fc2", "fc3", "fc4"]
    assert f.evidence["fc2"] == "16 identical units (weights and bias)"
    const = {k: np.full_like(v, 0.1 if k.endswith("weight") else 0.0)
             for k, v in mlp(W4).items()}
    assert flag(d.diagnose(build([const])), "symmetry").severity == "critical"
    # rounding-level differences still count as identical
    near = {k: v.copy() for k, v in const.items()}
    near["fc2.weight"][3] = np.nextafter(near["fc2.weight"][3], np.float32(1))
    assert flag(d.diagnose(build([near])), "symmetry").evidence["fc2"] == \
        "16 identical units (weights and bias)"


def test_symmetry_identical_or_parallel_rows_with_different_biases_is_a_warning():
    rows = {k: np.full_like(v, 0.1) if k.endswith("weight") else v
            for k, v in mlp(W4).items()}  # same weights, random biases: breaks only slowly
    f = flag(d.diagnose(build([rows])), "symmetry")
    assert f.severity == "warning"
    assert f.evidence["fc1"] == "16 units with identical weights (biases differ)"
    w = mlp(W4)
    scale = RNG.uniform(0.5, 2.0, (16, 1)).astype(np.float32)
    w["fc2.weight"] = scale * RNG.normal(size=(1, 16)).astype(np.float32)  # rank 1
    f = flag(d.diagnose(build([w])), "symmetry")
    assert f.layers == ["fc2"] and "rank 1" in f.evidence["fc2"]


def test_random_rows_one_unit_and_one_input_are_not_symmetric():
    assert "symmetry" not in codes(d.diagnose(build([mlp(W4)])))
    one_unit = {"fc1.weight": np.zeros((1, 4), np.float32), "fc1.bias": np.zeros(1, np.float32)}
    assert "symmetry" not in codes(d.diagnose(build([one_unit])))
    one_input = {"fc1.weight": RNG.normal(size=(8, 1)).astype(np.float32),
                 "fc1.bias": RNG.normal(size=8).astype(np.float32)}  # rank 1 by shape
    assert "symmetry" not in codes(d.diagnose(build([one_input])))


def test_rows_identical_against_numpy():
    m = RNG.normal(size=(5, 7))
    same, diff = d._rows_identical(np.tile(m[0], (5, 1)), 5, np.zeros(5))
    assert same and diff == 0.0
    same, diff = d._rows_identical(m, 5, None)
    assert not same and diff == pytest.approx(float(np.max(np.abs(m - m[0]))))


# --------------------------------------------------------------------------------- frozen


def test_frozen_layer_did_not_change():
    w = mlp(W4)
    moved = {k: (v + 0.01 if not k.startswith("fc2") else v) for k, v in w.items()}
    ratios = [{}, {"fc2.weight": 0.0}]
    f = flag(d.flags_at(build([w, moved], ratios=ratios), 1), "frozen")
    assert f.layers == ["fc2"] and f.evidence["frozen layers"] == 1
    assert "frozen" not in codes(d.diagnose(build([w, moved])))
    # a ratio of 0 but values that did change (a step not sampled) is not frozen
    moved_all = {k: v + 0.01 for k, v in w.items()}
    assert "frozen" not in codes(d.diagnose(build([w, moved_all], ratios=ratios)))


# ---------------------------------------------------------------------- dead_relu, saturation


@pytest.mark.parametrize(("dead", "severity"), [(0.5, "warning"), (0.2, "info"), (0.05, None)])
def test_dead_relu(dead, severity):
    w = mlp(W4)
    acts = {**chain_acts([1, 1, 1, 1]), "act1": act("relu", 1.0, dead=0.0),
            "act2": act("relu", 1.0, dead=dead)}
    flags = d.diagnose(build([w], acts=[acts]))
    if severity is None:
        assert "dead_relu" not in codes(flags)
    else:
        f = flag(flags, "dead_relu")
        assert (f.severity, f.layers, f.evidence["largest dead fraction"]) == (
            severity, ["act2"], dead)


@pytest.mark.parametrize(("kind", "sat", "severity"), [
    ("tanh", 0.3, "warning"), ("sigmoid", 0.12, "info"), ("tanh", 0.04, None)])
def test_saturation(kind, sat, severity):
    acts = {**chain_acts([1, 1, 1, 1]), "act1": act(kind, 0.5, sat=sat)}
    flags = d.diagnose(build([mlp(W4)], acts=[acts]))
    if severity is None:
        assert "saturation" not in codes(flags)
    else:
        f = flag(flags, "saturation")
        assert f.severity == severity and f.layers == ["act1"]
        assert f.guide_step == (7 if kind == "sigmoid" else 1)


# ------------------------------------------------------------------------- learning rate


def test_lr_too_high_needs_bad_loss():
    w = mlp(W4)
    high = [{}, {n: 0.05 for n in w}, {n: 0.05 for n in w}]
    # big steps while the loss falls steadily (Adam on small weights): nothing to flag
    falling = build([w, w, w], ratios=high, history=[(2.0, 2.0), (1.5, 1.6)])
    assert "lr_too_high" not in codes(d.diagnose(falling))
    rising = build([w, w, w], ratios=high, history=[(2.0, 2.0), (2.5, 2.6)])
    f = flag(d.diagnose(rising), "lr_too_high")
    assert f.severity == "warning" and f.evidence["median update ratio"] == pytest.approx(0.05)
    spiked = build([w, w], ratios=high[:2], history=[(5e6, 2.0)])  # blew up mid-epoch
    assert flag(d.diagnose(spiked), "lr_too_high").severity == "warning"
    fine = build([w, w, w], history=[(2.0, 2.0), (2.5, 2.6)])  # ratios 1e-3
    assert not {"lr_too_high", "lr_too_low"} & set(codes(d.diagnose(fine)))


def test_lr_too_low_uses_the_fastest_layer():
    w = mlp(W4)
    low = [{}, {n: 1e-6 for n in w}, {n: 1e-6 for n in w}]
    flat = build([w, w, w], ratios=low, history=[(1.0, 1.0), (0.999, 1.0)])
    f = flag(d.diagnose(flat), "lr_too_low")
    assert f.severity == "warning" and f.evidence["largest update ratio"] == pytest.approx(1e-6)
    falling = build([w, w, w], ratios=low, history=[(1.0, 1.0), (0.8, 0.8)])
    assert flag(d.diagnose(falling), "lr_too_low").severity == "info"
    # only the input side is slow: that is vanishing, not a low learning rate
    profile = [{}, {"fc1.weight": 1e-8, "fc2.weight": 1e-6, "fc3.weight": 1e-4,
                    "fc4.weight": 1e-3}]
    flags = d.diagnose(build([w, w], ratios=profile))
    assert "lr_too_low" not in codes(flags) and "vanishing" in codes(flags)


# ---------------------------------------------------------------------------- overfitting


def test_overfitting_is_a_rising_validation_trend_while_training_loss_falls():
    w = mlp(W4)
    # learned (val 1.0 -> 0.6), then val rises two epochs in a row while train falls
    rising = [(1.0, 1.0), (0.6, 0.6), (0.4, 0.66), (0.3, 0.72)]
    f = flag(d.diagnose(build([w] * 5, history=rising)), "overfitting")
    assert f.severity == "warning" and f.guide_step == 8
    assert f.evidence["val loss above its best"] == pytest.approx(0.72 / 0.6 - 1)
    assert f.evidence["best epoch"] == 2 and f.epochs == [4.0]
    assert "best epoch (2)" in f.fix
    not_yet = rising[:3]  # one epoch above the best is noise, not a trend
    assert "overfitting" not in codes(d.diagnose(build([w] * 4, history=not_yet)))
    # a gap alone (val still improving) is not overfitting
    gap = [(1.0, 1.05), (0.6, 0.8), (0.3, 0.7), (0.1, 0.65)]
    assert "overfitting" not in codes(d.diagnose(build([w] * 5, history=gap)))
    # jitter around a flat line: the rise does not stand out of the scatter
    jitter = [(1.0, 1.0), (0.6, 0.6), (0.4, 0.7), (0.3, 0.62), (0.2, 0.66)]
    assert "overfitting" not in codes(d.diagnose(build([w] * 6, history=jitter)))
    # the training loss stopped falling too: no memorising
    both = [(1.0, 1.0), (0.6, 0.6), (0.6, 0.66), (0.6, 0.72)]
    assert "overfitting" not in codes(d.diagnose(build([w] * 5, history=both)))
    # a run that never learned (val loss barely below its first value) is not overfitting
    flat = [(1.0, 1.0), (0.9, 0.95), (0.8, 1.0), (0.7, 1.05)]
    assert "overfitting" not in codes(d.diagnose(build([w] * 5, history=flat)))
    # validation still below training loss: a bump on held-out data, nothing memorised (the
    # kaiming_deep_relu lesson at lr 0.01: val 0.871 -> 0.967 with train at 0.982)
    bump = [(1.2, 1.0), (1.0, 0.6), (0.9, 0.66), (0.8, 0.72)]
    assert "overfitting" not in codes(d.diagnose(build([w] * 5, history=bump)))


# ------------------------------------------------------------------------ merge, timeline


def test_merge_timeline_and_flags_at():
    w = mlp(W4)
    acts = [chain_acts([1, 1, 1, 1]),
            {**chain_acts([1, 1, 1, 1]), "act1": act("relu", 1.0, dead=0.2)},
            {**chain_acts([1, 1, 1, 1]), "act1": act("relu", 1.0, dead=0.6)},
            chain_acts([1, 1, 1, 1])]
    run = build([w] * 4, acts=acts)
    f = flag(d.diagnose(run), "dead_relu")
    assert f.severity == "warning" and f.epochs == [1.0, 2.0] and f.snapshots == [1, 2]
    assert f.first_seen == {"snapshot": 1, "epoch": 1.0, "step": 10}
    assert flag(d.diagnose(run, upto=1), "dead_relu").severity == "info"
    assert d.flags_at(run, 3) == [] and d.flags_at(run, -1) == []
    now = flag(d.flags_at(run, 1), "dead_relu")
    assert now.severity == "info" and now.epochs == [1.0]
    assert d.timeline(run) == [(0, []), (1, ["dead_relu"]), (2, ["dead_relu"]), (3, [])]
    assert d.timeline_severities(run)[2] == (2, 2.0, {"dead_relu": "warning"})


def test_flags_sorted_by_severity_and_json_ready():
    zeros = {k: np.zeros_like(v) for k, v in mlp(W4).items()}
    acts = {**chain_acts([1, 1, 1, 1]), "act1": act("relu", 1.0, dead=0.2)}
    flags = d.diagnose(build([zeros], acts=[acts]))
    ranks = [d.SEVERITIES.index(f.severity) for f in flags]
    assert ranks == sorted(ranks) and codes(flags)[0] == "symmetry"
    for f in flags:
        data = json.loads(json.dumps(f.to_dict(), allow_nan=False))
        assert data["guide_url"] == f"/Tuning_guide#step-{f.guide_step}"
        assert f.code in d.CODES and f.severity in d.SEVERITIES
        assert 1 <= f.guide_step <= 8 and f.explanation and f.fix
    nan_flag = d.Flag("non_finite", "critical", [], [0.0], {"x": float("nan")}, "e", "f", 4)
    assert json.loads(json.dumps(nan_flag.to_dict(), allow_nan=False))["evidence"]["x"] == "NaN"


def test_guide_steps_and_format_value():
    assert sorted(d.GUIDE_STEPS) == list(range(1, 9))
    assert d.GUIDE_STEPS[4][0] == "Learning rate and scheduler"
    assert d.guide_url(8) == "/Tuning_guide#step-8"
    assert [d.format_value(v) for v in (3.0, 0.012345, 1.5e-7, float("inf"), float("nan"),
                                        0.0, "text", 12)] == [
        "3", "0.0123", "1.50e-07", "Inf", "NaN", "0", "text", "12"]


def test_empty_run_has_no_flags():
    run = build([mlp(W4)])
    run._snaps = []
    assert d.diagnose(run) == [] and d.flags_at(run, 0) == [] and d.timeline(run) == []
    assert list(d.signal_profile(run, 0).columns)[:3] == ["depth", "layer", "type"]


# ------------------------------------------------------------------------- signal profile


def test_signal_profile_matches_numpy():
    w = mlp(W4)
    grads = [{}, {"fc1.weight": 1e-3, "fc2.weight": 2e-3, "fc3.weight": 3e-3,
                  "fc4.weight": 4e-3}]
    acts = [chain_acts([1, 2, 3, 4]), chain_acts([0.5, 0.4, 0.3, None])]
    run = build([w, w], acts=acts, grads=grads)
    df = d.signal_profile(run, 1)
    assert list(df["layer"]) == ["fc1", "fc2", "fc3", "fc4"] and list(df["depth"]) == [1, 2, 3, 4]
    for row in df.itertuples():
        ref = w[f"{row.layer}.weight"].astype(np.float64)
        assert row.weight_std == pytest.approx(float(np.std(ref, ddof=1)), rel=1e-6)
        assert row.grad_norm == pytest.approx(row.grad_std * math.sqrt(ref.size))
    assert list(df["grad_std"]) == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3])
    assert df["activation_std"].iloc[:3].tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert math.isnan(df["activation_std"].iloc[3])
    assert d.signal_profile(run, 0)["grad_std"].isna().all()


# ------------------------------------------------------------------ recorder: signal_std


def test_signal_std_against_numpy_and_its_edge_cases():
    from nnviz.engine.recorder import signal_std

    x = RNG.normal(size=(32, 3, 4, 4)) * RNG.uniform(0.1, 3.0, size=(1, 3, 1, 1))
    x += RNG.normal(size=(1, 3, 4, 4)) * 5  # a per-unit offset (like a bias): not signal
    ref = math.sqrt(float(np.mean(np.var(x.reshape(32, -1), axis=0, ddof=1))))
    assert signal_std(torch.from_numpy(x).float()) == pytest.approx(ref, rel=1e-5)
    assert signal_std(torch.from_numpy(x).float()) < float(np.std(x, ddof=1))
    big = torch.randn(16, 32, 24, 24) * torch.linspace(0.1, 3.0, 32).reshape(1, 32, 1, 1)
    ref = math.sqrt(float(np.mean(np.var(big.double().reshape(16, -1).numpy(), axis=0,
                                         ddof=1))))
    assert big[0].numel() > 4096  # the evenly spread sample of units
    assert signal_std(big) == pytest.approx(ref, rel=0.02)
    assert signal_std(big * 1e30) == pytest.approx(signal_std(big) * 1e30, rel=1e-5)
    const = torch.ones(8, 5) * torch.arange(5.0)  # differs across units, not examples
    assert signal_std(const) == 0.0
    assert signal_std(torch.ones(1, 5)) is None  # one example: no spread across examples
    bad = torch.ones(4, 3)
    bad[0, 0] = float("nan")
    assert signal_std(bad) is None


def test_epochs_text_shortens_runs_of_snapshots():
    f = d.Flag("overfitting", "info", [], [0.0, 1.0, 2.0, 3.0, 5.0, 7.5, 8.0], {}, "e", "f", 8,
               snapshots=[0, 1, 2, 3, 5, 7, 8])
    assert d.epochs_text(f) == "0-3, 5, 7.5-8"
    assert "epochs: 0-3, 5, 7.5-8" in d.format_flag(f)


def test_a_network_that_does_not_learn_is_not_overfitting():
    w = mlp(W4)
    chance = [(1.1068, 1.1081), (1.1135, 1.0969), (1.1098, 1.1715)]  # val jitters at chance
    flags = d.diagnose(build([w] * 4, history=chance))
    assert "overfitting" not in codes(flags)
