"""Training and recording: determinism, divergence, cancelling, schedules, the snapshot contents."""

import math
import threading

import numpy as np
import pytest
import torch

from nnviz.config import RunConfig, config_hash
from nnviz.engine.training import available_devices, resolve_device, train
from nnviz.errors import ConfigError, DeviceError

TINY_CNN = dict(model="simple_cnn", dataset="shapes32", n_samples=160, batch_size=32, epochs=2)
TINY_MLP = dict(model="mlp", dataset="moons", n_samples=200, batch_size=32, epochs=2, depth=3,
                width=16)


def _all_values(run):
    return [{p: snap.values(p) for p in run.record.params} for snap in run.snapshots()]


def test_same_config_and_seed_give_bit_identical_snapshots(store):
    cfg = RunConfig.from_dict(TINY_CNN)
    a = store.load(train(cfg, store).run_id)
    b = store.load(train(cfg, store).run_id)
    assert a.record.init_digest == b.record.init_digest
    assert a.record.config_hash == b.record.config_hash == config_hash(cfg)
    for va, vb in zip(_all_values(a), _all_values(b), strict=True):
        for name in va:
            np.testing.assert_array_equal(va[name], vb[name])
    c = store.load(train(cfg.replace(seed=7), store).run_id)
    assert c.record.init_digest != a.record.init_digest


def test_snapshot_contents_match_the_model(store):
    cfg = RunConfig.from_dict({**TINY_MLP, "snapshots_per_epoch": 2, "activation": "tanh"})
    run = store.load(train(cfg, store).run_id)
    assert run.status == "completed"
    assert run.n_snapshots == 1 + 2 * 2  # init + two per epoch
    spe = run.record.steps_per_epoch
    mid = round(spe / 2) / spe  # snapshots fall on whole steps
    assert [s.epoch for s in run.entries] == pytest.approx(
        [0.0, mid, 1.0, 1 + mid, 2.0])
    snap0, last = run.snapshot(0), run.snapshot(-1)
    for name, info in run.record.params.items():
        values = last.values(name)
        assert values.size == info.numel
        s = last.record.params[name]
        assert s.mean == pytest.approx(float(values.astype(np.float64).mean()), abs=1e-6)
        assert s.std == pytest.approx(float(values.astype(np.float64).std(ddof=1)), rel=1e-5)
        outside = s.hist_outside.total()
        assert last.hist_counts(name).sum() + outside == info.numel
        assert snap0.record.params[name].drift == 0.0
        assert s.drift > 0
        assert s.grad.norm > 0 and s.update_ratio > 0
    acts = last.record.activations
    assert [layer.name for layer in run.record.layers] == list(acts)
    assert acts["act1"].kind == "tanh" and acts["act1"].saturated_frac is not None
    assert len(run.record.history) == 2 and run.record.history[-1].val_acc is not None


def test_drift_matches_numpy(store):
    run = store.load(train(RunConfig.from_dict(TINY_MLP), store).run_id)
    w0 = run.snapshot(0).values("fc1.weight").astype(np.float64)
    wt = run.snapshot(-1).values("fc1.weight").astype(np.float64)
    expected = np.linalg.norm(wt - w0) / np.linalg.norm(w0)
    assert run.snapshot(-1).record.params["fc1.weight"].drift == pytest.approx(expected,
                                                                                    rel=1e-5)


def test_divergence_stops_and_keeps_snapshots(store):
    cfg = RunConfig.from_dict({**TINY_MLP, "init": "too_large", "optimizer": "sgd", "lr": 50.0,
                               "depth": 6, "epochs": 4, "momentum": 0.9})
    result = train(cfg, store)
    run = store.load(result.run_id)
    assert result.status == "diverged" and "diverged at epoch" in result.detail
    where = run.record.diverged_at
    assert where.epoch >= 1 and where.step >= 1
    last = run.snapshot(-1).record.params
    assert any(p.nan_count or p.inf_count for p in last.values()) or \
        where.what != "weights"
    assert run.snapshot(0).record.params["fc1.weight"].nan_count == 0


def test_cancel_from_another_thread_stops_within_one_step(store):
    flag = threading.Event()
    steps = []

    def progress(event):
        if event["event"] == "step":
            steps.append(event["step"])
            if len(steps) == 3:
                flag.set()

    result = train(RunConfig.from_dict({**TINY_MLP, "epochs": 5}), store, progress=progress,
                   cancel=flag)
    run = store.load(result.run_id)
    assert result.status == "cancelled"
    assert len(steps) == 3
    assert run.n_snapshots == 1  # init kept; no epoch finished


def test_cancel_file_written_by_any_process(store):
    def progress(event):
        if event["event"] == "step" and event["epoch"] == 2:
            store.request_cancel(event_run[0])
        if event["event"] == "started":
            event_run.append(event["run_id"])

    event_run: list[str] = []
    result = train(RunConfig.from_dict({**TINY_MLP, "epochs": 5}), store, progress=progress)
    run = store.load(result.run_id)
    assert result.status == "cancelled"
    assert run.n_snapshots == 2 and len(run.record.history) == 1
    assert not (run.folder / "CANCEL").exists()


def test_step_scheduler_and_early_stopping(store):
    cfg = RunConfig.from_dict({**TINY_MLP, "epochs": 4, "scheduler": "step", "step_size": 1,
                               "gamma": 0.5, "lr": 0.01})
    run = store.load(train(cfg, store).run_id)
    assert [h.lr for h in run.record.history] == pytest.approx([0.01, 0.005, 0.0025, 0.00125])
    cfg = RunConfig.from_dict({**TINY_MLP, "epochs": 30, "early_stopping": 1, "lr": 0.5,
                               "optimizer": "sgd"})
    result = train(cfg, store)
    assert "stopped early" in result.detail
    assert len(store.load(result.run_id).record.history) < 30


@pytest.mark.parametrize("changes", [
    {"loss": "focal"}, {"loss": "bce"}, {"optimizer": "adam_then_sgd", "switch_epoch": 2},
    {"optimizer": "adamw", "weight_decay": 0.01, "scheduler": "cosine"},
    {"scheduler": "plateau"}, {"init": "orthogonal"}, {"init": "zeros", "bias_init": "zeros"},
])
def test_options_train(store, changes):
    result = train(RunConfig.from_dict({**TINY_MLP, **changes}), store)
    assert result.status == "completed"


def test_regression_and_simple_net(store):
    cfg = RunConfig.from_dict({"model": "simple_net", "dataset": "regression", "n_samples": 200,
                               "epochs": 2, "loss": "mae"})
    run = store.load(train(cfg, store).run_id)
    assert run.record.data.extra["true_w"]
    assert run.record.history[-1].val_acc is None


def test_loss_must_fit_the_task(store):
    with pytest.raises(ConfigError, match="regression loss"):
        train(RunConfig.from_dict({**TINY_MLP, "loss": "mse"}), store)
    assert store.run_ids() == []


def test_absent_device_is_a_clear_error(store):
    missing = [d for d in ("cuda", "mps") if d not in available_devices()]
    if not missing:
        pytest.skip("every device is present")
    with pytest.raises(DeviceError, match="not available"):
        resolve_device(missing[0])
    assert resolve_device("auto").type == available_devices()[0]
    assert resolve_device("cpu").type == "cpu"


def test_tutorial_numbers_under_default_init(store):
    """The seed text measured std 0.109 (conv1) and 0.009038 (fc); theory says 0.111 / 0.00902."""
    run = store.load(train(RunConfig.from_dict({**TINY_CNN, "epochs": 1}), store).run_id)
    snap = run.snapshot(0).record.params
    assert snap["conv1.weight"].std == pytest.approx(0.111, rel=0.1)
    assert snap["fc.weight"].std == pytest.approx(0.00902, rel=0.02)
    assert run.record.params["conv1.weight"].theory.std == pytest.approx(1 / math.sqrt(81))
    assert run.record.params["fc.weight"].theory.std == pytest.approx(1 / math.sqrt(3 * 4096))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_records_like_cpu(store):
    cfg = RunConfig.from_dict({**TINY_CNN, "device": "cuda"})
    gpu = store.load(train(cfg, store).run_id)
    cpu = store.load(train(cfg.replace(device="cpu"), store).run_id)
    assert "cuda" in gpu.record.environment["device"]
    assert gpu.record.init_digest == cpu.record.init_digest  # init drawn on CPU generator
    for name in gpu.record.params:
        np.testing.assert_allclose(gpu.snapshot(-1).values(name), cpu.snapshot(-1).values(name),
                                   rtol=1e-3, atol=1e-4)


def test_gradient_statistics_match_torch():
    """The recorder's fused per-step reductions agree with plain torch on the same gradients."""
    from nnviz.engine.initializers import InitParams, apply_init, theories
    from nnviz.engine.recorder import Recorder, describe_params
    from tests.fixtures.models import TinyConv

    model = TinyConv()
    apply_init(model, InitParams(), "tanh", torch.Generator().manual_seed(0))
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    rec = Recorder(model, x[:4], sample_seed=0)
    rec.set_edges(describe_params(model, theories(model, InitParams(), "tanh")))
    expected = []
    for step in range(3):
        model.zero_grad()
        (model(x) ** 2).mean().mul(step + 1).backward()
        rec.after_backward()
        expected.append({n: p.grad.detach().double().clone() for n, p in
                         model.named_parameters()})
    _, stats = rec.snapshot(1.0, 3)
    for name, entry in stats["params"].items():
        grads = [e[name] for e in expected]
        g = entry["grad"]
        assert g["steps"] == 3
        assert g["last_norm"] == pytest.approx(float(grads[-1].norm()), rel=1e-5)
        assert g["last_mean_abs"] == pytest.approx(float(grads[-1].abs().mean()), rel=1e-5)
        assert g["last_std"] == pytest.approx(float(grads[-1].std()), rel=1e-4)
        assert g["norm"] == pytest.approx(float(np.mean([float(t.norm()) for t in grads])),
                                          rel=1e-5)


def _tiny_snapshot(writer, epoch):
    info = writer.meta["params"]
    tensors = {}
    for name, p in info.items():
        tensors[f"values/{name}"] = torch.zeros(p["numel"])
        counts = torch.zeros(len(p["edges"]) - 1, dtype=torch.int64)
        counts[len(counts) // 2] = p["numel"]  # every value 0.0 sits in the middle bin
        tensors[f"hist/{name}"] = counts
    return tensors


def test_run_json_saves_are_deferred_and_files_made_durable_once_at_the_end(
        store, monkeypatch):
    """While training, run.json is saved after the first snapshot and then at most every
    save_interval_s (a deferred save is listed on disk once due); no fsync happens until
    finish, which fsyncs each file the run wrote once, then its folders, off the caller's
    thread; the finished run lists everything."""
    import os

    from nnviz.store.runs import read_record, wait_for_syncs

    cfg = RunConfig.from_dict(TINY_MLP)
    src = store.load(train(cfg, store).run_id)
    wait_for_syncs()  # that run's own durability pass, maybe still under way
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    meta = src.record.to_json()
    writer = store.create(cfg, "x", {"params": meta["params"], "layers": meta["layers"]})
    writer.save_interval_s = 60.0
    stats0 = src.snapshot(0).record.to_json()
    for i in range(3):
        writer.add_snapshot(_tiny_snapshot(writer, i), {**stats0, "epoch": float(i), "step": i})
    assert len(read_record(writer.folder).snapshots) == 1  # the first at once, the rest later
    assert 0 < writer.save_due_in() <= 60.0
    writer.save_interval_s = 0.0
    assert writer.save_due_in() == 0.0
    writer.save_soon()  # what SnapshotQueue's thread (or tick) does once it is due
    assert len(read_record(writer.folder).snapshots) == 3 and writer.save_due_in() is None
    assert synced == []  # nothing fsynced while the run is written
    writer.finish("completed")
    writer.wait_durable()
    files = 1 + 3  # run.json (many versions: the newest, once) and three snapshot files
    folders = 3    # snapshots/, the run's folder, the runs folder
    assert len(synced) == files + folders
    run = store.load(writer.run_id)
    assert run.status == "completed" and run.n_snapshots == 3


def test_a_trained_run_lists_every_snapshot_and_epoch(store):
    cfg = RunConfig.from_dict({**TINY_MLP, "epochs": 4, "snapshots_per_epoch": 2})
    run = store.load(train(cfg, store).run_id)
    assert run.n_snapshots == 1 + 4 * 2 and len(run.record.history) == 4
    epochs = [e.epoch for e in run.entries]
    assert epochs == sorted(set(epochs)) and epochs[0] == 0.0
    assert [e for e in epochs if e == int(e)] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_colour_images_train_channels_last_on_the_cpu_with_the_same_numbers(store, monkeypatch):
    """The trainer feeds colour images channels_last on the CPU (PyTorch's max-pool is several
    times faster there); SimpleCNN's weights and outputs are bit for bit those of NCHW."""
    from nnviz.engine import training
    from nnviz.engine.models import CNN, SimpleCNN

    x, cnn = torch.randn(6, 3, 8, 8), SimpleCNN()
    assert training.image_layout(x, cnn).is_contiguous(memory_format=torch.channels_last)
    assert training.image_layout(x, cnn)[torch.tensor([4, 1])].is_contiguous(
        memory_format=torch.channels_last)  # a batch keeps the layout
    for other in (torch.randn(6, 1, 8, 8), torch.randn(6, 2), torch.randint(0, 9, (6, 3, 8, 8))):
        assert training.image_layout(other, cnn) is other  # grey, flat, integer: as they are
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    assert training.image_layout(x, mlp) is x  # no conv: an MLP flattens it anyway
    one, two = (CNN((3, 8, 8), 2, d, 4, "relu", False, 0.0) for d in (1, 2))
    assert training.image_layout(x, one) is x  # one block trains faster in NCHW
    assert training.image_layout(x, two).is_contiguous(memory_format=torch.channels_last)

    seen = []
    original = SimpleCNN.forward
    monkeypatch.setattr(SimpleCNN, "forward", lambda self, xb: (
        seen.append(xb.is_contiguous(memory_format=torch.channels_last)), original(self, xb))[1])
    run = store.load(train(RunConfig.from_dict(TINY_CNN), store).run_id)
    assert run.status == "completed" and seen and all(seen)  # training, validation and probe

    torch.manual_seed(0)
    nchw = SimpleCNN()
    last = SimpleCNN()
    last.load_state_dict(nchw.state_dict())
    xs, ys = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    for model, data in ((nchw, xs), (last, training.image_layout(xs, nchw))):
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        for i in range(4):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(data[i * 16:(i + 1) * 16]),
                                              ys[i * 16:(i + 1) * 16]).backward()
            opt.step()
    for a, b in zip(nchw.parameters(), last.parameters(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(nchw.eval()(xs), last.eval()(training.image_layout(xs, nchw)))
