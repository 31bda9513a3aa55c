"""Snapshot files: one safetensors file per recorded moment, checked whole before use.

A file holds ``values/<param>`` and ``hist/<param>`` tensors and, in the safetensors metadata
key ``nnviz``, the snapshot's statistics as JSON (``nnviz.store.format.SnapshotStats``). Opening
a snapshot checks, before any number is used: the file's SHA-256 against run.json's entry (when
the entry has one), the statistics with the format's validating reader, and every tensor's
dtype and size against the run's declared shapes and edges. Any failure is a ``StorageError``
that names the snapshot; it hides that epoch only, never the run. Nothing here unpickles.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import safe_open

from nnviz.errors import StorageError
from nnviz.i18n import t
from nnviz.store.format import RunRecord, SnapshotEntry, SnapshotStats, parse_snapshot_stats

if TYPE_CHECKING:  # torch is imported where tensors are written or read, not to list runs
    import torch

MAX_SNAPSHOT_BYTES = 512 * 2**20  # a snapshot file larger than this is refused
MAX_HEADER_BYTES = 4 * 2**20      # its safetensors header (tensor table + statistics' JSON)
CHUNK = 1 << 20
CHECKED_CACHE = 1024  # snapshots whose checks passed, remembered by file identity

_checked: OrderedDict[tuple, SnapshotStats] = OrderedDict()
_lock = threading.Lock()


# what snapshots hold: values, counts; keyed by numpy's native-order dtypes (a dtype's .name
# costs a few microseconds; a big-endian dtype is not equal to these, so it is not found)
_DTYPES = {np.dtype(np.float32): ("F32", 4), np.dtype(np.int64): ("I64", 8)}


def encode_snapshot(tensors: dict[str, torch.Tensor | np.ndarray], stats: dict[str, Any]
                    ) -> bytes:
    """Serialise one snapshot: tensors plus its statistics as JSON metadata.

    The bytes are exactly what ``safetensors.torch.save`` writes (tests compare them): an
    8-byte header length, the header (compact JSON: ``__metadata__`` first, then the tensors in
    safetensors' order, int64 before float32, each by name; padded with spaces to 8 bytes), the
    data. Snapshots hold only 1-D float32 values and int64 counts, which are laid out here
    directly (16 tensors in ~0.1 ms where safetensors' Python wrapper takes ~0.6 ms); anything
    else goes through safetensors itself. Arrays may share memory (views of one buffer)."""
    return b"".join(encode_snapshot_parts(tensors, stats))


def encode_snapshot_parts(tensors: dict[str, torch.Tensor | np.ndarray], stats: dict[str, Any]
                          ) -> list[bytes | memoryview]:
    """``encode_snapshot``'s bytes as the buffers they are joined from (the header, then each
    tensor's data, read in place): a writer hashes and writes them one by one, without a copy
    of the whole file (a ResNet-18 snapshot is ~14 MiB)."""
    meta = json.dumps(stats, allow_nan=True)
    arrays = _plain_arrays(tensors)
    if arrays is None:
        from safetensors.torch import save as st_save

        # clone: safetensors refuses tensors that share memory
        plain = {k: _as_tensor(v).detach().cpu().clone() for k, v in tensors.items()}
        return [st_save(plain, metadata={"nnviz": meta})]
    order = sorted(arrays, key=lambda k: (_DTYPES[arrays[k].dtype][1] != 8, k))
    header: dict[str, Any] = {"__metadata__": {"nnviz": meta}}
    offset = 0
    for k in order:
        a = arrays[k]
        header[k] = {"dtype": _DTYPES[a.dtype][0], "shape": [a.size],
                     "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return [len(text).to_bytes(8, "little") + text,
            *(memoryview(arrays[k]).cast("B") for k in order)]


def _plain_arrays(tensors: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The tensors as C-contiguous 1-D float32 / int64 numpy arrays on the CPU, or None if any
    is something else (another dtype or shape, a GPU tensor, a non-string name)."""
    out = {}
    for k, v in tensors.items():
        if not isinstance(k, str):
            return None
        if not isinstance(v, np.ndarray):
            if getattr(v, "device", None) is None or v.device.type != "cpu" or \
                    v.requires_grad or v.is_conj() or v.is_neg():
                return None
            v = v.numpy()
        if v.ndim != 1 or v.dtype not in _DTYPES or not v.flags.c_contiguous:
            return None
        out[k] = v
    return out


def _as_tensor(v: Any) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v


def sha256_bytes(data: bytes | list[bytes | memoryview]) -> str:
    """SHA-256 of the bytes, or of the buffers one after the other (``encode_snapshot_parts``)."""
    if not isinstance(data, list):
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    for part in data:
        h.update(part)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Snapshot:
    """One recorded moment: validated statistics, tensors read on demand."""

    def __init__(self, entry: SnapshotEntry, path: Path, record: SnapshotStats) -> None:
        self.index = entry.index
        self.entry = entry
        self.path = path
        self.record = record

    @property
    def epoch(self) -> float:
        return self.record.epoch

    def values(self, param: str) -> np.ndarray:
        """The recorded values of a parameter (all of them, or the fixed-size sample)."""
        return self._tensor(f"values/{param}").numpy()

    def hist_counts(self, param: str) -> np.ndarray:
        """Counts on the run's recording edges (``ParamInfo.edges``)."""
        return self._tensor(f"hist/{param}").numpy()

    def _tensor(self, key: str) -> torch.Tensor:
        try:
            with safe_open(self.path, framework="pt") as f:
                return f.get_tensor(key)
        except FileNotFoundError:
            raise StorageError(t("Snapshot file {file} is missing.", file=self.path.name)) \
                from None
        except Exception as exc:  # safetensors raises its own error types
            raise StorageError(t("Snapshot {file} has no tensor {key!r}: {why}",
                                 file=self.path.name, key=key, why=exc)) from None


def read_snapshot(folder: Path, entry: SnapshotEntry, run: RunRecord) -> Snapshot:
    """Open and check a snapshot file; StorageError naming it if anything is wrong.

    Files are never changed in place (they are written once, atomically), so a file already
    checked with the same size, mtime, inode, entry and parameter layout is not read again:
    pages that reload a run while it trains cost one ``stat`` per snapshot."""
    path = folder / entry.file
    name = t("snapshot {index} ({file})", index=entry.index, file=entry.file)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise StorageError(t("{name} is missing.", name=name)) from None
    except OSError as exc:
        raise StorageError(t("{name} cannot be read ({why}).", name=name,
                             why=exc.strerror)) from None
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, entry.index, entry.epoch,
           entry.step, entry.sha256, _layout(run))
    with _lock:
        hit = _checked.get(key)
        if hit is not None:
            _checked.move_to_end(key)
            return Snapshot(entry, path, hit)
    snap = _read_checked(path, name, st.st_size, entry, run)
    with _lock:
        _checked[key] = snap.record
        while len(_checked) > CHECKED_CACHE:
            _checked.popitem(last=False)
    return snap


def _layout(run: RunRecord) -> tuple:
    """What a snapshot is checked against: each parameter's size, storage and bins."""
    return tuple((n, p.numel, p.stored, len(p.edges)) for n, p in run.params.items())


def _read_checked(path: Path, name: str, size: int, entry: SnapshotEntry, run: RunRecord
                  ) -> Snapshot:
    if size > MAX_SNAPSHOT_BYTES:
        raise StorageError(t("{name} is {size} MiB, over the {most} MiB limit.", name=name,
                             size=f"{size / 2**20:.0f}", most=MAX_SNAPSHOT_BYTES // 2**20))
    if entry.sha256 is not None:
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise StorageError(t("{name} cannot be read ({why}).", name=name,
                                 why=exc.strerror)) from None
        if digest != entry.sha256:
            raise StorageError(t("{name} is damaged: its checksum does not match run.json (the "
                                 "file changed after it was written).", name=name))
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
    except OSError as exc:
        raise StorageError(t("{name} cannot be read ({why}).", name=name,
                             why=exc.strerror)) from None
    if header_len > MAX_HEADER_BYTES:
        raise StorageError(t("{name} is damaged: its header declares {n} bytes, over the "
                             "{most} MiB limit.", name=name, n=header_len,
                             most=MAX_HEADER_BYTES // 2**20))
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: (f.get_slice(k).get_shape(), f.get_slice(k).get_dtype())
                      for k in f.keys()}
    except Exception as exc:  # safetensors' own errors: a damaged header
        raise StorageError(t("{name} is damaged ({why}).", name=name, why=_short(exc))) \
            from None
    text = meta.get("nnviz")
    if not isinstance(text, str):
        raise StorageError(t("{name} is damaged (no statistics).", name=name))
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StorageError(t("{name} is damaged ({why}).", name=name, why=_short(exc))) \
            from None
    record = parse_snapshot_stats(obj, run, entry, where=name)
    _check_tensors(name, shapes, run)
    snap = Snapshot(entry, path, record)
    _check_counts(name, snap, run)
    return snap


def _check_tensors(name: str, shapes: dict[str, tuple[list[int], str]], run: RunRecord) -> None:
    """Every parameter has 1-D float32 values of the stored size and int64 counts per bin."""
    expected = set()
    for param, info in run.params.items():
        for key, want_len, dtypes in ((f"values/{param}", info.stored_count, ("F32",)),
                                      (f"hist/{param}", len(info.edges) - 1, ("I64",))):
            expected.add(key)
            if key not in shapes:
                raise StorageError(t("{name} is damaged: tensor {key!r} is missing.", name=name,
                                     key=key))
            shape, dtype = shapes[key]
            if dtype not in dtypes or len(shape) != 1 or shape[0] != want_len:
                raise StorageError(t("{name} is damaged: {key!r} is {dtype} {shape}, expected "
                                     "{want} [{n}].", name=name, key=key, dtype=dtype,
                                     shape=list(shape), want=dtypes[0], n=want_len))
    unknown = sorted(set(shapes) - expected)
    if unknown:
        raise StorageError(t("{name} is damaged: unexpected tensor {key!r}.", name=name,
                             key=unknown[0]))


def _check_counts(name: str, snap: Snapshot, run: RunRecord) -> None:
    """Bin counts are >= 0 and, with the values outside the bins, add up to numel."""
    for param, info in run.params.items():
        counts = snap.hist_counts(param)
        total = int(counts.sum()) if counts.size else 0
        outside = snap.record.params[param].hist_outside.total()
        if (counts < 0).any() or total + outside != info.numel:
            raise StorageError(t("{name} is damaged: the counts of {param!r} add up to {n}, "
                                 "not {numel}.", name=name, param=param, n=total + outside,
                                 numel=info.numel))


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
