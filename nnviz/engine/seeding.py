"""Reproducibility: the tutorial's ``set_seed`` plus per-run generators.

``set_seed`` seeds every global generator exactly as the tutorial does. Global state alone is not
enough when two runs share a process (the app trains several at once), so each run also draws its
initial weights and its data order from its own ``torch.Generator`` (see ``run_generators``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch


def set_seed(seed: int = 42, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU, CUDA); ``deterministic`` pins cuDNN's algorithms."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # affects only subprocesses started later
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@dataclass
class RunGenerators:
    """Independent random streams of one run: weights, data order, dropout and sampling."""

    init: torch.Generator
    order: torch.Generator
    sample_seed: int


def run_generators(seed: int) -> RunGenerators:
    """Generators derived from the run's seed; two runs in one process never share a stream."""
    init = torch.Generator().manual_seed(seed)
    order = torch.Generator().manual_seed(seed + 1_000_003)
    return RunGenerators(init=init, order=order, sample_seed=seed + 2_000_003)
