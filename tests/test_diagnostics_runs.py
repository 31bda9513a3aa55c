"""A suite of textbook runs, trained for real (a few hundred examples, a few epochs, trained once
per module), that pins every flag both ways: the case that must fire it and the healthy twin
that must not. Lessons from nnviz.presets that are too slow to train whole here run with fewer
examples (``LESSON_CASES``) and must show exactly the flags the lesson is about. Then the CLI
and the Streamlit panel on those runs."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from nnviz.analysis import diagnostics as d
from nnviz.cli import main as cli_main
from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.presets import PRESETS
from nnviz.store.runs import RunStore

SMALL = {"n_samples": 400, "epochs": 3}
MOONS = dict(model="mlp", dataset="moons", depth=2, width=32)
CASES = {
    # weights and biases all zero: units identical forever, and nothing moves
    "zeros": dict(MOONS, activation="tanh", init="zeros", bias_init="zeros", optimizer="sgd",
                  lr=0.1),
    # zero weights, PyTorch's random biases: the rows stay parallel (rank 1)
    "zeros_bias": dict(MOONS, activation="tanh", init="zeros", optimizer="sgd", lr=0.1),
    # zeros init under ReLU: dead units caused by the init, not by depth
    "zeros_relu": dict(MOONS, depth=3, init="zeros", optimizer="sgd", lr=0.1),
    "large_cnn": dict(model="simple_cnn", dataset="shapes32", init="too_large", epochs=2),
    "large_mlp": dict(model="mlp", dataset="spiral", depth=10, width=64, activation="relu",
                      init="too_large", optimizer="sgd", lr=0.01, epochs=2),
    # a Kaiming net blown up by a huge learning rate: its weights go rank 1, not symmetric
    "kaiming_lr_huge": dict(model="mlp", dataset="spiral", depth=4, width=32,
                            init="kaiming_normal", optimizer="sgd", lr=10.0),
    "tanh_large": dict(model="mlp", dataset="spiral", depth=5, width=64, activation="tanh",
                       init="too_large", optimizer="sgd", lr=0.01),
    "tanh_xavier": dict(model="mlp", dataset="moons", depth=5, width=64, activation="tanh",
                        init="xavier_normal", optimizer="sgd", lr=0.1),
    "sgd_lr_tiny": dict(MOONS, init="kaiming_normal", optimizer="sgd", lr=1e-5),
    "adam_lr_tiny": dict(MOONS, init="kaiming_normal", optimizer="adam", lr=1e-7),
    # every ReLU dead (bias -10) and a tiny learning rate: raising it would not help
    "all_dead_lr_tiny": dict(MOONS, depth=3, init="kaiming_normal", bias_init="constant",
                             bias_value=-10.0, optimizer="sgd", lr=1e-5),
    # a wide MLP memorising 50 noisy training points for 25 epochs
    "memorise": dict(model="mlp", dataset="moons", n_samples=100, val_fraction=0.5, noise=0.35,
                     depth=3, width=128, optimizer="adam", lr=0.01, epochs=25),
    # plain SGD far too slow for the spiral: at chance after 4 epochs, nothing else wrong
    "stuck_at_chance": dict(model="mlp", dataset="spiral", depth=3, width=32, optimizer="sgd",
                            momentum=0.0, lr=0.003, epochs=4),
    "healthy_default": dict(model="simple_cnn", dataset="shapes32", init="default",
                            optimizer="adam", lr=1e-3, n_samples=600),
    "healthy_kaiming": dict(model="simple_cnn", dataset="shapes32", init="kaiming_normal",
                            optimizer="adam", lr=1e-3, n_samples=600),
}
# lessons trained with fewer examples (and no more epochs than SMALL): lesson name -> run name
LESSON_CASES = {"tutorial_cnn": "tutorial", "vanishing": "sigmoid20_small",
                "xavier_deep_relu": "relu30_xavier", "kaiming_deep_relu": "relu30_kaiming",
                "healthy": "healthy_bn"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[RunStore, dict[str, str]]:
    """Train every case once: (store, case name -> run id)."""
    store = RunStore(tmp_path_factory.mktemp("diag_runs"))
    ids = {}
    for name, over in CASES.items():
        cfg = RunConfig.from_dict({**SMALL, **over, "name": name})
        ids[name] = train(cfg, store).run_id
    for lesson, name in LESSON_CASES.items():
        cfg = PRESETS[lesson].config()
        cfg = cfg.replace(n_samples=SMALL["n_samples"], epochs=min(cfg.epochs, SMALL["epochs"]),
                          name=name)
        ids[name] = train(cfg, store).run_id
    return store, ids


def _run(trained, name: str):
    store, ids = trained
    return store.load(ids[name])


def _flags(trained, name: str) -> dict[str, d.Flag]:
    return {f.code: f for f in d.diagnose(_run(trained, name))}


def _warnings(flags: dict[str, d.Flag]) -> set[str]:
    return {c for c, f in flags.items() if f.severity != "info"}


# ------------------------------------------------------------------- every flag, both ways


@pytest.mark.parametrize("name", ["zeros", "zeros_bias"])
def test_zeros_init_is_symmetry_and_not_exploding(trained, name):
    flags = _flags(trained, name)
    assert "symmetry" in flags and "exploding" not in flags
    assert "fc1" in flags["symmetry"].layers and "fc2" in flags["symmetry"].layers
    assert "all zeros" in flags["symmetry"].explanation
    run = _run(trained, name)
    # it holds at init and still after the last epoch ("and staying identical")
    assert "symmetry" in d.timeline(run)[0][1] and "symmetry" in d.timeline(run)[-1][1]
    if name == "zeros":
        assert flags["symmetry"].severity == "critical"
        assert {"fc1", "fc2"} <= set(flags["frozen"].layers)  # zero gradient: nothing moves


def test_symmetry_twins_random_init_and_a_diverged_kaiming_net(trained):
    for name in ("healthy_default", "tanh_xavier", "kaiming_lr_huge", "large_mlp"):
        assert "symmetry" not in _flags(trained, name), name
    # the blown-up Kaiming net is reported as what it is
    huge = _flags(trained, "kaiming_lr_huge")
    assert {"non_finite", "lr_too_high"} <= set(huge)


def test_dead_relu_on_zeros_init_is_explained_by_the_init_not_depth(trained):
    f = _flags(trained, "zeros_relu")["dead_relu"]
    assert "symmetry problem, not depth" in f.explanation and "deep" not in f.explanation
    assert f.guide_step == 1 and "randomly" in f.fix
    for name in ("healthy_default", "healthy_kaiming", "tanh_xavier"):
        assert "dead_relu" not in _flags(trained, name), name


@pytest.mark.parametrize("name", ["large_cnn", "large_mlp"])
def test_too_large_init_is_exploding_or_non_finite(trained, name):
    flags = _flags(trained, name)
    assert {"exploding", "non_finite"} & set(flags)
    assert flags["exploding"].guide_step == 1  # it starts at init: the fix is the init
    assert "exploding" in d.timeline(_run(trained, name))[0][1]
    assert "lr_too_high" not in flags  # big steps are the init's doing here


def test_too_large_mlp_diverges_with_the_step_recorded(trained):
    run = _run(trained, "large_mlp")
    f = _flags(trained, "large_mlp")["non_finite"]
    assert run.status == "diverged"
    assert f.severity == "critical" and f.guide_step == 1  # exploding from init: fix the init
    assert f.evidence["diverged at step"] == run.record.diverged_at.step
    assert f.first_seen["step"] == run.record.diverged_at.step


def test_exploding_and_non_finite_twins(trained):
    for name in ("relu30_kaiming", "healthy_default", "tanh_xavier", "stuck_at_chance"):
        flags = _flags(trained, name)
        assert not {"exploding", "non_finite"} & set(flags), name


def test_deep_sigmoid_with_too_small_init_vanishes(trained):
    flags = _flags(trained, "sigmoid20_small")
    assert "vanishing" in flags and "exploding" not in flags
    assert flags["vanishing"].evidence["grad ratio input/output"] < 1e-6
    assert "fc1" in flags["frozen"].layers
    assert "lr_too_high" not in flags  # a few fast layers near the output are not the cause


def test_xavier_on_30_relu_layers_vanishes_and_kaiming_does_not(trained):
    xavier = _flags(trained, "relu30_xavier")
    kaiming = _flags(trained, "relu30_kaiming")
    assert "vanishing" in xavier and "vanishing" not in kaiming
    assert "exploding" not in kaiming and "non_finite" not in kaiming
    # He et al. 2015: the variance halves per layer, so the std falls about 2^-15 in 30 layers
    ratio = xavier["vanishing"].evidence["signal ratio last/first"]
    assert 1e-6 < ratio < 1e-3
    profile = d.signal_profile(_run(trained, "relu30_kaiming"), 0)
    kept = profile["activation_std"].iloc[-1] / profile["activation_std"].iloc[0]
    assert 0.1 < kept < 10


def test_saturation_on_too_large_tanh_and_not_with_xavier(trained):
    f = _flags(trained, "tanh_large")["saturation"]
    assert f.severity == "warning" and "Xavier" in f.fix and "sigmoid" not in f.fix
    assert "saturation" not in _flags(trained, "tanh_xavier")


def test_lr_too_high_on_a_huge_sgd_step_and_never_on_adam_1e3(trained):
    f = _flags(trained, "kaiming_lr_huge")["lr_too_high"]
    assert f.severity == "warning" and f.guide_step == 4
    for name in ("healthy_default", "healthy_kaiming", "tutorial", "healthy_bn"):
        assert "lr_too_high" not in _flags(trained, name), name


def test_lr_too_low_with_advice_that_fits_the_optimizer(trained):
    sgd = _flags(trained, "sgd_lr_tiny")["lr_too_low"]
    adam = _flags(trained, "adam_lr_tiny")["lr_too_low"]
    assert "Adam" in sgd.fix and "Adam" not in adam.fix  # no "or use Adam" to an Adam run
    assert adam.evidence["optimizer"] == "adam"
    # every ReLU dead: no gradient reaches the weights, a larger step would not help
    dead = _flags(trained, "all_dead_lr_tiny")
    assert "lr_too_low" not in dead and dead["dead_relu"].severity == "warning"
    for name in ("healthy_default", "healthy_kaiming", "tanh_xavier"):
        assert "lr_too_low" not in _flags(trained, name), name


def test_overfitting_on_memorised_data_and_never_on_healthy_or_chance_runs(trained):
    f = _flags(trained, "memorise")["overfitting"]
    run = _run(trained, "memorise")
    best = int(f.evidence["best epoch"])
    vals = [h.val_loss for h in run.record.history]
    assert vals[best - 1] == min(vals) and vals[-1] > 1.05 * min(vals)
    assert run.record.history[-1].train_loss < run.record.history[best - 1].train_loss
    for name in ("healthy_default", "healthy_kaiming", "healthy_bn", "tutorial",
                 "sigmoid20_small", "relu30_xavier", "stuck_at_chance", "zeros"):
        assert "overfitting" not in _flags(trained, name), name


def test_not_learning_is_the_honest_flag_when_nothing_else_explains(trained):
    flags = _flags(trained, "stuck_at_chance")
    assert _warnings(flags) == {"not_learning"}
    f = flags["not_learning"]
    assert f.evidence["epochs trained"] >= 3 and "learning rate" in f.fix
    for name in ("healthy_default", "relu30_kaiming", "memorise", "tanh_xavier"):
        assert "not_learning" not in _flags(trained, name), name
    # where another check explains the failure, it is not repeated as "not learning"
    assert "not_learning" not in _flags(trained, "sigmoid20_small")


@pytest.mark.parametrize("name", ["healthy_default", "healthy_kaiming"])
def test_healthy_default_has_no_warning_or_critical(trained, name):
    flags = _flags(trained, name)
    assert all(f.severity == "info" for f in flags.values()), \
        {c: (f.severity, f.evidence) for c, f in flags.items()}
    assert d.flags_at(_run(trained, name), 0) == []


@pytest.mark.parametrize("lesson", list(LESSON_CASES))
def test_lessons_show_exactly_the_flags_they_are_about(trained, lesson):
    flags = _flags(trained, LESSON_CASES[lesson])
    assert set(flags) == set(PRESETS[lesson].flags), \
        {c: (f.severity, f.evidence) for c, f in flags.items()}


def test_recorded_signal_std_is_what_the_profile_shows(trained):
    run = _run(trained, "relu30_kaiming")
    acts = run.snapshot(1).record.activations
    profile = d.signal_profile(run, 1)
    assert list(profile["activation_std"]) == [acts[layer].signal_std
                                               for layer in profile["layer"]]
    for layer in profile["layer"]:  # the spread across examples is below the total spread
        assert acts[layer].signal_std <= acts[layer].std * (1 + 1e-9)


# ------------------------------------------------------------------------------------ CLI


def test_cli_diagnose_json_and_text(trained, capsys):
    store, ids = trained
    rid = ids["large_mlp"]
    assert cli_main(["--runs-dir", str(store.root), "diagnose", rid, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = [f.code for f in d.diagnose(store.load(rid))]
    assert [f["code"] for f in out["flags"]] == expected and expected[0] == "non_finite"
    assert out["flags"][0]["guide_url"].startswith("/Tuning_guide#step-")
    assert cli_main(["--runs-dir", str(store.root), "diagnose", ids["zeros"]]) == 0
    text = capsys.readouterr().out
    assert "[CRITICAL] symmetry" in text and "guide: step 1" in text
    assert cli_main(["--runs-dir", str(store.root), "diagnose", ids["relu30_xavier"],
                     "--epoch", "0", "--at", "--json"]) == 0
    at_init = [f["code"] for f in json.loads(capsys.readouterr().out)["flags"]]
    assert "vanishing" in at_init
    assert cli_main(["--runs-dir", str(store.root), "diagnose", "no-such-run"]) == 2
    assert "no-such-run" in capsys.readouterr().err


# -------------------------------------------------------------------------------- the panel


def _panel_app(root: str, run_id: str, index: int) -> None:
    from nnviz.store.runs import RunStore
    from ui import diagnostics_panel as dp

    run = RunStore(root).load(run_id)
    dp.render_panel(run, index)
    dp.render_timeline(run, index)
    dp.render_signal(run, index)


def _app(trained, name: str, index: int) -> AppTest:
    store, ids = trained
    at = AppTest.from_function(_panel_app, args=(str(store.root), ids[name], index),
                               default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_panel_lists_flags_by_severity_with_evidence_and_guide_link(trained):
    at = _app(trained, "large_mlp", -1)
    assert len(at.error) == 1 and "NaN or Inf" in at.error[0].value
    assert "/Tuning_guide#step-" in at.error[0].value
    assert [w.value.split("**")[1] for w in at.warning] == ["Exploding signal or gradients"]
    evidence = [e for e in at.expander if "non finite" in e.label]
    assert evidence and "diverged at step" in evidence[0].markdown[0].value
    assert len(at.get("plotly_chart")) == 2


def test_panel_says_healthy_at_init(trained):
    at = _app(trained, "healthy_kaiming", 0)
    assert len(at.success) == 1 and not at.error and not at.warning
    assert len(at.get("plotly_chart")) == 2


def test_panel_shows_a_damaged_run_as_a_plain_error(trained, tmp_path):
    import shutil

    store, ids = trained
    root = tmp_path / "runs"
    shutil.copytree(store.root / ids["zeros"], root / ids["zeros"])
    (root / ids["zeros"] / "snapshots" / "s0002.safetensors").write_bytes(b"not a snapshot")
    at = AppTest.from_function(_panel_app, args=(str(root), ids["zeros"], 2),
                               default_timeout=60)
    at.run()
    assert not at.exception  # a damaged snapshot hides only its epoch (nnviz.store.runs.Run)
    assert not any("could not read this run" in e.value for e in at.error)
