"""Checkpoints as runs (``nnviz inspect``): every accepted format, folders in order, and hostile
files refused with a clear message while nothing in them runs."""

from __future__ import annotations

import json
import os
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from nnviz.cli.main import main as cli_main
from nnviz.errors import StorageError
from nnviz.store.checkpoints import checkpoint_paths, checkpoint_run, load_weights
from nnviz.store.runs import RunStore


def small_model(seed: int = 0) -> nn.Module:
    """Linear(4, 8) -> BatchNorm1d(8) -> Linear(8, 2)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def floats(sd: dict) -> dict:
    return {k: v for k, v in sd.items() if v.is_floating_point()}


class RunsCode:
    """Unpickling this would call os.system (writes a marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_safetensors_file_equals_the_state_dict(tmp_path, store):
    m = small_model()
    path = tmp_path / "model.safetensors"
    save_file(floats(m.state_dict()), path)
    run = store.load(checkpoint_run(path, store))
    assert run.n_snapshots == 1 and run.record.source.kind == "checkpoint"
    s = run.snapshot(0).record.params
    for name, t in floats(m.state_dict()).items():
        w = t.double()
        assert s[name].mean == pytest.approx(float(w.mean()), rel=1e-12, abs=1e-15)
        assert s[name].std == pytest.approx(float(w.std()), rel=1e-9, abs=1e-15)
        assert (run.snapshot(0).values(name) == t.flatten().numpy()).all()
    assert run.record.params["0.weight"].theory.kind == "unknown"


def test_sharded_index_and_path_checks(tmp_path):
    m = small_model()
    sd = floats(m.state_dict())
    names = list(sd)
    save_file({k: sd[k] for k in names[:3]}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({k: sd[k] for k in names[3:]}, tmp_path / "model-00002-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {
        k: f"model-0000{1 if i < 3 else 2}-of-00002.safetensors" for i, k in enumerate(names)}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    w = load_weights(tmp_path)  # the folder: its index is found
    assert w.format == "safetensors (sharded)" and set(w.tensors) == set(names)
    assert torch.equal(w.tensors["2.weight"], sd["2.weight"])
    index["weight_map"][names[0]] = "../../etc/passwd"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(StorageError, match="not a file name"):
        load_weights(tmp_path / "model.safetensors.index.json")


def test_folder_of_lightning_checkpoints_is_one_run_in_order(tmp_path, store):
    m = small_model()
    folder = tmp_path / "ckpts"
    folder.mkdir()
    saved = {}
    for epoch in (2, 10, 1):  # written out of order; epoch=10 must come last, not after 1
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1)
        sd = {f"model.{k}": v.clone() for k, v in m.state_dict().items()}
        saved[epoch] = sd
        torch.save({"state_dict": sd, "epoch": epoch, "global_step": epoch * 5,
                    "hyper_parameters": {"lr": 0.1}},
                   folder / f"epoch={epoch}-step={epoch * 5}.ckpt")
    assert [p.name for p in checkpoint_paths(folder)] == [
        "epoch=1-step=5.ckpt", "epoch=2-step=10.ckpt", "epoch=10-step=50.ckpt"]
    run = store.load(checkpoint_run(folder, store))
    assert [e.epoch for e in run.entries] == [1.0, 2.0, 10.0]
    assert [e.step for e in run.entries] == [5, 10, 50]
    last = run.snapshot(2).record.params["model.0.weight"]
    w = saved[10]["model.0.weight"].double()
    assert last.mean == pytest.approx(float(w.mean()), rel=1e-12)
    w0 = saved[1]["model.0.weight"].double()
    drift = float(torch.linalg.vector_norm(w - w0) / torch.linalg.vector_norm(w0))
    assert last.drift == pytest.approx(drift, rel=1e-9)
    assert "model.1.num_batches_tracked" not in run.record.params
    assert any("state_dict" in n for n in run.record.source.extra["notes"])


def test_hugging_face_checkpoint_folders(tmp_path, store):
    m = small_model()
    for step in (500, 1000):
        sub = tmp_path / f"checkpoint-{step}"
        sub.mkdir()
        torch.save(m.state_dict(), sub / "pytorch_model.bin")
    run = store.load(checkpoint_run(tmp_path, store))
    assert run.n_snapshots == 2 and [e.step for e in run.entries] == [500, 1000]


def test_ddp_and_compiled_prefixes_are_stripped(tmp_path):
    sd = {f"module._orig_mod.{k}": v for k, v in floats(small_model().state_dict()).items()}
    torch.save(sd, tmp_path / "wrapped.pt")
    assert "0.weight" in load_weights(tmp_path / "wrapped.pt").tensors


def test_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "payload": RunsCode(str(marker))}, evil)
    with pytest.raises(StorageError) as err:
        load_weights(evil)
    message = str(err.value)
    assert "full unpickling" in message and "safetensors" in message and "save_file" in message
    assert not marker.exists()
    raw = tmp_path / "raw.bin"  # a bare (non-zip) pickle stream
    raw.write_bytes(pickle.dumps(RunsCode(str(marker)), protocol=2))
    with pytest.raises(StorageError, match="full unpickling|not a readable"):
        load_weights(raw)
    assert not marker.exists()


def test_damaged_safetensors_are_refused(tmp_path):
    good = tmp_path / "good.safetensors"
    save_file({"w": torch.randn(64, 64)}, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(StorageError, match="truncated"):
        load_weights(truncated)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(StorageError, match="header claims"):
        load_weights(huge)
    longer = tmp_path / "longer.safetensors"
    longer.write_bytes(struct.pack("<Q", 5000) + b"{}")
    with pytest.raises(StorageError, match="longer than the file"):
        load_weights(longer)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{[")
    with pytest.raises(StorageError, match="not valid JSON"):
        load_weights(junk)
    with pytest.raises(StorageError, match="too short"):
        (tmp_path / "tiny.safetensors").write_bytes(b"abc")
        load_weights(tmp_path / "tiny.safetensors")
    with pytest.raises(StorageError, match="nnviz reads"):
        (tmp_path / "weights.h5").write_bytes(b"x")
        load_weights(tmp_path / "weights.h5")


def test_mismatched_checkpoints_in_a_folder_fail_the_run(tmp_path, store):
    save_file(floats(small_model().state_dict()), tmp_path / "a-1.safetensors")
    save_file({"other": torch.ones(3)}, tmp_path / "a-2.safetensors")
    with pytest.raises(StorageError, match="not the same model"):
        checkpoint_run(tmp_path, store)
    (row,) = store.list_runs()[0]
    assert row["status"] == "failed"


def test_cli_inspect(tmp_path, runs_dir, capsys):
    path = tmp_path / "m.safetensors"
    save_file(floats(small_model().state_dict()), path)
    assert cli_main(["--runs-dir", str(runs_dir), "inspect", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["snapshots"] == 1 and {r["name"] for r in out["tensors"]} >= {"0.weight"}
    assert RunStore(runs_dir).load(out["run_id"]).status == "completed"
    evil = tmp_path / "evil.pt"
    torch.save({"x": RunsCode(str(tmp_path / "PWNED"))}, evil)
    assert cli_main(["--runs-dir", str(runs_dir), "inspect", str(evil)]) == 2
    assert "full unpickling" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()


def test_legacy_and_damaged_torch_files(tmp_path):
    sd = floats(small_model().state_dict())
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    w = load_weights(tmp_path / "legacy.pth")  # the pre-zip format: read without mmap
    assert torch.equal(w.tensors["0.weight"], sd["0.weight"])
    torch.save(sd, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(StorageError, match="not a readable PyTorch checkpoint"):
        load_weights(tmp_path / "cut.pt")
