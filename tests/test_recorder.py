"""The recorder after its speed-ups: every recorded statistic against numpy / torch.

Each test records a few real optimizer steps of a small model, keeps its own copies of the
weights, gradients and activations on the side, and compares every number of the snapshot with
numpy (float64) or torch computed the obvious way on those same tensors: percentiles against
np.percentile and histogram counts against np.histogram on the run's edges (exactly), norms,
std, drift, update ratios, gradient statistics and activation statistics (to rounding). Also
the large-tensor paths (sampled values, float32 Lanczos, non-deferred gradients), NaN / Inf and
all-equal weights, the background queue (same bytes, same order, errors surface) and the
sampled steps.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from torch import nn

from nnviz.analysis import stats
from nnviz.config import RunConfig
from nnviz.engine import recorder as rec_mod
from nnviz.engine.initializers import InitParams, apply_init, theories
from nnviz.engine.recorder import Recorder, SnapshotQueue, describe_params, sample_steps
from tests.fixtures.models import TinyConv


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy().reshape(-1)


def _recorder(model: nn.Module, probe: torch.Tensor) -> Recorder:
    rec = Recorder(model, probe, sample_seed=5)
    rec.set_edges(describe_params(model, theories(model, InitParams(), "tanh")))
    return rec


def _train_steps(model, rec, x, steps=4, update_at=(0, 2), grad_at=None, lr=0.05):
    """SGD steps with the recorder's hooks; returns the side copies of what it measured."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    grads, ratios = [], []
    for i in range(steps):
        opt.zero_grad()
        (model(x) ** 2).mean().mul(i + 1).backward()
        if grad_at is None or i in grad_at:
            rec.after_backward()
            grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        if i in update_at:
            rec.before_step()
        opt.step()
        if i in update_at:
            rec.after_step()
            ratios.append({n: np.linalg.norm(_np(p) - _np(before[n])) / np.linalg.norm(
                _np(before[n])) for n, p in model.named_parameters()})
    return grads, ratios


def _check_param(entry, w: torch.Tensor, w0: torch.Tensor, counts: np.ndarray,
                 edges: np.ndarray, rtol: float = 1e-9) -> None:
    x = _np(w)
    finite = x[np.isfinite(x)]
    assert entry["numel"] == x.size and entry["finite_count"] == finite.size
    assert entry["nan_count"] == int(np.isnan(x).sum())
    assert entry["inf_count"] == int(np.isinf(x).sum())
    assert entry["zero_frac"] == pytest.approx(float((x == 0).mean()), abs=1e-15)
    assert entry["min"] == finite.min() and entry["max"] == finite.max()
    np.testing.assert_array_equal(entry["percentiles"],
                                  np.percentile(finite, stats.PERCENTILES))  # exact
    assert entry["mean"] == pytest.approx(finite.mean(), rel=rtol, abs=1e-15)
    assert entry["std"] == pytest.approx(finite.std(ddof=1), rel=rtol, abs=1e-15)
    assert entry["l2"] == pytest.approx(np.linalg.norm(finite), rel=rtol)
    m = np.where(np.isfinite(x), x, 0.0).reshape(w.shape[0], -1) if w.ndim >= 2 else None
    spectral = np.linalg.svd(m, compute_uv=False)[0] if m is not None else np.linalg.norm(finite)
    assert entry["spectral_norm"] == pytest.approx(spectral, rel=max(rtol, 1e-9))
    np.testing.assert_array_equal(counts, np.histogram(finite, edges)[0])  # exact
    outside = entry["hist_outside"]
    assert outside["underflow"] == int((finite < edges[0]).sum())
    assert outside["overflow"] == int((finite > edges[-1]).sum())
    assert outside["nan"] == int(np.isnan(x).sum())
    assert outside["posinf"] == int((x == np.inf).sum())
    assert outside["neginf"] == int((x == -np.inf).sum())
    if np.all(np.isfinite(x)) and np.linalg.norm(_np(w0)) > 0:
        want = np.linalg.norm(x - _np(w0)) / np.linalg.norm(_np(w0))
        assert entry["drift"] == pytest.approx(want, rel=1e-6, abs=1e-12)
    elif np.all(np.isfinite(x)) and np.all(x == _np(w0)):
        assert entry["drift"] is None  # 0 / 0


def test_every_statistic_of_a_snapshot_matches_numpy():
    torch.manual_seed(0)
    model = TinyConv()
    apply_init(model, InitParams(), "tanh", torch.Generator().manual_seed(0))
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    rec = _recorder(model, x[:6])
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads, ratios = _train_steps(model, rec, x)
    acts = {}
    hooks = [getattr(model, name).register_forward_hook(
        lambda _m, _i, out, name=name: acts.__setitem__(name, out.detach().clone()))
        for name in ("conv1", "act1", "fc")]
    model.eval()
    with torch.no_grad():
        model(x[:6])
    model.train()
    for h in hooks:
        h.remove()
    tensors, snap = rec.compute(rec.capture(1.0, 4))
    for name, p in model.named_parameters():
        entry = snap["params"][name]
        _check_param(entry, p, w0[name], tensors[f"hist/{name}"].numpy(), rec.edges[name])
        np.testing.assert_array_equal(tensors[f"values/{name}"].numpy(),
                                      p.detach().reshape(-1).numpy())
        # gradients: every sampled step, mean of the per-step figures and the last one
        per_step = [(np.linalg.norm(_np(g[name])), np.abs(_np(g[name])).mean(),
                     _np(g[name]).std(ddof=1)) for g in grads]
        got = entry["grad"]
        assert got["steps"] == len(grads) == 4
        for key, col in (("norm", 0), ("mean_abs", 1), ("std", 2)):
            assert got[key] == pytest.approx(np.mean([s[col] for s in per_step]), rel=1e-9)
            assert got[f"last_{key}"] == pytest.approx(per_step[-1][col], rel=1e-9)
        # update ratios: geometric mean over the sampled steps, and the last one
        col = np.array([r[name] for r in ratios])
        assert entry["update_ratio"] == pytest.approx(float(np.exp(np.log(col).mean())),
                                                      rel=1e-5)
        assert entry["update_ratio_last"] == pytest.approx(col[-1], rel=1e-5)
    for name, kind in (("conv1", "linear"), ("act1", "tanh"), ("fc", "linear")):
        a, got = _np(acts[name]), snap["activations"][name]
        assert got["kind"] == kind
        assert got["mean"] == pytest.approx(a.mean(), rel=1e-5, abs=1e-7)
        assert got["std"] == pytest.approx(a.std(ddof=1), rel=1e-5)
        assert got["zero_frac"] == pytest.approx(float((a == 0).mean()))
        if kind == "tanh":
            assert got["saturated_frac"] == pytest.approx(float((np.abs(a) > 0.97).mean()))
        units = acts[name].reshape(acts[name].shape[0], -1).double()
        want_signal = float(units.var(dim=0).mean().sqrt())
        assert got["signal_std"] == pytest.approx(want_signal, rel=1e-5)
        assert got["nan_count"] == got["inf_count"] == 0


def test_large_tensors_sampled_values_float32_paths_and_direct_gradients():
    """Above VALUE_LIMIT values are sampled but statistics and histogram cover every value."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(1100, 1000), nn.ReLU(), nn.Linear(1000, 3))
    assert sum(p.numel() for p in model.parameters()) > rec_mod.DEFER_LIMIT
    x = torch.randn(16, 1100)
    rec = _recorder(model, x[:8])
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads, ratios = _train_steps(model, rec, x, steps=3, update_at=(1,), lr=0.01)
    tensors, snap = rec.compute(rec.capture(1.0, 3))
    big = model[0].weight
    assert big.numel() > rec_mod.VALUE_LIMIT
    assert tensors["values/0.weight"].numel() == rec_mod.SAMPLE_SIZE
    entry = snap["params"]["0.weight"]
    x64 = _np(big)
    np.testing.assert_array_equal(entry["percentiles"], np.percentile(x64, stats.PERCENTILES))
    np.testing.assert_array_equal(tensors["hist/0.weight"].numpy(),
                                  np.histogram(x64, rec.edges["0.weight"])[0])
    assert entry["mean"] == pytest.approx(x64.mean(), rel=1e-9)
    assert entry["std"] == pytest.approx(x64.std(ddof=1), rel=1e-9)
    # float32 Lanczos: a lower bound close to the largest singular value
    top = float(torch.linalg.svdvals(big.detach().double())[0])
    assert entry["spectral_norm"] <= top * (1 + 1e-6)
    assert entry["spectral_norm"] == pytest.approx(top, rel=1e-3)
    w0_64 = _np(w0["0.weight"])
    want_drift = np.linalg.norm(x64 - w0_64) / np.linalg.norm(w0_64)
    assert entry["drift"] == pytest.approx(want_drift, rel=1e-5)
    for name in snap["params"]:
        g = [(np.linalg.norm(_np(s[name])), np.abs(_np(s[name])).mean(),
              _np(s[name]).std(ddof=1)) for s in grads]
        got = snap["params"][name]["grad"]
        assert got["norm"] == pytest.approx(np.mean([r[0] for r in g]), rel=1e-5)
        assert got["last_mean_abs"] == pytest.approx(g[-1][1], rel=1e-5)
        assert got["last_std"] == pytest.approx(g[-1][2], rel=1e-4)
        assert snap["params"][name]["update_ratio"] == pytest.approx(ratios[0][name], rel=1e-5)


def test_nan_inf_and_all_equal_weights_are_counted_exactly():
    model = TinyConv()
    with torch.no_grad():
        model.conv1.weight.fill_(0.25)       # all equal
        model.conv1.bias.zero_()             # all zero
        w = model.fc.weight
        w.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
        w[0, :3] = float("nan")
        w[1, :2] = float("inf")
        w[2, 0] = float("-inf")
    rec = _recorder(model, torch.randn(4, 3, 8, 8))
    tensors, snap = rec.snapshot(0.0, 0)
    for name, p in model.named_parameters():
        _check_param(snap["params"][name], p, p, tensors[f"hist/{name}"].numpy(),
                     rec.edges[name])
    conv = snap["params"]["conv1.weight"]
    assert conv["std"] == 0.0 and conv["percentiles"] == [0.25] * 9
    assert snap["params"]["conv1.bias"]["zero_frac"] == 1.0
    fc = snap["params"]["fc.weight"]
    assert (fc["nan_count"], fc["inf_count"]) == (3, 3)
    assert fc["hist_outside"]["nan"] == 3 and fc["hist_outside"]["posinf"] == 2
    assert math.isnan(fc["drift"])  # non-finite weights: NaN, never a number
    assert snap["activations"]["fc"]["nan_count"] > 0  # the probe sees them too


def test_the_probe_runs_on_a_copy_and_leaves_the_model_alone():
    model = TinyConv()
    x = torch.randn(4, 3, 8, 8)
    rec = _recorder(model, x)
    calls = []
    model.act1.register_forward_hook(lambda *_: calls.append(1))
    moment = rec.capture(0.0, 0)
    with torch.no_grad():
        model.fc.weight.add_(1.0)  # training goes on after the capture
    _, snap = rec.compute(moment)
    assert not calls and model.training
    _, now = rec.snapshot(0.0, 0)
    assert snap["params"]["fc.weight"]["mean"] == pytest.approx(
        now["params"]["fc.weight"]["mean"] - 1.0)
    assert snap["activations"]["fc"]["mean"] != now["activations"]["fc"]["mean"]


class _Writer:
    """A RunWriter stand-in that remembers what it was given, in order, and on which thread."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.items: list = []
        self.threads: set[str] = set()
        self.fail_at = fail_at

    def add_snapshot(self, tensors, stats_):
        if self.fail_at is not None and len(self.items) == self.fail_at:
            raise OSError("disk full")
        self.threads.add(threading.current_thread().name)
        self.items.append(("snapshot", stats_["epoch"], tensors, stats_))

    def note(self, text):
        self.items.append(("note", text))


def _fresh(seed: int = 0):
    torch.manual_seed(seed)
    model = TinyConv()
    return model, _recorder(model, torch.randn(4, 3, 8, 8, generator=torch.Generator()
                                                .manual_seed(1)))


def test_background_queue_writes_the_same_snapshots_in_order(monkeypatch):
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    _, small = _fresh()
    assert not SnapshotQueue(_Writer(), small).background  # tiny: on the training thread
    monkeypatch.setattr(rec_mod, "INLINE_BELOW", 0)  # TinyConv in the background too
    try:
        results = {}
        for background in (False, True):
            model, rec = _fresh()
            writer = _Writer()
            q = SnapshotQueue(writer, rec, background=background)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(3):
                (model(torch.ones(2, 3, 8, 8)) ** 2).mean().backward()
                rec.after_backward()
                opt.step()
                q.snapshot(float(epoch), epoch)
                q.call(writer.note, f"after {epoch}")
            q.close()
            results[background] = writer
        sync, bg = results[False], results[True]
        assert "nnviz-snapshots" in bg.threads and "nnviz-snapshots" not in sync.threads
        assert [i[:2] for i in bg.items] == [i[:2] for i in sync.items] == [
            ("snapshot", 0.0), ("note", "after 0"), ("snapshot", 1.0), ("note", "after 1"),
            ("snapshot", 2.0), ("note", "after 2")]
        for a, b in zip(sync.items, bg.items, strict=True):
            if a[0] == "snapshot":
                assert a[3] == b[3]
                for key in a[2]:
                    assert torch.equal(a[2][key], b[2][key])
    finally:
        torch.set_num_threads(saved)


def test_an_error_in_the_worker_reaches_the_training_thread(monkeypatch):
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(rec_mod, "INLINE_BELOW", 0)
    try:
        _, rec = _fresh()
        q = SnapshotQueue(_Writer(fail_at=1), rec)
        q.snapshot(0.0, 0)
        q.snapshot(1.0, 1)
        with pytest.raises(OSError, match="disk full"):
            q.close()
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("steps", [1, 2, 5, 16, 17, 25, 157, 1000])
def test_sampled_steps(steps):
    grads, updates = sample_steps(steps, [steps])
    assert grads <= set(range(steps)) and updates <= set(range(steps))
    assert len(grads) == min(steps, rec_mod.GRAD_SAMPLES)
    assert len(updates) == min(steps, rec_mod.UPDATE_SAMPLES)
    assert 0 in grads and steps - 1 in grads and steps - 1 in updates
    mid = sample_steps(steps, [steps // 2, steps])[0]
    if steps >= 2:
        assert steps // 2 - 1 in mid  # the step before a mid-epoch snapshot is measured


def test_training_records_sampled_steps_per_snapshot(store):
    from nnviz.engine.training import train

    cfg = RunConfig(model="mlp", dataset="moons", n_samples=1500, batch_size=16, epochs=2,
                    depth=2, width=8, device="cpu", snapshots_per_epoch=2)
    run = store.load(train(cfg, store).run_id)
    spe = run.record.steps_per_epoch
    grads, _ = sample_steps(spe, {round(spe / 2), spe})
    first_half = sum(1 for s in grads if s < round(spe / 2))
    snap = run.snapshot(1).record.params["fc1.weight"]
    assert snap.grad.steps == first_half
    assert run.snapshot(2).record.params["fc1.weight"].grad.steps == \
        len(grads) - first_half


def test_probe_measured_inside_the_validation_pass_equals_a_probe_pass():
    """The trainer measures the probe (the validation set's head) in its validation pass; the
    snapshot's activations equal a probe pass of their own on the same weights."""
    model, rec = _fresh(4)
    x_val = torch.cat([rec.probe_x, torch.randn(30, 3, 8, 8)])
    own = rec.probe()
    model.eval()
    with rec.probe_within(len(x_val)):
        model(x_val[:len(x_val)])  # the first (here only) batch of the pass
        model(x_val[:5])           # later batches are not measured
    model.train()
    tensors, snap = rec.compute(rec.capture(1.0, 1))
    assert set(snap["activations"]) == set(own)
    for name, want in own.items():
        got = snap["activations"][name]
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (name, key)
            else:
                assert got[key] == value, (name, key)
    # a pass that does not start with a batch of the stated size leaves the probe to capture
    with rec.probe_within(len(x_val)):
        model(x_val[:7])
    assert rec._probed is None


class _Odd(nn.Module):
    """Parameters of every awkward size: a matrix, a 1 x n row, a 0-D scalar, a single value,
    an empty one and one that gets no gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 7)
        self.row = nn.Linear(7, 1)
        self.scale = nn.Parameter(torch.tensor(1.5))
        self.one = nn.Parameter(torch.tensor([0.25]))
        self.empty = nn.Parameter(torch.zeros(0))
        self.unused = nn.Parameter(torch.randn(3, generator=torch.Generator().manual_seed(8)))

    def forward(self, x):
        return self.row(torch.tanh(self.fc(x))) * self.scale + self.one + self.empty.sum()


def _same_entry(a, b, where):
    assert list(a) == list(b), where
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            _same_entry(x, y, f"{where}.{key}")
        elif isinstance(x, float) and isinstance(y, float) and not (math.isnan(x) and
                                                                    math.isnan(y)):
            assert x == pytest.approx(y, rel=1e-12, abs=1e-300), (where, key)
        elif not (isinstance(x, float) and math.isnan(x)):
            assert x == y, (where, key)


def test_the_flat_snapshot_equals_one_weight_entry_per_parameter():
    """Small float32 models take one vectorised pass for every parameter; it gives what
    weight_entry gives parameter by parameter (NaN / Inf and empty ones go through it)."""
    torch.manual_seed(2)
    model = _Odd()
    x = torch.randn(9, 5)
    rec = _recorder(model, x[:4])
    assert rec._flat_stats
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for poison in (False, True):
        for _ in range(3):
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            rec.after_backward()
            rec.before_step()
            opt.step()
            rec.after_step()
        if poison:
            with torch.no_grad():
                model.fc.weight[0, 0] = float("nan")
                model.row.weight[0, 1] = float("inf")
        moment = rec.capture(float(poison), 3)
        flat_tensors, flat_snap = rec.compute(moment)
        rec._flat_stats = False
        try:
            one_tensors, one_snap = rec.compute(moment)
        finally:
            rec._flat_stats = True
        for name in rec.names:
            _same_entry(flat_snap["params"][name], one_snap["params"][name], name)
            for kind in ("values", "hist"):
                np.testing.assert_array_equal(flat_tensors[f"{kind}/{name}"].numpy(),
                                              one_tensors[f"{kind}/{name}"].numpy())  # NaN too
        assert list(flat_tensors) == list(one_tensors)
        unused = flat_snap["params"]["unused"]["grad"]
        assert unused["norm"] == unused["mean_abs"] == unused["std"] == 0.0  # no gradient: 0
        assert flat_snap["params"]["empty"]["numel"] == 0
        assert math.isnan(flat_snap["params"]["fc.weight"]["drift"]) == poison


class _OneWeight(nn.Module):
    """One parameter only (a flat copy of one tensor must still be a copy, not a view)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 3 * 8 * 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w.t()


@pytest.mark.parametrize("make", [TinyConv, _OneWeight])
def test_flat_copies_past_the_planned_samples_are_exact_and_never_alias(make):
    """More sampled steps than planned, an unfinished before_step, three snapshots in a row,
    gradients zeroed in place between steps (a copy that aliased them would read zeros) and a
    one-parameter model: every figure still numpy's."""
    torch.manual_seed(5)
    model = make()
    x = torch.randn(6, 3, 8, 8)
    rec = _recorder(model, x[:4])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for snapshot in range(3):
        n = rec_mod.GRAD_SAMPLES + 9
        grads, ratios = [], []
        for i in range(n):
            opt.zero_grad(set_to_none=False)  # in place: the recorder's copies must be copies
            (model(x) ** 2).mean().backward()
            rec.after_backward()
            grads.append({k: p.grad.detach().clone() for k, p in model.named_parameters()})
            before = {k: p.detach().clone() for k, p in model.named_parameters()}
            rec.before_step()
            if i == 3:
                rec.before_step()  # called twice: the second one counts
            opt.step()
            if i % 2 == 0:
                rec.after_step()
                ratios.append({k: np.linalg.norm(_np(p) - _np(before[k])) /
                               np.linalg.norm(_np(before[k]))
                               for k, p in model.named_parameters()})
        _, snap = rec.compute(rec.capture(float(snapshot), n))
        for name in rec.names:
            got = snap["params"][name]
            per_step = [(np.linalg.norm(_np(g[name])), np.abs(_np(g[name])).mean(),
                         _np(g[name]).std(ddof=1)) for g in grads]
            assert got["grad"]["steps"] == n
            for key, col in (("norm", 0), ("mean_abs", 1), ("std", 2)):
                assert got["grad"][key] == pytest.approx(np.mean([s[col] for s in per_step]),
                                                         rel=1e-9)
                assert got["grad"][f"last_{key}"] == pytest.approx(per_step[-1][col], rel=1e-9)
            col = np.array([r[name] for r in ratios])
            assert got["update_ratio"] == pytest.approx(float(np.exp(np.log(col).mean())),
                                                        rel=1e-6)
            assert got["update_ratio_last"] == pytest.approx(col[-1], rel=1e-6)


def test_probe_batched_layer_stats_match_the_per_layer_path_and_numpy():
    """Small layer outputs are measured together after the forward pass (one vectorised pass):
    the same numbers as ``activation_stats`` + ``signal_std`` on each output as it was when
    its layer returned (an in-place ReLU after it must not change it), large outputs and
    non-finite ones by the per-layer path."""
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(3, 40), nn.ReLU(inplace=True), nn.Linear(40, 1),
                          nn.Tanh(), nn.Linear(1, 9000), nn.Sigmoid())
    rec = _recorder(model, torch.randn(8, 3))
    seen = {}
    hooks = [m.register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone()))
        for name, m in model.named_modules() if name]
    got = rec.probe()
    for h in hooks:
        h.remove()
    assert seen["4"].numel() > stats.MANY_MAX  # its (8, 9000) output: the per-layer path
    assert list(got) == [layer["name"] for layer in rec.layers]  # forward order
    for layer in rec.layers:
        name, kind = layer["name"], layer["kind"]
        a = seen[name]
        want = {"kind": kind, **stats.activation_stats(a, kind),
                "signal_std": rec_mod.signal_std(a)}
        assert set(got[name]) == set(want)
        for key, v in want.items():
            if key in ("mean", "std", "signal_std"):
                assert got[name][key] == pytest.approx(v, rel=1e-6, abs=1e-12), (name, key)
            else:
                assert got[name][key] == v, (name, key)
        x = a.double().numpy()
        assert got[name]["mean"] == pytest.approx(x.mean(), rel=1e-9, abs=1e-12)
        units = x.reshape(x.shape[0], -1)
        if units.shape[1] <= rec_mod.SIGNAL_UNITS:
            assert got[name]["signal_std"] == pytest.approx(
                math.sqrt(units.var(axis=0, ddof=1).mean()), rel=1e-9)
    assert seen["0"].min() < 0 and got["0"]["mean"] < got["1"]["mean"]  # before the ReLU


def test_signal_stds_batched_match_signal_std():
    g = torch.Generator().manual_seed(3)
    acts = [torch.randn(16, 5, generator=g), torch.randn(16, 3, 4, 4, generator=g) * 1e-3,
            torch.full((16, 7), 2.5), torch.randn(16, 9000, generator=g),
            torch.randn(1, 6, generator=g), torch.randn(5, generator=g),
            torch.randn(16, 5, generator=g).double() * 1e12,
            torch.randn(4, 3, generator=g).half()]
    got = rec_mod._signal_stds(acts)
    for a, v in zip(acts, got, strict=True):
        want = rec_mod.signal_std(a)
        if want is None:
            assert v is None
        else:
            assert v == pytest.approx(want, rel=1e-5, abs=1e-300)
    assert got[2] == 0.0 and got[4] is None


def test_layer_stats_in_chunks_match_one_by_one():
    """More small outputs than one pass takes (stats.MANY_TOTAL) are measured in several."""
    g = torch.Generator().manual_seed(11)
    kept = {f"l{i}": ("relu" if i % 2 else "linear",
                      torch.relu(torch.randn(64, 64, generator=g)) if i % 2 else
                      torch.randn(64, 64, generator=g)) for i in range(20)}
    assert sum(a.numel() for _, a in kept.values()) > 2 * stats.MANY_TOTAL
    got = rec_mod._layer_stats(kept)
    assert list(got) == list(kept)
    for name, (kind, a) in kept.items():
        want = {"kind": kind, **stats.activation_stats(a, kind),
                "signal_std": rec_mod.signal_std(a)}
        for key, v in want.items():
            assert got[name][key] == (pytest.approx(v, rel=1e-6) if isinstance(v, float)
                                      else v), (name, key)
