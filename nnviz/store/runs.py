"""Runs on disk: one folder per run, JSON metadata and safetensors snapshots.

Layout of ``<runs>/<run_id>/``::

    run.json                  schema_version, config, config_hash, status, history, params,
                              layers, environment, init_digest, snapshots (the committed list)
    snapshots/s0000.safetensors   one per snapshot: tensors ``values/<param>`` (all values up to
                              VALUE_LIMIT elements, else a fixed-size sample) and ``hist/<param>``
                              (counts on the run's recording edges); the snapshot's statistics as
                              JSON in the safetensors metadata key ``nnviz``.
    CANCEL                    present while a cancel is requested (any process may create it)

Every file is written atomically (temp file, fsync, rename). A snapshot file is written before
``run.json`` lists it, so a process killed in between leaves a file that is not listed: it is
reported as an incomplete snapshot, never loaded as data. Nothing here unpickles: safetensors and
JSON only.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from nnviz.config import RunConfig
from nnviz.errors import ConfigError, StorageError

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
CANCEL_FILE = "CANCEL"
SNAP_DIR = "snapshots"
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
SNAP_RE = re.compile(r"^snapshots/s(\d{4})\.safetensors$")
MAX_IMPORT_BYTES = 200 * 2**20      # zip file size accepted for import
MAX_UNPACKED_BYTES = 1024 * 2**20   # total size once unpacked (zip-bomb guard)
MAX_IMPORT_FILES = 2000
HEARTBEAT_STALE_S = 120  # a "running" run not updated for this long is shown as interrupted


def default_root() -> Path:
    """The runs folder: $NNVIZ_RUNS_DIR, or ./runs."""
    return Path(os.environ.get("NNVIZ_RUNS_DIR") or "runs")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode_snapshot(tensors: dict[str, torch.Tensor], stats: dict[str, Any]) -> bytes:
    """Serialise one snapshot: tensors plus its statistics as JSON metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return st_save(tensors, metadata={"nnviz": json.dumps(stats, allow_nan=True)})


@dataclass
class Snapshot:
    """One recorded moment: statistics for every parameter and layer, values on demand."""

    index: int
    path: Path
    stats: dict[str, Any]

    @property
    def epoch(self) -> float:
        return float(self.stats["epoch"])

    def values(self, param: str) -> np.ndarray:
        """The recorded values of a parameter (all of them, or the fixed-size sample)."""
        return self._tensor(f"values/{param}").numpy()

    def hist_counts(self, param: str) -> np.ndarray:
        """Counts on the run's recording edges (see Run.params[param]['edges'])."""
        return self._tensor(f"hist/{param}").numpy()

    def _tensor(self, key: str) -> torch.Tensor:
        try:
            with safe_open(self.path, framework="pt") as f:
                return f.get_tensor(key)
        except FileNotFoundError:
            raise StorageError(f"Snapshot file {self.path} is missing.") from None
        except Exception as exc:  # safetensors raises its own error types
            raise StorageError(f"Snapshot {self.path.name} has no tensor {key!r}: {exc}") from None


def read_snapshot(path: Path, index: int) -> Snapshot:
    """Open a snapshot file, checking its header; raise StorageError if it is damaged."""
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        stats = json.loads(meta["nnviz"])
    except FileNotFoundError:
        raise StorageError(f"Snapshot file {path.name} is missing.") from None
    except Exception as exc:
        raise StorageError(f"Snapshot file {path.name} is damaged ({exc}).") from None
    return Snapshot(index=index, path=path, stats=stats)


class Run:
    """A run loaded from disk: its metadata, and snapshots read on demand."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = folder
        self.meta = meta
        self._cache: dict[int, Snapshot] = {}

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    @property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.meta["config"])

    @property
    def status(self) -> str:
        return _effective_status(self.meta)

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.meta.get("history", [])

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        return self.meta.get("params", {})

    @property
    def layers(self) -> list[dict[str, Any]]:
        return self.meta.get("layers", [])

    @property
    def n_snapshots(self) -> int:
        return len(self.meta.get("snapshots", []))

    def snapshot(self, index: int) -> Snapshot:
        """Snapshot number ``index`` (0 = at init); negative indices count from the end."""
        entries = self.meta.get("snapshots", [])
        if not entries:
            raise StorageError(f"Run {self.run_id} has no snapshots yet.")
        if index < 0:
            index += len(entries)
        if not 0 <= index < len(entries):
            raise StorageError(
                f"Run {self.run_id} has snapshots 0 to {len(entries) - 1}; {index} does not exist."
            )
        if index not in self._cache:
            self._cache[index] = read_snapshot(self.folder / entries[index]["file"], index)
        return self._cache[index]

    def snapshots(self) -> Iterator[Snapshot]:
        for i in range(self.n_snapshots):
            yield self.snapshot(i)

    def snapshot_for_epoch(self, epoch: float) -> Snapshot:
        """The last snapshot taken at or before ``epoch``."""
        entries = self.meta.get("snapshots", [])
        best = 0
        for i, entry in enumerate(entries):
            if entry["epoch"] <= epoch + 1e-9:
                best = i
        return self.snapshot(best)

    def incomplete_snapshots(self) -> list[str]:
        """Snapshot files on disk that run.json does not list (a write cut off mid-way)."""
        listed = {e["file"] for e in self.meta.get("snapshots", [])}
        folder = self.folder / SNAP_DIR
        if not folder.is_dir():
            return []
        return sorted(
            f"{SNAP_DIR}/{p.name}" for p in folder.glob("s*.safetensors")
            if f"{SNAP_DIR}/{p.name}" not in listed
        )

    def summary(self) -> dict[str, Any]:
        """One row for lists: id, label, status, epochs done, last losses."""
        cfg = self.meta["config"]
        last = self.history[-1] if self.history else {}
        own = self.meta.get("source") or {}  # nnviz.watch / checkpoints: the config is a stand-in
        return {
            "run_id": self.run_id,
            "name": cfg.get("name") or "",
            "model": str(own.get("model_class", own.get("kind", ""))).rpartition(".")[2]
            if own else cfg["model"],
            "init": "(own)" if own else cfg["init"],
            "dataset": cfg["dataset"],
            "seed": cfg["seed"],
            "status": self.status,
            "status_detail": self.meta.get("status_detail", ""),
            "epochs_done": len(self.history),
            "epochs": cfg["epochs"],
            "train_loss": last.get("train_loss"),
            "val_loss": last.get("val_loss"),
            "val_acc": last.get("val_acc"),
            "created": self.meta.get("created"),
            "config_hash": self.meta.get("config_hash", ""),
            "init_digest": self.meta.get("init_digest", ""),
        }


def _effective_status(meta: dict[str, Any]) -> str:
    status = meta.get("status", "failed")
    if status == "running" and time.time() - float(meta.get("updated", 0)) > HEARTBEAT_STALE_S:
        return "interrupted"
    return status


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / RUN_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StorageError(f"{folder.name}: {RUN_FILE} is missing (not an nnviz run).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StorageError(f"{folder.name}: {RUN_FILE} is damaged ({exc}).") from None
    if not isinstance(meta, dict):
        raise StorageError(f"{folder.name}: {RUN_FILE} is not a JSON object.")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StorageError(
            f"{folder.name}: saved with schema version {version!r}; this nnviz reads version "
            f"{SCHEMA_VERSION}."
        )
    for key in ("run_id", "config", "snapshots", "status"):
        if key not in meta:
            raise StorageError(f"{folder.name}: {RUN_FILE} lacks {key!r}.")
    try:
        RunConfig.from_dict(meta["config"])
    except ConfigError as exc:
        raise StorageError(f"{folder.name}: its config is invalid ({exc}).") from None
    return meta


class RunWriter:
    """Writes one run as it trains; every call leaves the folder loadable."""

    def __init__(self, store: RunStore, folder: Path, meta: dict[str, Any]) -> None:
        self.store = store
        self.folder = folder
        self.meta = meta

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    def update(self, **fields: Any) -> None:
        """Set metadata fields and save run.json atomically."""
        self.meta.update(fields)
        self.flush()

    def flush(self) -> None:
        self.meta["updated"] = time.time()
        atomic_write(self.folder / RUN_FILE, json.dumps(self.meta, indent=1, allow_nan=True)
                     .encode())

    def add_snapshot(self, tensors: dict[str, torch.Tensor], stats: dict[str, Any]) -> int:
        """Write a snapshot file, then list it in run.json (in that order)."""
        index = len(self.meta["snapshots"])
        rel = f"{SNAP_DIR}/s{index:04d}.safetensors"
        atomic_write(self.folder / rel, encode_snapshot(tensors, {**stats, "index": index}))
        self.meta["snapshots"].append(
            {"index": index, "epoch": stats["epoch"], "step": stats["step"], "file": rel}
        )
        self.flush()
        return index

    def cancel_requested(self) -> bool:
        return (self.folder / CANCEL_FILE).exists()

    def finish(self, status: str, detail: str = "") -> None:
        (self.folder / CANCEL_FILE).unlink(missing_ok=True)
        self.update(status=status, status_detail=detail, finished=time.time())


class RunStore:
    """The runs folder: create, list, load, delete, export and import runs."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_root()

    def _folder(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
            raise StorageError(f"{run_id!r} is not a valid run id.")
        return self.root / run_id

    def create(self, cfg: RunConfig, config_hash: str, extra: dict[str, Any]) -> RunWriter:
        """A new run folder with status 'running'."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{cfg.model}-{cfg.init}-s{cfg.seed}".replace("_", "-")
        run_id, n = base, 1
        while True:
            try:
                (self.root / run_id).mkdir()
                break
            except FileExistsError:
                n += 1
                run_id = f"{base}-{n}"
        folder = self.root / run_id
        meta = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "config": cfg.to_dict(),
            "config_hash": config_hash,
            "created": time.time(),
            "status": "running",
            "status_detail": "",
            "history": [],
            "snapshots": [],
            **extra,
        }
        writer = RunWriter(self, folder, meta)
        writer.flush()
        return writer

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            (p.name for p in self.root.iterdir()
             if p.is_dir() and RUN_ID_RE.match(p.name) and (p / RUN_FILE).exists()),
            reverse=True,
        )

    def load(self, run_id: str) -> Run:
        """Load a run's metadata; StorageError if missing or damaged."""
        folder = self._folder(run_id)
        if not folder.is_dir():
            raise StorageError(f"No run named {run_id!r} in {self.root}.")
        return Run(folder, _read_meta(folder))

    def list_runs(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(summaries newest first, messages about folders that could not be read)."""
        rows, problems = [], []
        for run_id in self.run_ids():
            try:
                rows.append(self.load(run_id).summary())
            except StorageError as exc:
                problems.append(str(exc))
        rows.sort(key=lambda r: r.get("created") or 0, reverse=True)
        return rows, problems

    def find_by_hash(self, config_hash: str, statuses: tuple[str, ...] = ("completed",)
                     ) -> dict[str, Any] | None:
        """The summary row of the newest run with this config hash and one of these statuses."""
        rows, _ = self.list_runs()
        for row in rows:
            if row["config_hash"] == config_hash and row["status"] in statuses:
                return row
        return None

    def request_cancel(self, run_id: str) -> None:
        """Ask a training run (in any process) to stop after its current step."""
        folder = self._folder(run_id)
        if folder.is_dir():
            atomic_write(folder / CANCEL_FILE, b"cancel\n")

    def delete(self, run_id: str) -> None:
        """Remove a run folder (renamed away first, so a half-deleted run never lists)."""
        folder = self._folder(run_id)
        if not folder.is_dir():
            raise StorageError(f"No run named {run_id!r} to delete.")
        trash = self.root / f".deleting-{run_id}-{os.getpid()}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def export_zip(self, run_id: str) -> bytes:
        """The run as one zip file (run.json and its listed snapshots)."""
        run = self.load(run_id)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(RUN_FILE, json.dumps(run.meta, indent=1, allow_nan=True))
            for entry in run.meta["snapshots"]:
                zf.write(run.folder / entry["file"], entry["file"])
        return buf.getvalue()

    def import_zip(self, data: bytes) -> str:
        """Validate and add a run from a zip; returns its id. A bad file changes nothing."""
        if len(data) > MAX_IMPORT_BYTES:
            raise StorageError(
                f"The file is {len(data) / 2**20:.0f} MiB; runs up to "
                f"{MAX_IMPORT_BYTES // 2**20} MiB can be imported."
            )
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise StorageError("This is not a zip file exported by nnviz.") from None
        with zf:
            infos = zf.infolist()
            _check_members(infos)
            staging = Path(tempfile.mkdtemp(prefix=".import-", dir=self._ensure_root()))
            try:
                for info in infos:
                    if info.is_dir():
                        continue
                    target = staging / info.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                meta = _read_meta(staging)
                _check_snapshots(staging, meta)
                run_id = self._free_id(str(meta["run_id"]))
                meta["run_id"] = run_id
                if meta.get("status") == "running":
                    meta["status"] = "interrupted"
                atomic_write(staging / RUN_FILE, json.dumps(meta, indent=1, allow_nan=True)
                             .encode())
                os.replace(staging, self.root / run_id)
                return run_id
            except (StorageError, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if isinstance(exc, StorageError):
                    raise StorageError(f"Import refused: {exc}") from None
                raise StorageError(f"Import refused: the zip is damaged ({exc}).") from None

    def _ensure_root(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def _free_id(self, wanted: str) -> str:
        if not RUN_ID_RE.match(wanted):
            raise StorageError(f"run id {wanted!r} is not valid.")
        run_id, n = wanted, 1
        while (self.root / run_id).exists():
            n += 1
            run_id = f"{wanted}-imported{'' if n == 2 else n - 1}"
        return run_id


def _check_members(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_IMPORT_FILES:
        raise StorageError(f"Import refused: {len(infos)} files in the zip is too many.")
    total = 0
    names = set()
    for info in infos:
        name = info.filename
        if info.is_dir():
            if name not in (f"{SNAP_DIR}/",):
                raise StorageError(f"Import refused: unexpected folder {name!r} in the zip.")
            continue
        if name != RUN_FILE and not SNAP_RE.match(name):
            raise StorageError(
                f"Import refused: unexpected file {name!r} (an nnviz run holds run.json and "
                "snapshots/sNNNN.safetensors only)."
            )
        if info.flag_bits & 0x1:
            raise StorageError("Import refused: encrypted zip files are not supported.")
        total += info.file_size
        names.add(name)
    if total > MAX_UNPACKED_BYTES:
        raise StorageError(
            f"Import refused: it unpacks to {total / 2**20:.0f} MiB, over the "
            f"{MAX_UNPACKED_BYTES // 2**20} MiB limit."
        )
    if RUN_FILE not in names:
        raise StorageError("Import refused: the zip has no run.json (not an nnviz run).")


def _check_snapshots(folder: Path, meta: dict[str, Any]) -> None:
    entries = meta["snapshots"]
    if not isinstance(entries, list):
        raise StorageError("run.json: 'snapshots' is not a list.")
    for i, entry in enumerate(entries):
        rel = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not SNAP_RE.match(rel):
            raise StorageError(f"run.json: snapshot {i} has a bad file name {rel!r}.")
        read_snapshot(folder / rel, i)
