"""Every lesson tells its story in the recorded data: each fast lesson is trained for real with
its preset unchanged, and its run must show what its "what to look at" paragraph promises and
exactly the flags the lesson is about (the slower lessons' flags are pinned, on fewer examples,
in test_diagnostics_runs.py). Also the filters' structure score against a direct computation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnviz.analysis import diagnostics as d
from nnviz.analysis.filters import neighbour_correlation, structure_scores
from nnviz.engine.training import train
from nnviz.figures.epoch_view import epoch_line
from nnviz.presets import PRESETS
from nnviz.store.runs import RunStore

FAST = ("exploding", "symmetry", "filters")


@pytest.fixture(scope="module")
def lessons(tmp_path_factory) -> dict[str, object]:
    """Train the fast lessons once, exactly as Home's buttons do: lesson name -> Run."""
    store = RunStore(tmp_path_factory.mktemp("lessons"))
    return {name: store.load(train(PRESETS[name].config(), store).run_id) for name in FAST}


def _weight_norm(snap) -> float:
    params = snap.record.params
    return float(np.sqrt(sum(p.l2 ** 2 for n, p in params.items() if n.endswith("weight"))))


def _non_finite(snap) -> int:
    return sum(p.nan_count + p.inf_count
               for p in snap.record.params.values())


@pytest.mark.parametrize("name", FAST)
def test_fast_lessons_show_exactly_their_flags(lessons, name):
    flags = d.diagnose(lessons[name])
    assert {f.code for f in flags} == set(PRESETS[name].flags), \
        [(f.code, f.severity, f.evidence) for f in flags]


def test_exploding_grows_over_many_snapshots_before_the_first_non_finite_one(lessons):
    run = lessons["exploding"]
    snaps = list(run.snapshots())
    # the first non-finite snapshot: NaN / Inf weights, or the step whose loss overflowed
    step = run.record.diverged_at.step
    first_bad = next(i for i, s in enumerate(snaps)
                     if _non_finite(s) or s.record.step >= step)
    assert run.status == "diverged" and first_bad == len(snaps) - 1
    assert first_bad >= 4
    norms = [_weight_norm(s) for s in snaps[:first_bad]]
    assert norms[-1] > 1e6 * norms[0]  # orders of magnitude before the blow-up
    # it grows steadily: over every 3 snapshots the norm went up
    assert all(norms[k + 3] > norms[k] for k in range(len(norms) - 3))
    # the snapshots inside the first epoch say where they are, not "at init"
    assert epoch_line(run, 0).startswith("At init")
    line = epoch_line(run, 2)
    assert f"Epoch {snaps[2].epoch:g}" in line and "At init" not in line
    flag = {f.code: f for f in d.diagnose(run)}["non_finite"]
    assert flag.first_seen["snapshot"] == first_bad


def test_symmetry_rows_stay_identical_copies_while_they_change(lessons):
    run = lessons["symmetry"]
    first, last = run.snapshot(0), run.snapshot(run.n_snapshots - 1)
    for param in ("fc1.weight", "fc2.weight"):
        shape = run.record.params[param].shape
        w0 = first.values(param).reshape(shape)
        w = last.values(param).reshape(shape)
        assert np.all(w0 == 0.3)
        np.testing.assert_allclose(w, np.broadcast_to(w[0], w.shape), rtol=1e-6, atol=0)
        assert np.max(np.abs(w - w0)) > 0.02  # the copies moved (0.3 -> about 0.25)
    fc2 = last.values("fc2.weight")
    assert np.ptp(fc2) <= 1e-6 * np.max(np.abs(fc2))  # one value: a single histogram bar
    sym = {f.code: f for f in d.diagnose(run)}["symmetry"]
    assert sym.severity == "critical" and "constant" in sym.explanation
    assert "changes the same way" in sym.explanation
    assert sym.snapshots == list(range(run.n_snapshots))  # from init to the last epoch


def test_filters_acquire_structure(lessons):
    run = lessons["filters"]
    scores = structure_scores(run, "conv1.weight")
    assert [e for e, _ in scores] == [float(e) for e in range(run.config.epochs + 1)]
    start, end = scores[0][1], scores[-1][1]
    assert abs(start) < 0.3  # random taps: no structure at init
    assert end > 0.4 and end - start > 0.4  # the lesson's promise: rises by at least 0.4
    assert run.record.history[-1].val_acc > 0.8  # the structure does the job


def test_every_lesson_says_which_chart_and_epoch_to_look_at():
    charts = ("histogram", "heatmap", "filters", "Signal through depth", "drift", "loss")
    for p in PRESETS.values():
        assert p.look, p.name
        assert any(c in p.look for c in charts), p.name
        assert re.search(r"epoch \d", p.look), p.name
        assert set(p.flags) <= set(d.CODES), p.name
    everything = " ".join(p.lesson + p.look for p in PRESETS.values())
    assert "edge detector" not in everything


def test_neighbour_correlation_against_a_direct_computation():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(5, 2, 4, 3))
    pairs = []
    for f in range(5):
        for c in range(2):
            k = w[f, c]
            pairs += [k[i, j] * k[i, j + 1] for i in range(4) for j in range(2)]
            pairs += [k[i, j] * k[i + 1, j] for i in range(3) for j in range(3)]
    expected = np.mean(pairs) / np.mean(w ** 2)
    assert neighbour_correlation(w) == pytest.approx(expected, rel=1e-12)
    edge = np.array([[-1.0, 0.0, 1.0]] * 3)[None, None]
    assert neighbour_correlation(edge) == pytest.approx(0.5)
    assert neighbour_correlation(np.ones((2, 1, 3, 3))) == pytest.approx(1.0)
    checker = np.indices((3, 3)).sum(0) % 2 * 2.0 - 1.0
    assert neighbour_correlation(checker[None, None]) == pytest.approx(-1.0)
    # edge cases: no neighbours, no scale, not finite, not a conv weight
    assert neighbour_correlation(np.ones((4, 3, 1, 1))) is None
    assert neighbour_correlation(np.zeros((2, 1, 3, 3))) is None
    assert neighbour_correlation(np.full((2, 1, 3, 3), np.nan)) is None
    assert neighbour_correlation(np.ones((3, 3))) is None
    # independent random taps score about 0
    assert abs(neighbour_correlation(rng.normal(size=(256, 3, 3, 3)))) < 0.05


def test_exploding_drift_is_drawn_on_a_log_axis(lessons):
    from nnviz.analysis import views
    from nnviz.figures.curves import drift_curves

    run = lessons["exploding"]
    epochs, drift = views.param_series(run, "drift", ["linear.weight"])
    assert drift_curves(epochs, drift).layout.yaxis.type == "log"
    calm = {"w": [0.0, 0.1, 0.2, 0.3]}  # an ordinary run keeps its linear axis
    assert drift_curves([0, 1, 2, 3], calm).layout.yaxis.type == "linear"
