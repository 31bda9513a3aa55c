"""Storage: atomic writes, damaged and killed runs, export/import and hostile zip files."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.errors import StorageError
from nnviz.store.runs import SCHEMA_VERSION, RunStore, atomic_write

TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=32, epochs=2, depth=2,
            width=8)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def run_id(store):
    return train(RunConfig.from_dict(TINY), store).run_id


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp files left


def test_list_load_delete(store, run_id):
    rows, problems = store.list_runs()
    assert [r["run_id"] for r in rows] == [run_id] and problems == []
    assert rows[0]["status"] == "completed" and rows[0]["epochs_done"] == 2
    store.delete(run_id)
    assert store.list_runs() == ([], [])
    with pytest.raises(StorageError, match="No run named"):
        store.load(run_id)


def test_damaged_run_json_is_reported_not_crashing(store, run_id):
    (store.root / run_id / "run.json").write_text("{ not json")
    rows, problems = store.list_runs()
    assert rows == [] and "damaged" in problems[0]


def test_schema_version_is_checked(store, run_id):
    path = store.root / run_id / "run.json"
    meta = json.loads(path.read_text())
    meta["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(meta))
    with pytest.raises(StorageError, match="schema version"):
        store.load(run_id)


def test_truncated_snapshot_is_an_error_not_garbage(store, run_id):
    run = store.load(run_id)
    snap_file = run.folder / run.entries[1].file
    snap_file.write_bytes(snap_file.read_bytes()[:100])
    fresh = store.load(run_id)
    assert fresh.n_snapshots == 2  # only that epoch is hidden; the others still load
    [(entry, reason)] = fresh.damaged_snapshots
    assert entry.index == 1 and "damaged" in reason
    assert [s.epoch for s in fresh.snapshots()] == [0.0, 2.0]


def test_unlisted_snapshot_is_reported_incomplete(store, run_id):
    run = store.load(run_id)
    extra = run.folder / "snapshots" / "s0099.safetensors"
    extra.write_bytes(b"half written")
    assert store.load(run_id).incomplete_snapshots() == ["snapshots/s0099.safetensors"]


def test_process_killed_mid_training_leaves_a_loadable_run(store):
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(store.root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnviz", "train", "--quiet", "--model", "simple_cnn",
         "--n-samples", "3000", "--epochs", "50", "--batch-size", "16"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            ids = store.run_ids()
            if ids and store.load(ids[0]).n_snapshots >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("training never wrote a second snapshot")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = store.load(store.run_ids()[0])
    assert run.record.status == "running"  # shown as interrupted once its heartbeat is stale
    for snap in run.snapshots():
        for name in run.record.params:
            assert snap.values(name).size == run.record.params[name].numel


def test_export_import_round_trip(store, run_id, tmp_path):
    data = store.export_zip(run_id)
    other = RunStore(tmp_path / "other")
    new_id = other.import_zip(data)
    assert new_id == run_id
    a, b = store.load(run_id), other.load(new_id)
    assert a.record.init_digest == b.record.init_digest
    for name in a.record.params:
        assert (a.snapshot(-1).values(name) == b.snapshot(-1).values(name)).all()
    assert store.import_zip(data) != run_id  # a second copy gets a new id, nothing overwritten


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _hostile_zips(good: bytes) -> dict[str, tuple[bytes, str]]:
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    snap = next(n for n in files if n.startswith("snapshots/"))
    meta = json.loads(files["run.json"])
    bad_meta = dict(meta, schema_version=99)
    return {
        "not a zip": (b"hello, this is not a zip", "not a zip"),
        "path traversal": (_zip({**files, "../evil.txt": b"x"}), "unexpected file"),
        "absolute path": (_zip({**files, "/etc/evil": b"x"}), "unexpected file"),
        "pickle inside": (_zip({**files, "snapshots/data.pkl": b"\x80\x04."}), "unexpected"),
        "no run.json": (_zip({snap: files[snap]}), "no run.json"),
        "damaged snapshot": (_zip({**files, snap: files[snap][:50]}), "damaged"),
        "missing snapshot": (_zip({"run.json": files["run.json"]}), "missing"),
        "bad json": (_zip({**files, "run.json": b"{oops"}), "damaged"),
        "future schema": (_zip({**files, "run.json": json.dumps(bad_meta).encode()}),
                          "schema version"),
    }


def test_hostile_imports_are_refused_and_change_nothing(store, run_id):
    good = store.export_zip(run_id)
    before = _tree(store.root)
    for label, (data, message) in _hostile_zips(good).items():
        with pytest.raises(StorageError, match=message):
            store.import_zip(data)
        assert _tree(store.root) == before, label


def test_import_size_limits(store, monkeypatch):
    import nnviz.store.archive as storage

    monkeypatch.setattr(storage, "MAX_IMPORT_BYTES", 10)
    with pytest.raises(StorageError, match="MiB"):
        store.import_zip(b"x" * 11)
    monkeypatch.setattr(storage, "MAX_IMPORT_BYTES", 2**30)
    monkeypatch.setattr(storage, "MAX_UNPACKED_BYTES", 100)
    with pytest.raises(StorageError, match="unpacks to"):
        store.import_zip(_zip({"run.json": b" " * 1000}))


def test_bad_run_ids_are_rejected(store):
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(StorageError, match="not a valid run id"):
            store.load(bad)


def test_run_json_lays_out_flat_and_nested_objects_item_per_line():
    """A flat object (the config) is encoded in one call, a nested one item by item: both give
    one line per item, the same bytes as json.dumps of each item, and read back equal."""
    from nnviz.store.runs import dump_json

    flat = {"a": 1, "b": 2.5, "c": "é \"quoted\"\nline", "d": None, "e": True,
            "f": float("nan"), "g": -float("inf"), "h": 1e300, "i": 0.1, "j": 10**30}
    nested = {"x": [1, 2], "y": {"z": 1.5}, "w": "v"}
    meta = {"config": flat, "params": nested, "keys": {1: "int key"}, "empty": {}, "n": 3}
    text = dump_json(meta).decode()

    def item_by_item(d: dict) -> str:
        return "{\n  " + ",\n  ".join(f"{json.dumps(str(k))}: {json.dumps(v)}"
                                     for k, v in d.items()) + "\n }"

    want = "{\n " + ",\n ".join([
        f'"config": {item_by_item(flat)}', f'"params": {item_by_item(nested)}',
        f'"keys": {item_by_item({1: "int key"})}', '"empty": {}', '"n": 3']) + "\n}\n"
    assert text == want
    back = json.loads(text)
    assert back["config"]["c"] == flat["c"] and back["config"]["j"] == 10**30
    assert back["config"]["f"] != back["config"]["f"]  # NaN kept
    assert back["params"] == nested and back["keys"] == {"1": "int key"}


def test_a_snapshot_is_written_from_its_parts_byte_for_byte(tmp_path):
    """add_snapshot writes and hashes the header and each tensor's buffer in turn (no joined
    copy): the file is encode_snapshot's bytes and run.json's checksum is theirs."""
    import hashlib

    import numpy as np
    import torch

    from nnviz.store.snapshots import encode_snapshot, encode_snapshot_parts, sha256_bytes

    flat = torch.arange(12, dtype=torch.float32)
    tensors = {"values/b": flat[4:], "values/a": flat[:4],  # views of one buffer
               "hist/a": torch.tensor([1, 2, 1], dtype=torch.int64),
               "hist/b": np.array([8], dtype=np.int64)}
    stats = {"epoch": 1.0, "step": 3, "x": float("nan")}
    whole = encode_snapshot(tensors, stats)
    parts = encode_snapshot_parts(tensors, stats)
    assert len(parts) == 5 and b"".join(parts) == whole
    assert sha256_bytes(parts) == sha256_bytes(whole) == hashlib.sha256(whole).hexdigest()
    atomic_write(tmp_path / "s.safetensors", parts, durable=False)
    assert (tmp_path / "s.safetensors").read_bytes() == whole
    odd = {"values/a": torch.zeros(2, 2)}  # not 1-D: safetensors' own writer, one part
    assert b"".join(encode_snapshot_parts(odd, stats)) == encode_snapshot(odd, stats)


@pytest.mark.parametrize("extra", [
    {},  # completed
    {"dataset": "regression", "depth": 3, "init": "too_large", "optimizer": "sgd",
     "lr": 50.0},  # diverged: NaN / Inf kept as evidence
    {"epochs": 6, "early_stopping": 1, "lr": 3.0, "optimizer": "sgd"},  # stopped early
    {"snapshots_per_epoch": 3},
])
def test_the_trainer_saves_run_json_unchecked_and_it_reads_back_valid(store, monkeypatch,
                                                                      extra):
    """The trainer builds run.json from typed values and saves it without the reader's check
    (outside the tests); what it writes still passes the reader, for every way a run ends."""
    from nnviz.store import runs as runs_mod

    monkeypatch.delenv("NNVIZ_CHECK_WRITES", raising=False)
    checks = []
    real = runs_mod.parse_run
    monkeypatch.setattr(runs_mod, "parse_run", lambda *a, **k: (checks.append(1),
                                                                real(*a, **k))[1])
    result = train(RunConfig.from_dict({**TINY, **extra}), store)
    assert checks == []  # nothing checked on the way out
    monkeypatch.setattr(runs_mod, "parse_run", real)
    run = store.load(result.run_id)  # every field checked on the way in
    assert run.record.status == result.status
    assert run.n_snapshots == len(run.record.snapshots) and not run.damaged_snapshots
    raw = json.loads((run.folder / "run.json").read_bytes())
    assert run.record.to_json() == raw  # read -> to_json is what was written


def test_other_writers_still_check_run_json_before_saving(store):
    """A writer that is not the trainer's (nnviz.watch, checkpoints) checks what it saves:
    a bad value is refused before it reaches the disk."""
    writer = store.create(RunConfig.from_dict(TINY), "h", {})
    before = (writer.folder / "run.json").read_bytes()
    with pytest.raises(StorageError, match="status"):
        writer.update(status="half-done")
    assert (writer.folder / "run.json").read_bytes() == before


def test_runs_made_within_one_second_get_distinct_ids_in_one_mkdir_each(tmp_path,
                                                                        monkeypatch):
    """Runs of one config started within a second are -2, -3, ...; the suffix this process
    used last is tried next (not every taken name again), and a name another process took
    meanwhile is stepped over."""
    cfg = RunConfig.from_dict(TINY)
    store = RunStore(tmp_path / "new" / "runs")  # not there yet
    monkeypatch.setattr(time, "strftime", lambda *_: "20260101-000000")
    made = []
    real_mkdir = Path.mkdir
    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: (made.append(self.name),
                                                              real_mkdir(self, *a, **k))[1])
    ids = [store.create(cfg, "h", {}).run_id for _ in range(5)]
    assert len(set(ids)) == 5 and ids[1] == f"{ids[0]}-2" and ids[4] == f"{ids[0]}-5"
    # one each; the first found the runs folder missing, made it and tried again
    assert [m for m in made if m.startswith("2026")] == [ids[0], *ids]
    (store.root / f"{ids[0]}-6").mkdir()  # another process takes the next name
    assert store.create(cfg, "h", {}).run_id == f"{ids[0]}-7"


def test_a_finished_run_is_fsynced_before_its_process_exits(store, tmp_path):
    """finish() makes the run's files durable on the process's one fsync thread; a process
    that exits right after finish still fsyncs every file and folder of the run first."""
    log = tmp_path / "fsyncs"
    code = f"""
import os
from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore
real = os.fsync
def logged(fd):
    real(fd)
    with open({str(log)!r}, "a") as f:
        f.write(os.readlink(f"/proc/self/fd/{{fd}}") + "\\n")
os.fsync = logged
for _ in range(2):
    train(RunConfig.from_dict({TINY!r}), RunStore({str(store.root)!r}))
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
    synced = log.read_text().split()
    for run_id in store.run_ids():
        folder = store.root / run_id
        want = {str(folder / "run.json"), str(folder / "snapshots"), str(folder),
                *(str(p) for p in (folder / "snapshots").iterdir())}
        assert want <= set(synced)
    assert str(store.root) in synced


def test_a_crash_between_a_snapshot_and_its_listing_leaves_an_openable_run(store,
                                                                          monkeypatch):
    """Killed after a snapshot file is written but before run.json lists it (the order every
    write keeps): the run opens with every listed snapshot, the unlisted file is reported as
    incomplete and never read as data."""
    from nnviz.store import runs as runs_mod

    cfg = RunConfig.from_dict({**TINY, "epochs": 3})
    real = runs_mod.RunWriter.save_soon
    calls = []

    def crash(self):
        calls.append(1)
        if len(calls) == 3:  # the third snapshot's file is on disk, not yet listed
            raise KeyboardInterrupt
        self.flush()  # list each earlier one at once

    monkeypatch.setattr(runs_mod.RunWriter, "save_soon", crash)
    monkeypatch.setattr(runs_mod.RunWriter, "finish", lambda *a, **k: None)  # killed: no end
    with pytest.raises(KeyboardInterrupt):
        train(cfg, store)
    monkeypatch.setattr(runs_mod.RunWriter, "save_soon", real)
    run = store.load(store.run_ids()[0])
    assert run.record.status == "running"
    assert run.n_snapshots == len(run.record.snapshots) >= 1 and not run.damaged_snapshots
    assert run.incomplete_snapshots() == [f"snapshots/s{len(run.record.snapshots):04d}"
                                          ".safetensors"]


def test_a_snapshot_file_is_written_under_its_own_name_and_never_left_half_done(tmp_path,
                                                                               monkeypatch):
    """write_new: one create, no temp file; a failing write removes what it began; a leftover
    file of the same name (an unlisted one from a crash) is replaced whole."""
    from nnviz.store import runs as runs_mod

    target = tmp_path / "snapshots" / "s0000.safetensors"  # the folder is made on first use
    runs_mod.write_new(target, [b"head", memoryview(b"-data")])
    assert target.read_bytes() == b"head-data"
    assert [p.name for p in target.parent.iterdir()] == ["s0000.safetensors"]
    runs_mod.write_new(target, b"again")  # a leftover: replaced, atomically
    assert target.read_bytes() == b"again"

    class Full(list):
        def __iter__(self):
            yield b"part"
            raise OSError(28, "No space left on device")

    fresh = tmp_path / "snapshots" / "s0001.safetensors"
    with pytest.raises(OSError, match="No space"):
        runs_mod.write_new(fresh, Full())
    assert not fresh.exists()
    assert [p.name for p in target.parent.iterdir()] == ["s0000.safetensors"]


def test_a_snapshot_write_finishes_partial_writes_and_long_buffer_lists(tmp_path,
                                                                        monkeypatch):
    """write_new writes every byte, in order, past IOV_MAX buffers and when the OS writes
    only part of what it was given."""
    from nnviz.store import runs as runs_mod

    parts = [b"ab", memoryview(b"cde"), b"", memoryview(bytearray(b"xyz" * 100))] * 400
    want = b"".join(bytes(p) for p in parts)
    runs_mod.write_new(tmp_path / "whole", parts)
    assert (tmp_path / "whole").read_bytes() == want
    if hasattr(os, "writev"):
        real = os.writev
        monkeypatch.setattr(os, "writev", lambda fd, bufs: real(fd, [bytes(bufs[0])[:5]]))
        runs_mod.write_new(tmp_path / "parts", parts)
        assert (tmp_path / "parts").read_bytes() == want
