"""The server's cache of parsed runs (ui.state.RunCache): bounded by bytes and count, only the
newest version of a run, one parse for many sessions at once; and deep_size against numpy."""

import os
import threading

import numpy as np
import pytest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RUN_FILE
from ui import state
from ui.state import RunCache, deep_size

TINY = dict(model="mlp", dataset="moons", n_samples=100, batch_size=50, epochs=1, depth=2,
            width=4)


@pytest.fixture()
def three_runs(store):
    return str(store.root), [train(RunConfig.from_dict({**TINY, "seed": s}), store).run_id
                             for s in (1, 2, 3)]


def stamp(root, run_id):
    return state._stamp(state.Path(root), run_id)


def test_deep_size_counts_arrays_and_shared_objects_once():
    a = np.zeros(1000)
    assert deep_size(a) >= a.nbytes
    both = deep_size([a, a])
    assert both < deep_size([a, np.zeros(1000)])  # the same array once, two arrays twice
    assert deep_size({"x": [a], "y": (1, 2)}) >= 8000


def test_the_cache_keeps_one_version_per_run_and_stays_within_its_bytes(three_runs):
    root, ids = three_runs
    one = deep_size(RunCache(10**9, 10).get(root, ids[0], stamp(root, ids[0])))
    cache = RunCache(budget=int(2.5 * one), most=10)  # room for two runs of this size
    for run_id in ids:
        cache.get(root, run_id, stamp(root, run_id))
    assert len(cache) == 2 and cache.bytes <= cache.budget
    first = cache.get(root, ids[2], stamp(root, ids[2]))
    assert cache.get(root, ids[2], stamp(root, ids[2])) is first  # a hit: no re-read
    again = cache.get(root, ids[2], stamp(root, ids[2]) + 1)  # run.json changed: re-read
    assert again is not first and len(cache) == 2  # the old version is gone, not kept beside it


def test_the_cache_holds_at_most_its_count_and_the_newest_run_always(three_runs):
    root, ids = three_runs
    cache = RunCache(budget=1, most=2)  # every run is over this budget
    for run_id in ids:
        run = cache.get(root, run_id, stamp(root, run_id))
        assert run.run_id == run_id
    assert len(cache) == 1  # only the newest stays
    cache = RunCache(budget=10**9, most=2)
    for run_id in ids:
        cache.get(root, run_id, stamp(root, run_id))
    assert len(cache) == 2


def test_sessions_asking_for_one_run_at_once_parse_it_once(three_runs, monkeypatch):
    root, ids = three_runs
    loads = []
    real = state.RunStore.load

    def counting(self, run_id):
        loads.append(run_id)
        return real(self, run_id)

    monkeypatch.setattr(state.RunStore, "load", counting)
    cache = RunCache(10**9, 10)
    got = []
    threads = [threading.Thread(target=lambda: got.append(
        cache.get(root, ids[0], stamp(root, ids[0])))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len({id(r) for r in got}) == 1
    assert loads == [ids[0]]


def test_load_run_reads_a_changed_run_again(three_runs, monkeypatch):
    root, ids = three_runs
    monkeypatch.setattr(state, "RUNS", RunCache(10**9, 10))
    run = state.load_run(ids[0])
    assert state.load_run(ids[0]) is run
    path = state.Path(root) / ids[0] / RUN_FILE
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))  # the trainer saved it again
    assert state.load_run(ids[0]) is not run
