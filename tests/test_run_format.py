"""The typed run format: write -> read -> equal for every kind of run, the validating reader's
edge cases, checksums, and runs written by the previous layout."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from nnviz.analysis import views
from nnviz.config import ADDED_LATER, RunConfig
from nnviz.engine.training import train
from nnviz.errors import StorageError
from nnviz.store.format import FORMAT_VERSION, RunRecord, parse_run, parse_snapshot_stats
from nnviz.store.runs import RunStore, RunWriter

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v1"
TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=32, epochs=2, depth=2,
            width=8)
DIVERGING = dict(model="mlp", dataset="regression", n_samples=200, batch_size=32, epochs=3,
                 depth=3, width=8, init="too_large", optimizer="sgd", lr=50.0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A normal, a diverged and an interrupted (killed mid-write) run, trained once."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    normal = train(RunConfig.from_dict(TINY), store).run_id
    diverged = train(RunConfig.from_dict(DIVERGING), store)
    assert diverged.status == "diverged"
    _add_nonfinite_snapshot(store, diverged.run_id)
    # interrupted: a run folder as a killed trainer leaves it (status running, stale heartbeat,
    # one epoch of two, and a snapshot file written but never listed)
    cut = train(RunConfig.from_dict({**TINY, "seed": 7}), store).run_id
    path = store.root / cut / "run.json"
    meta = json.loads(path.read_text())
    meta.update(status="running", updated=meta["created"] - 1000, history=meta["history"][:1],
                snapshots=meta["snapshots"][:2])
    meta.pop("finished")
    path.write_text(json.dumps(meta))
    return store, {"normal": normal, "diverged": diverged.run_id, "interrupted": cut}


def _add_nonfinite_snapshot(store: RunStore, run_id: str) -> None:
    """One more snapshot with NaN / +Inf / -Inf weights and an Inf gradient norm, written by
    RunWriter as the recorder writes one (the trainer stops before its weights turn NaN)."""
    import torch

    from nnviz.analysis import stats
    from nnviz.store.runs import RunWriter

    run = store.load(run_id)
    last = run.snapshot(-1)
    finite = run.snapshot(0)  # the trainer's own last snapshot may already hold NaN / Inf
    tensors, per_param = {}, {}
    for name, info in run.record.params.items():
        v = torch.from_numpy(finite.values(name).copy())
        v[-1], v[0] = float("inf"), float("nan")
        if v.numel() > 2:
            v[1] = -float("inf")
        hist = stats.histogram(v.numpy(), np.asarray(info.edges))
        tensors[f"values/{name}"] = v
        tensors[f"hist/{name}"] = torch.from_numpy(hist.counts.astype(np.int64))
        entry = stats.tensor_stats(v)
        entry["hist_outside"] = {"underflow": hist.underflow, "overflow": hist.overflow,
                                 "nan": hist.nan, "posinf": hist.posinf, "neginf": hist.neginf}
        entry["drift"] = float("nan")
        entry["grad"] = {"norm": float("inf"), "mean_abs": float("nan"), "std": None,
                         "last_norm": float("inf"), "last_mean_abs": None, "last_std": None,
                         "steps": 1}
        per_param[name] = entry
    meta = json.loads((run.folder / "run.json").read_text())
    entry = run.record.snapshots[-1]
    RunWriter(store, run.folder, meta).add_snapshot(
        tensors, {"epoch": entry.epoch, "step": entry.step + 1, "params": per_param,
                  "activations": last.record.to_json()["activations"]})


def _same_json(a, b) -> bool:
    """Equal as JSON text (so NaN == NaN, which == does not say)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("kind", ["normal", "diverged", "interrupted"])
def test_round_trip_write_read_equal(runs, kind):
    store, ids = runs
    run = store.load(ids[kind])
    on_disk = json.loads((run.folder / "run.json").read_text())
    assert _same_json(run.record.to_json(), on_disk)
    again = parse_run(json.loads(json.dumps(run.record.to_json())))
    assert _same_json(again.to_json(), on_disk)
    assert isinstance(run.record, RunRecord) and run.record.schema_version == FORMAT_VERSION
    assert run.record.source.kind == "trained" and run.record.source.tool == "nnviz"
    for snap in run.snapshots():
        with safe_open(snap.path, framework="pt") as f:
            raw = json.loads(f.metadata()["nnviz"])
        assert _same_json(snap.record.to_json(), raw)
        entry = snap.entry
        assert _same_json(parse_snapshot_stats(raw, run.record, entry).to_json(), raw)
        for name, info in run.record.params.items():
            assert snap.values(name).size == info.numel  # stored whole
            assert snap.hist_counts(name).size == len(info.edges) - 1


def test_diverged_run_keeps_its_nan_and_inf(runs):
    store, ids = runs
    run = store.load(ids["diverged"])
    assert run.status == "diverged" and run.record.diverged_at is not None
    last = run.snapshot(-1).record
    assert all(p.nan_count == 1 and p.inf_count == min(2, p.numel - 1)
               for p in last.params.values())
    assert all(math.isinf(p.grad.norm) and math.isnan(p.drift) for p in last.params.values())
    for p in last.params.values():  # statistics of the finite values; None when none is
        assert (p.mean is None) == (p.finite_count == 0)
        assert p.mean is None or math.isfinite(p.mean)
    table = views.stats_table(run, run.n_snapshots - 1)
    assert (table["NaN"] == 1).all()
    track = views.param_track([run], "fc1.weight")
    h = track.hist(run.run_id, run.n_snapshots - 1)
    assert (h.nan, h.posinf, h.neginf) == (1, 1, 1) and h.total() == 16


def test_interrupted_run_loads_and_shows_interrupted(runs):
    store, ids = runs
    run = store.load(ids["interrupted"])
    assert run.record.status == "running" and run.status == "interrupted"
    assert len(run.record.history) == 1 and run.n_snapshots == 2
    assert run.incomplete_snapshots() == ["snapshots/s0002.safetensors"]  # written, not listed


def test_killed_run_is_interrupted_at_once(runs, tmp_path):
    """A 'running' run whose process is gone on this machine is not 'running' for 120 s."""
    store, ids = runs
    folder = tmp_path / "runs"
    shutil.copytree(store.root / ids["normal"], folder / ids["normal"])
    path = folder / ids["normal"] / "run.json"
    meta = json.loads(path.read_text())
    import subprocess
    import sys
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    meta.update(status="running", updated=time.time(), pid=dead.pid)
    path.write_text(json.dumps(meta))
    assert RunStore(folder).load(ids["normal"]).status == "interrupted"
    meta["pid"] = __import__("os").getpid()  # alive: still running
    path.write_text(json.dumps(meta))
    assert RunStore(folder).load(ids["normal"]).status == "running"


def test_incomplete_snapshot_record_round_trips(runs):
    """Snapshot 0 has no gradients or update ratios: absent, read as None, written absent."""
    store, ids = runs
    snap0 = store.load(ids["normal"]).snapshot(0)
    p = next(iter(snap0.record.params.values()))
    assert p.grad is None and p.update_ratio is None
    assert "grad" not in snap0.record.to_json()["params"][next(iter(snap0.record.params))]


def test_run_of_the_previous_layout_loads():
    store = RunStore(FIXTURES)
    run = store.load("v1-mlp-moons")
    assert run.record.schema_version == 1 and run.record.source.tool == "nnviz"
    assert run.n_snapshots == 3 and not run.damaged_snapshots  # v1 has no checksums to check
    on_disk = json.loads((run.folder / "run.json").read_text())
    got = run.record.to_json()
    got.pop("source")  # the one field v1 lacks: filled in as "trained by nnviz"
    for key, value in ADDED_LATER.items():  # options added since: filled in with v1's value
        if key not in on_disk["config"]:
            assert got["config"].pop(key) == value
    assert _same_json(got, on_disk)
    assert views.param_track([run], "fc1.weight").hist(run.run_id, 2).total() == 12
    rows, problems = store.list_runs()
    assert [r["run_id"] for r in rows] == ["v1-mlp-moons"] and problems == []


def test_run_of_the_previous_layout_is_diagnosed_from_its_typed_records():
    from nnviz.analysis import diagnostics

    run = RunStore(FIXTURES).load("v1-mlp-moons")
    profile = diagnostics.signal_profile(run, 2)
    acts = run.snapshot(2).record.activations
    assert list(profile["activation_std"]) == [acts[m].signal_std for m in profile["layer"]]
    assert list(profile["weight_std"]) == [run.snapshot(2).record.params[f"{m}.weight"].std
                                           for m in profile["layer"]]
    assert [t[0] for t in diagnostics.timeline(run)] == [0, 1, 2]


def test_a_writer_reopened_from_the_record_changes_only_how_the_run_ended(runs, tmp_path):
    store, ids = runs
    shutil.copytree(store.root / ids["interrupted"], tmp_path / ids["interrupted"])
    other = RunStore(tmp_path)
    before = other.load(ids["interrupted"]).record.to_json()
    RunWriter.reopen(other, other.load(ids["interrupted"])).finish("cancelled", "stopped")
    after = other.load(ids["interrupted"]).record
    assert (after.status, after.status_detail) == ("cancelled", "stopped")
    assert after.finished is not None and after.updated >= before["updated"]
    changed = {"status", "status_detail", "finished", "updated"}
    got = {k: v for k, v in after.to_json().items() if k not in changed}
    assert _same_json(got, {k: v for k, v in before.items() if k not in changed})


@pytest.mark.parametrize(("version", "words"), [(99, "newer nnviz"), (0, "older nnviz"),
                                                (None, "older nnviz"), ("2", "older nnviz")])
def test_other_versions_get_a_clear_message(runs, tmp_path, version, words):
    store, ids = runs
    shutil.copytree(store.root / ids["normal"], tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    meta["schema_version"] = version
    (tmp_path / "r" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(StorageError, match=words):
        RunStore(tmp_path).load("r")


def _meta(runs):
    store, ids = runs
    return json.loads((store.root / ids["normal"] / "run.json").read_text())


@pytest.mark.parametrize(("path", "value", "words"), [
    (("config",), {}, None),  # an empty config is every default: valid
    (("config",), [], "config"),
    (("config",), {"lr": 1e400}, "lr"),
    (("history",), "abc", "history: 'abc' is not a list"),
    (("history",), None, "history"),
    (("history", 0, "val_acc"), 1.7, r"history\[0\]\.val_acc"),
    (("history", 0, "epoch"), 0, "epoch"),
    (("created",), "yesterday", "created"),
    (("created",), 1e300, "created"),
    (("created",), float("nan"), "created"),
    (("status",), "exploded", "status"),
    (("run_id",), "../x", "run_id"),
    (("snapshots", 0, "file"), "../../etc/passwd", "file"),
    (("snapshots", 0, "sha256"), "xyz", "sha256"),
    (("snapshots", 1, "epoch"), -1.0, "epoch"),
    (("params", "fc1.weight", "numel"), 17, "numel"),
    (("params", "fc1.weight", "shape"), [8, -2], "shape"),
    (("params", "fc1.weight", "edges"), [1.0, 1.0], "edges"),
    (("params", "fc1.weight", "edges"), [-1e308, 1e308], "overflows"),
    (("params", "fc1.weight", "stored"), "sample of 1000000", "stored"),
    (("params", "fc1.weight", "theory", "std"), -1.0, "theory"),
    (("params", "fc1.weight", "theory", "high"), None, "low and high"),  # fuzz seed 2470
    (("layers", 0), "fc1", "layers"),
    (("data",), 3, "data"),
    (("environment",), {"x": [1]}, "environment"),
])
def test_reader_names_the_bad_field(runs, path, value, words):
    meta = _meta(runs)
    target = meta
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    if words is None:
        parse_run(meta)
        return
    with pytest.raises(StorageError, match=words):
        parse_run(meta)


def test_unknown_keys_are_kept(runs):
    meta = _meta(runs)
    meta["recorded_by"] = {"tool": "someone else", "n": 3}
    meta["params"]["fc1.weight"]["layer_type_detail"] = "Linear(2, 8)"
    rec = parse_run(meta)
    assert rec.extra == {"recorded_by": {"tool": "someone else", "n": 3}}
    assert _same_json(rec.to_json(), meta)


def test_params_of_any_layer_type(runs):
    meta = _meta(runs)
    info = dict(meta["params"]["fc1.bias"], module="attn", module_type="MultiheadAttention",
                kind="in_proj_bias", theory=None)
    meta["params"] = {"attn.in_proj_bias": info}
    rec = parse_run(meta)
    assert rec.params["attn.in_proj_bias"].module_type == "MultiheadAttention"


def test_bit_flip_in_tensor_data_is_detected(runs, tmp_path):
    store, ids = runs
    shutil.copytree(store.root / ids["normal"], tmp_path / "r")
    snap = tmp_path / "r" / "snapshots" / "s0001.safetensors"
    data = bytearray(snap.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's values
    snap.write_bytes(bytes(data))
    run = RunStore(tmp_path).load("r")
    [(entry, reason)] = run.damaged_snapshots
    assert entry.index == 1 and "checksum" in reason
    assert run.n_snapshots == 2 and [s.index for s in run.snapshots()] == [0, 2]
    assert run.entries[1].index == 2  # entries list what is readable
    assert views.param_track([run], "fc1.weight").hist(run.run_id, 1).total() == 16


def _unchecked_snapshot(runs, tmp_path, index: int):
    """A copy of the normal run without checksums (so the other checks are what catch a
    change): the path of snapshot ``index``, its tensors and its statistics."""
    store, ids = runs
    folder = tmp_path / "r"
    shutil.copytree(store.root / ids["normal"], folder)
    meta = json.loads((folder / "run.json").read_text())
    for e in meta["snapshots"]:
        e.pop("sha256")
    (folder / "run.json").write_text(json.dumps(meta))
    snap = folder / "snapshots" / f"s{index:04d}.safetensors"
    with safe_open(snap, framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        stats = json.loads(f.metadata()["nnviz"])
    return snap, tensors, stats


def test_snapshot_sizes_checked_against_declared_shapes(runs, tmp_path):
    """A snapshot whose tensors disagree with the run's shapes is damaged (no checksum here,
    so the size check itself is what catches it)."""
    import torch

    from nnviz.store.snapshots import encode_snapshot

    snap, tensors, stats = _unchecked_snapshot(runs, tmp_path, 1)
    tensors["values/fc1.weight"] = torch.zeros(5)
    snap.write_bytes(encode_snapshot(tensors, stats))
    run = RunStore(tmp_path).load("r")
    [(_, reason)] = run.damaged_snapshots
    assert "values/fc1.weight" in reason and "[16]" in reason


def test_hist_counts_must_add_up(runs, tmp_path):
    import torch

    from nnviz.store.snapshots import encode_snapshot

    snap, tensors, stats = _unchecked_snapshot(runs, tmp_path, 2)
    tensors["hist/fc1.bias"] = tensors["hist/fc1.bias"] + torch.ones_like(
        tensors["hist/fc1.bias"])
    snap.write_bytes(encode_snapshot(tensors, stats))
    [(_, reason)] = RunStore(tmp_path).load("r").damaged_snapshots
    assert "add up" in reason


@pytest.mark.parametrize("edge", ["empty", "single", "all_equal"])
def test_stats_edge_cases_pass_the_reader(runs, edge):
    """tensor_stats of an empty, a one-value and an all-equal tensor are valid records."""
    import torch

    from nnviz.analysis import stats
    from nnviz.store.format import _parse_param_stats

    t = {"empty": torch.zeros(0), "single": torch.tensor([0.5]),
         "all_equal": torch.full((3, 4), 2.0)}[edge]
    s = stats.tensor_stats(t)
    meta = _meta(runs)
    info = parse_run(meta).params["fc1.weight"]
    info.numel = t.numel()
    rec = _parse_param_stats(s, info, "x")
    assert rec.numel == t.numel()
    if edge == "empty":
        assert rec.mean is None and rec.percentiles is None
    else:
        assert rec.std == 0.0 and rec.min == rec.max
        assert np.allclose(rec.percentiles, rec.min)


def test_snapshot_files_are_exactly_what_safetensors_writes():
    """encode_snapshot lays out float32 values and int64 counts itself: the same bytes as
    safetensors.torch.save (names sorted as it sorts them, header padded as it pads), also
    for tensors that are views of one buffer; anything else goes through safetensors."""
    import torch
    from safetensors.torch import load, save

    from nnviz.store.snapshots import encode_snapshot

    rng = np.random.default_rng(0)
    for trial in range(40):
        tensors = {}
        for i in range(int(rng.integers(0, 9))):
            name = f"{rng.choice(['fc', 'conv', 'é', 'b.a', 'Z'])}{i}.weight"
            n = int(rng.integers(0, 40))
            tensors[f"values/{name}"] = torch.from_numpy(rng.standard_normal(n)
                                                         .astype(np.float32))
            tensors[f"hist/{name}"] = torch.from_numpy(rng.integers(0, 9, n))
        stats = {"epoch": float(trial), "x": [math.nan, math.inf], "s": 'q"\\\n\u00e9'}
        want = save(tensors, metadata={"nnviz": json.dumps(stats, allow_nan=True)})
        assert encode_snapshot(tensors, stats) == want, trial
    buffer = torch.arange(10, dtype=torch.float32)
    counts = torch.zeros(3, dtype=torch.int64)
    views_ = {"values/a": buffer[:4], "values/b": buffer[4:], "hist/a": counts}
    got = load(encode_snapshot(views_, {}))
    assert torch.equal(got["values/b"], buffer[4:]) and torch.equal(got["values/a"], buffer[:4])
    other = {"values/a": buffer[:4], "x": torch.ones(2, 2, dtype=torch.float64)}  # not ours
    assert encode_snapshot(other, {"k": 1}) == save(
        {k: v.clone() for k, v in other.items()}, metadata={"nnviz": json.dumps({"k": 1})})


def test_the_trainer_writes_run_json_once_for_a_short_run(tmp_path, monkeypatch):
    """create(save_in=...) and list_first=False defer run.json to its due time, a flush (before
    the "started" event) or finish; nothing is listed before it, and the finished run is
    whole."""
    from nnviz.store import runs as runs_mod

    store = RunStore(tmp_path)
    writes = []
    real = runs_mod.atomic_write
    monkeypatch.setattr(runs_mod, "atomic_write",
                        lambda path, data, durable=True: (writes.append(path.name),
                                                          real(path, data, durable))[1])
    cfg = RunConfig.from_dict(TINY)
    result = train(cfg, store, record=False)
    assert writes.count("run.json") == 1  # created, trained and finished: one write
    run = store.load(result.run_id)
    assert run.status == "completed" and len(run.record.history) == cfg.epochs
    writes.clear()
    run = store.load(train(cfg, store).run_id)
    assert writes.count("run.json") == 1  # recording too: the init snapshot is listed when due
    assert run.n_snapshots == cfg.epochs + 1
    writes.clear()
    seen = []

    def progress(event):
        if event["event"] == "started":  # the app opens the run at once: it is listed
            seen.append(store.load(event["run_id"]).record.snapshots)

    run = store.load(train(cfg, store, progress=progress).run_id)
    assert [len(s) for s in seen] == [1] and writes.count("run.json") == 2
    assert run.n_snapshots == cfg.epochs + 1
    writer = store.create(cfg, "x", {}, save_in=60.0)
    assert writer.run_id not in store.run_ids()  # not listed until its first save
    assert not (writer.folder / "run.json").exists()
    assert 59.0 < writer.save_due_in() <= 60.0
    writer.finish("completed")
    assert store.load(writer.run_id).status == "completed"


def test_run_json_params_are_encoded_once_and_again_when_replaced(tmp_path):
    store = RunStore(tmp_path)
    src = store.load(train(RunConfig.from_dict(TINY), store).run_id).record.to_json()
    writer = store.create(RunConfig.from_dict(TINY), "x", {"params": src["params"],
                                                          "layers": src["layers"]})
    writer.update(status_detail="a")
    first = (writer.folder / "run.json").read_bytes()
    renamed = {f"{k}.x": v for k, v in src["params"].items()}
    writer.update(params=renamed)  # a new object: encoded and checked again
    assert set(json.loads((writer.folder / "run.json").read_bytes())["params"]) == set(renamed)
    assert json.loads(first)["params"] == src["params"]
    with pytest.raises(StorageError):
        writer.update(params={"bad": {"shape": [2], "numel": 3}})


def test_atomic_write_steps_around_a_leftover_temp_file(tmp_path):
    import os
    import threading

    from nnviz.store.runs import atomic_write

    target = tmp_path / "run.json"
    leftover = tmp_path / f".run.json.{os.getpid()}-{threading.get_ident()}.tmp"
    leftover.write_bytes(b"from a crashed process with the same pid")
    atomic_write(target, b"new", durable=False)
    assert target.read_bytes() == b"new" and leftover.exists()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == [leftover.name]
