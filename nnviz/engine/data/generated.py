"""Built-in data sets, generated from a seed: regression, 2-D point sets and rendered shapes.

Every set is drawn from ``np.random.default_rng`` streams derived from the seed (never the global
NumPy / torch random state), so the same arguments give bit-identical tensors.
"""

from __future__ import annotations

import math

import numpy as np

from nnviz.engine.data.spec import (
    _STREAM_DATA,
    _STREAM_IMBALANCE,
    _STREAM_OUTLIERS,
    _STREAM_SPLIT,
    SHAPE_CLASSES,
    DataBundle,
    DatasetSpec,
    _bundle,
    _class_names,
    _imbalance_keep,
    _rng,
    _standardize_images,
)
from nnviz.errors import ConfigError


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
    elif spec.name == "edges16":
        y = _balanced_labels(n, spec.n_classes)
        x = _render_edges(y, spec.input_shape[-1], noise, rng)  # (N, 1, S, S)
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


def _render_edges(y: np.ndarray, size: int, noise: float, rng: np.random.Generator
                  ) -> np.ndarray:
    """Images (N, 1, S, S): parallel straight light/dark edges, class k at angle k·45° (±8°).

    Each image is bands of light and dark with sharp (one-pixel) edges between them: a random
    spacing (5-9 pixels per light + dark pair), place (phase), contrast (0.3-0.7) and mean
    brightness (0.35-0.65, so every pixel is in [0, 1] before the noise), so neither where the
    edges are, nor which side is light, nor how bright the image is tells the class: only the
    edges' orientation does. The best first-layer filters for it are oriented edge detectors,
    not brightness blobs.
    """
    n = y.shape[0]
    angle = y * (math.pi / 4) + rng.uniform(-0.15, 0.15, n)  # direction of the edges' normal
    period = rng.uniform(5.0, 9.0, n)[:, None, None]  # pixels per light + dark pair
    phase = rng.uniform(0.0, 2.0 * math.pi, n)[:, None, None]
    contrast = rng.uniform(0.3, 0.7, n)[:, None, None]
    mean = rng.uniform(0.35, 0.65, n)[:, None, None]  # so that mean ± contrast / 2 is in [0, 1]
    pixel_noise = rng.standard_normal((n, size, size), dtype=np.float32)
    c = (np.arange(size) + 0.5 - size / 2).astype(np.float32)  # pixels from the centre
    yy, xx = c[None, :, None], c[None, None, :]  # (1, S, 1), (1, 1, S)
    nx, ny = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    wave = np.sin(2.0 * math.pi * (xx * nx + yy * ny) / period + phase)  # (N, S, S)
    # sin crosses 0 with slope 2π/period per pixel: scaling by period/π makes each edge go from
    # dark to light over about one pixel, flat in between
    level = np.clip(wave * period / math.pi, -1.0, 1.0)
    img = mean + 0.5 * contrast * level + np.float32(noise) * pixel_noise
    return img[:, None].astype(np.float32)


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
