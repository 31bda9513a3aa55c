"""The LR range test: a known answer on a convex problem, early stop, determinism, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nnviz.config import RunConfig
from nnviz.engine.lrfind import (
    LRFindResult,
    check_settings,
    lr_find,
    lr_schedule,
    smooth_losses,
    steepest_lr,
)
from nnviz.engine.training import prepare
from nnviz.errors import ConfigError


def _regression(seed: int = 42) -> RunConfig:
    """Linear regression, full-batch plain gradient descent: a convex quadratic."""
    return RunConfig(model="simple_net", dataset="regression", optimizer="sgd", momentum=0.0,
                     weight_decay=0.0, n_samples=200, batch_size=200, loss="mse", seed=seed,
                     device="cpu")


def _quadratic(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Design matrix [x, 1], targets, initial (w, b) and the Hessian's largest eigenvalue."""
    data, model, _, _ = prepare(cfg)
    x = data.x_train.numpy().astype(np.float64)  # (N, 2): the whole training set is one batch
    a = np.hstack([x, np.ones((len(x), 1))])  # (N, 3)
    y = data.y_train.numpy().astype(np.float64)[:, 0]  # (N,)
    theta0 = np.r_[model.linear.weight.detach().numpy().ravel(),
                   model.linear.bias.detach().numpy()].astype(np.float64)  # (3,)
    hessian = 2.0 * a.T @ a / len(a)  # of mean((a θ - y)^2)
    return a, y, theta0, float(np.linalg.eigvalsh(hessian).max())


@pytest.mark.parametrize("seed", [0, 42, 123])
def test_known_answer_on_a_convex_quadratic(seed):
    """GD on a quadratic is stable exactly below 2/λ: the test must not stop before it, must
    stop after it, and suggest an LR below it, within a factor of 10 of 1/λ."""
    cfg = _regression(seed)
    a, y, theta0, lam = _quadratic(cfg)
    result = lr_find(cfg, end_lr=1e3)  # end far beyond: only the explosion can stop it
    lrs, losses = np.array(result.lrs), np.array(result.losses)

    assert result.stopped_early and result.stop_lr is not None
    assert result.stop_lr > 2 / lam
    # The unstable direction was driven to ~0 near lr = 1/λ, so the loss needs a few steps
    # (growing ×|1 - lr λ| each) to climb back from rounding noise: "soon after", not at once.
    assert result.stop_lr < 20 * (2 / lam)
    assert result.stop_lr < 1e3

    # Below 2/λ gradient descent on a convex quadratic never increases the loss.
    stable = losses[lrs < 2 / lam]
    assert len(stable) > 50
    assert np.all(np.diff(stable) <= 1e-5 * stable[0])

    assert result.suggested_lr is not None
    assert 0.1 / lam <= result.suggested_lr < 2 / lam

    # Reference: the same schedule in float64 NumPy, loss taken before each update.
    theta, ref = theta0.copy(), []
    for lr in lrs[lrs < 2 / lam]:
        residual = a @ theta - y
        ref.append(np.mean(residual ** 2))
        theta = theta - lr * 2.0 * a.T @ residual / len(a)
    np.testing.assert_allclose(stable, ref, rtol=2e-3, atol=1e-6)


def test_schedule_and_smoothing_match_their_definitions():
    lrs = lr_schedule(1e-7, 10.0, 100)
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(np.diff(np.log(lrs)), math.log(1e8) / 99)

    raw = np.array([4.0, 2.0, 3.0, 1.0, 5.0])
    beta = 0.9
    avg, expected = 0.0, []
    for i, v in enumerate(raw, start=1):
        avg = beta * avg + (1 - beta) * v
        expected.append(avg / (1 - beta ** i))
    np.testing.assert_allclose(smooth_losses(raw, 0.1), expected)
    assert smooth_losses(raw, 0.1)[0] == pytest.approx(4.0)  # bias correction: no pull to 0
    np.testing.assert_allclose(smooth_losses(raw, 0.0), raw)


def test_result_curve_is_the_smoothed_raw_loss():
    cfg = RunConfig(model="mlp", dataset="moons", depth=1, width=8, n_samples=200, seed=3,
                    device="cpu")
    result = lr_find(cfg, num_iter=40, smooth=0.1)
    np.testing.assert_allclose(result.smoothed, smooth_losses(result.losses, 0.1), rtol=1e-9)
    assert result.best_loss == pytest.approx(min(result.smoothed))
    assert result.best_lr == result.lrs[int(np.argmin(result.smoothed))]


def test_steepest_lr_finds_the_steepest_fall_in_log_lr():
    lrs = np.logspace(-6, 1, 200)
    curve = 1.0 - np.tanh(np.log(lrs) - math.log(3e-3))  # falls fastest at lr = 3e-3
    assert steepest_lr(lrs, curve) == pytest.approx(3e-3, rel=0.05)
    assert steepest_lr(lrs, np.linspace(1.0, 2.0, 200)) is None  # never falls
    assert steepest_lr(lrs[:4], curve[:4]) is None  # fewer than MIN_POINTS (5) points
    assert steepest_lr(lrs[:5], curve[:5]) is not None
    # The explosion at the very end is skipped: a drop in the last 5% does not count.
    tail = curve.copy()
    tail[-3:] = [-50.0, -100.0, -200.0]
    assert steepest_lr(lrs, tail) == pytest.approx(3e-3, rel=0.05)
    # A steeper fall after the lowest point (a spike coming down) is not the descent to use.
    x = np.log(lrs)
    dip = curve + np.where(lrs > 0.1, (x - math.log(0.1)) ** 2, 0.0)  # lowest near lr 0.1
    dip[150:160] += np.linspace(3.0, 0.0, 10)  # at lr ≈ 0.2: steeper than the real descent
    assert 0.05 < lrs[int(np.argmin(dip))] < 0.2
    assert steepest_lr(lrs, dip) == pytest.approx(3e-3, rel=0.05)


def test_runs_to_the_end_when_the_loss_never_explodes():
    result = lr_find(_regression(), start_lr=1e-6, end_lr=1e-2, num_iter=30)
    assert not result.stopped_early and result.stop_lr is None
    assert len(result.lrs) == 30
    assert result.lrs[-1] == pytest.approx(1e-2)
    assert "end_lr" in result.reason


def test_stops_at_a_non_finite_loss_and_keeps_only_finite_points():
    result = lr_find(_regression(), start_lr=1e-2, end_lr=1e6, num_iter=60, smooth=0.0,
                     diverge_th=1e300)  # only a NaN/Inf loss can stop it (float32 tops at 3e38)
    assert result.stopped_early
    assert "loss became" in result.reason
    assert all(math.isfinite(v) for v in result.losses)
    assert result.stop_lr > result.lrs[-1]
    json.dumps(result.to_dict(), allow_nan=False)  # JSON without NaN


def test_deterministic_for_a_seed(runs_dir):
    cfg = RunConfig(model="mlp", dataset="spiral", depth=2, width=16, n_samples=200,
                    batch_size=32, dropout=0.2, seed=5, device="cpu")
    first = lr_find(cfg, num_iter=30, end_lr=1.0)
    again = lr_find(cfg, num_iter=30, end_lr=1.0)
    assert first.losses == again.losses and first.lrs == again.lrs
    other = lr_find(cfg.replace(seed=6), num_iter=30, end_lr=1.0)
    assert other.losses != first.losses
    assert list(runs_dir.iterdir()) == []  # the run store is never touched


@pytest.mark.parametrize("kwargs", [
    {"start_lr": 0.0}, {"start_lr": 1.0, "end_lr": 1.0}, {"num_iter": 1},
    {"smooth": 1.0}, {"smooth": -0.1}, {"diverge_th": 1.0}, {"end_lr": math.inf},
])
def test_bad_settings_are_config_errors(kwargs):
    settings = {"start_lr": 1e-7, "end_lr": 10.0, "num_iter": 100, "smooth": 0.05,
                "diverge_th": 5.0, **kwargs}
    with pytest.raises(ConfigError):
        check_settings(**settings)


def test_cli_lr_find_json(runs_dir, capsys):
    from nnviz.cli.main import main

    code = main(["--runs-dir", str(runs_dir), "lr-find", "--model", "simple_net", "--dataset",
                 "regression", "--optimizer", "sgd", "--momentum", "0", "--n-samples", "200",
                 "--batch-size", "200", "--end-lr", "1000", "--device", "cpu", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    expected = lr_find(_regression(), end_lr=1e3)
    assert out["suggested_lr"] == pytest.approx(expected.suggested_lr)
    assert out["stopped_early"] is True
    assert len(out["lrs"]) == len(expected.lrs)
    assert list(runs_dir.iterdir()) == []


def test_cli_lr_find_text_and_errors(runs_dir, capsys):
    from nnviz.cli.main import main

    code = main(["--runs-dir", str(runs_dir), "lr-find", "--model", "mlp", "--dataset", "moons",
                 "--n-samples", "200", "--width", "8", "--num-iter", "20"])
    text = capsys.readouterr().out
    assert code == 0 and "LR range test: 20 steps" in text
    assert "Suggested lr" in text or "No suggestion" in text
    assert main(["lr-find", "--num-iter", "1"]) == 2
    assert "num_iter" in capsys.readouterr().err
    assert main(["lr-find", "--model", "nonsense"]) == 2


def test_result_to_dict_round_trips():
    result = LRFindResult(lrs=[1e-3], losses=[1.0], smoothed=[1.0], suggested_lr=None,
                          stopped_early=False, best_loss=1.0)
    data = result.to_dict()
    assert data["best_lr"] is None  # NaN -> None
    assert LRFindResult(**{**data, "best_lr": math.nan}).lrs == [1e-3]
