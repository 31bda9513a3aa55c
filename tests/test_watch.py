"""nnviz.watch on real models built here (ResNet-18, a TransformerEncoder, an Embedding + LSTM
model), with torch as the reference for every recorded number."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import nnviz
from nnviz.analysis.diagnostics import diagnose
from nnviz.cli.main import main as cli_main
from nnviz.engine.watch import NO_GRADIENT, SamplingBudget
from nnviz.errors import ConfigError
from nnviz.store.runs import RunStore
from tests.fixtures.resnet import resnet18


class SeqModel(nn.Module):
    """Embedding(40, 16) -> LSTM(16, 24) -> Linear(24, 3) on the last step, plus a bare scale
    parameter, a frozen Linear and an unused Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(40, 16)
        self.lstm = nn.LSTM(16, 24, batch_first=True)
        self.head = nn.Linear(24, 3)
        self.scale = nn.Parameter(torch.ones(1))
        self.frozen = nn.Linear(24, 24)
        self.frozen.requires_grad_(False)
        self.unused = nn.Linear(5, 5)

    def forward(self, x):  # (B, T) token ids
        out, _ = self.lstm(self.emb(x))
        return self.head(self.frozen(out[:, -1]) * self.scale)


class TinyTransformer(nn.Module):
    """Embedding -> 2-layer nn.TransformerEncoder (d=32, 4 heads) -> mean -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(30, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 4)

    def forward(self, x):  # (B, T)
        return self.head(self.enc(self.emb(x)).mean(1))


def hooks_left(model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Every hook nnviz could have left: on parameters, the optimizer and the modules."""
    n = sum(len(p._post_accumulate_grad_hooks or {}) for p in model.parameters())
    n += len(opt._optimizer_step_pre_hooks) + len(opt._optimizer_step_post_hooks)
    return n + sum(len(m._forward_hooks) for m in model.modules())


def train_steps(model, opt, x, y, steps, grads=None):
    """`steps` optimizer steps; `grads` (if given) gets each step's gradients, as torch has them."""
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        if grads is not None:
            grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters()
                          if p.grad is not None})
        opt.step()


def keep(store: dict, key: str, out: torch.Tensor) -> None:
    """A forward hook's body: remember the first output (returns None: output unchanged)."""
    store.setdefault(key, out.detach().double())


def close(a, b, rel=1e-9):
    return a == pytest.approx(b, rel=rel, abs=1e-12)


def test_resnet18_statistics_equal_torch(runs_dir):
    torch.manual_seed(0)
    model = resnet18()  # 1000 classes: torchvision's 11,689,512 parameters
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 1000, (4,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    reference = {}
    handle = model.layer1[0].conv1.register_forward_hook(
        lambda _m, _i, out: keep(reference, "out", out))
    rec = nnviz.watch(model, opt, probe=x[:2], name="resnet")
    handle.remove()
    grads: list = []
    train_steps(model, opt, x, y, 1, grads)
    rec.snapshot(epoch=1, metrics={"train_loss": 1.5})
    rec.close()
    assert hooks_left(model, opt) == 0
    run = RunStore(runs_dir).load(rec.run_id)
    assert run.status == "completed" and run.n_snapshots == 2
    assert len(run.record.params) == 62
    assert run.record.source.extra["n_params"] == 11_689_512
    assert run.record.source.kind == "watch" and run.record.history[0].train_loss == 1.5
    s = run.snapshot(1).record.params
    for name, p in model.named_parameters():
        w = p.detach().double()
        assert close(s[name].mean, float(w.mean())), name
        assert close(s[name].std, float(w.std()), 1e-7), name
        assert close(s[name].l2, float(torch.linalg.vector_norm(w)), 1e-7), name
        # per-step gradient reductions run in the gradient's own float32, as torch's do (their
        # error against float64 is ~4e-5 on a 512x512x3x3 kernel): torch's float32 is the reference
        g = grads[0][name]
        assert close(s[name].grad.norm, float(torch.linalg.vector_norm(g)), 1e-6), name
        # mean |g|: a float32 cascade sum (~1e-7 from float64 on 2.4M values)
        assert close(s[name].grad.mean_abs, float(g.double().abs().mean()), 1e-6), name
        assert s[name].grad.std == pytest.approx(float(g.double().std()), rel=1e-3)
        delta = float(torch.linalg.vector_norm(w - w0[name].double()))
        base = float(torch.linalg.vector_norm(w0[name].double()))
        if base == 0:  # BatchNorm biases start at 0: no finite ratio to a zero norm
            assert s[name].drift == (math.inf if delta else None), name
            continue
        ref = delta / base
        assert close(s[name].drift, ref, 1e-6), name
        assert close(s[name].update_ratio, ref, 1e-6), name  # one step: update == drift
    # activations: the probe's forward (eval mode) seen by torch's own hook on the same layer
    act = run.snapshot(0).record.activations["layer1.0.conv1"]
    assert close(act.std, float(reference["out"].std()), 1e-7)
    assert close(act.mean, float(reference["out"].mean()), 1e-7)
    assert len(run.snapshot(0).record.activations) == len(run.record.layers) > 40
    # PyTorch's default for the Linear head; torchvision's own conv init is not PyTorch's
    fc = run.record.params["fc.weight"].theory
    assert close(fc.std, 1 / math.sqrt(3 * 512))
    assert run.record.params["bn1.weight"].theory.kind == "point"


def test_probe_activations_equal_a_torch_forward_hook(runs_dir):
    torch.manual_seed(1)
    model = TinyTransformer()
    x = torch.randint(0, 30, (8, 6))
    seen = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda _m, _i, o, n=n: keep(seen, n, o[0] if isinstance(o, tuple) else o))
        for n in ("emb", "enc.layers.0.linear1", "enc.layers.1.self_attn", "head")]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    model.train()
    with nnviz.watch(model, probe=x, runs_dir=runs_dir) as rec:
        pass
    assert model.training
    acts = RunStore(runs_dir).load(rec.run_id).snapshot(0).record.activations
    for name, out in seen.items():
        a = out.double()
        assert close(acts[name].mean, float(a.mean()), 1e-7), name
        assert close(acts[name].std, float(a.std()), 1e-7), name
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


def test_theory_follows_pytorch_defaults_per_layer_type(runs_dir):
    torch.manual_seed(2)
    model = nn.ModuleDict({
        "seq": SeqModel(), "tf": TinyTransformer(), "c1": nn.Conv1d(3, 5, 4),
        "c3": nn.Conv3d(2, 3, 3), "gn": nn.GroupNorm(2, 4), "ln": nn.LayerNorm(6),
    })
    with nnviz.watch(model, runs_dir=runs_dir) as rec:
        pass
    params = RunStore(runs_dir).load(rec.run_id).record.params
    t = {n: i.theory for n, i in params.items()}
    assert close(t["c1.weight"].std, 1 / math.sqrt(3 * 3 * 4))
    assert close(t["c3.bias"].high, 1 / math.sqrt(2 * 27))
    assert t["seq.emb.weight"].kind == "normal" and t["seq.emb.weight"].std == 1.0
    assert close(t["seq.lstm.weight_hh_l0"].high, 1 / math.sqrt(24))
    in_proj = t["tf.enc.layers.0.self_attn.in_proj_weight"]
    assert close(in_proj.high, math.sqrt(6 / (32 + 96)))
    assert t["tf.enc.layers.0.self_attn.out_proj.bias"].kind == "point"
    out_proj = params["tf.enc.layers.0.self_attn.out_proj.weight"]
    assert out_proj.module_type == "Linear"  # a Linear subclass: counted as a Linear layer
    assert out_proj.extra["module_class"] == "NonDynamicallyQuantizableLinear"
    assert t["tf.enc.layers.0.self_attn.in_proj_bias"].kind == "point"
    assert t["gn.weight"].mean == 1.0 and t["ln.bias"].mean == 0.0
    assert t["seq.scale"].kind == "unknown"  # a bare nn.Parameter
    assert params["seq.scale"].extra["theory_source"] == "unknown"
    # the theory is right: freshly built layers' measured std is close to it
    snap = RunStore(runs_dir).load(rec.run_id).snapshot(0).record.params
    for name in ("tf.enc.layers.0.self_attn.in_proj_weight", "seq.emb.weight",
                 "seq.lstm.weight_ih_l0", "tf.enc.layers.1.linear1.weight"):
        assert snap[name].std == pytest.approx(t[name].std, rel=0.1), name


def test_no_gradient_is_recorded_as_such_never_zeros(runs_dir):
    torch.manual_seed(3)
    model = SeqModel()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x, y = torch.randint(0, 40, (8, 5)), torch.randint(0, 3, (8,))
    with nnviz.watch(model, opt, probe=x, runs_dir=runs_dir) as rec:
        # zero_grad(set_to_none=False) leaves zero tensors in .grad: still "no gradient"
        for _ in range(3):
            opt.zero_grad(set_to_none=False)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        rec.snapshot(epoch=1)
    s = RunStore(runs_dir).load(rec.run_id).snapshot(1).record.params
    for name in ("frozen.weight", "unused.weight", "unused.bias"):
        assert s[name].grad is None and s[name].extra["grad_status"] == NO_GRADIENT, name
        assert s[name].update_ratio is None  # left out of the JSON, not 0
    assert "frozen" in s["frozen.weight"].extra["grad_reason"]
    assert s["lstm.weight_hh_l0"].grad.steps == 3
    assert s["scale"].grad.norm > 0


def test_hooks_are_removed_after_an_exception(runs_dir):
    model = SeqModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randint(0, 40, (4, 5))
    with pytest.raises(RuntimeError, match="boom"):
        with nnviz.watch(model, opt, probe=x, runs_dir=runs_dir) as rec:
            raise RuntimeError("boom")
    assert hooks_left(model, opt) == 0
    run = RunStore(runs_dir).load(rec.run_id)
    assert run.status == "failed" and "boom" in run.record.status_detail
    with pytest.raises(ConfigError, match="closed"):
        rec.snapshot(epoch=1)

    class Broken(nn.Module):
        """A Linear whose forward fails on the probe: the probe's hooks must still go."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            raise ValueError("bad probe")

    broken = Broken()
    with pytest.raises(ValueError, match="bad probe"):
        nnviz.watch(broken, probe=torch.zeros(1, 3), runs_dir=runs_dir)
    assert sum(len(m._forward_hooks) for m in broken.modules()) == 0
    assert all(not p._post_accumulate_grad_hooks for p in broken.parameters())


def test_params_by_pattern_or_predicate(runs_dir):
    model = SeqModel()
    with nnviz.watch(model, params="lstm.*", runs_dir=runs_dir) as rec:
        pass
    assert set(RunStore(runs_dir).load(rec.run_id).record.params) == {
        n for n, _ in model.named_parameters() if n.startswith("lstm.")}
    with nnviz.watch(model, params=lambda n, p: p.ndim == 1, runs_dir=runs_dir) as rec:
        pass
    params = RunStore(runs_dir).load(rec.run_id).record.params
    assert all(len(i.shape) == 1 for i in params.values())
    with pytest.raises(ConfigError, match="selects no parameter"):
        nnviz.watch(model, params="nothing.*", runs_dir=runs_dir)
    with pytest.raises(ConfigError, match="every="):
        nnviz.watch(model, every=0, runs_dir=runs_dir)
    with pytest.raises(ConfigError, match="pass the optimizer"):
        nnviz.watch(model, every=5, runs_dir=runs_dir)
    with pytest.raises(ConfigError, match="nn.Module"):
        nnviz.watch("not a model", runs_dir=runs_dir)


def test_wrapped_models_record_plain_names_and_every_n_steps(runs_dir):
    torch.manual_seed(4)
    inner = TinyTransformer()
    plain = {n for n, _ in inner.named_parameters()}
    x, y = torch.randint(0, 30, (8, 6)), torch.randint(0, 4, (8,))
    for wrapped, label in ((nn.DataParallel(inner), "DataParallel"),
                           (torch.compile(inner, backend="eager"), "torch.compile")):
        opt = torch.optim.SGD(wrapped.parameters(), lr=0.05)
        with nnviz.watch(wrapped, opt, every=2, runs_dir=runs_dir) as rec:
            train_steps(wrapped, opt, x, y, 4)
        run = RunStore(runs_dir).load(rec.run_id)
        assert set(run.record.params) == plain and run.record.source.extra["wrapper"] == label
        assert [e.step for e in run.entries] == [0, 2, 4]
        assert run.snapshot(2).record.params["head.weight"].grad.steps == 2


def test_mixed_precision_gradients_are_unscaled(runs_dir):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = torch.randn(16, 8), torch.randint(0, 2, (16,))
    unscaled = {}
    with nnviz.watch(model, opt, runs_dir=runs_dir) as rec:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        unscaled = {n: float(torch.linalg.vector_norm(p.grad.double()))
                    for n, p in model.named_parameters()}
        scaler.step(opt)
        scaler.update()
        rec.snapshot(epoch=1)
    s = RunStore(runs_dir).load(rec.run_id).snapshot(1).record.params
    for name, ref in unscaled.items():
        assert close(s[name].grad.norm, ref, 1e-6), name


def test_without_optimizer_each_backward_counts(runs_dir):
    model = nn.Linear(4, 2)
    x = torch.randn(8, 4)
    with nnviz.watch(model, runs_dir=runs_dir) as rec:
        norms = []
        for _ in range(2):
            model.zero_grad()
            model(x).pow(2).sum().backward()
            norms.append(float(torch.linalg.vector_norm(model.weight.grad.double())))
        rec.snapshot(epoch=1)
    g = RunStore(runs_dir).load(rec.run_id).snapshot(1).record.params["weight"].grad
    assert g.steps == 2 and close(g.norm, sum(norms) / 2, 1e-6)
    assert close(g.last_norm, norms[-1], 1e-6)



def test_a_step_counts_once_and_a_backward_before_a_snapshot_counts_in_the_next(runs_dir):
    """grad.steps counts optimizer steps a parameter got a gradient for: three accumulated
    backwards feed one step; a backward whose step comes after the snapshot is the next
    interval's; a parameter used only in some steps counts only those."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    side = nn.Linear(4, 2)  # gets a gradient only in the steps that use it
    opt = torch.optim.SGD([*model.parameters(), *side.parameters()], lr=0.01)
    both = nn.ModuleDict({"model": model, "side": side})
    x = torch.randn(8, 4)
    with nnviz.watch(both, opt, runs_dir=runs_dir) as rec:
        rec.sampling = SamplingBudget(budget=1e9)  # no clock between samples: exact steps
        for step in range(4):
            opt.zero_grad()
            for _ in range(3):  # gradient accumulation: three backwards, one step
                out = model(x) + (side(x) if step % 2 == 0 else 0.0)
                out.pow(2).mean().backward()
            opt.step()
        opt.zero_grad()
        model(x).pow(2).mean().backward()  # this step is taken after the snapshot
        rec.snapshot(epoch=1)
        opt.step()
        rec.snapshot(epoch=2)
    run = RunStore(runs_dir).load(rec.run_id)
    first, second = run.snapshot(1).record.params, run.snapshot(2).record.params
    assert first["model.0.weight"].grad.steps == 4 and first["side.weight"].grad.steps == 2
    assert second["model.2.bias"].grad.steps == 1
    assert second["side.weight"].grad is None  # no gradient since the last snapshot
    assert second["side.weight"].extra["grad_status"] == NO_GRADIENT
    assert run.snapshot(2).record.extra["sampling"]["steps"] == 1

def test_snapshot_arguments_are_checked(runs_dir):
    rec = nnviz.watch(nn.Linear(2, 2), runs_dir=runs_dir)
    with pytest.raises(ConfigError, match="epoch \\+ 1"):
        rec.snapshot(epoch=0)
    with pytest.raises(ConfigError, match="not a number"):
        rec.snapshot(epoch=1, metrics={"val_loss": "low"})
    assert rec.snapshot(metrics={"val_loss": torch.tensor(0.5)}) == 1  # default: epoch 1
    rec.close()
    rec.close()  # idempotent


def test_watched_run_works_with_diagnostics_and_the_cli(runs_dir, capsys):
    torch.manual_seed(6)
    model = SeqModel()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randint(0, 40, (16, 5)), torch.randint(0, 3, (16,))
    with nnviz.watch(model, opt, probe=x[:8], runs_dir=runs_dir) as rec:
        for epoch in range(1, 3):
            train_steps(model, opt, x, y, 3)
            rec.snapshot(epoch=epoch, metrics={"train_loss": 1.0 / epoch})
    run = RunStore(runs_dir).load(rec.run_id)
    flags = diagnose(run)
    assert all(f.code for f in flags)
    # a frozen layer is not reported as a vanishing gradient
    assert not any("frozen.weight" in str(getattr(f, "layers", "")) and "vanish" in f.code
                   for f in flags)
    assert not any(f.code == "non_finite" for f in flags)  # no val_loss logged is no flag
    with nnviz.watch(model, runs_dir=runs_dir) as bad:
        bad.snapshot(epoch=1, metrics={"train_loss": math.nan})
    assert any(f.code == "non_finite" for f in diagnose(RunStore(runs_dir).load(bad.run_id)))
    assert cli_main(["--runs-dir", str(runs_dir), "show", rec.run_id]) == 0
    assert "lstm.weight_hh_l0" in capsys.readouterr().out


class ManualClock:
    """A clock the test moves by hand (SamplingBudget's timings made exact)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(budget: SamplingBudget, clock: ManualClock, steps: int, step_s: float,
          sample_s: float) -> list[int]:
    """`steps` steps of `step_s` loop time each; a sampled one costs `sample_s` more."""
    sampled = []
    for k in range(1, steps + 1):
        clock.now += step_s
        if budget.step_begins(k):
            sampled.append(k)
            clock.now += sample_s / 2
            budget.spent(sample_s / 2)
            clock.now += sample_s / 2
            budget.sampled(sample_s / 2)
    budget.interval_ends(steps)
    return sampled


def test_sampling_keeps_the_measured_work_within_its_budget():
    clock = ManualClock()
    b = SamplingBudget(budget=0.01, clock=clock)
    first = drive(b, clock, 200, step_s=0.1, sample_s=0.01)
    # step 1 sampled before any loop time is known, then every 0.01 / (0.01 * 0.1) = 10 steps
    # (the UPDATE_SAMPLES floor doubling after every 8 samples: 2, 4, 8, ... below 10 here)
    assert first[:4] == [1, 2, 12, 22] and np.all(np.diff(first[1:]) == 10)
    # an interval as long as the last: at most UPDATE_SAMPLES (200 // 8 = 25 apart)
    assert drive(b, clock, 200, 0.1, 0.01) == list(range(25, 201, 25))
    record = b.record(200)
    assert record["budget"] == 0.01 and record["sample_ms"] == 10.0 and record["step_ms"] == 100.0
    # a costlier sample (the median of the last few follows it): fewer samples, the work still
    # 1 % of the loop's time
    for _ in range(3):
        last = drive(b, clock, 200, 0.1, 0.05)
    assert last == [50, 100, 150, 200]
    # however costly: MIN_SAMPLES per interval, so every snapshot has gradients and updates
    for _ in range(3):
        last = drive(b, clock, 200, 0.1, 10.0)
    assert last == [100, 200]


def test_update_ratios_grads_and_drift_of_sampled_steps_equal_torch(runs_dir):
    torch.manual_seed(6)
    model = TinyTransformer()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randint(0, 30, (8, 6)), torch.randint(0, 4, (8,))
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    rec = nnviz.watch(model, opt, runs_dir=runs_dir)
    rec.sampling = SamplingBudget(budget=1e9)  # no budget: the UPDATE_SAMPLES schedule only
    ratios, norms = [], []
    for _ in range(12):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        grads = []
        train_steps(model, opt, x, y, 1, grads)
        ratios.append({n: float(torch.linalg.vector_norm((p.detach() - before[n]).double()))
                       / (float(torch.linalg.vector_norm(before[n].double())) or math.nan)
                       for n, p in model.named_parameters()})  # NaN: a bias starting at 0
        norms.append({n: float(torch.linalg.vector_norm(g)) for n, g in grads[0].items()})
    rec.snapshot(epoch=1)
    rec.close()
    sampled = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12]  # every step, then the stride doubles
    snap = RunStore(runs_dir).load(rec.run_id).snapshot(1).record
    assert snap.extra["sampling"]["steps"] == 12
    assert snap.extra["sampling"]["sampled_steps"] == len(sampled)
    for name, p in model.named_parameters():
        s = snap.params[name]
        want = [ratios[k - 1][name] for k in sampled]
        assert s.extra["update_samples"] == len(sampled)
        assert s.grad.steps == 12 and s.grad.extra["sampled_steps"] == len(sampled)
        assert close(s.grad.norm, np.mean([norms[k - 1][name] for k in sampled]), 1e-6), name
        if float(w0[name].abs().max()) == 0:
            continue  # from zero: inf at first, left out of the mean (test_drift_conventions)
        assert close(s.update_ratio, math.exp(np.mean(np.log(want))), 1e-6), name
        assert close(s.update_ratio_last, want[-1], 1e-6), name
        drift = float(torch.linalg.vector_norm((p.detach() - w0[name]).double())) / \
            float(torch.linalg.vector_norm(w0[name].double()))
        assert close(s.drift, drift, 1e-6), name


def assert_one_step_moved(s: dict, model: nn.Module, before: list, rel: float) -> None:
    """After one step from `before`: update ratio == drift == torch's float64 ‖ΔW‖ / ‖W‖."""
    for (name, p), b in zip(model.named_parameters(), before, strict=True):
        ref = float(torch.linalg.vector_norm((p.detach() - b).double())) / \
            float(torch.linalg.vector_norm(b.double()))
        assert close(s[name].update_ratio, ref, rel) and close(s[name].drift, ref, rel), name


def test_drift_conventions_and_mixed_dtypes(runs_dir):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].bias.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    with nnviz.watch(model, opt, runs_dir=runs_dir) as rec:
        train_steps(model, opt, x, y, 1)
        rec.snapshot(epoch=1)
        with torch.no_grad():
            model[0].weight[0, 0] = float("inf")
            model[1].bias.zero_()
        rec.snapshot(epoch=2)
    run = RunStore(runs_dir).load(rec.run_id)
    moved, reset = run.snapshot(1).record.params, run.snapshot(2).record.params
    assert moved["1.bias"].drift == math.inf  # from an all-zero start: x / 0
    assert reset["1.bias"].drift is None  # 0 / 0
    assert math.isnan(reset["0.weight"].drift)  # an Inf in the weights: NaN, as stats.drift
    # parameters of two dtypes: no shared buffer, the same numbers by the per-tensor path
    mixed = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2).double())
    opt = torch.optim.SGD(mixed.parameters(), lr=0.1)
    before = [p.detach().clone() for p in mixed.parameters()]
    with nnviz.watch(mixed, opt, runs_dir=runs_dir) as rec:
        assert rec._buffer is None
        opt.zero_grad()
        out = mixed[1](mixed[0](x).double())
        nn.functional.cross_entropy(out, y).backward()
        opt.step()
        rec.snapshot(epoch=1)
    s = RunStore(runs_dir).load(rec.run_id).snapshot(1).record.params
    assert_one_step_moved(s, mixed, before, 1e-9)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_update_ratio_and_drift_on_cuda_equal_torch(runs_dir):
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 6, device="cuda"), torch.randint(0, 3, (16,), device="cuda")
    w0 = [p.detach().clone() for p in model.parameters()]
    with nnviz.watch(model, opt, probe=x, runs_dir=runs_dir) as rec:
        assert rec._buffer is not None and rec._buffer.flat.is_cuda
        train_steps(model, opt, x, y, 1)
        rec.snapshot(epoch=1)
    assert_one_step_moved(RunStore(runs_dir).load(rec.run_id).snapshot(1).record.params, model,
                          w0, 1e-6)


class ConvNet(nn.Module):
    """Conv2d(3, 8) -> BatchNorm2d -> in-place ReLU -> Linear(512, 48) -> ReLU -> Linear(48, 4),
    plus a frozen and an unused Linear: about 25,000 parameters (snapshots go to the
    background thread when torch runs one thread). The in-place ReLU rewrites BatchNorm's
    output after its forward hook has seen it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8 * 8 * 8, 48)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(48, 4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.unused = nn.Linear(3, 3)

    def forward(self, x):  # (B, 3, 8, 8)
        h = self.act(self.bn(self.conv(x))).flatten(1)
        return self.frozen(self.head(self.act2(self.fc(h))))


@pytest.fixture
def one_thread():
    """torch on one thread, as SnapshotQueue needs for its background thread (restored)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def record_convnet(runs_dir, background: bool, epochs: int = 3):
    """A fixed ConvNet run, its sampling on a frozen clock (the same steps every time)."""
    torch.manual_seed(0)
    model = ConvNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    rec = nnviz.engine.watch.Watcher(model, opt, probe=x[:6], name="conv",
                                     runs_dir=runs_dir, background=background)
    rec.sampling = SamplingBudget(clock=ManualClock())
    for epoch in range(1, epochs + 1):
        train_steps(model, opt, x, y, 3)
        assert rec.snapshot(epoch=epoch, metrics={"train_loss": 1.0 / epoch}) == epoch
    return model, opt, rec


def test_background_snapshots_are_the_same_run_as_inline_ones(runs_dir, one_thread,
                                                              monkeypatch):
    runs = {}
    # background; inline; background with room to copy only some probe outputs (the others
    # measured on the caller's thread)
    for key, background, room in (("bg", True, None), ("inline", False, None),
                                  ("part", True, 6000)):
        if room is not None:
            monkeypatch.setattr(nnviz.engine.watch, "ACTIVATION_COPIES", room)
        model, opt, rec = record_convnet(runs_dir, background)
        assert rec._queue.background == background  # both ways really taken
        rec.close()
        assert hooks_left(model, opt) == 0
        runs[key] = RunStore(runs_dir).load(rec.run_id)
    bg, inline = runs["bg"], runs["inline"]
    assert bg.status == inline.status == runs["part"].status == "completed"
    assert bg.n_snapshots == inline.n_snapshots == 4
    assert [h.train_loss for h in bg.record.history] == [1.0, 0.5, 1 / 3]
    for i in range(4):
        a = (bg.folder / bg.entries[i].file).read_bytes()
        b = (inline.folder / inline.entries[i].file).read_bytes()
        c = (runs["part"].folder / runs["part"].entries[i].file).read_bytes()
        assert a == b == c, f"snapshot {i} differs"
    s = bg.snapshot(3).record
    assert s.params["frozen.weight"].extra["grad_status"] == NO_GRADIENT
    # BatchNorm's output as its own hook saw it, before the in-place ReLU rewrote it
    assert s.activations["bn"].zero_frac == 0.0 < s.activations["act"].zero_frac


def test_background_errors_fail_the_run_and_close_waits(runs_dir, one_thread, monkeypatch):
    from nnviz.errors import StorageError
    from nnviz.store.runs import RunWriter

    model, opt, rec = record_convnet(runs_dir, True, epochs=1)
    original = RunWriter.add_snapshot

    def slow(self, tensors, snap):
        import time
        time.sleep(0.3)
        return original(self, tensors, snap)
    monkeypatch.setattr(RunWriter, "add_snapshot", slow)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    with pytest.raises(RuntimeError, match="boom"):
        with rec:
            rec.snapshot(epoch=2)
            raise RuntimeError("boom")  # the user's loop fails: the queued snapshot is kept
    run = RunStore(runs_dir).load(rec.run_id)
    assert run.status == "failed" and "boom" in run.record.status_detail
    assert run.n_snapshots == 3 and hooks_left(model, opt) == 0

    def full(self, tensors, snap):
        raise OSError("No space left on device")
    monkeypatch.setattr(RunWriter, "add_snapshot", original)
    model, opt, rec = record_convnet(runs_dir, True, epochs=0)
    monkeypatch.setattr(RunWriter, "add_snapshot", full)
    train_steps(model, opt, x, y, 2)
    rec.snapshot(epoch=1)  # queued; fails on the thread
    with pytest.raises(StorageError, match="could not record a snapshot .*No space left"):
        for epoch in (2, 3):
            train_steps(model, opt, x, y, 1)
            rec.snapshot(epoch=epoch)
    assert hooks_left(model, opt) == 0
    run = RunStore(runs_dir).load(rec.run_id)
    assert run.status == "failed" and "No space left" in run.record.status_detail
    rec.close()  # idempotent
    with pytest.raises(ConfigError, match="closed"):
        rec.snapshot(epoch=4)
    # an error found at close() is raised there, and fails the run too
    monkeypatch.setattr(RunWriter, "add_snapshot", original)
    model, opt, rec = record_convnet(runs_dir, True, epochs=0)
    monkeypatch.setattr(RunWriter, "add_snapshot", full)
    rec.snapshot(epoch=1)
    with pytest.raises(StorageError, match="No space left"):
        rec.close()
    assert RunStore(runs_dir).load(rec.run_id).status == "failed"
