"""Hostile input: every import failure is a StorageError and leaves nothing behind; concurrent
imports, long ids, exports of broken runs, orphans and ``nnviz doctor``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.errors import StorageError
from nnviz.store.runs import RUN_ID_MAX, RunStore

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model="mlp", dataset="moons", n_samples=120, batch_size=32, epochs=1, depth=1,
            width=4)


@pytest.fixture(scope="module")
def good_zip(tmp_path_factory) -> bytes:
    store = RunStore(tmp_path_factory.mktemp("src"))
    run_id = train(RunConfig.from_dict(TINY), store).run_id
    return store.export_zip(run_id)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def make_zip(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def with_meta(good: bytes, change) -> bytes:
    files = members(good)
    meta = json.loads(files["run.json"])
    change(meta)
    return make_zip({**files, "run.json": json.dumps(meta).encode()})


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def _set(path: tuple, value):
    def change(meta):
        target = meta
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return change


def _patch_crc(data: bytes) -> bytes:
    """Flip the CRC of every member: zipfile raises BadZipFile at the end of reading."""
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        i = out.find(sig)
        while i >= 0:
            out[i + off] ^= 0xFF
            i = out.find(sig, i + 4)
    return bytes(out)


def _bad_deflate(good: bytes) -> bytes:
    """run.json's deflate stream overwritten with garbage: zlib.error while inflating."""
    files = members(good)
    data = bytearray(make_zip(files))
    i = data.find(b"PK\x03\x04")
    name_len, extra_len = int.from_bytes(data[i + 26:i + 28], "little"), \
        int.from_bytes(data[i + 28:i + 30], "little")
    start = i + 30 + name_len + extra_len
    data[start:start + 40] = b"\xff" * 40
    return bytes(data)


def _ppmd(good: bytes) -> bytes:
    """A member marked as PPMd (method 98), which zipfile cannot decode."""
    data = bytearray(make_zip(members(good), zipfile.ZIP_STORED))
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = data.find(sig)
        while i >= 0:
            data[i + off:i + off + 2] = (98).to_bytes(2, "little")
            i = data.find(sig, i + 4)
    return bytes(data)


def hostile_zips(good: bytes) -> dict[str, tuple[bytes, str]]:
    files = members(good)
    deep = b"[" * 100_000 + b"]" * 100_000
    return {
        "deep json": (make_zip({**files, "run.json": deep}), "nested|damaged"),
        "deep json in config": (make_zip({**files, "run.json": files["run.json"].replace(
            b'"config": {', b'"config": {"x": ' + b"[" * 50_000 + b"]" * 50_000 + b", ")}),
            "nested|damaged|Unknown"),
        "lr 10e400": (with_meta(good, _set(("config", "lr"), "10e400")), "lr"),
        "lr huge int": (make_zip({**files, "run.json": files["run.json"].replace(
            b'"lr": 0.001', b'"lr": 1' + b"0" * 400)}), "lr"),
        "int of 5000 digits": (make_zip({**files, "run.json": files["run.json"].replace(
            b'"seed": 42', b'"seed": ' + b"9" * 5000)}), "damaged|seed"),
        "config not an object": (with_meta(good, _set(("config",), [1, 2])), "config"),
        "config a string": (with_meta(good, _set(("config",), "x")), "config"),
        "history a string": (with_meta(good, _set(("history",), "abc")), "history"),
        "history null": (with_meta(good, _set(("history",), None)), "history"),
        "created a string": (with_meta(good, _set(("created",), "now")), "created"),
        "created 1e300": (with_meta(good, _set(("created",), 1e300)), "created"),
        "created NaN": (with_meta(good, _set(("created",), float("nan"))), "created"),
        "run.json a list": (make_zip({**files, "run.json": b"[]"}), "not an object"),
        "run.json not utf-8": (make_zip({**files, "run.json": b"\xff\xfe{"}), "damaged"),
        "bad crc": (_patch_crc(good), "damaged"),
        "bad deflate": (_bad_deflate(good), "damaged"),
        "ppmd": (_ppmd(good), "compression"),
        "unlisted snapshot": (make_zip({**files, "snapshots/s0099.safetensors":
                                        files["snapshots/s0000.safetensors"]}), "does not list"),
        "snapshot swapped": (make_zip({**files, "snapshots/s0000.safetensors":
                                       files["snapshots/s0001.safetensors"]}), "checksum"),
        "duplicate member": (_duplicate(files), "twice"),
        "symlink": (_symlink(files), "symbolic link"),
        "encrypted flag": (_encrypted(files), "encrypted"),
        "run id too long": (with_meta(good, _set(("run_id",), "x" * 81)), "run_id"),
        "snapshot path traversal": (with_meta(good, _set(("snapshots", 0, "file"),
                                                         "../../../etc/passwd")), "file"),
    }


def _duplicate(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zf.writestr("run.json", files["run.json"])
    return buf.getvalue()


def _symlink(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            if name.endswith("s0000.safetensors"):
                info.external_attr = (0o120777 << 16)
            zf.writestr(info, content)
    return buf.getvalue()


def _encrypted(files: dict[str, bytes]) -> bytes:
    data = bytearray(make_zip(files))
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(sig)
        while i >= 0:
            data[i + off] |= 0x1
            i = data.find(sig, i + 4)
    return bytes(data)


def test_every_hostile_zip_is_a_storage_error_and_leaves_nothing(store, good_zip):
    before = sorted(p.name for p in store.root.iterdir())
    for label, (data, words) in hostile_zips(good_zip).items():
        with pytest.raises(StorageError, match=words or None) as info:
            store.import_zip(data)
        assert str(info.value).startswith("Import refused"), label
        assert sorted(p.name for p in store.root.iterdir()) == before, label
    assert leftovers(store.root) == []


def test_staging_removed_even_on_unexpected_errors(store, good_zip, monkeypatch):
    import nnviz.store.archive as archive

    def boom(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(archive, "read_record", boom)
    with pytest.raises(KeyboardInterrupt):
        store.import_zip(good_zip)
    assert leftovers(store.root) == []


def test_leftover_staging_of_a_crash_is_removed_at_start_up(store, good_zip):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = store.root / f".import-{dead.pid}-abcd"
    (crashed / "snapshots").mkdir(parents=True)
    (crashed / "run.json").write_bytes(b"{}")
    mine = store.root / f".import-{os.getpid()}-live"  # an import in progress: kept
    mine.mkdir()
    removed = store.clean_orphans()
    assert crashed.name in removed and not crashed.exists() and mine.exists()


def test_concurrent_imports_of_one_zip_all_succeed(store, good_zip):
    ids, errors = [], []

    def work():
        try:
            ids.append(store.import_zip(good_zip))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(ids)) == 4
    rows, problems = store.list_runs()
    assert {r["run_id"] for r in rows} == set(ids) and problems == []
    assert leftovers(store.root) == []


def test_imported_ids_never_exceed_the_limit(store, good_zip):
    long_id = "r" * RUN_ID_MAX
    data = with_meta(good_zip, _set(("run_id",), long_id))
    ids = [store.import_zip(data) for _ in range(3)]
    assert ids[0] == long_id and len(set(ids)) == 3
    assert all(len(i) <= RUN_ID_MAX for i in ids)
    for run_id in ids:
        store.load(run_id)
        store.delete(run_id)
    assert store.run_ids() == []


def test_import_of_a_running_run_is_interrupted(store, good_zip):
    run_id = store.import_zip(with_meta(good_zip, _set(("status",), "running")))
    run = store.load(run_id)
    assert run.record.status == "interrupted" and run.record.pid is None


def test_export_with_a_missing_snapshot_is_a_clear_error(store, good_zip):
    run_id = store.import_zip(good_zip)
    (store.root / run_id / "snapshots" / "s0001.safetensors").unlink()
    with pytest.raises(StorageError, match=r"snapshot 1 .*missing"):
        store.export_zip(run_id)
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(store.root)}
    out = subprocess.run([sys.executable, "-m", "nnviz", "export", run_id, "-o",
                          str(store.root.parent / "x.zip")], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "missing" in out.stderr


def test_damaged_run_still_exports_and_deletes(store, good_zip):
    run_id = store.import_zip(good_zip)
    (store.root / run_id / "run.json").write_text('{"schema_version": 2, "history": "abc"}')
    rows, problems = store.list_runs()
    assert rows == [] and problems[0].startswith(f"{run_id}: damaged: ")
    data = store.export_zip(run_id)
    assert set(members(data)) >= {"run.json", "snapshots/s0000.safetensors"}
    store.delete(run_id)
    assert store.run_ids() == []


def test_orphans_cleaned_and_reported_by_doctor(store, good_zip):
    ok = store.import_zip(good_zip)
    bad = store.import_zip(good_zip)
    (store.root / bad / "run.json").write_text("{ not json")
    old = time.time() - 3600
    tmp = store.root / ok / ".run.json.abc.tmp"
    tmp.write_bytes(b"half")
    unlisted = store.root / ok / "snapshots" / "s0042.safetensors"
    unlisted.write_bytes(b"half written")
    runless = store.root / "20200101-000000-mlp-x"
    runless.mkdir()
    for p in (tmp, runless):
        os.utime(p, (old, old))
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(store.root)}
    cmd = [sys.executable, "-m", "nnviz", "doctor", "--json"]
    report = json.loads(subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                       check=True).stdout)
    assert report["ok"] == [ok] and [d["run_id"] for d in report["damaged"]] == [bad]
    assert len(report["orphans"]) == 3 and unlisted.exists()  # reported, not yet removed
    out = subprocess.run([*cmd, "--clean"], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    assert len(json.loads(out.stdout)["orphans"]) == 3
    assert not tmp.exists() and not unlisted.exists() and not runless.exists()
    assert (store.root / bad).exists()  # damaged runs are kept for their owner
    store.load(ok).snapshot(-1)


def test_cli_list_and_show_survive_a_damaged_run(store, good_zip):
    ok = store.import_zip(good_zip)
    bad = store.import_zip(with_meta(good_zip, lambda m: m.update(run_id="zzz")))
    (store.root / bad / "run.json").write_text(json.dumps({"schema_version": 2,
                                                           "config": {}, "history": 3}))
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(store.root)}
    out = subprocess.run([sys.executable, "-m", "nnviz", "list"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and ok in out.stdout and f"{bad}: damaged:" in out.stderr
    out = subprocess.run([sys.executable, "-m", "nnviz", "show", bad], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
