"""What each data set is (its spec and registry entry), the bundle a model trains on, and the
argument checks and splitting helpers that built-in and local sets share.

Adding a data set: one ``DatasetSpec`` entry in ``DATASETS`` here, plus its generator in
``generated.py`` (built-in) or its reader in ``files.py`` (local files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from nnviz.config import option
from nnviz.engine.seeding import data_rng
from nnviz.errors import ConfigError
from nnviz.i18n import N_, t


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set is: its task, input shape, classes and (for local sets) expected files."""

    name: str
    label: str
    description: str
    task: str  # "regression" | "classification"
    input_shape: tuple[int, ...]
    n_classes: int  # 0 for regression (one output)
    builtin: bool  # True: generated from the seed; False: read from a local folder
    files: tuple[str, ...] = ()


@dataclass
class DataBundle:
    """Train and validation tensors of one data set, ready for a model."""

    name: str
    task: str
    n_classes: int
    input_shape: tuple[int, ...]
    x_train: torch.Tensor  # float32 (N, *input_shape)
    y_train: torch.Tensor  # int64 (N,) class ids, or float32 (N, 1) regression targets
    x_val: torch.Tensor
    y_val: torch.Tensor
    class_names: list[str]
    extra: dict = field(default_factory=dict)


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch.bin"
CIFAR_FILES = (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)
CIFAR_RECORD = 1 + 3 * 32 * 32  # 1 label byte + 3072 pixel bytes

SHAPE_CLASSES = (
    "horizontal stripes",
    "vertical stripes",
    "diagonal stripes (/)",
    "diagonal stripes (\\)",
    "checkerboard",
    "disc",
    "ring",
    "square",
    "cross",
    "soft blob",
)
EDGE_CLASSES = ("vertical edge", "/ edge", "horizontal edge", "\\ edge")
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec(
            "regression", N_("Linear regression"),
            N_("y = w·x + b + noise for 2-D points x; the true w and b are known, so you can check "
            "what the model learned."),
            "regression", (2,), 0, True,
        ),
        DatasetSpec(
            "moons", N_("Two moons"),
            N_("Two interleaving half circles: a curved boundary a straight line cannot draw."),
            "classification", (2,), 2, True,
        ),
        DatasetSpec(
            "circles", N_("Circles"),
            N_("A small circle inside a big one: the classes can only be split by a closed curve."),
            "classification", (2,), 2, True,
        ),
        DatasetSpec(
            "xor", N_("XOR blobs"),
            N_("Four blobs with opposite corners in the same class: the classic problem one linear "
            "layer cannot solve."),
            "classification", (2,), 2, True,
        ),
        DatasetSpec(
            "spiral", N_("Spiral"),
            N_("Three interleaved spiral arms: a hard 2-D problem that needs a deep enough "
               "network."),
            "classification", (2,), 3, True,
        ),
        DatasetSpec(
            "shapes32", N_("Shapes 32x32 (colour)"),
            N_("10 kinds of stripes and shapes in random colours, CIFAR-sized (3x32x32)."),
            "classification", (3, 32, 32), 10, True,
        ),
        DatasetSpec(
            "edges16", N_("Oriented edges 16x16 (grey)"),
            N_("Parallel straight light/dark edges in 4 orientations (vertical, /, horizontal, "
            "\\) at a random spacing, place, contrast and brightness, under pixel noise "
            "(1x16x16): only the orientation tells the classes apart."),
            "classification", (1, 16, 16), 4, True,
        ),
        DatasetSpec(
            "shapes28", N_("Shapes 28x28 (grey)"),
            N_("The same 10 kinds of stripes and shapes in grey, MNIST-sized (1x28x28)."),
            "classification", (1, 28, 28), 10, True,
        ),
        DatasetSpec(
            "mnist", N_("MNIST digits (local files)"),
            N_("Handwritten digits 0-9 (1x28x28), read from the IDX files in your data folder."),
            "classification", (1, 28, 28), 10, False, MNIST_FILES,
        ),
        DatasetSpec(
            "fashion_mnist", N_("Fashion-MNIST (local files)"),
            N_("Photos of 10 kinds of clothing (1x28x28), read from the IDX files in your data "
            "folder."),
            "classification", (1, 28, 28), 10, False, MNIST_FILES,
        ),
        DatasetSpec(
            "cifar10", N_("CIFAR-10 (local files)"),
            N_("Small colour photos of 10 kinds of objects (3x32x32), read from the binary "
               "CIFAR-10 "
            "batches in your data folder."),
            "classification", (3, 32, 32), 10, False, CIFAR_FILES,
        ),
    )
}

MIN_BUILTIN_SAMPLES = 10
MAX_BUILTIN_SAMPLES = 200_000
_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"
# Sub-folders searched (in order) for the files of a local set, as downloads usually unpack.
_SUBFOLDERS = {
    "mnist": ("", "raw", "MNIST/raw"),
    "fashion_mnist": ("", "raw", "FashionMNIST/raw"),
    "cifar10": ("", "cifar-10-batches-bin"),
}
# Independent random streams derived from the seed, so that e.g. changing `imbalance` does not
# change the generated points themselves.
_STREAM_DATA, _STREAM_SPLIT, _STREAM_IMBALANCE, _STREAM_OUTLIERS, _STREAM_SUBSAMPLE = range(5)


def describe(name: str) -> DatasetSpec:
    """The spec of a data set; ConfigError listing the valid names for an unknown one."""
    if not isinstance(name, str) or name not in DATASETS:
        valid = ", ".join(DATASETS)
        raise ConfigError(t("dataset: unknown data set {name!r}. Valid names: {valid}.",
                            name=name, valid=valid))
    return DATASETS[name]


def _check_args(
    spec: DatasetSpec,
    n_samples: int,
    seed: int,
    noise: float,
    val_fraction: float,
    imbalance: float,
    outlier_fraction: float,
) -> None:
    """Raise ConfigError for any value out of range, naming the option."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise ConfigError(f"n_samples: must be a whole number, got {n_samples!r}.")
    if spec.builtin and not MIN_BUILTIN_SAMPLES <= n_samples <= MAX_BUILTIN_SAMPLES:
        raise ConfigError(
            t("n_samples: {name} is generated and needs {low} to {high} examples, got {n}.",
              name=spec.name, low=MIN_BUILTIN_SAMPLES, high=MAX_BUILTIN_SAMPLES, n=n_samples)
        )
    if not spec.builtin and n_samples < 0:
        raise ConfigError(f"n_samples: must be 0 (use all) or more, got {n_samples}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: must be a whole number >= 0, got {seed!r}.")
    if not _is_number(noise) or not 0.0 <= noise <= 10.0:
        raise ConfigError(f"noise: must be between 0 and 10, got {noise!r}.")
    share = option("val_fraction")  # the range is declared once, on RunConfig's field
    if not _is_number(val_fraction) or not share.low <= val_fraction <= share.high:
        raise ConfigError(f"val_fraction: use {share.low:g} to {share.high:g}, got "
                          f"{val_fraction!r}.")
    if not _is_number(imbalance) or imbalance < 1.0:
        raise ConfigError(
            f"imbalance: must be 1 (balanced) or more (majority / minority ratio), "
            f"got {imbalance!r}."
        )
    if not _is_number(outlier_fraction) or not 0.0 <= outlier_fraction < 0.5:
        raise ConfigError(
            f"outlier_fraction: must be at least 0 and less than 0.5, got {outlier_fraction!r}."
        )


def _is_number(value: object) -> bool:
    """True for a finite int or float (not bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return math.isfinite(float(value))


def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent NumPy generator for one purpose: the run's data stream ``stream``."""
    return data_rng(seed, stream)


def _imbalance_keep(
    y: np.ndarray, n_classes: int, imbalance: float, rng: np.random.Generator
) -> np.ndarray:
    """Sorted indices of y to keep so class k has imbalance**(-k/(K-1)) of class 0's count."""
    if imbalance == 1.0 or n_classes < 2:
        return np.arange(y.shape[0])
    ratio = float(imbalance) ** (-np.arange(n_classes) / (n_classes - 1))  # (K,)
    counts = np.bincount(y, minlength=n_classes)
    present = counts > 0
    base = float(np.min(counts[present] / ratio[present]))
    keep = []
    for k in range(n_classes):
        idx = np.flatnonzero(y == k)
        if idx.size:
            n_keep = min(idx.size, max(1, round(base * ratio[k])))
            keep.append(rng.choice(idx, n_keep, replace=False))
    return np.sort(np.concatenate(keep))


def _subsample(
    x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most n examples, chosen at random but kept in file order."""
    if n >= y.shape[0]:
        return x, y
    idx = np.sort(rng.choice(y.shape[0], n, replace=False))
    return x[idx], y[idx]


def _standardize_images(
    x_tr: np.ndarray, x_va: np.ndarray, extra: dict, standardize: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean / std of the train images into extra; standardize both splits with them."""
    mean = x_tr.mean(axis=(0, 2, 3), dtype=np.float64)  # (C,)
    std = x_tr.std(axis=(0, 2, 3), dtype=np.float64)  # (C,)
    std = np.where(std > 1e-8, std, 1.0)
    extra["mean"] = [float(v) for v in mean]
    extra["std"] = [float(v) for v in std]
    extra["standardized"] = bool(standardize)
    if standardize:
        m = mean.astype(np.float32)[None, :, None, None]
        s = std.astype(np.float32)[None, :, None, None]
        x_tr = (x_tr - m) / s
        x_va = (x_va - m) / s
    return x_tr, x_va


def _class_names(spec: DatasetSpec) -> list[str]:
    """Human names of the classes (empty for regression)."""
    if spec.task == "regression":
        return []
    if spec.name in ("shapes32", "shapes28"):
        return list(SHAPE_CLASSES)
    if spec.name == "edges16":
        return list(EDGE_CLASSES)
    if spec.name == "mnist":
        return [str(i) for i in range(10)]
    if spec.name == "fashion_mnist":
        return list(FASHION_CLASSES)
    if spec.name == "cifar10":
        return list(CIFAR_CLASSES)
    if spec.name == "spiral":
        return ["arm 0", "arm 1", "arm 2"]
    return ["class 0", "class 1"]


def _bundle(
    spec: DatasetSpec,
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_va: np.ndarray,
    y_va: np.ndarray,
    class_names: list[str],
    extra: dict,
) -> DataBundle:
    """Wrap NumPy splits as torch tensors with the dtypes models and losses expect."""
    y_dtype = np.int64 if spec.task == "classification" else np.float32
    if spec.task == "classification":
        extra["train_class_counts"] = np.bincount(y_tr, minlength=spec.n_classes).tolist()
    return DataBundle(
        name=spec.name,
        task=spec.task,
        n_classes=spec.n_classes,
        input_shape=spec.input_shape,
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr, dtype=np.float32)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr, dtype=y_dtype)),
        x_val=torch.from_numpy(np.ascontiguousarray(x_va, dtype=np.float32)),
        y_val=torch.from_numpy(np.ascontiguousarray(y_va, dtype=y_dtype)),
        class_names=class_names,
        extra=extra,
    )
