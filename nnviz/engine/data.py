"""Data sets: small ones generated from a seed; MNIST, Fashion-MNIST and CIFAR-10 from local files.

Nothing is ever downloaded. The built-in sets are drawn from ``np.random.default_rng`` streams
derived from the seed (never the global NumPy / torch random state), so the same arguments give
bit-identical tensors. Local sets are read from the original file formats with NumPy only: IDX
files for MNIST and Fashion-MNIST (plain or ``.gz``) and the *binary* CIFAR-10 batches (never
pickle). ``write_idx``, ``write_cifar_bin`` and ``write_fake_dataset`` write such files, for
tests and for trying the local-file path without the real data.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nnviz.errors import ConfigError, DataError

__all__ = [
    "DATASETS",
    "DataBundle",
    "DatasetSpec",
    "describe",
    "load_dataset",
    "read_cifar_bin",
    "read_idx",
    "write_cifar_bin",
    "write_fake_dataset",
    "write_idx",
]


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
            "regression", "Linear regression",
            "y = w·x + b + noise for 2-D points x; the true w and b are known, so you can check "
            "what the model learned.",
            "regression", (2,), 0, True,
        ),
        DatasetSpec(
            "moons", "Two moons",
            "Two interleaving half circles: a curved boundary a straight line cannot draw.",
            "classification", (2,), 2, True,
        ),
        DatasetSpec(
            "circles", "Circles",
            "A small circle inside a big one: the classes can only be split by a closed curve.",
            "classification", (2,), 2, True,
        ),
        DatasetSpec(
            "xor", "XOR blobs",
            "Four blobs with opposite corners in the same class: the classic problem one linear "
            "layer cannot solve.",
            "classification", (2,), 2, True,
        ),
        DatasetSpec(
            "spiral", "Spiral",
            "Three interleaved spiral arms: a hard 2-D problem that needs a deep enough network.",
            "classification", (2,), 3, True,
        ),
        DatasetSpec(
            "shapes32", "Shapes 32x32 (colour)",
            "10 kinds of stripes and shapes in random colours, CIFAR-sized (3x32x32); conv "
            "filters learn edge detectors in a few epochs.",
            "classification", (3, 32, 32), 10, True,
        ),
        DatasetSpec(
            "shapes28", "Shapes 28x28 (grey)",
            "The same 10 kinds of stripes and shapes in grey, MNIST-sized (1x28x28).",
            "classification", (1, 28, 28), 10, True,
        ),
        DatasetSpec(
            "mnist", "MNIST digits (local files)",
            "Handwritten digits 0-9 (1x28x28), read from the IDX files in your data folder.",
            "classification", (1, 28, 28), 10, False, MNIST_FILES,
        ),
        DatasetSpec(
            "fashion_mnist", "Fashion-MNIST (local files)",
            "Photos of 10 kinds of clothing (1x28x28), read from the IDX files in your data "
            "folder.",
            "classification", (1, 28, 28), 10, False, MNIST_FILES,
        ),
        DatasetSpec(
            "cifar10", "CIFAR-10 (local files)",
            "Small colour photos of 10 kinds of objects (3x32x32), read from the binary CIFAR-10 "
            "batches in your data folder.",
            "classification", (3, 32, 32), 10, False, CIFAR_FILES,
        ),
    )
}

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
        raise ConfigError(f"dataset: unknown data set {name!r}. Valid names: {valid}.")
    return DATASETS[name]


def load_dataset(
    name: str,
    *,
    n_samples: int = 2000,
    seed: int = 0,
    noise: float = 0.1,
    val_fraction: float = 0.2,
    data_dir: str | None = None,
    imbalance: float = 1.0,
    outlier_fraction: float = 0.0,
    standardize: bool = True,
) -> DataBundle:
    """Generate (built-in) or read (local) a data set and split it into train and validation."""
    spec = describe(name)
    _check_args(spec, n_samples, seed, noise, val_fraction, imbalance, outlier_fraction)
    if spec.builtin:
        return _load_builtin(
            spec, n_samples, seed, noise, val_fraction, imbalance, outlier_fraction, standardize
        )
    return _load_local(spec, n_samples, seed, val_fraction, data_dir, imbalance, standardize)


# --------------------------------------------------------------------------- argument checks


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
    if spec.builtin and not 10 <= n_samples <= MAX_BUILTIN_SAMPLES:
        raise ConfigError(
            f"n_samples: {spec.name} is generated and needs 10 to {MAX_BUILTIN_SAMPLES} "
            f"examples, got {n_samples}."
        )
    if not spec.builtin and n_samples < 0:
        raise ConfigError(f"n_samples: must be 0 (use all) or more, got {n_samples}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: must be a whole number >= 0, got {seed!r}.")
    if not _is_number(noise) or not 0.0 <= noise <= 10.0:
        raise ConfigError(f"noise: must be between 0 and 10, got {noise!r}.")
    if not _is_number(val_fraction) or not 0.0 < val_fraction < 0.9:
        raise ConfigError(
            f"val_fraction: must be more than 0 and less than 0.9, got {val_fraction!r}."
        )
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
    """An independent NumPy generator for one purpose, derived from the seed."""
    return np.random.default_rng([int(seed), stream])


# --------------------------------------------------------------------------- built-in sets


def _load_builtin(
    spec: DatasetSpec,
    n: int,
    seed: int,
    noise: float,
    val_fraction: float,
    imbalance: float,
    outlier_fraction: float,
    standardize: bool,
) -> DataBundle:
    """Generate a built-in set, split it, apply imbalance / outliers and standardize images."""
    rng = _rng(seed, _STREAM_DATA)
    extra: dict = {"source": "generated", "seed": int(seed), "noise": float(noise)}
    if spec.task == "regression":
        x, y, true_w, true_b = _make_regression(n, noise, rng)
        extra.update(true_w=true_w, true_b=true_b)
    elif spec.name in ("shapes32", "shapes28"):
        c, s, _ = spec.input_shape
        y = _balanced_labels(n, spec.n_classes)
        x = _render_shapes(y, s, c, noise, rng)  # (N, C, S, S)
    else:
        y = _balanced_labels(n, spec.n_classes)
        x = _make_2d(spec.name, y, noise, rng)  # (N, 2)

    n_val = max(1, round(n * val_fraction))
    n_val = min(n_val, n - 1)
    order = _rng(seed, _STREAM_SPLIT).permutation(n)
    tr, va = order[n_val:], order[:n_val]
    x_tr, y_tr, x_va, y_va = x[tr], y[tr], x[va], y[va]

    if spec.task == "classification":
        keep = _imbalance_keep(y_tr, spec.n_classes, imbalance, _rng(seed, _STREAM_IMBALANCE))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    else:
        y_tr, outlier_idx = _add_outliers(y_tr, outlier_fraction, _rng(seed, _STREAM_OUTLIERS))
        extra["outliers"] = int(outlier_idx.size)
        extra["outlier_indices"] = outlier_idx.tolist()

    if len(spec.input_shape) == 3:
        x_tr, x_va = _standardize_images(x_tr, x_va, extra, standardize)
    return _bundle(spec, x_tr, y_tr, x_va, y_va, _class_names(spec), extra)


def _balanced_labels(n: int, n_classes: int) -> np.ndarray:
    """n labels with every class as often as possible (the first classes get the remainder)."""
    return (np.arange(n) % n_classes).astype(np.int64)  # (N,)


def _make_regression(
    n: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[float], float]:
    """Points x in [-1, 1]^2 and targets y = w·x + b + noise with w, b drawn from the seed."""
    true_w = np.round(rng.normal(0.0, 1.0, 2), 2)  # (2,)
    true_b = float(np.round(rng.uniform(-1.0, 1.0), 2))
    x = rng.uniform(-1.0, 1.0, (n, 2)).astype(np.float32)  # (N, 2)
    y = x.astype(np.float64) @ true_w + true_b + noise * rng.standard_normal(n)
    return x, y.astype(np.float32)[:, None], [float(v) for v in true_w], true_b  # y: (N, 1)


def _make_2d(name: str, y: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """2-D points for labels y, roughly in [-1, 1]^2, plus Gaussian noise of std `noise`."""
    n = y.shape[0]
    if name == "moons":
        t = rng.uniform(0.0, math.pi, n)
        upper = np.stack([np.cos(t), np.sin(t)], axis=1)  # (N, 2)
        lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
        pts = np.where((y == 0)[:, None], upper, lower)
        pts = (pts - np.array([0.5, 0.25])) / 1.5
    elif name == "circles":
        t = rng.uniform(0.0, 2.0 * math.pi, n)
        radius = np.where(y == 0, 1.0, 0.5)
        pts = radius[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    elif name == "xor":
        quadrant = rng.integers(0, 2, n)  # which of the two blobs of the class
        sx = np.where(quadrant == 0, 1.0, -1.0)
        sy = np.where(y == 0, sx, -sx)  # class 0: same signs, class 1: opposite signs
        pts = 0.5 * np.stack([sx, sy], axis=1) + 0.15 * rng.standard_normal((n, 2))
    elif name == "spiral":
        r = rng.uniform(0.05, 1.0, n)
        theta = y * (2.0 * math.pi / 3.0) + 5.0 * r
        pts = r[:, None] * np.stack([np.sin(theta), np.cos(theta)], axis=1)
    else:  # pragma: no cover - guarded by DATASETS
        raise ConfigError(f"dataset: {name!r} is not a 2-D data set.")
    pts = pts + noise * rng.standard_normal((n, 2))
    return pts.astype(np.float32)  # (N, 2)


def _soft(t: np.ndarray) -> np.ndarray:
    """Map a signed distance (in pixels) to coverage in [0, 1] with a one-pixel soft edge."""
    return np.clip(t + 0.5, 0.0, 1.0)


def _stripes(t: np.ndarray) -> np.ndarray:
    """Nearly square-wave stripes from a phase argument, values in [0, 1]."""
    return np.clip(2.5 * np.sin(t), -1.0, 1.0) * 0.5 + 0.5


def _shape_mask(k: int, xx: np.ndarray, yy: np.ndarray, p: dict, size: int) -> np.ndarray:
    """Foreground coverage (M, S, S) in [0, 1] of class k for M samples with parameters p."""
    two_pi = 2.0 * math.pi
    f, ph, ph2, cx, cy, s, w = (p[key] for key in ("f", "ph", "ph2", "cx", "cy", "s", "w"))
    if k == 0:  # horizontal stripes: vary along y
        return _stripes(two_pi * f * yy + ph)
    if k == 1:  # vertical stripes: vary along x
        return _stripes(two_pi * f * xx + ph)
    if k == 2:  # "/" stripes: constant along x + y (y points down)
        return _stripes(two_pi * f * (xx + yy) / math.sqrt(2.0) + ph)
    if k == 3:  # "\" stripes: constant along x - y
        return _stripes(two_pi * f * (xx - yy) / math.sqrt(2.0) + ph)
    if k == 4:  # checkerboard
        g = np.sin(two_pi * 0.6 * f * xx + ph) * np.sin(two_pi * 0.6 * f * yy + ph2)
        return np.clip(4.0 * g, -1.0, 1.0) * 0.5 + 0.5
    dx, dy = np.abs(xx - cx), np.abs(yy - cy)
    r = np.sqrt(dx * dx + dy * dy)
    if k == 5:  # filled disc
        return _soft((0.14 + 0.14 * s - r) * size)
    if k == 6:  # ring
        radius, half_width = 0.2 + 0.12 * s, 0.04 + 0.03 * w
        return _soft((half_width - np.abs(r - radius)) * size)
    if k == 7:  # filled square
        return _soft((0.13 + 0.13 * s - np.maximum(dx, dy)) * size)
    if k == 8:  # plus-shaped cross
        arm, half_width = 0.22 + 0.13 * s, 0.05 + 0.04 * w
        bar_h = np.minimum(_soft((half_width - dy) * size), _soft((arm - dx) * size))
        bar_v = np.minimum(_soft((half_width - dx) * size), _soft((arm - dy) * size))
        return np.maximum(bar_h, bar_v)
    sigma = 0.09 + 0.09 * s  # k == 9: soft Gaussian blob, no hard edge
    return np.exp(-(r * r) / (2.0 * sigma * sigma))


def _render_shapes(
    y: np.ndarray, size: int, channels: int, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """Images (N, C, S, S) in about [0, 1]: one pattern per class, random colours, pixel noise."""
    n = y.shape[0]
    # Every sample's parameters are drawn up front, so the result does not depend on class order.
    params = {
        "f": rng.uniform(2.0, 4.5, n),  # stripe frequency, cycles per image
        "ph": rng.uniform(0.0, 2.0 * math.pi, n),
        "ph2": rng.uniform(0.0, 2.0 * math.pi, n),
        "cx": rng.uniform(0.35, 0.65, n),  # shape centre, fraction of the image
        "cy": rng.uniform(0.35, 0.65, n),
        "s": rng.uniform(0.0, 1.0, n),  # shape size, 0..1 of its class's range
        "w": rng.uniform(0.0, 1.0, n),  # line width, 0..1 of its class's range
    }
    # Foreground and background colours: one light, one dark (randomly which), so the class is
    # never given away by colour or brightness, only by the pattern.
    light = rng.uniform(0.6, 1.0, (n, channels))
    dark = rng.uniform(0.0, 0.4, (n, channels))
    fg_light = rng.random(n) < 0.5
    fg = np.where(fg_light[:, None], light, dark).astype(np.float32)  # (N, C)
    bg = np.where(fg_light[:, None], dark, light).astype(np.float32)  # (N, C)
    pixel_noise = rng.standard_normal((n, channels, size, size), dtype=np.float32)

    coords = ((np.arange(size) + 0.5) / size).astype(np.float32)
    yy, xx = coords[None, :, None], coords[None, None, :]  # (1, S, 1), (1, 1, S)
    mask = np.empty((n, size, size), dtype=np.float32)  # (N, S, S)
    for k in range(len(SHAPE_CLASSES)):
        idx = np.flatnonzero(y == k)
        if idx.size:
            p = {key: v[idx].astype(np.float32)[:, None, None] for key, v in params.items()}
            mask[idx] = _shape_mask(k, xx, yy, p, size)
    img = bg[:, :, None, None] + (fg - bg)[:, :, None, None] * mask[:, None]  # (N, C, S, S)
    img += np.float32(noise) * pixel_noise
    return img.astype(np.float32, copy=False)


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


def _add_outliers(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shift round(fraction * N) targets by ± 10 target standard deviations."""
    n_out = round(fraction * y.shape[0])
    if n_out == 0:
        return y, np.zeros(0, dtype=np.int64)
    std = float(y.std()) or 1.0
    idx = np.sort(rng.choice(y.shape[0], n_out, replace=False))
    sign = np.where(rng.random(n_out) < 0.5, -1.0, 1.0)
    y = y.copy()
    y[idx, 0] += (10.0 * std * sign).astype(np.float32)
    return y, idx.astype(np.int64)


# --------------------------------------------------------------------------- shared helpers


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


# --------------------------------------------------------------------------- local sets


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


def _subsample(
    x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most n examples, chosen at random but kept in file order."""
    if n >= y.shape[0]:
        return x, y
    idx = np.sort(rng.choice(y.shape[0], n, replace=False))
    return x[idx], y[idx]


def _expected_files_text(spec: DatasetSpec) -> str:
    """The list of files a local set needs, for error messages."""
    text = ", ".join(spec.files)
    if spec.name == "cifar10":
        return (
            f"{text} (the BINARY version of CIFAR-10, cifar-10-binary.tar.gz, unpacked; "
            "they may also be in a 'cifar-10-batches-bin' sub-folder)"
        )
    return f"{text} (each may also end in .gz)"


def _find_folder(spec: DatasetSpec, data_dir: str | Path | None) -> Path:
    """The folder holding the set's files (data_dir or a usual sub-folder of it)."""
    if data_dir is None or str(data_dir).strip() == "":
        raise DataError(
            f"{spec.label}: no data folder was given. nnviz never downloads data; put these "
            f"files in a folder and give its path as data_dir: {_expected_files_text(spec)}."
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(
            f"{spec.label}: the data folder '{root}' {what}. It should hold: "
            f"{_expected_files_text(spec)}."
        )
    for sub in _SUBFOLDERS[spec.name]:
        candidate = root / sub if sub else root
        if candidate.is_dir() and any(_locate(candidate, f) for f in spec.files):
            return candidate
    return root


def _locate(folder: Path, filename: str) -> Path | None:
    """The path of filename (or filename.gz) in folder, if present."""
    for candidate in (filename, filename + ".gz"):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def _require_file(spec: DatasetSpec, folder: Path, filename: str) -> Path:
    """The path of a required file; DataError naming it when it is missing."""
    path = _locate(folder, filename)
    if path is None:
        gz = "" if spec.name == "cifar10" else f" (or {filename}.gz)"
        raise DataError(
            f"{spec.label}: the file {filename}{gz} is missing from the folder '{folder}'. "
            f"The folder must hold: {_expected_files_text(spec)}."
        )
    return path


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip-compressed (detected by content)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path.name}: cannot read the file ({exc.strerror or exc}).") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path.name}: the gzip file is damaged or incomplete ({exc}); "
                "download it again or unpack it with another tool."
            ) from exc
    return raw


def read_idx(path: str | Path, expect_magic: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (plain or gzip) into a uint8 array; DataError if malformed."""
    path = Path(path)
    name = path.name
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(
            f"{name}: the file is only {len(raw)} bytes long, too short to be an IDX file "
            "(it must start with a 4-byte magic number)."
        )
    magic = int.from_bytes(raw[:4], "big")
    kinds = {_IDX_IMAGES_MAGIC: "images", _IDX_LABELS_MAGIC: "labels"}
    if expect_magic is not None and magic != expect_magic:
        found = (
            f", which is the number of an IDX {kinds[magic]} file" if magic in kinds else ""
        )
        raise DataError(
            f"{name}: wrong magic number 0x{magic:08x}{found}; an IDX {kinds[expect_magic]} "
            f"file starts with 0x{expect_magic:08x}. The file is not what its name says, "
            "or it is damaged."
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(
            f"{name}: wrong magic number 0x{magic:08x}; an IDX file of unsigned bytes starts "
            "with 0x000008 followed by the number of dimensions. This is not an IDX file, "
            "or it is damaged."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(
            f"{name}: the IDX header is incomplete (it announces {ndim} dimensions but the "
            f"file has only {len(raw)} bytes). The file is damaged or truncated."
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims)
    actual = len(raw) - header
    if actual < expected:
        raise DataError(
            f"{name}: the file is truncated: its header announces {' x '.join(map(str, dims))} "
            f"= {expected} bytes of data, but only {actual} are there (an interrupted "
            "download?)."
        )
    if actual > expected:
        raise DataError(
            f"{name}: the file has {actual - expected} bytes more than its header "
            f"({' x '.join(map(str, dims))}) announces; it is damaged or not an IDX file."
        )
    return np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header).reshape(dims)


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
            f"{images_path.name}: the images are {' x '.join(map(str, images.shape[1:]))} "
            f"pixels, but {spec.label} images must be 28 x 28."
        )
    if labels.ndim != 1:
        raise DataError(f"{labels_path.name}: a label file must be 1-D, got {labels.ndim}-D.")
    if images.shape[0] == 0:
        raise DataError(f"{images_path.name}: the file holds no images.")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path.name} holds {images.shape[0]} images but {labels_path.name} holds "
            f"{labels.shape[0]} labels; they must have the same count (mixed-up files?)."
        )
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(
            f"{labels_path.name}: label {int(labels[bad])} at position {bad}; "
            f"{spec.label} labels must be 0 to 9."
        )
    return images[:, None], labels  # (N, 1, 28, 28), (N,)


def read_cifar_bin(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary CIFAR-10 batch: images (N, 3, 32, 32) uint8 and labels (N,) uint8."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) == 0:
        raise DataError(f"{path.name}: the file is empty.")
    if len(raw) % CIFAR_RECORD:
        raise DataError(
            f"{path.name}: the size {len(raw)} bytes is not a multiple of {CIFAR_RECORD} "
            "(1 label byte + 3072 pixel bytes per image), so the file is truncated or not a "
            "binary CIFAR-10 batch. nnviz needs the BINARY version (cifar-10-binary.tar.gz), "
            "not the Python (pickle) one."
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)  # (N, 3073)
    labels = records[:, 0]
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(
            f"{path.name}: image {bad} has label byte {int(labels[bad])}, but CIFAR-10 labels "
            "are 0 to 9; the file is damaged or not a CIFAR-10 batch."
        )
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


# --------------------------------------------------------------------------- writers


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
