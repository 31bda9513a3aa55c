"""Data sets: small ones generated from a seed; MNIST, Fashion-MNIST and CIFAR-10 from local files.

Nothing is ever downloaded. ``spec.py`` says what each set is, ``generated.py`` draws the built-in
sets, ``files.py`` reads (and writes) the local file formats.
"""

from __future__ import annotations

from nnviz.engine.data.files import (
    _load_local,
    read_cifar_bin,
    read_idx,
    write_cifar_bin,
    write_fake_dataset,
    write_idx,
)
from nnviz.engine.data.generated import _load_builtin
from nnviz.engine.data.spec import (
    CIFAR_FILES,
    DATASETS,
    MNIST_FILES,
    DataBundle,
    DatasetSpec,
    _check_args,
    describe,
)

__all__ = [
    "CIFAR_FILES",
    "DATASETS",
    "MNIST_FILES",
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
