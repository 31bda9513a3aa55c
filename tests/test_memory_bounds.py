"""Memory is bounded by what is really read: a small zip that declares small sizes but inflates
large, and gzip bombs in a data folder, are refused with peak RSS growth <= 100 MB (VmHWM from
/proc/self/status, measured in a fresh process)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from nnviz.engine.data import write_fake_dataset

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 100
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")

MEASURE = r"""
import json, sys
from pathlib import Path

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

from nnviz.engine.data import load_dataset
from nnviz.errors import NnvizError
from nnviz.store.runs import RunStore

mode, path, runs = sys.argv[1], sys.argv[2], sys.argv[3]
data = Path(path).read_bytes() if mode == "zip" else None
try:  # warm up the code paths (lazy imports, first allocations) before the baseline
    RunStore(runs).import_zip(b"PK\x05\x06" + bytes(18))
except NnvizError:
    pass
base = hwm_kb()
try:
    if mode == "zip":
        RunStore(runs).import_zip(data)
    else:
        load_dataset("mnist", data_dir=path, n_samples=100)
    result = "accepted"
except NnvizError as exc:
    result = str(exc)
print(json.dumps({"growth_mb": (hwm_kb() - base) / 1024, "result": result}))
"""


def _measure(mode: str, path: Path, runs: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, mode, str(path), str(runs)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _lying_zip(inflated_mb: int, declared: int) -> bytes:
    """A zip whose one snapshot member inflates to ``inflated_mb`` MiB of zeros but whose
    headers declare ``declared`` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("run.json", b"{}")
        with zf.open("snapshots/s0000.safetensors", "w") as f:
            chunk = bytes(2**20)
            for _ in range(inflated_mb):
                f.write(chunk)
    data = bytearray(buf.getvalue())
    name = b"snapshots/s0000.safetensors"
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = data.find(sig)
        while i >= 0:
            name_at = i + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name:
                data[i + off:i + off + 4] = declared.to_bytes(4, "little")
            i = data.find(sig, i + 4)
    return bytes(data)


def test_zip_declaring_small_sizes_but_inflating_large_is_refused(tmp_path):
    data = _lying_zip(inflated_mb=600, declared=1000)
    assert len(data) < 2 * 2**20  # a small upload
    path = tmp_path / "bomb.zip"
    path.write_bytes(data)
    got = _measure("zip", path, tmp_path / "runs")
    assert got["result"].startswith("Import refused"), got
    assert got["growth_mb"] <= LIMIT_MB, got
    assert not any(p.name.startswith(".import-") for p in (tmp_path / "runs").iterdir())


def test_zip_declaring_its_real_large_size_is_refused_before_unpacking(tmp_path):
    data = _lying_zip(inflated_mb=600, declared=600 * 2**20)
    path = tmp_path / "bomb.zip"
    path.write_bytes(data)
    got = _measure("zip", path, tmp_path / "runs")
    assert "limit" in got["result"], got
    assert got["growth_mb"] <= LIMIT_MB, got


def _gz_bomb(path: Path, head: bytes, zeros_mb: int) -> None:
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip container
    with open(path, "wb") as f:
        f.write(comp.compress(head))
        chunk = bytes(2**20)
        for _ in range(zeros_mb):
            f.write(comp.compress(chunk))
        f.write(comp.flush())


@pytest.mark.parametrize("valid_header", [False, True])
def test_gz_bomb_in_a_data_folder_is_refused(tmp_path, valid_header):
    write_fake_dataset("mnist", tmp_path, n_train=12, n_test=6, seed=0)
    target = tmp_path / "train-images-idx3-ubyte"
    target.unlink()
    # a valid header announces 60,000 images (47 MB, the real file's size); then 400 MiB more
    head = np.array([0x803, 60_000, 28, 28], dtype=">u4").tobytes() if valid_header else b""
    _gz_bomb(tmp_path / "train-images-idx3-ubyte.gz", head, zeros_mb=400)
    assert (tmp_path / "train-images-idx3-ubyte.gz").stat().st_size < 2 * 2**20
    got = _measure("data", tmp_path, tmp_path / "runs")
    assert "train-images-idx3-ubyte.gz" in got["result"], got
    assert ("more than" if valid_header else "magic number") in got["result"], got
    assert got["growth_mb"] <= LIMIT_MB, got
