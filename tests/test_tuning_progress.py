"""Tuning guide, sweep progress (``nnviz.analysis.tuning.progress``): per job and per sweep."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nnviz.analysis import tuning


def _job(state, progress=None, reused=False):
    return SimpleNamespace(state=state, progress=progress or {}, reused=reused)


def test_sweep_progress():
    jobs = [_job("done"), _job("running", {"epoch": 2, "epochs": 4, "step": 5,
                                           "steps_per_epoch": 10}),
            _job("queued"), _job("failed")]
    assert tuning.job_fraction(jobs[1]) == pytest.approx(15 / 40)
    assert tuning.job_fraction(_job("running", {"epoch": 1, "epochs": 4})) == 0.25
    assert tuning.job_fraction(_job("running", 0.5)) == 0.5
    assert tuning.job_fraction(_job("running", {"fraction": 2.0})) == 1.0
    progress = tuning.sweep_progress(jobs)
    assert progress.total == 4 and progress.finished == 2 and not progress.all_finished
    assert progress.fraction == pytest.approx((1 + 15 / 40 + 0 + 1) / 4)
    assert progress.text == "2 of 4 runs finished (1 running, 1 queued, 1 failed)"
    assert tuning.sweep_progress([_job("done"), _job("cancelled")]).all_finished
