"""Reproducibility across thread counts: what the README promises, tested as it is stated.

A ``deterministic`` run (the default) on CPU trains on one torch thread whatever ``threads`` or
the caller's torch setting say, so the same config gives bit-identical weights, losses,
snapshots and statistics under one config hash at 1 and at 2 threads.
"""

from dataclasses import replace

import numpy as np
import torch

from nnviz.config import RunConfig, config_hash
from nnviz.engine.training import train, training_threads

CNN = dict(model="simple_cnn", dataset="shapes32", n_samples=160, batch_size=32, epochs=2,
           device="cpu")


def _train_at(store, cfg: RunConfig, threads: int):
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run = store.load(train(cfg.replace(threads=threads), store).run_id)
    finally:
        torch.set_num_threads(saved)
    assert torch.get_num_threads() == saved  # train() leaves the caller's setting alone
    return run


def test_one_and_two_threads_give_bit_identical_runs(store):
    cfg = RunConfig.from_dict(CNN)
    one, two = _train_at(store, cfg, 1), _train_at(store, cfg, 2)
    assert one.record.config_hash == two.record.config_hash == config_hash(cfg)
    assert one.record.environment["threads"] == two.record.environment["threads"] == 1
    assert one.record.history == [replace(row, seconds=a.seconds, samples_per_s=a.samples_per_s)
                                  for row, a in zip(two.record.history, one.record.history,
                                                    strict=True)]
    assert one.n_snapshots == two.n_snapshots == 3
    for sa, sb in zip(one.snapshots(), two.snapshots(), strict=True):
        for name in one.record.params:
            np.testing.assert_array_equal(sa.values(name), sb.values(name))  # bit-identical
            np.testing.assert_array_equal(sa.hist_counts(name), sb.hist_counts(name))
        assert sa.record.to_json() == sb.record.to_json()  # every statistic, to the last bit


def test_thread_count_is_only_free_when_not_deterministic():
    cpu = torch.device("cpu")
    assert training_threads(RunConfig(threads=2), cpu) == 1
    assert training_threads(RunConfig(threads=2, deterministic=False), cpu) == 2
    saved = torch.get_num_threads()
    assert training_threads(RunConfig(deterministic=False), cpu) == saved
