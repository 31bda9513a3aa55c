"""Tests of nnviz.engine.data: generated sets, splits, imbalance, outliers and local
file formats."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from nnviz.engine.data import (
    CIFAR_FILES,
    DATASETS,
    MNIST_FILES,
    DatasetSpec,
    describe,
    load_dataset,
    read_cifar_bin,
    read_idx,
    write_cifar_bin,
    write_fake_dataset,
    write_idx,
)
from nnviz.errors import ConfigError, DataError

BUILTINS = [name for name, spec in DATASETS.items() if spec.builtin]
LOCALS = [name for name, spec in DATASETS.items() if not spec.builtin]


# --------------------------------------------------------------------------- registry


def test_edges16_draws_parallel_oriented_edges_per_image() -> None:
    from nnviz.engine.data import load_dataset

    a = load_dataset("edges16", n_samples=400, seed=3, noise=0.0, standardize=False)
    b = load_dataset("edges16", n_samples=400, seed=3, noise=0.0, standardize=False)
    assert torch.equal(a.x_train, b.x_train) and a.x_train.shape[1:] == (1, 16, 16)
    assert a.class_names == ["vertical edge", "/ edge", "horizontal edge", "\\ edge"]
    assert np.bincount(np.concatenate([a.y_train.numpy(), a.y_val.numpy()])).tolist() == [100] * 4
    x = a.x_train[:, 0].numpy()
    assert x.min() >= 0.0 and x.max() <= 1.0
    # a vertical edge changes along x only, a horizontal one along y only (up to the ±8° tilt)
    dx = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2))
    dy = np.abs(np.diff(x, axis=1)).mean(axis=(1, 2))
    y = a.y_train.numpy()
    assert np.all(dx[y == 0] > 3 * dy[y == 0]) and np.all(dy[y == 2] > 3 * dx[y == 2])
    assert np.allclose(dx[y == 1], dy[y == 1], rtol=0.5)  # diagonals change along both
    # the edges are sharp with flat bands between them, several per image
    change = np.abs(np.diff(x[y == 0], axis=2))  # (n, 16 rows, 15 steps) across vertical edges
    assert np.all((change < 0.01).mean(axis=(1, 2)) > 0.2)  # flat bands in every image
    assert np.all((change > 0.05).sum(axis=2).min(axis=1) >= 2)  # every row crosses edges


def test_registry_has_every_data_set() -> None:
    assert set(DATASETS) == {
        "regression", "moons", "circles", "xor", "spiral", "shapes32", "shapes28",
        "edges16", "mnist", "fashion_mnist", "cifar10",
    }
    for name, spec in DATASETS.items():
        assert isinstance(spec, DatasetSpec)
        assert spec.name == name
        assert spec.task in ("regression", "classification")
        assert (spec.n_classes == 0) == (spec.task == "regression")
        assert spec.label and spec.description and "\n" not in spec.description
        assert bool(spec.files) == (not spec.builtin)
    assert DATASETS["mnist"].files == MNIST_FILES
    assert DATASETS["cifar10"].files == CIFAR_FILES


def test_describe_known_and_unknown() -> None:
    assert describe("spiral").n_classes == 3
    with pytest.raises(ConfigError) as info:
        describe("imagenet")
    assert "imagenet" in str(info.value)
    for name in DATASETS:
        assert name in str(info.value)
    with pytest.raises(ConfigError):
        load_dataset("nope")


# --------------------------------------------------------------------------- built-in sets


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_shapes_dtypes_and_labels(name: str) -> None:
    spec = DATASETS[name]
    b = load_dataset(name, n_samples=200, seed=1)
    assert (b.name, b.task, b.n_classes, b.input_shape) == (
        name, spec.task, spec.n_classes, spec.input_shape,
    )
    assert b.x_train.shape == (160, *spec.input_shape)
    assert b.x_val.shape == (40, *spec.input_shape)
    assert b.x_train.dtype == b.x_val.dtype == torch.float32
    assert torch.isfinite(b.x_train).all() and torch.isfinite(b.x_val).all()
    if spec.task == "regression":
        assert b.y_train.shape == (160, 1) and b.y_val.shape == (40, 1)
        assert b.y_train.dtype == b.y_val.dtype == torch.float32
        assert b.class_names == []
    else:
        assert b.y_train.shape == (160,) and b.y_val.shape == (40,)
        assert b.y_train.dtype == b.y_val.dtype == torch.int64
        assert int(b.y_train.min()) == 0 and int(b.y_train.max()) == spec.n_classes - 1
        assert set(b.y_val.tolist()) <= set(range(spec.n_classes))
        assert len(b.class_names) == spec.n_classes
        assert sum(b.extra["train_class_counts"]) == 160


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_is_deterministic_and_leaves_global_rng_alone(name: str) -> None:
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    py_state = random.getstate()
    a = load_dataset(name, n_samples=100, seed=7)
    b = load_dataset(name, n_samples=100, seed=7)
    c = load_dataset(name, n_samples=100, seed=8)
    assert torch.equal(torch.get_rng_state(), torch_state)
    new_np = np.random.get_state()
    assert new_np[0] == np_state[0] and np.array_equal(new_np[1], np_state[1])
    assert new_np[2:] == np_state[2:]
    assert random.getstate() == py_state
    for field in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.x_train, c.x_train)
    assert a.extra == b.extra


def test_global_seed_does_not_change_builtin_data() -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    a = load_dataset("moons", n_samples=50, seed=3)
    torch.manual_seed(2)
    np.random.seed(2)
    b = load_dataset("moons", n_samples=50, seed=3)
    assert torch.equal(a.x_train, b.x_train)


@pytest.mark.parametrize(
    ("n", "fraction", "n_val"), [(200, 0.2, 40), (101, 0.3, 30), (10, 0.01, 1), (10, 0.89, 9)]
)
def test_split_sizes(n: int, fraction: float, n_val: int) -> None:
    b = load_dataset("circles", n_samples=n, val_fraction=fraction)
    assert len(b.y_val) == n_val
    assert len(b.y_train) == n - n_val


def test_split_is_a_permutation_of_the_generated_points() -> None:
    small = load_dataset("xor", n_samples=100, seed=4, val_fraction=0.5)
    big = load_dataset("xor", n_samples=100, seed=4, val_fraction=0.1)
    rows = lambda b: {tuple(r) for r in torch.cat([b.x_train, b.x_val]).tolist()}  # noqa: E731
    assert rows(small) == rows(big)
    assert len(rows(small)) == 100


@pytest.mark.parametrize("name", ["moons", "circles", "xor", "spiral"])
def test_2d_sets_are_roughly_unit_range_and_balanced(name: str) -> None:
    b = load_dataset(name, n_samples=600, noise=0.1, val_fraction=0.2)
    x = torch.cat([b.x_train, b.x_val])
    assert 0.5 < float(x.abs().max()) < 2.0
    y = torch.cat([b.y_train, b.y_val])
    counts = torch.bincount(y)
    assert int(counts.max() - counts.min()) <= 1


def test_noise_widens_2d_points() -> None:
    clean = load_dataset("circles", n_samples=400, noise=0.0)
    radius = clean.x_train.norm(dim=1)
    expected = torch.where(clean.y_train == 0, 1.0, 0.5)
    assert torch.allclose(radius, expected, atol=1e-5)
    noisy = load_dataset("circles", n_samples=400, noise=0.2)
    noisy_expected = torch.where(noisy.y_train == 0, 1.0, 0.5)
    assert float((noisy.x_train.norm(dim=1) - noisy_expected).abs().mean()) > 0.05


@pytest.mark.parametrize("name", ["shapes32", "shapes28"])
def test_images_standardized_per_channel_with_train_stats(name: str) -> None:
    b = load_dataset(name, n_samples=500, seed=2)
    channels = b.input_shape[0]
    mean = b.x_train.mean(dim=(0, 2, 3))
    std = b.x_train.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(channels), atol=1e-4)
    assert torch.allclose(std, torch.ones(channels), atol=1e-3)
    assert len(b.extra["mean"]) == len(b.extra["std"]) == channels
    raw = load_dataset(name, n_samples=500, seed=2, standardize=False)
    assert raw.extra["mean"] == b.extra["mean"] and raw.extra["std"] == b.extra["std"]
    m = torch.tensor(b.extra["mean"]).view(1, -1, 1, 1)
    s = torch.tensor(b.extra["std"]).view(1, -1, 1, 1)
    assert torch.allclose(b.x_train * s + m, raw.x_train, atol=1e-5)
    assert torch.allclose(b.x_val * s + m, raw.x_val, atol=1e-5)


def test_shapes_class_is_not_given_away_by_brightness() -> None:
    b = load_dataset("shapes32", n_samples=2000, seed=5, standardize=False)
    per_image = b.x_train.mean(dim=(1, 2, 3))
    for k in range(10):
        assert 0.35 < float(per_image[b.y_train == k].mean()) < 0.65


def test_shapes32_is_fast_enough() -> None:
    import time

    start = time.process_time()  # CPU time: not inflated by other processes on a busy machine
    b = load_dataset("shapes32", n_samples=5000)
    assert time.process_time() - start < 2.0
    assert b.x_train.shape == (4000, 3, 32, 32)


def test_shapes28_is_learnable_quickly() -> None:
    b = load_dataset("shapes28", n_samples=700, seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 5, stride=3), torch.nn.ReLU(),  # (N, 8, 8, 8)
            torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 10),
        )
        for _ in range(3):
            for i in range(0, len(b.y_train), 32):
                batch_x, batch_y = b.x_train[i : i + 32], b.y_train[i : i + 32]
                net.zero_grad()
                torch.nn.functional.cross_entropy(net(batch_x), batch_y).backward()
                with torch.no_grad():  # plain SGD by hand: torch.optim's first import is slow
                    for param in net.parameters():
                        param -= 0.1 * param.grad
    with torch.no_grad():
        accuracy = (net(b.x_val).argmax(1) == b.y_val).float().mean().item()
    assert accuracy > 0.35  # chance is 0.1


# --------------------------------------------------------------------------- regression


def test_regression_extra_and_least_squares_recovers_w_and_b() -> None:
    b = load_dataset("regression", n_samples=300, seed=11, noise=0.0)
    true_w, true_b = b.extra["true_w"], b.extra["true_b"]
    assert len(true_w) == 2 and isinstance(true_b, float)
    x = b.x_train.double().numpy()
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, b.y_train.double().numpy()[:, 0], rcond=None)
    assert np.allclose(coef[:2], true_w, atol=1e-5)
    assert abs(coef[2] - true_b) < 1e-5
    assert b.extra["outliers"] == 0
    other = load_dataset("regression", n_samples=300, seed=12, noise=0.0)
    assert other.extra["true_w"] != true_w


def test_regression_noise_level() -> None:
    b = load_dataset("regression", n_samples=2000, seed=3, noise=0.5)
    w = torch.tensor(b.extra["true_w"])
    residual = b.y_train[:, 0] - (b.x_train @ w + b.extra["true_b"])
    assert 0.45 < float(residual.std()) < 0.55


def test_outliers_only_in_train_targets() -> None:
    clean = load_dataset("regression", n_samples=500, seed=2)
    dirty = load_dataset("regression", n_samples=500, seed=2, outlier_fraction=0.1)
    assert dirty.extra["outliers"] == 40  # round(0.1 * 400)
    assert torch.equal(clean.x_train, dirty.x_train)
    assert torch.equal(clean.y_val, dirty.y_val)
    changed = (clean.y_train != dirty.y_train)[:, 0]
    assert int(changed.sum()) == 40
    assert torch.nonzero(changed)[:, 0].tolist() == dirty.extra["outlier_indices"]
    shift = (dirty.y_train - clean.y_train)[changed].abs()
    assert float(shift.min()) > 5 * float(clean.y_train.std())


# --------------------------------------------------------------------------- imbalance


@pytest.mark.parametrize(("name", "ratio"), [("moons", 4.0), ("spiral", 9.0), ("shapes28", 10.0)])
def test_imbalance_ratio_and_balanced_validation(name: str, ratio: float) -> None:
    balanced = load_dataset(name, n_samples=1000, seed=1, standardize=False)
    b = load_dataset(name, n_samples=1000, seed=1, imbalance=ratio, standardize=False)
    counts = torch.bincount(b.y_train, minlength=b.n_classes).double()
    assert counts.tolist() == b.extra["train_class_counts"]
    assert torch.all(counts[:-1] >= counts[1:])
    assert abs(float(counts[0] / counts[-1]) - ratio) < 0.1 * ratio
    k = torch.arange(b.n_classes, dtype=torch.float64)
    expected = counts[0] * ratio ** (-k / (b.n_classes - 1))
    assert torch.allclose(counts, expected, atol=1.0)
    assert torch.equal(balanced.y_val, b.y_val)  # validation untouched
    assert torch.equal(balanced.x_val, b.x_val)


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs",
    [
        {"imbalance": 0.5},
        {"imbalance": float("nan")},
        {"outlier_fraction": -0.1},
        {"outlier_fraction": 0.5},
        {"n_samples": 9},
        {"n_samples": -1},
        {"n_samples": 2.5},
        {"val_fraction": 0.0},
        {"val_fraction": 0.95},  # above RunConfig's val_fraction range (0.01 to 0.9)
        {"val_fraction": 1.5},
        {"noise": -0.1},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict) -> None:
    option = next(iter(kwargs))
    with pytest.raises(ConfigError) as info:
        load_dataset("moons", **kwargs)
    assert option in str(info.value)


def test_local_negative_n_samples_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_dataset("mnist", n_samples=-5, data_dir=str(tmp_path))


# --------------------------------------------------------------------------- local files


def _to_bytes(x: torch.Tensor) -> np.ndarray:
    """Pixels in [0, 1] back to the uint8 values of the file."""
    return torch.round(x * 255).to(torch.uint8).numpy()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, name: str, gz: bool) -> None:
    arrays = write_fake_dataset(name, tmp_path, n_train=30, n_test=12, seed=3, gz=gz)
    suffix = ".gz" if gz else ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f + suffix for f in MNIST_FILES)
    b = load_dataset(name, n_samples=0, data_dir=str(tmp_path), standardize=False)
    assert b.x_train.shape == (30, 1, 28, 28) and b.x_val.shape == (12, 1, 28, 28)
    assert b.y_train.dtype == torch.int64 and b.x_train.dtype == torch.float32
    assert np.array_equal(_to_bytes(b.x_train), arrays["train_images"])
    assert np.array_equal(b.y_train.numpy(), arrays["train_labels"])
    assert np.array_equal(_to_bytes(b.x_val), arrays["test_images"])
    assert np.array_equal(b.y_val.numpy(), arrays["test_labels"])
    assert len(b.class_names) == 10
    if name == "fashion_mnist":
        assert b.class_names[9] == "Ankle boot"


def test_write_and_read_idx_exact(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    write_idx(tmp_path / "img", images)
    write_idx(tmp_path / "lab.gz", labels)
    assert (tmp_path / "img").read_bytes()[:4] == b"\x00\x00\x08\x03"
    header = gzip.decompress((tmp_path / "lab.gz").read_bytes())[:8]
    assert header == b"\x00\x00\x08\x01\x00\x00\x00\x05"  # labels magic, count 5
    assert np.array_equal(read_idx(tmp_path / "img"), images)
    assert np.array_equal(read_idx(tmp_path / "lab.gz"), labels)
    with pytest.raises(ConfigError):
        write_idx(tmp_path / "x", images.astype(np.int32))
    with pytest.raises(ConfigError):
        write_idx(tmp_path / "x", images[None])


def test_local_standardized_and_subsampled(tmp_path: Path) -> None:
    arrays = write_fake_dataset("mnist", tmp_path, n_train=50, n_test=30, seed=1)
    b = load_dataset("mnist", n_samples=20, val_fraction=0.25, seed=4, data_dir=str(tmp_path))
    assert len(b.y_train) == 20 and len(b.y_val) == 5
    assert abs(float(b.x_train.mean())) < 1e-4 and abs(float(b.x_train.std()) - 1) < 1e-2
    m, s = b.extra["mean"][0], b.extra["std"][0]
    pixels = torch.round((b.x_train * s + m) * 255).to(torch.uint8).numpy()
    file_rows = {
        row.tobytes(): label
        for row, label in zip(arrays["train_images"], arrays["train_labels"], strict=True)
    }
    for row, label in zip(pixels, b.y_train.tolist(), strict=True):
        assert file_rows[row.tobytes()] == label  # every example is a file row with its label
    again = load_dataset("mnist", n_samples=20, val_fraction=0.25, seed=4, data_dir=str(tmp_path))
    assert torch.equal(again.x_train, b.x_train)
    other = load_dataset("mnist", n_samples=20, val_fraction=0.25, seed=5, data_dir=str(tmp_path))
    assert not torch.equal(other.y_train, b.y_train) or not torch.equal(other.x_train, b.x_train)
    everything = load_dataset("mnist", n_samples=1000, data_dir=str(tmp_path))
    assert len(everything.y_train) == 50 and len(everything.y_val) == 30


def test_local_imbalance(tmp_path: Path) -> None:
    write_fake_dataset("mnist", tmp_path, n_train=200, n_test=20, seed=1)
    b = load_dataset("mnist", n_samples=0, data_dir=str(tmp_path), imbalance=5.0)
    counts = torch.bincount(b.y_train, minlength=10)
    assert int(counts[0]) == 20 and int(counts[9]) == 4


@pytest.mark.parametrize("subfolder", ["", "cifar-10-batches-bin"])
def test_cifar_round_trip(tmp_path: Path, subfolder: str) -> None:
    folder = tmp_path / subfolder if subfolder else tmp_path
    arrays = write_fake_dataset("cifar10", folder, n_train=23, n_test=7, seed=2)
    b = load_dataset("cifar10", n_samples=0, data_dir=str(tmp_path), standardize=False)
    assert b.x_train.shape == (23, 3, 32, 32) and b.x_val.shape == (7, 3, 32, 32)
    assert np.array_equal(_to_bytes(b.x_train), arrays["train_images"])
    assert np.array_equal(b.y_train.numpy(), arrays["train_labels"])
    assert np.array_equal(_to_bytes(b.x_val), arrays["test_images"])
    assert np.array_equal(b.y_val.numpy(), arrays["test_labels"])
    assert b.class_names[0] == "airplane"
    std = load_dataset("cifar10", n_samples=0, data_dir=str(tmp_path))
    assert torch.allclose(std.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)


def test_write_and_read_cifar_bin_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3], dtype=np.uint8)
    write_cifar_bin(tmp_path / "b.bin", images, labels)
    raw = (tmp_path / "b.bin").read_bytes()
    assert len(raw) == 4 * 3073 and raw[3073] == 9
    got_images, got_labels = read_cifar_bin(tmp_path / "b.bin")
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)
    with pytest.raises(ConfigError):
        write_cifar_bin(tmp_path / "c.bin", images[:, :, :16], labels)


# --------------------------------------------------------------------------- local errors


@pytest.mark.parametrize("name", LOCALS)
def test_no_folder_given(name: str) -> None:
    for data_dir in (None, ""):
        with pytest.raises(DataError) as info:
            load_dataset(name, data_dir=data_dir)
        assert DATASETS[name].files[0] in str(info.value)


def test_missing_folder_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=str(missing))
    assert "nowhere" in str(info.value) and "t10k-labels-idx1-ubyte" in str(info.value)


@pytest.mark.parametrize("name", LOCALS)
def test_missing_file_named(tmp_path: Path, name: str) -> None:
    write_fake_dataset(name, tmp_path, n_train=10, n_test=5)
    victim = DATASETS[name].files[-1]
    (tmp_path / victim).unlink()
    with pytest.raises(DataError) as info:
        load_dataset(name, data_dir=str(tmp_path))
    assert victim in str(info.value)


def _mnist_dir(tmp_path: Path) -> Path:
    """A valid little MNIST folder, for the tests below to break one file of."""
    write_fake_dataset("mnist", tmp_path, n_train=12, n_test=6, seed=0)
    return tmp_path


def _header(magic: int, *dims: int) -> bytes:
    """IDX header bytes."""
    return np.array([magic, *dims], dtype=">u4").tobytes()


@pytest.mark.parametrize(
    ("filename", "content", "words"),
    [
        ("train-images-idx3-ubyte", _header(0x1234, 12, 28, 28), "magic number"),
        ("train-images-idx3-ubyte", _header(0x801, 12) + bytes(12), "magic number"),
        ("train-labels-idx1-ubyte", b"\x00\x00", "too short"),
        ("train-images-idx3-ubyte", _header(0x803, 12, 27, 28) + bytes(12 * 27 * 28), "28 x 28"),
        ("train-images-idx3-ubyte", _header(0x803, 12, 28, 28) + bytes(500), "truncated"),
        ("train-images-idx3-ubyte", _header(0x803), "incomplete"),
        ("train-labels-idx1-ubyte", _header(0x801, 12) + bytes(20), "more than"),
        ("train-labels-idx1-ubyte", _header(0x801, 11) + bytes(11), "same count"),
        ("t10k-labels-idx1-ubyte", _header(0x801, 6) + bytes([0, 1, 2, 12, 3, 4]), "0 to 9"),
    ],
)
def test_malformed_idx_named(tmp_path: Path, filename: str, content: bytes, words: str) -> None:
    folder = _mnist_dir(tmp_path)
    (folder / filename).write_bytes(content)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=str(folder))
    assert filename in str(info.value)
    assert words in str(info.value)


def test_damaged_gzip_named(tmp_path: Path) -> None:
    write_fake_dataset("mnist", tmp_path, n_train=12, n_test=6, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=str(tmp_path))
    assert "t10k-images-idx3-ubyte.gz" in str(info.value) and "gzip" in str(info.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (bytes(3073 * 2 + 5), "multiple of 3073"),
        (b"", "empty"),
        (bytes([10]) + bytes(3072), "label"),
    ],
)
def test_malformed_cifar_named(tmp_path: Path, content: bytes, words: str) -> None:
    write_fake_dataset("cifar10", tmp_path, n_train=10, n_test=4)
    (tmp_path / "data_batch_3.bin").write_bytes(content)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", data_dir=str(tmp_path))
    assert "data_batch_3.bin" in str(info.value) and words in str(info.value)


# --- hostile local files: sizes checked before and while reading ------------------------------


def test_mnist_names_with_dots_are_accepted(tmp_path: Path) -> None:
    write_fake_dataset("mnist", tmp_path, n_train=12, n_test=6, seed=0)
    plain = load_dataset("mnist", data_dir=str(tmp_path))
    for p in tmp_path.iterdir():  # train-images-idx3-ubyte -> train-images.idx3-ubyte
        p.rename(p.with_name(p.name.replace("-idx", ".idx", 1)))
    dotted = load_dataset("mnist", data_dir=str(tmp_path))
    np.testing.assert_array_equal(plain.x_train.numpy(), dotted.x_train.numpy())
    for p in tmp_path.iterdir():  # and gzipped with dots
        p.with_name(p.name + ".gz").write_bytes(__import__("gzip").compress(p.read_bytes()))
        p.unlink()
    gz = load_dataset("mnist", data_dir=str(tmp_path))
    np.testing.assert_array_equal(plain.y_train.numpy(), gz.y_train.numpy())


def test_huge_sparse_file_is_refused_before_reading(tmp_path: Path) -> None:
    import time

    write_fake_dataset("mnist", tmp_path, n_train=12, n_test=6, seed=0)
    path = tmp_path / "train-images-idx3-ubyte"
    with open(path, "r+b") as f:
        f.truncate(3 * 2**30)  # 3 GiB, sparse: nothing is written to disk
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: the file is 3072 MiB"):
        load_dataset("mnist", data_dir=str(tmp_path))
    assert time.perf_counter() - t0 < 5


def test_gzip_bomb_is_refused_while_reading(tmp_path: Path) -> None:
    import zlib

    write_fake_dataset("mnist", tmp_path, n_train=12, n_test=6, seed=0)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = _header(0x801, 12) + bytes(12)  # a valid label file, then 100 MiB of zeros
    with open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(comp.compress(head))
        for _ in range(100):
            f.write(comp.compress(bytes(2**20)))
        f.write(comp.flush())
    with pytest.raises(DataError, match="over 67108864 bytes more than its header"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_cifar_over_size_is_refused(tmp_path: Path) -> None:
    write_fake_dataset("cifar10", tmp_path, n_train=10, n_test=4)
    path = tmp_path / "data_batch_2.bin"
    with open(path, "r+b") as f:
        f.truncate(2 * 10_000 * 3073 + 3073)  # within the file limit, over a batch's size
    with pytest.raises(DataError, match="data_batch_2.bin: the data is over"):
        load_dataset("cifar10", data_dir=str(tmp_path))
