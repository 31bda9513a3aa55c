"""Hypothesis fuzz of the zip import (bounded for CI): mutated copies of a valid exported run
raise nothing but nnviz errors, leave no staging folder, and every accepted one lists, shows and
draws. The long run (10,000+ cases) is ``benchmarks/fuzz_import.py``."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore
from tests.fixtures.hostile import check_case, members, mutate

TINY = dict(model="mlp", dataset="moons", n_samples=120, batch_size=32, epochs=2, depth=1,
            width=4)


@pytest.fixture(scope="module")
def good_files(tmp_path_factory) -> dict[str, bytes]:
    store = RunStore(tmp_path_factory.mktemp("src"))
    return members(store.export_zip(train(RunConfig.from_dict(TINY), store).run_id))


def test_fuzzed_imports_keep_every_promise(good_files, tmp_path_factory):
    outcomes = []

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1))
    def case(seed: int) -> None:
        _, data = mutate(random.Random(seed), good_files)
        outcomes.append(check_case(RunStore(tmp_path_factory.mktemp("fz")), data))

    case()
    assert "refused" in outcomes  # the mutations do reach the checks
