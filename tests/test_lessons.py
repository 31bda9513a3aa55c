"""Every lesson tells its story in the recorded data: each fast lesson is trained for real with
its preset unchanged, and its run must show what its "what to look at" paragraph promises and
exactly the flags the lesson is about (the slower lessons' flags are pinned, on fewer examples,
in test_diagnostics_runs.py). Also the filters' structure score against a direct computation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnviz.analysis import diagnostics as d
from nnviz.analysis.filters import (
    neighbour_correlation,
    orientation_coherence,
    orientation_scores,
    structure_scores,
)
from nnviz.engine.training import train
from nnviz.figures.epoch_view import epoch_line
from nnviz.presets import PRESETS
from nnviz.store.runs import RunStore

# Trained whole here (a few seconds each); the CNN lessons tutorial_cnn and healthy are pinned
# on fewer examples in test_diagnostics_runs.py. The deep MLP lessons run whole because their
# flags at full size once differed from the reduced run's (kaiming_deep_relu at lr 0.01 had a
# one-epoch validation bump read as overfitting).
FAST = ("exploding", "symmetry", "filters", "vanishing", "xavier_deep_relu",
        "kaiming_deep_relu")


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


def test_filters_become_oriented_edge_detectors(lessons):
    run = lessons["filters"]
    scores = structure_scores(run, "conv1.weight")
    orient = orientation_scores(run, "conv1.weight")
    assert [e for e, _ in scores] == [float(e) for e in range(run.config.epochs + 1)]
    assert run.record.params["conv1.weight"].shape == (8, 1, 7, 7)
    start, end = scores[0][1], scores[-1][1]
    assert abs(start) < 0.1  # random taps: no structure at init (measured 0.016)
    assert end > 0.7 and end - start > 0.6  # smooth: rises by more than 0.6 (measured 0.77)
    o_start, o_end = orient[0][1], orient[-1][1]
    assert o_start < 0.3  # random 7×7 taps: about 0.25
    assert o_end > 0.8 and o_end - o_start > 0.55  # oriented: rises by more than 0.55 (0.67)
    assert orient[2][1] > 0.8  # by epoch 2, as the lesson says
    # each filter is an edge: every filter's own coherence is high, not a few carrying the mean
    w = run.snapshot(run.n_snapshots - 1).values("conv1.weight").reshape(8, 1, 7, 7)
    per_filter = [orientation_coherence(w[i:i + 1]) for i in range(8)]
    assert min(per_filter) > 0.6 and sum(c > 0.8 for c in per_filter) >= 7, per_filter
    assert run.record.history[-1].val_acc > 0.95  # the edges do the job


def test_every_lesson_says_which_chart_and_epoch_to_look_at():
    charts = ("histogram", "heatmap", "filters", "Signal through depth", "drift", "loss")
    for p in PRESETS.values():
        assert p.look, p.name
        assert any(c in p.look for c in charts), p.name
        assert re.search(r"epoch \d", p.look), p.name
        assert set(p.flags) <= set(d.CODES), p.name
    # edge detectors are claimed only by the lesson whose test above measures them
    assert [p.name for p in PRESETS.values() if "edge detector" in p.lesson + p.look] \
        == ["filters"]


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


def _coherence_by_eigenvalues(w: np.ndarray) -> float:
    """The structure tensor's (λ1 − λ2) / (λ1 + λ2) per kernel, from numpy's eigvalsh, looped."""
    out = []
    for k in w.reshape(-1, w.shape[2], w.shape[3]):
        tensor = np.zeros((2, 2))
        for i in range(k.shape[0] - 1):
            for j in range(k.shape[1] - 1):
                gx = (k[i, j + 1] - k[i, j] + k[i + 1, j + 1] - k[i + 1, j]) / 2
                gy = (k[i + 1, j] - k[i, j] + k[i + 1, j + 1] - k[i, j + 1]) / 2
                tensor += np.outer([gx, gy], [gx, gy])
        lo, hi = np.linalg.eigvalsh(tensor)
        out.append((hi - lo) / (hi + lo) if hi + lo > 0 else 0.0)
    return float(np.mean(out))


def test_orientation_coherence_against_numpy_eigenvalues():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(6, 2, 7, 5))
    assert orientation_coherence(w) == pytest.approx(_coherence_by_eigenvalues(w), rel=1e-12)
    x, y = np.meshgrid(np.arange(7) - 3.0, np.arange(7) - 3.0)
    for edge in (np.sign(x), np.sign(y), np.sign(x + y), np.cos(2 * np.pi * (x - y) / 5)):
        assert orientation_coherence(edge[None, None]) == pytest.approx(1.0)  # straight edges
    # an edge at another angle, sampled on the grid: nearly 1
    assert orientation_coherence(np.tanh(x - 2 * y)[None, None]) > 0.95
    blob = np.exp(-(x ** 2 + y ** 2) / 4)
    assert orientation_coherence(blob[None, None]) == pytest.approx(0.0, abs=1e-12)
    # random taps: about 0.22 for 7×7 kernels, higher for 3×3 (few directions)
    assert 0.17 < orientation_coherence(rng.normal(size=(512, 1, 7, 7))) < 0.27
    assert 0.5 < orientation_coherence(rng.normal(size=(512, 1, 3, 3))) < 0.65
    # a mix: the mean over kernels
    both = np.stack([np.sign(x), blob])[:, None]
    assert orientation_coherence(both) == pytest.approx(0.5)
    # edge cases: no gradient (a constant kernel counts 0), no scale, not finite, one tap
    assert orientation_coherence(np.ones((2, 1, 3, 3))) == 0.0
    assert orientation_coherence(np.zeros((2, 1, 3, 3))) is None
    assert orientation_coherence(np.full((2, 1, 3, 3), np.inf)) is None
    assert orientation_coherence(np.ones((4, 3, 1, 1))) is None
    assert orientation_coherence(np.ones((3, 3))) is None


def test_exploding_histograms_are_readable_by_default(lessons):
    """The run's bins would span ±1e19: by default every snapshot gets its own, and says so."""
    from nnviz.analysis import views
    from nnviz.figures import epoch_view as ev
    from nnviz.figures import player as fp

    run = lessons["exploding"]
    reason = views.auto_bins(run, "linear.weight")
    assert reason is not None
    tracks = {p: views.param_track([run], p) for p in ("linear.weight", "linear.bias")}
    payload = ev.player_payload(run, "linear", tracks)
    hist = [c for b in payload["blocks"] if "row" in b for c in b["row"]
            if c["chart"]["base"]["layout"]["meta"]["kind"] == "weight_histogram"]
    assert len(hist) == 2
    assert all("chosen automatically" in n for c in hist for n in c["notes"])  # the bias too
    bars = [c for b in payload["blocks"] if "row" in b for c in b["row"]
            if c["chart"]["base"]["layout"]["meta"]["kind"] == "bars"]  # linear.bias per element
    assert all("own range" in n for n in bars[0]["notes"])
    lo, hi = fp.frame_figure(bars[0]["chart"], 8)["layout"]["yaxis"]["range"]
    b = float(run.snapshot(payload["snapshots"][8]).values("linear.bias")[0])
    assert lo <= min(b, 0) and hi >= max(b, 0) and max(abs(lo), abs(hi)) < 2 * abs(b) + 1
    cell = hist[0]  # linear.weight: two values, so each snapshot has a spread
    for k, i in enumerate(payload["snapshots"][:-1]):  # every finite snapshot
        lo, hi = fp.frame_figure(cell["chart"], k)["layout"]["xaxis"]["range"]
        s = run.snapshot(i).record.params["linear.weight"]
        # the bins fit this snapshot: its values span most of the axis, not one bar of it
        assert lo <= s.min and hi >= s.max and (s.max - s.min) > 0.5 * (hi - lo)
    for name in ("symmetry", "filters"):  # calm lessons keep the run's bins
        assert all(views.auto_bins(lessons[name], p) is None for p in lessons[name].record.params)


def test_exploding_drift_is_drawn_on_a_log_axis(lessons):
    from nnviz.analysis import views
    from nnviz.figures.curves import drift_curves

    run = lessons["exploding"]
    epochs, drift = views.param_series(run, "drift", ["linear.weight"])
    assert drift_curves(epochs, drift).layout.yaxis.type == "log"
    calm = {"w": [0.0, 0.1, 0.2, 0.3]}  # an ordinary run keeps its linear axis
    assert drift_curves([0, 1, 2, 3], calm).layout.yaxis.type == "linear"
