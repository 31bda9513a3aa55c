"""Runs on disk: one folder per run, ``run.json`` plus one safetensors file per snapshot.

Layout of ``<runs>/<run_id>/``::

    run.json                      the run's record (``nnviz.store.format``: every field stated
                                  and checked there), listing the committed snapshots
    snapshots/s0000.safetensors   one per snapshot (``nnviz.store.snapshots``)
    CANCEL                        present while a cancel is requested (any process may create it)

run.json is written atomically (temp file, then ``os.replace``): a reader, or a process killed at
any moment, sees its old or new content, never a mix. A snapshot file is written once, under its
own name (``write_new``: no temp file), and complete before ``run.json`` lists it with its
checksum, so a process killed before the listing leaves a file that is not listed (whole or cut
off): it is reported as an incomplete snapshot, never loaded as data, and removed by
``clean_orphans``.
While a run trains, ``RunWriter`` saves run.json after its first snapshot and then at most every
``save_interval_s`` (the trainer: 1 s; ``nnviz.watch``: at every snapshot) and always at its end;
the trainer's ``RunStore.create`` defers the first save, and its writer does not list the first
snapshot at once (``list_first``): a run is listed within 1 s, when a caller asks (the app's
"started" event flushes), or at its end, so a run shorter than a second writes run.json once.

What survives a crash. A killed process loses nothing that was written. Against a power cut or
an OS crash, a run's files are made durable once, when it ends: ``RunWriter.finish`` fsyncs every
file the run wrote, then its folders, on a background thread that the process waits for before it
exits (one fsync per file, none per write: an fsync costs 5-30 ms on a busy disk, longer than a
small model's epoch). A crash before that may lose the newest writes: run.json then holds an
older, complete version (the run shows as interrupted), and a snapshot file that lost its data
fails its checksum and hides that epoch only; nothing lost is ever read as numbers.
Every read goes through the format's validating reader: a run that fails it is *damaged* (listed
with its reason, still deletable and exportable) and never breaks a listing; a snapshot that fails
hides only its epoch. Nothing here unpickles: safetensors and JSON only.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnviz.config import RunConfig
from nnviz.errors import StorageError
from nnviz.i18n import t
from nnviz.store.format import (
    FORMAT_VERSION,
    RUN_ID_MAX,
    RUN_ID_RE,
    SNAP_RE,
    LayerInfo,
    ParamInfo,
    RunRecord,
    SnapshotEntry,
    parse_run,
)
from nnviz.store.snapshots import (
    Snapshot,
    encode_snapshot_parts,
    read_snapshot,
    sha256_bytes,
)

if TYPE_CHECKING:  # torch is imported where tensors are written, not to read a run folder
    import torch

SCHEMA_VERSION = FORMAT_VERSION
RUN_FILE = "run.json"
CANCEL_FILE = "CANCEL"
SNAP_DIR = "snapshots"
MAX_RUN_JSON = 2 * 2**20    # a larger run.json is damaged: parsed whole, JSON costs up to ~25x
                            # its size in memory; nnviz's biggest runs write a few hundred KB
HEARTBEAT_STALE_S = 120     # a "running" run not updated for this long is shown as interrupted
ORPHAN_AGE_S = 600          # temp files and run-less folders older than this are leftovers
HOST = socket.gethostname()[:200]
_last_suffix: dict[tuple[str, str], int] = {}  # (runs folder, id base) -> next suffix to try

__all__ = ["RUN_ID_RE", "SNAP_RE", "RUN_ID_MAX", "Run", "RunStore", "RunWriter", "DamagedRun",
           "Snapshot", "default_root", "atomic_write"]


def default_root() -> Path:
    """The runs folder: $NNVIZ_RUNS_DIR, or ./runs."""
    return Path(os.environ.get("NNVIZ_RUNS_DIR") or "runs")


def atomic_write(path: Path, data: bytes | list[bytes | memoryview], durable: bool = True
                 ) -> None:
    """Write ``data`` (bytes, or buffers written one after the other) so that ``path`` holds
    either the old or the new content, never a mix.

    ``durable``: fsync the file before the rename and its folder after it (else the caller
    makes it durable later, e.g. ``RunWriter.finish``)."""
    # a name of this process and thread (O_EXCL: never another's file); a leftover of a
    # crashed process with the same pid falls back to a random name
    tmp = str(path.parent / f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        try:
            fd = os.open(tmp, flags, 0o600)  # as mkstemp: private to the user
        except FileNotFoundError:  # the folder is made on first use (no mkdir call per write)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, flags, 0o600)
    except FileExistsError:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, list):
                f.writelines(data)
            else:
                f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_path(path.parent)


def write_new(path: Path, data: bytes | list[bytes | memoryview]) -> None:
    """Write a file that no reader opens until it is complete: a snapshot, which run.json
    lists (with its checksum) only after this returns. It is created under its own name
    (``O_EXCL``: one file create, no temp file and rename); a write that fails removes it, and
    one cut off by a killed process leaves an unlisted file, reported as an incomplete
    snapshot and never read as data (as a leftover temp file would be). A file already there
    (unlisted: a leftover of a crash) is replaced atomically. Not fsynced (``finish`` is)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    name = str(path)
    try:
        try:
            fd = os.open(name, flags, 0o600)
        except FileNotFoundError:  # the folder is made on first use
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(name, flags, 0o600)
    except FileExistsError:
        atomic_write(path, data, durable=False)
        return
    try:
        try:
            _write_all(fd, data if isinstance(data, list) else [data])
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


IOV_MAX = 1024  # buffers per writev call (POSIX's minimum maximum)


def _write_all(fd: int, parts: list[bytes | memoryview]) -> None:
    """Write the buffers one after the other: ``os.writev``, up to IOV_MAX buffers a call (no
    copy into a file object's buffer: ~20 % less CPU for a snapshot), and the rest of a
    partial write until every byte is written."""
    if not hasattr(os, "writev"):  # Windows
        for part in parts:
            view = memoryview(part).cast("B")
            while view:
                view = view[os.write(fd, view):]
        return
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        batch = views[:IOV_MAX]
        done = os.writev(fd, batch)
        for i, v in enumerate(batch):  # what a partial write left, from the first unwritten
            if done < v.nbytes:
                views = [v[done:], *batch[i + 1:], *views[IOV_MAX:]]
                break
            done -= v.nbytes
        else:
            views = views[IOV_MAX:]
        views = [v for v in views if v.nbytes]


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder (its entries: renames); one gone since is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # deleted or renamed since: nothing left to make durable
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)




def dump_json(obj: Any) -> bytes:
    """run.json bytes (NaN / Infinity written as JSON's common extension, as the reader reads).

    One line per top-level key and per item of a top-level object or list (a parameter, a
    history row, a snapshot entry): readable, and written by json's C encoder (``indent``
    would switch to its pure-Python one, ten times slower on a ResNet's run.json)."""
    if not isinstance(obj, dict):
        return json.dumps(obj, allow_nan=True).encode()
    return _join_entries([_json_entry(k, v) for k, v in obj.items()])


def _dumps(v: Any) -> str:
    return json.dumps(v, allow_nan=True)


_SCALARS = (str, int, float, bool, type(None))
_ITEM_PER_LINE = json.JSONEncoder(allow_nan=True, separators=(",\n  ", ": "))


def _json_entry(key: Any, v: Any) -> str:
    """One top-level entry of dump_json: the key and its value, an item per line."""
    if isinstance(v, dict) and v:
        if all(type(x) in _SCALARS and type(k) is str for k, x in v.items()):
            # a flat object (the config): one encoder call, the same text as item by item
            text = "{\n  " + _ITEM_PER_LINE.encode(v)[1:-1] + "\n }"
        else:
            text = "{\n  " + ",\n  ".join(f"{_dumps(str(k))}: {_dumps(x)}"
                                         for k, x in v.items()) + "\n }"
    elif isinstance(v, list) and v:
        text = "[\n  " + ",\n  ".join(_dumps(x) for x in v) + "\n ]"
    else:
        text = _dumps(v)
    return f"{_dumps(str(key))}: {text}"


def _join_entries(entries: list[str]) -> bytes:
    return ("{\n " + ",\n ".join(entries) + "\n}\n").encode()


def read_record(folder: Path, name: str | None = None) -> RunRecord:
    """Read and validate ``folder/run.json``; StorageError with the reason if it is damaged."""
    label = name or folder.name
    path = folder / RUN_FILE
    try:
        size = path.stat().st_size
        if size > MAX_RUN_JSON:
            raise StorageError(f"{label}: " + t("{file} is {size} MiB, over the {most} MiB "
                                                "limit.", file=RUN_FILE,
                                                size=f"{size / 2**20:.0f}",
                                                most=MAX_RUN_JSON // 2**20))
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise StorageError(f"{label}: " + t("{file} is missing (not an nnviz run).",
                                            file=RUN_FILE)) from None
    except StorageError:
        raise
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON, UTF-8, huge ints
        text = str(exc)[:200] or type(exc).__name__
        raise StorageError(f"{label}: " + t("{file} is damaged ({why}).", file=RUN_FILE,
                                            why=text)) from None
    try:
        return parse_run(obj)
    except StorageError as exc:
        raise StorageError(f"{label}: {exc}") from None
    except RecursionError:
        raise StorageError(f"{label}: " + t("{file} is nested too deeply.", file=RUN_FILE)) \
            from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: gone all the same
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def effective_status(rec: RunRecord, now: float | None = None) -> str:
    """The status to show: a "running" run whose process is gone is "interrupted"."""
    if rec.status != "running":
        return rec.status
    now = time.time() if now is None else now
    if now - (rec.updated or rec.created) > HEARTBEAT_STALE_S:
        return "interrupted"
    if rec.pid and rec.host == HOST and not _pid_alive(rec.pid):
        return "interrupted"  # killed on this machine: no need to wait for the heartbeat
    return "running"


class Run:
    """A run loaded from disk: its validated record, and snapshots read (and checked) on demand.

    Snapshots are numbered by position among the *readable* ones: the first use of a snapshot
    opens and checks them all once, and a damaged one is left out (``damaged_snapshots`` says
    why), so one bad file hides one epoch and never the run.
    """

    def __init__(self, folder: Path, record: RunRecord) -> None:
        self.folder = folder
        self.record = record
        self._usable: list[Snapshot] | None = None
        self._damaged: list[tuple[SnapshotEntry, str]] = []

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def config(self) -> RunConfig:
        return self.record.config

    @property
    def status(self) -> str:
        return effective_status(self.record)

    def _open_all(self) -> list[Snapshot]:
        if self._usable is None:
            usable, damaged = [], []
            for entry in self.record.snapshots:
                try:
                    usable.append(read_snapshot(self.folder, entry, self.record))
                except StorageError as exc:
                    damaged.append((entry, str(exc)))
            self._usable, self._damaged = usable, damaged
        return self._usable

    @property
    def entries(self) -> list[SnapshotEntry]:
        """The readable snapshots' entries, in order (position = snapshot number)."""
        return [s.entry for s in self._open_all()]

    @property
    def damaged_snapshots(self) -> list[tuple[SnapshotEntry, str]]:
        """Listed snapshots that failed their checks, with the reason."""
        self._open_all()
        return list(self._damaged)

    @property
    def n_snapshots(self) -> int:
        return len(self._open_all())

    def snapshot(self, index: int) -> Snapshot:
        """Snapshot number ``index`` (0 = the first readable); negative counts from the end."""
        snaps = self._open_all()
        if not snaps:
            raise StorageError(t("Run {run} has no readable snapshots yet.", run=self.run_id))
        if index < 0:
            index += len(snaps)
        if not 0 <= index < len(snaps):
            raise StorageError(
                t("Run {run} has snapshots 0 to {last}; {index} does not exist.",
                  run=self.run_id, last=len(snaps) - 1, index=index)
            )
        return snaps[index]

    def snapshots(self) -> Iterator[Snapshot]:
        yield from self._open_all()

    def snapshot_for_epoch(self, epoch: float) -> Snapshot:
        """The last snapshot taken at or before ``epoch``."""
        best = 0
        for i, entry in enumerate(self.entries):
            if entry.epoch <= epoch + 1e-9:
                best = i
        return self.snapshot(best)

    def incomplete_snapshots(self) -> list[str]:
        """Snapshot files on disk that run.json does not list (a write cut off mid-way)."""
        listed = {e.file for e in self.record.snapshots}
        folder = self.folder / SNAP_DIR
        if not folder.is_dir():
            return []
        return sorted(
            f"{SNAP_DIR}/{p.name}" for p in folder.iterdir()
            if f"{SNAP_DIR}/{p.name}" not in listed
        )

    def param(self, name: str) -> ParamInfo:
        """The typed facts of a parameter; StorageError if the run has no such parameter."""
        try:
            return self.record.params[name]
        except KeyError:
            raise StorageError(t("Run {run} has no parameter {name!r}.", run=self.run_id,
                                 name=name)) from None

    @property
    def layer_infos(self) -> list[LayerInfo]:
        return self.record.layers

    def summary(self) -> dict[str, Any]:
        """One row for lists: id, label, status, epochs done, last losses."""
        rec, cfg = self.record, self.record.config
        last = rec.history[-1] if rec.history else None
        own = rec.source.kind != "trained"  # nnviz.watch / checkpoints: the config is a stand-in
        model_class = str(rec.source.extra.get("model_class", rec.source.kind))
        return {
            "run_id": rec.run_id,
            "name": cfg.name or "",
            "model": model_class.rpartition(".")[2] if own else cfg.model,
            "init": "(own)" if own else cfg.init,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
            "status": effective_status(rec),
            "status_detail": rec.status_detail,
            "epochs_done": len(rec.history),
            "epochs": cfg.epochs,
            "train_loss": last.train_loss if last else None,
            "val_loss": last.val_loss if last else None,
            "val_acc": last.val_acc if last else None,
            "created": rec.created,
            "config_hash": rec.config_hash,
            "init_digest": rec.init_digest,
            "source": rec.source.kind,
        }


@dataclass
class DamagedRun:
    """A run folder whose run.json fails the format's checks."""

    run_id: str
    reason: str


class RunWriter:
    """Writes one run as it trains; every call leaves the folder loadable.

    Files are written atomically but not fsynced one by one: ``finish`` makes them all durable
    at once (see the module docstring). ``save_interval_s`` > 0 lets ``add_snapshot`` and
    ``save_soon`` save run.json at most that often (the first snapshot at once unless
    ``list_first`` is False; ``update``, ``flush`` and ``finish`` always); whoever defers a
    save calls ``save_soon`` again when ``save_due_in`` says (``SnapshotQueue`` does, while it
    waits for work).
    ``params`` (with every parameter's edges, most of run.json) are fixed when the run is
    created: they are encoded and checked by the format's reader at the first save, and again
    only if a new object is put in their place (change them by replacing the object, not in
    place); the rest of run.json is encoded and checked at every save.
    """

    def __init__(self, store: RunStore, folder: Path, meta: dict[str, Any]) -> None:
        self.store = store
        self.folder = folder
        self.meta = meta  # run.json as JSON, the form it is written in
        self.save_interval_s = 0.0
        self.list_first = True  # add_snapshot saves run.json at the first snapshot, due or not
        self._saved_at = -math.inf
        self._dirty = False
        self._checked: tuple[Any, str] | None = None  # (params object, its encoded entry)
        self._written: dict[Path, None] = {}  # files written since the last sync, in order
        self._sync: Future | None = None
        self.check = True  # check run.json with the format's reader before each save

    @classmethod
    def reopen(cls, store: RunStore, run: Run) -> RunWriter:
        """A writer for a run already on disk (to record how it ended), from its record."""
        return cls(store, run.folder, run.record.to_json())

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    def update(self, **fields: Any) -> None:
        """Set metadata fields and save run.json atomically."""
        self.meta.update(fields)
        self.flush()

    def flush(self) -> None:
        """Save run.json; with ``check`` (the default), what is written is checked by the
        format's reader first (a writer whose record nnviz builds itself, the trainer's, skips
        it: every read checks it, and the tests check every run the trainer writes)."""
        self.meta["updated"] = time.time()
        params = self.meta.get("params")
        known = self._checked if self._checked is not None and \
            self._checked[0] is params else None
        entries, checked_now, params_entry = [], [], None
        for k, v in self.meta.items():
            if k == "params" and known is not None:  # encoded and checked at an earlier save
                entries.append(known[1])
                continue
            entry = _json_entry(k, v)
            entries.append(entry)
            checked_now.append(entry)
            if k == "params":
                params_entry = entry
        if self.check or check_writes():
            parse_run(json.loads(_join_entries(checked_now)),
                      where=f"{self.folder.name}/{RUN_FILE}")
        self._write(self.folder / RUN_FILE, _join_entries(entries))
        if params_entry is not None:
            self._checked = (params, params_entry)
        self._saved_at = time.perf_counter()
        self._dirty = False

    def save_soon(self) -> None:
        """Save run.json now if ``save_interval_s`` has passed since the last save, else later
        (at the next save that is due, or at ``flush`` / ``finish``)."""
        self._dirty = True
        if time.perf_counter() - self._saved_at >= self.save_interval_s:
            self.flush()

    def defer_save(self) -> None:
        """Mark run.json as changed, to be saved once ``save_interval_s`` has passed from now
        (or at the next flush, update or finish)."""
        self._dirty = True
        self._saved_at = time.perf_counter()

    def save_due_in(self) -> float | None:
        """Seconds until a deferred save is due (0 when it is), None when nothing waits."""
        if not self._dirty:
            return None
        return max(0.0, self._saved_at + self.save_interval_s - time.perf_counter())

    def add_snapshot(self, tensors: dict[str, torch.Tensor], stats: dict[str, Any]) -> int:
        """Write a snapshot file, then list it (with its checksum) in run.json, in that order."""
        index = len(self.meta["snapshots"])
        rel = f"{SNAP_DIR}/s{index:04d}.safetensors"
        data = encode_snapshot_parts(tensors, {**stats, "index": index})  # no joined copy
        path = self.folder / rel
        write_new(path, data)  # complete before run.json lists it
        self._written[path] = None
        self.meta["snapshots"].append({"index": index, "epoch": stats["epoch"],
                                       "step": stats["step"], "file": rel,
                                       "sha256": sha256_bytes(data)})
        if index == 0 and self.list_first:
            self.flush()  # the first snapshot is listed at once: a run can be opened
        else:
            self.save_soon()
        return index

    def _write(self, path: Path, data: bytes | list[bytes | memoryview]) -> None:
        atomic_write(path, data, durable=False)
        self._written[path] = None

    def cancel_requested(self) -> bool:
        return (self.folder / CANCEL_FILE).exists()

    def finish(self, status: str, detail: str = "") -> None:
        """Mark the run ended and save run.json; then make every file it wrote durable, on a
        background thread the process waits for at exit (``wait_durable`` waits for it now)."""
        (self.folder / CANCEL_FILE).unlink(missing_ok=True)
        self.update(status=status, status_detail=detail, finished=time.time())
        self.make_durable(background=True)

    def make_durable(self, background: bool = False) -> None:
        """fsync every file written since the last call, then their folders."""
        files, self._written = list(self._written), {}
        if not files:
            return
        self.wait_durable()
        folders = [*(p.parent for p in files), self.folder, self.folder.parent]
        if not background:
            _sync_files(files, folders)
            return
        try:
            self._sync = _syncer().submit(_sync_files, files, folders)
        except RuntimeError:  # the interpreter is exiting (an atexit handler): sync here
            _sync_files(files, folders)

    def wait_durable(self) -> None:
        """Block until the background fsyncs of ``finish`` are done."""
        if self._sync is not None:
            self._sync.result()
            self._sync = None


_SYNCER: tuple[int, ThreadPoolExecutor] | None = None
_SYNCER_LOCK = threading.Lock()


def _syncer() -> ThreadPoolExecutor:
    """The process's one fsync thread (made on first use, and anew in a forked child): runs'
    durability passes in the order their runs finished. Its thread is not a daemon: the
    interpreter (and a multiprocessing child, at its end) finishes what is queued before the
    process exits, so a finished run is on disk; one thread for every run, not one per run."""
    global _SYNCER
    with _SYNCER_LOCK:
        if _SYNCER is None or _SYNCER[0] != os.getpid():
            _SYNCER = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="nnviz-fsync"))
        return _SYNCER[1]


def wait_for_syncs() -> None:
    """Block until every durability pass queued so far in this process is done."""
    if _SYNCER is not None and _SYNCER[0] == os.getpid():
        _SYNCER[1].submit(lambda: None).result()  # one thread, in order: behind all of them


def check_writes() -> bool:
    """$NNVIZ_CHECK_WRITES=1: every writer checks run.json before each save (the tests)."""
    return os.environ.get("NNVIZ_CHECK_WRITES") == "1"


def _sync_files(files: list[Path], folders: list[Path]) -> None:
    """fsync each file (run.json's newest version: it is replaced, never appended to), then each
    folder once (the renames)."""
    for path in files:
        _fsync_path(path)
    for folder in dict.fromkeys(folders):
        _fsync_path(folder)


class RunStore:
    """The runs folder: create, list, load, delete, export and import runs."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_root()

    def _folder(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
            raise StorageError(t("{run} is not a valid run id.", run=repr(str(run_id)[:100])))
        return self.root / run_id

    def create(self, cfg: RunConfig, config_hash: str, extra: dict[str, Any],
               save_in: float = 0.0) -> RunWriter:
        """A new run folder with status 'running'; its run.json is saved at once, or with
        ``save_in`` > 0 at the writer's first save or once ``save_in`` seconds have passed
        (``save_due_in``), whichever is first: a run that lists its first snapshot at once, or
        ends within a second, writes run.json once instead of twice. Until then the folder is
        not listed (a process killed meanwhile leaves a folder without run.json, which
        ``clean_orphans`` removes)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{cfg.model}-{cfg.init}-s{cfg.seed}".replace("_", "-")[:RUN_ID_MAX - 8]
        folder = self._new_folder(base)
        run_id = folder.name
        from nnviz import __version__

        meta = {
            "schema_version": FORMAT_VERSION,
            "run_id": run_id,
            "source": {"kind": "trained", "tool": "nnviz", "version": __version__},
            "config": cfg.to_dict(),
            "config_hash": config_hash,
            "created": time.time(),
            "status": "running",
            "status_detail": "",
            "host": HOST,
            "pid": os.getpid(),
            "history": [],
            "snapshots": [],
            **extra,
        }
        writer = RunWriter(self, folder, meta)
        if save_in > 0:
            writer.save_interval_s = save_in
            writer.defer_save()
        else:
            writer.flush()
        return writer

    def _new_folder(self, base: str) -> Path:
        """Make ``<root>/<base>``, or ``<base>-2``, ``-3``, ... when taken: one mkdir call as a
        rule (the runs folder is made only when missing; the suffix this process used last for
        ``base`` is tried next, so runs started within one second do not try every taken
        name again)."""
        key = (str(self.root), base)
        n = _last_suffix.get(key, 1)
        while True:
            run_id = base if n == 1 else f"{base}-{n}"
            folder = self.root / run_id
            try:
                folder.mkdir()
            except FileExistsError:
                n += 1
                continue
            except FileNotFoundError:  # the runs folder itself is missing: made once
                self.root.mkdir(parents=True, exist_ok=True)
                continue
            if len(_last_suffix) >= 256:  # one entry per base (a second): kept small
                _last_suffix.clear()
            _last_suffix[key] = n + 1
            return folder

    def run_ids(self) -> list[str]:
        """Every folder holding a run.json (readable or not), newest id first."""
        if not self.root.is_dir():
            return []
        return sorted(
            (p.name for p in self.root.iterdir()
             if RUN_ID_RE.match(p.name) and p.is_dir() and (p / RUN_FILE).exists()),
            reverse=True,
        )

    def load(self, run_id: str) -> Run:
        """Load and validate a run's record; StorageError if missing or damaged."""
        folder = self._folder(run_id)
        if not folder.is_dir():
            raise StorageError(t("No run named {run!r} in {root}.", run=run_id, root=self.root))
        return Run(folder, read_record(folder))

    def scan(self) -> tuple[list[Run], list[DamagedRun]]:
        """(readable runs newest first, damaged runs with their reasons)."""
        runs, damaged = [], []
        for run_id in self.run_ids():
            try:
                runs.append(self.load(run_id))
            except StorageError as exc:
                reason = str(exc).removeprefix(f"{run_id}: ")
                damaged.append(DamagedRun(run_id, reason))
        runs.sort(key=lambda r: r.record.created, reverse=True)
        return runs, damaged

    def list_runs(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(summaries newest first, "<id>: damaged: <reason>" for runs that fail the checks)."""
        runs, damaged = self.scan()
        return [r.summary() for r in runs], [t("{run}: damaged: {reason}", run=d.run_id,
                                               reason=d.reason) for d in damaged]

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
        """Remove a run folder, damaged or not (renamed away first: a half-deleted run never
        lists)."""
        folder = self._folder(run_id)
        if not folder.is_dir():
            raise StorageError(t("No run named {run!r} to delete.", run=run_id))
        trash = self.root / f".deleting-{run_id}-{os.getpid()}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def export_zip(self, run_id: str) -> bytes:
        """The run as one zip (see ``nnviz.store.archive.export_run``)."""
        from nnviz.store.archive import export_run

        return export_run(self, run_id)

    def import_zip(self, data: bytes) -> str:
        """Validate and add a run from a zip; returns its id (``archive.import_run``)."""
        from nnviz.store.archive import import_run

        return import_run(self, data)

    def clean_orphans(self, min_age_s: float = ORPHAN_AGE_S, dry_run: bool = False
                      ) -> list[str]:
        """Remove leftovers of crashes; returns what was (or would be) removed.

        Leftovers: import staging folders and half-deleted runs whose process is gone (or older
        than ``min_age_s``), temp files older than ``min_age_s``, folders without run.json older
        than it, and snapshot files run.json does not list in runs that are not running.
        """
        if not self.root.is_dir():
            return []
        now, removed = time.time(), []

        def old(p: Path) -> bool:
            try:
                return now - p.lstat().st_mtime >= min_age_s
            except OSError:
                return False

        def drop(p: Path, label: str) -> None:
            removed.append(label)
            if dry_run:
                return
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

        for p in sorted(self.root.iterdir()):
            name = p.name
            if name.startswith((".import-", ".deleting-")):
                pid = _pid_in(name)
                if old(p) or (pid is not None and not _pid_alive(pid)):
                    drop(p, name)
            elif name.endswith(".tmp"):
                if old(p):
                    drop(p, name)
            elif p.is_dir() and not p.is_symlink() and not (p / RUN_FILE).exists():
                if RUN_ID_RE.match(name) and old(p):
                    drop(p, f"{name}/ (no {RUN_FILE})")
            elif p.is_dir() and RUN_ID_RE.match(name):
                for tmp in p.rglob("*.tmp"):
                    if old(tmp):
                        drop(tmp, f"{name}/{tmp.relative_to(p)}")
                try:
                    run = self.load(name)
                except StorageError:
                    continue  # damaged: reported, kept for the user to export or delete
                if effective_status(run.record) == "running":
                    continue
                for rel in run.incomplete_snapshots():
                    if not rel.endswith(".tmp"):
                        drop(p / rel, f"{name}/{rel} (not listed)")
        return removed


def _pid_in(name: str) -> int | None:
    """The pid in '.import-<pid>-xxxx' / '.deleting-<id>-<pid>'."""
    parts = name.split("-")
    for part in (parts[1] if name.startswith(".import-") and len(parts) > 1 else "",
                 parts[-1]):
        if part.isdigit():
            return int(part)
    return None
