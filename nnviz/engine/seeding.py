"""Reproducibility: every random stream of a run is a child of ``numpy.random.SeedSequence(seed)``.

One seed makes a run. Its streams are the children ``SeedSequence(seed).spawn(...)`` would give,
built directly as ``SeedSequence(seed, spawn_key=(k,))`` (the same child, without spawning state),
so each stream depends only on (seed, stream) and adding a stream never changes another:

======  ===========  ========================================================================
key     stream       used for
======  ===========  ========================================================================
0       ``init``     the initial weights (a ``torch.Generator``; nothing else draws from it)
1       ``order``    the order of the training examples in every epoch (``torch.Generator``)
2       ``dropout``  torch's global generator, which ``nn.Dropout`` draws from
3       ``sample``   which values the recorder keeps of a large tensor (NumPy)
4       ``data``     the data sets; child (4, s) is their stream ``s`` (points, split, ...)
5       ``python``   Python's ``random`` and NumPy's legacy global generator (nothing in nnviz
                     draws from them; seeded so that user code in the same process is
                     reproducible too)
======  ===========  ========================================================================

Two runs in one process (the app trains several at once) never share a stream: weights, order
and sampling come from per-run generators, and the global generators are re-seeded by
``seed_globals`` at the start of every run, after the model is built.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

STREAMS = {"init": 0, "order": 1, "dropout": 2, "sample": 3, "data": 4, "python": 5}


def stream(seed: int, name: str, *sub: int) -> np.random.SeedSequence:
    """The SeedSequence of one stream of a run (``sub``: a child of it, e.g. a data stream)."""
    return np.random.SeedSequence(int(seed), spawn_key=(STREAMS[name], *sub))


def stream_int(seed: int, name: str, *sub: int) -> int:
    """A 63-bit integer seed drawn from one stream (for APIs that take an int)."""
    return int(stream(seed, name, *sub).generate_state(1, np.uint64)[0] >> np.uint64(1))


def torch_generator(seed: int, name: str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from one stream."""
    return torch.Generator().manual_seed(stream_int(seed, name))


def data_rng(seed: int, index: int) -> np.random.Generator:
    """The NumPy generator of the data sets' stream ``index`` (points, split, imbalance, ...)."""
    return np.random.default_rng(stream(seed, "data", index))


@dataclass
class RunGenerators:
    """Independent random streams of one run: weights, data order and value sampling."""

    init: torch.Generator
    order: torch.Generator
    sample_seed: int


def run_generators(seed: int) -> RunGenerators:
    """Fresh generators of a run's own streams (the same numbers every time for a seed)."""
    return RunGenerators(init=torch_generator(seed, "init"),
                         order=torch_generator(seed, "order"),
                         sample_seed=stream_int(seed, "sample"))


def seed_globals(seed: int, deterministic: bool = True) -> None:
    """Seed the process-wide generators from the run's streams; pin cuDNN's algorithms.

    torch's global generator (CPU and every CUDA device) gets the ``dropout`` stream; Python's
    ``random`` and NumPy's legacy global generator get the ``python`` stream.
    """
    torch.manual_seed(stream_int(seed, "dropout"))
    python_seed = stream_int(seed, "python")
    random.seed(python_seed)
    np.random.seed(python_seed % 2**32)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
