"""Zip import and export of runs, with the guards a public upload needs.

Hand-written on purpose: the standard ``zipfile`` reader does the decoding, and this module
decides what is let in. An import reads the zip's directory, refuses anything but ``run.json``
and ``snapshots/sNNNN.safetensors`` (no folders elsewhere, links, absolute paths, encryption,
or compression other than stored / deflated), then streams each member in 1 MiB chunks into a
private staging folder, counting the bytes it really gets (not the sizes the zip declares)
against ``MAX_MEMBER_BYTES`` / ``MAX_RUN_JSON`` per file and ``MAX_UNPACKED_BYTES`` in all. The
staged run is read by the same validating reader as every run on disk (run.json, then every
snapshot: checksum, statistics, tensor sizes) and moved into place under a free id only if all
of it passes. Memory stays bounded by one chunk plus run.json's parsed size; every failure is a
``StorageError``, and the staging folder is removed in every outcome (``finally``; leftovers of
a crash are removed by ``RunStore.clean_orphans`` at start-up).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from nnviz.errors import NnvizError, StorageError
from nnviz.i18n import t
from nnviz.store.format import RUN_ID_MAX, RUN_ID_RE, SNAP_RE
from nnviz.store.runs import (
    MAX_RUN_JSON,
    RUN_FILE,
    SNAP_DIR,
    RunStore,
    atomic_write,
    dump_json,
    read_record,
)
from nnviz.store.snapshots import MAX_SNAPSHOT_BYTES, read_snapshot

MAX_IMPORT_BYTES = 200 * 2**20      # zip file size accepted for import
MAX_UNPACKED_BYTES = 1024 * 2**20   # bytes really unpacked, all members together
MAX_MEMBER_BYTES = MAX_SNAPSHOT_BYTES
MAX_IMPORT_FILES = 2000
CHUNK = 1 << 20
ALLOWED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
IMPORTED_SUFFIX = "-imported"


def export_run(store: RunStore, run_id: str) -> bytes:
    """The run as one zip: run.json and every listed snapshot.

    A readable run whose listed snapshot is missing or damaged is refused with a message naming
    it. A damaged run (run.json fails its checks) is exported as it is on disk, so its owner can
    take it away and repair it: run.json's bytes and the snapshot files present.
    """
    folder = store._folder(run_id)
    if not folder.is_dir():
        raise StorageError(t("No run named {run!r} to export.", run=run_id))
    buf = io.BytesIO()
    try:
        run = store.load(run_id)
    except StorageError:
        run = None
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if run is None:
            _export_raw(folder, zf)
        else:
            bad = run.damaged_snapshots
            if bad:
                entry, reason = bad[0]
                raise StorageError(t("Cannot export {run}: {reason} Delete the run or re-train "
                                     "it.", run=run_id, reason=reason))
            zf.writestr(RUN_FILE, dump_json(run.record.to_json()))
            for entry in run.record.snapshots:
                zf.write(run.folder / entry.file, entry.file)
    return buf.getvalue()


def _export_raw(folder: Path, zf: zipfile.ZipFile) -> None:
    path = folder / RUN_FILE
    if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_RUN_JSON:
        zf.write(path, RUN_FILE)
    snaps = folder / SNAP_DIR
    if snaps.is_dir():
        for p in sorted(snaps.iterdir()):
            rel = f"{SNAP_DIR}/{p.name}"
            if SNAP_RE.match(rel) and p.is_file() and not p.is_symlink() and \
                    p.stat().st_size <= MAX_SNAPSHOT_BYTES:
                zf.write(p, rel)


def import_run(store: RunStore, data: bytes) -> str:
    """Validate and add a run from a zip; returns its id. A bad file changes nothing."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StorageError(t("Import refused: expected the bytes of a zip file."))
    if len(data) > MAX_IMPORT_BYTES:
        raise StorageError(
            t("Import refused: the file is {size} MiB; runs up to {most} MiB can be imported.",
              size=f"{len(data) / 2**20:.0f}", most=MAX_IMPORT_BYTES // 2**20)
        )
    root = _ensure(store.root)
    staging: Path | None = None
    try:
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise StorageError(t("this is not a zip file exported by nnviz.")) from None
        with zf:
            infos = _check_members(zf.infolist())
            staging = Path(tempfile.mkdtemp(prefix=f".import-{os.getpid()}-", dir=root))
            _unpack(zf, infos, staging)
        record = read_record(staging, name=t("the zip's run"))
        for entry in record.snapshots:
            read_snapshot(staging, entry, record)
        listed = {e.file for e in record.snapshots}
        for info in infos:
            if info.filename != RUN_FILE and info.filename not in listed:
                raise StorageError(t("{file} is in the zip but run.json does not list it.",
                                     file=info.filename))
        meta = record.to_json()
        if meta["status"] == "running":
            meta["status"] = "interrupted"
            meta["status_detail"] = meta["status_detail"] or "imported while it was running"
        meta["pid"] = None  # the process that trained it does not run here
        run_id = _move_in(root, staging, record.run_id, meta)
        staging = None
        return run_id
    except StorageError as exc:
        raise StorageError(t("Import refused: {why}", why=exc)) from None
    except NnvizError as exc:
        raise StorageError(t("Import refused: {why}", why=exc)) from None
    except NotImplementedError as exc:  # e.g. PPMd or LZMA variants zipfile cannot decode
        raise StorageError(t("Import refused: the zip uses a compression nnviz does not read "
                             "({why}).", why=exc)) from None
    except RecursionError:
        raise StorageError(t("Import refused: run.json is nested too deeply.")) from None
    except MemoryError:
        raise StorageError(t("Import refused: the file needs too much memory to read.")) \
            from None
    except Exception as exc:  # zlib.error, BadZipFile (CRC), OverflowError, OSError, ...
        text = str(exc)[:200] or type(exc).__name__
        raise StorageError(t("Import refused: the zip is damaged ({why}).", why=text)) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _ensure(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root


def _check_members(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The files to unpack; StorageError for anything an nnviz export does not hold."""
    if len(infos) > MAX_IMPORT_FILES:
        raise StorageError(t("{n} files in the zip is too many.", n=len(infos)))
    files, names = [], set()
    for info in infos:
        name = info.filename
        if info.is_dir():
            if name != f"{SNAP_DIR}/":
                raise StorageError(t("unexpected folder {name!r} in the zip.",
                                     name=name[:100]))
            continue
        if name != RUN_FILE and not SNAP_RE.match(name):
            raise StorageError(
                t("unexpected file {name!r} (an nnviz run holds run.json and "
                  "snapshots/sNNNN.safetensors only).", name=name[:100])
            )
        if name in names:
            raise StorageError(t("{name} appears twice in the zip.", name=name))
        if info.flag_bits & 0x1:
            raise StorageError(t("encrypted zip files are not supported."))
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise StorageError(t("{name} is a symbolic link.", name=name))
        if info.compress_type not in ALLOWED_COMPRESSION:
            raise StorageError(t("{name} uses compression method {method}; nnviz reads stored "
                                 "and deflated zips only.", name=name,
                                 method=info.compress_type))
        names.add(name)
        files.append(info)
    if RUN_FILE not in names:
        raise StorageError(t("the zip has no run.json (not an nnviz run)."))
    return files


def _unpack(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], staging: Path) -> None:
    """Stream every member to ``staging``, counting the bytes really read against the limits."""
    total = 0
    (staging / SNAP_DIR).mkdir()
    for info in infos:
        limit = MAX_RUN_JSON if info.filename == RUN_FILE else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise StorageError(t("{file} declares {size} MiB, over the {most} MiB limit.",
                                 file=info.filename, size=f"{info.file_size / 2**20:.0f}",
                                 most=limit // 2**20))
        size = 0
        fd = os.open(staging / info.filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                total += len(chunk)
                if size > limit or size > info.file_size:
                    raise StorageError(t("{file} unpacks to more than it declares or over the "
                                         "{most} MiB limit.", file=info.filename,
                                         most=limit // 2**20))
                if total > MAX_UNPACKED_BYTES:
                    raise StorageError(t("it unpacks to over the {most} MiB limit.",
                                         most=MAX_UNPACKED_BYTES // 2**20))
                dst.write(chunk)
        if size != info.file_size:
            raise StorageError(t("{file} is shorter than the zip declares.", file=info.filename))


def _move_in(root: Path, staging: Path, wanted: str, meta: dict) -> str:
    """Move the staged run to a free id (never over an existing run, also under concurrency)."""
    base = wanted if RUN_ID_RE.match(wanted) else "imported-run"
    for n in range(1, 10_000):
        suffix = "" if n == 1 else IMPORTED_SUFFIX + ("" if n == 2 else str(n - 1))
        run_id = base[:RUN_ID_MAX - len(suffix)] + suffix
        target = root / run_id
        try:
            target.mkdir()  # claims the id atomically: a concurrent import gets the next one
        except FileExistsError:
            continue
        try:
            meta["run_id"] = run_id
            atomic_write(staging / RUN_FILE, dump_json(meta))
            os.rename(staging, target)  # replaces the empty folder claimed above
        except BaseException:
            try:
                target.rmdir()  # still the empty claim: give the id back
            except OSError:
                pass
            raise
        return run_id
    raise StorageError(f"no free run id for {wanted!r}.")
