"""Local data sets read from their original file formats with NumPy only: IDX files for MNIST and
Fashion-MNIST (plain or ``.gz``) and the *binary* CIFAR-10 batches (never pickle).

``write_idx``, ``write_cifar_bin`` and ``write_fake_dataset`` write such files, for tests and for
trying the local-file path without the real data. Hand-written rather than torchvision's readers:
those unpickle CIFAR-10 and download, and nnviz must do neither.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from nnviz.engine.data.generated import _balanced_labels, _render_shapes
from nnviz.engine.data.spec import (
    _GZIP_MAGIC,
    _IDX_IMAGES_MAGIC,
    _IDX_LABELS_MAGIC,
    _STREAM_DATA,
    _STREAM_IMBALANCE,
    _STREAM_SUBSAMPLE,
    _SUBFOLDERS,
    CIFAR_RECORD,
    CIFAR_TEST_FILE,
    CIFAR_TRAIN_FILES,
    MNIST_FILES,
    DataBundle,
    DatasetSpec,
    _bundle,
    _class_names,
    _imbalance_keep,
    _rng,
    _standardize_images,
    _subsample,
    describe,
)
from nnviz.errors import ConfigError, DataError
from nnviz.i18n import t

MAX_FILE_BYTES = 64 * 2**20   # a data file (or its gunzipped data) larger than this is refused
MAX_CIFAR_BYTES = 2 * 10_000 * CIFAR_RECORD  # a CIFAR-10 batch is 10,000 records
CHUNK = 1 << 20


def _load_local(
    spec: DatasetSpec,
    n_samples: int,
    seed: int,
    val_fraction: float,
    data_dir: str | None,
    imbalance: float,
    standardize: bool,
) -> DataBundle:
    """Read a local data set's train and test files; subsample, imbalance and standardize."""
    folder = _find_folder(spec, data_dir)
    if spec.name == "cifar10":
        parts = [read_cifar_bin(_require_file(spec, folder, f)) for f in CIFAR_TRAIN_FILES]
        x_tr = np.concatenate([p[0] for p in parts])  # (N, 3, 32, 32) uint8
        y_tr = np.concatenate([p[1] for p in parts])  # (N,)
        x_va, y_va = read_cifar_bin(_require_file(spec, folder, CIFAR_TEST_FILE))
    else:
        x_tr, y_tr = _read_idx_pair(spec, folder, MNIST_FILES[0], MNIST_FILES[1])
        x_va, y_va = _read_idx_pair(spec, folder, MNIST_FILES[2], MNIST_FILES[3])

    rng = _rng(seed, _STREAM_SUBSAMPLE)
    if n_samples > 0:
        x_tr, y_tr = _subsample(x_tr, y_tr, n_samples, rng)
        x_va, y_va = _subsample(x_va, y_va, max(1, round(n_samples * val_fraction)), rng)
    y_tr, y_va = y_tr.astype(np.int64), y_va.astype(np.int64)
    keep = _imbalance_keep(y_tr, spec.n_classes, imbalance, _rng(seed, _STREAM_IMBALANCE))
    x_tr, y_tr = x_tr[keep], y_tr[keep]

    x_tr = x_tr.astype(np.float32) / np.float32(255.0)  # pixels in [0, 1]
    x_va = x_va.astype(np.float32) / np.float32(255.0)
    extra: dict = {"source": str(folder), "seed": int(seed)}
    x_tr, x_va = _standardize_images(x_tr, x_va, extra, standardize)
    return _bundle(spec, x_tr, y_tr, x_va, y_va, _class_names(spec), extra)


def _expected_files_text(spec: DatasetSpec) -> str:
    """The list of files a local set needs, for error messages."""
    text = ", ".join(spec.files)
    if spec.name == "cifar10":
        return (
            t("{files} (the BINARY version of CIFAR-10, cifar-10-binary.tar.gz, unpacked; "
              "they may also be in a 'cifar-10-batches-bin' sub-folder)", files=text)
        )
    return t("{files} (each may also end in .gz)", files=text)


def _find_folder(spec: DatasetSpec, data_dir: str | Path | None) -> Path:
    """The folder holding the set's files (data_dir or a usual sub-folder of it)."""
    if data_dir is None or str(data_dir).strip() == "":
        raise DataError(
            t("{data}: no data folder was given. nnviz never downloads data; put these files "
              "in a folder and give its path as data_dir: {files}.", data=t(spec.label),
              files=_expected_files_text(spec))
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        what = t("is not a folder") if root.exists() else t("does not exist")
        raise DataError(
            t("{data}: the data folder '{root}' {what}. It should hold: {files}.",
              data=t(spec.label), root=root, what=what, files=_expected_files_text(spec))
        )
    for sub in _SUBFOLDERS[spec.name]:
        candidate = root / sub if sub else root
        if candidate.is_dir() and any(_locate(candidate, f) for f in spec.files):
            return candidate
    return root


def _names_of(filename: str) -> tuple[str, ...]:
    """The spellings a file may have: as given, MNIST's dotted form ('train-images.idx3-ubyte',
    as some mirrors unpack it), each optionally with '.gz'."""
    forms = [filename]
    if "-idx" in filename:
        forms.append(filename.replace("-idx", ".idx", 1))
    return tuple(f + ext for f in forms for ext in ("", ".gz"))


def _locate(folder: Path, filename: str) -> Path | None:
    """The path of filename (or another accepted spelling of it) in folder, if present."""
    for candidate in _names_of(filename):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def _require_file(spec: DatasetSpec, folder: Path, filename: str) -> Path:
    """The path of a required file; DataError naming it when it is missing."""
    path = _locate(folder, filename)
    if path is None:
        gz = "" if spec.name == "cifar10" else t(" (or {file}.gz)", file=filename)
        raise DataError(
            t("{data}: the file {file}{gz} is missing from the folder '{folder}'. The folder "
              "must hold: {files}.", data=t(spec.label), file=filename, gz=gz, folder=folder,
              files=_expected_files_text(spec))
        )
    return path


class _DataFile:
    """A local data file opened for bounded, streamed reading, gunzipped when it is gzip
    (detected by content). Sizes are checked before reading (the file's size on disk) and while
    reading (every byte counted), so a sparse file or a gzip bomb is refused after at most
    ``MAX_FILE_BYTES`` of output, never read whole."""

    def __init__(self, path: Path) -> None:
        self.path, self.name = path, path.name
        try:
            self._file = open(path, "rb")  # noqa: SIM115 (closed in close())
            size = os.fstat(self._file.fileno()).st_size
            self.gz = self._file.read(2) == _GZIP_MAGIC
            self._file.seek(0)
        except OSError as exc:
            raise DataError(t("{file}: cannot read the file ({why}).", file=path.name,
                              why=exc.strerror or exc)) from exc
        if size > MAX_FILE_BYTES:
            self.close()
            raise DataError(
                t("{file}: the file is {size} MiB; data files up to {most} MiB are read (the "
                  "largest MNIST or CIFAR-10 file is 47 MB). It is not one of those files.",
                  file=path.name, size=f"{size / 2**20:.0f}", most=MAX_FILE_BYTES // 2**20)
            )
        self._stream = gzip.GzipFile(fileobj=self._file, mode="rb") if self.gz else self._file

    def read(self, n: int) -> memoryview:
        """Up to ``n`` bytes (fewer only at the end of the data), read into one buffer."""
        buf = bytearray(n)  # pages are only touched as data arrives
        view, got = memoryview(buf), 0
        try:
            while got < n:
                k = self._stream.readinto(view[got:got + CHUNK])
                if not k:
                    break
                got += k
        except (OSError, EOFError, zlib.error) as exc:
            if not self.gz:
                raise DataError(t("{file}: cannot read the file ({why}).", file=self.name,
                                  why=exc)) from exc
            raise DataError(
                t("{file}: the gzip file is damaged or incomplete ({why}); download it again "
                  "or unpack it with another tool.", file=self.name, why=exc)
            ) from exc
        return view[:got]

    def rest(self, limit: int) -> tuple[int, bool]:
        """(bytes left, True if there are more than ``limit``), without keeping them."""
        extra = 0
        while extra <= limit:
            chunk = self.read(CHUNK)
            if not chunk:
                return extra, False
            extra += len(chunk)
        return limit, True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _DataFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_idx(path: str | Path, expect_magic: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (plain or gzip) into a uint8 array; DataError if malformed.

    Streamed: the header is read first and only the bytes it announces are kept (at most
    ``MAX_FILE_BYTES``); trailing bytes are counted, not kept."""
    path = Path(path)
    name = path.name
    with _DataFile(path) as f:
        raw = f.read(4)
        if len(raw) < 4:
            raise DataError(
                t("{file}: the file is only {n} bytes long, too short to be an IDX file (it "
                  "must start with a 4-byte magic number).", file=name, n=len(raw))
            )
        raw = bytes(raw)
        magic = int.from_bytes(raw[:4], "big")
        kinds = {_IDX_IMAGES_MAGIC: t("images"), _IDX_LABELS_MAGIC: t("labels")}
        if expect_magic is not None and magic != expect_magic:
            found = (
                t(", which is the number of an IDX {kind} file", kind=kinds[magic])
                if magic in kinds else ""
            )
            raise DataError(
                t("{file}: wrong magic number 0x{magic}{found}; an IDX {kind} file starts with "
                  "0x{expect}. The file is not what its name says, or it is damaged.", file=name,
                  magic=f"{magic:08x}", found=found, kind=kinds[expect_magic],
                  expect=f"{expect_magic:08x}")
            )
        if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
            raise DataError(
                t("{file}: wrong magic number 0x{magic}; an IDX file of unsigned bytes starts "
                  "with 0x000008 followed by the number of dimensions. This is not an IDX file, "
                  "or it is damaged.", file=name, magic=f"{magic:08x}")
            )
        ndim = raw[3]
        dims_raw = f.read(4 * ndim)
        if ndim == 0 or len(dims_raw) < 4 * ndim:
            raise DataError(
                t("{file}: the IDX header is incomplete (it announces {ndim} dimensions but the "
                  "file has only {n} bytes). The file is damaged or truncated.", file=name,
                  ndim=ndim, n=4 + len(dims_raw))
            )
        dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4", count=ndim))
        expected = math.prod(dims)
        shape = " x ".join(map(str, dims))
        if expected > MAX_FILE_BYTES:
            raise DataError(
                t("{file}: its header announces {shape} = {n} bytes of data, over the {most} "
                  "MiB nnviz reads; it is damaged or not an MNIST file.", file=name, shape=shape,
                  n=expected, most=MAX_FILE_BYTES // 2**20)
            )
        data = f.read(expected)
        if len(data) < expected:
            raise DataError(
                t("{file}: the file is truncated: its header announces {shape} = {n} bytes of "
                  "data, but only {got} are there (an interrupted download?).", file=name,
                  shape=shape, n=expected, got=len(data))
            )
        extra, more = f.rest(MAX_FILE_BYTES)
        if extra:
            raise DataError(
                t("{file}: the file has over {n} bytes more than its header ({shape}) "
                   "announces; it is damaged or not an IDX file.", file=name, n=extra,
                   shape=shape) if more else
                 t("{file}: the file has {n} bytes more than its header ({shape}) announces; "
                   "it is damaged or not an IDX file.", file=name, n=extra, shape=shape)
            )
    return np.frombuffer(data, dtype=np.uint8, count=expected).reshape(dims)


def _read_idx_pair(
    spec: DatasetSpec, folder: Path, images_file: str, labels_file: str
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 28, 28) and labels (N,) from an IDX image file and its label file."""
    images_path = _require_file(spec, folder, images_file)
    labels_path = _require_file(spec, folder, labels_file)
    images = read_idx(images_path, _IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, _IDX_LABELS_MAGIC)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            t("{file}: the images are {size} pixels, but {data} images must be 28 x 28.",
              file=images_path.name, size=" x ".join(map(str, images.shape[1:])),
              data=t(spec.label))
        )
    if labels.ndim != 1:
        raise DataError(t("{file}: a label file must be 1-D, got {ndim}-D.",
                          file=labels_path.name, ndim=labels.ndim))
    if images.shape[0] == 0:
        raise DataError(t("{file}: the file holds no images.", file=images_path.name))
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            t("{images} holds {n} images but {labels} holds {m} labels; they must have the "
              "same count (mixed-up files?).", images=images_path.name, n=images.shape[0],
              labels=labels_path.name, m=labels.shape[0])
        )
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(
            t("{file}: label {label} at position {at}; {data} labels must be 0 to 9.",
              file=labels_path.name, label=int(labels[bad]), at=bad, data=t(spec.label))
        )
    return images[:, None], labels  # (N, 1, 28, 28), (N,)


def read_cifar_bin(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary CIFAR-10 batch: images (N, 3, 32, 32) uint8 and labels (N,) uint8."""
    path = Path(path)
    with _DataFile(path) as f:
        raw = f.read(MAX_CIFAR_BYTES)
        _, more = f.rest(0)
    if more:
        raise DataError(
            t("{file}: the data is over {most} MiB; a binary CIFAR-10 batch is {n} bytes. It "
              "is not a CIFAR-10 batch.", file=path.name, most=MAX_CIFAR_BYTES // 2**20,
              n=10_000 * CIFAR_RECORD)
        )
    if len(raw) == 0:
        raise DataError(t("{file}: the file is empty.", file=path.name))
    if len(raw) % CIFAR_RECORD:
        raise DataError(
            t("{file}: the size {n} bytes is not a multiple of {record} (1 label byte + 3072 "
              "pixel bytes per image), so the file is truncated or not a binary CIFAR-10 "
              "batch. nnviz needs the BINARY version (cifar-10-binary.tar.gz), not the Python "
              "(pickle) one.", file=path.name, n=len(raw), record=CIFAR_RECORD)
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)  # (N, 3073)
    labels = records[:, 0]
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(
            t("{file}: image {at} has label byte {label}, but CIFAR-10 labels are 0 to 9; the "
              "file is damaged or not a CIFAR-10 batch.", file=path.name, at=bad,
              label=int(labels[bad]))
        )
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array (1-D labels or 3-D images) as an IDX file; gzip if path ends in .gz."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ConfigError(f"write_idx: the array must be uint8, got {array.dtype}.")
    if array.ndim not in (1, 3):
        raise ConfigError(
            f"write_idx: the array must be 1-D (labels) or 3-D (images), got {array.ndim}-D."
        )
    magic = _IDX_LABELS_MAGIC if array.ndim == 1 else _IDX_IMAGES_MAGIC
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    _write_bytes(Path(path), header + np.ascontiguousarray(array).tobytes())


def write_cifar_bin(path: str | Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N, 3, 32, 32) uint8 and labels (N,) uint8 as a binary CIFAR-10 batch."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ConfigError("write_cifar_bin: images and labels must be uint8 arrays.")
    if images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise ConfigError(f"write_cifar_bin: images must be (N, 3, 32, 32), got {images.shape}.")
    if labels.shape != (images.shape[0],):
        raise ConfigError(
            f"write_cifar_bin: labels must be ({images.shape[0]},), got {labels.shape}."
        )
    records = np.concatenate([labels[:, None], images.reshape(len(images), -1)], axis=1)
    _write_bytes(Path(path), np.ascontiguousarray(records).tobytes())  # (N, 3073) bytes


def _write_bytes(path: Path, data: bytes) -> None:
    """Write bytes, gzip-compressed when the name ends in .gz (reproducible: mtime 0)."""
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def write_fake_dataset(
    name: str,
    folder: str | Path,
    *,
    n_train: int = 100,
    n_test: int = 20,
    seed: int = 0,
    gz: bool = False,
) -> dict[str, np.ndarray]:
    """Write small files in a local set's real format (shapes as pixels); return the arrays."""
    spec = describe(name)
    if spec.builtin:
        raise ConfigError(f"write_fake_dataset: {name} is generated, it has no files.")
    min_train = len(CIFAR_TRAIN_FILES) if spec.name == "cifar10" else 1
    if n_train < min_train or n_test < 1:
        raise ConfigError(
            f"write_fake_dataset: {name} needs n_train >= {min_train} and n_test >= 1."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c, s, _ = spec.input_shape
    rng = _rng(seed, _STREAM_DATA)
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.permutation(_balanced_labels(n, 10))  # (N,)
        pixels = _render_shapes(labels, s, c, 0.05, rng)  # (N, C, S, S)
        arrays[f"{split}_images"] = np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.astype(np.uint8)
    if spec.name == "cifar10":
        chunks = np.array_split(np.arange(n_train), len(CIFAR_TRAIN_FILES))
        for filename, idx in zip(CIFAR_TRAIN_FILES, chunks, strict=True):
            write_cifar_bin(
                folder / filename, arrays["train_images"][idx], arrays["train_labels"][idx]
            )
        write_cifar_bin(folder / CIFAR_TEST_FILE, arrays["test_images"], arrays["test_labels"])
    else:
        suffix = ".gz" if gz else ""
        for split, prefix in (("train", "train"), ("test", "t10k")):
            images, labels = arrays[f"{split}_images"][:, 0], arrays[f"{split}_labels"]
            write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)  # (N, 28, 28)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)  # (N,)
    return arrays
