"""The diagnostics on really trained runs: the issue's "must hold" cases, both ways, plus the
CLI and the Streamlit panel on those runs. Runs are tiny (a few hundred examples, 2-3 epochs)
and trained once per module."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from nnviz.analysis import diagnostics as d
from nnviz.cli import main as cli_main
from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore

SMALL = {"n_samples": 400, "epochs": 3}
CASES = {
    # weights and biases all zero: units identical forever
    "zeros": dict(model="mlp", dataset="moons", depth=2, width=32, activation="tanh",
                  init="zeros", bias_init="zeros", optimizer="sgd", lr=0.1),
    # zero weights, PyTorch's random biases: the rows stay parallel (rank 1)
    "zeros_bias": dict(model="mlp", dataset="moons", depth=2, width=32, activation="tanh",
                       init="zeros", optimizer="sgd", lr=0.1),
    "large_cnn": dict(model="simple_cnn", dataset="shapes32", init="too_large", epochs=2),
    "large_mlp": dict(model="mlp", dataset="spiral", depth=10, width=64, activation="relu",
                      init="too_large", optimizer="sgd", lr=0.01, epochs=2),
    "sigmoid20_small": dict(model="mlp", dataset="spiral", depth=20, width=64,
                            activation="sigmoid", init="too_small", optimizer="sgd", lr=0.1),
    "relu30_xavier": dict(model="mlp", dataset="spiral", depth=30, width=64, activation="relu",
                          init="xavier_normal", optimizer="sgd", lr=0.01),
    "relu30_kaiming": dict(model="mlp", dataset="spiral", depth=30, width=64,
                           activation="relu", init="kaiming_normal", optimizer="sgd", lr=0.01),
    "healthy_default": dict(model="simple_cnn", dataset="shapes32", init="default",
                            optimizer="adam", lr=1e-3, n_samples=600),
    "healthy_kaiming": dict(model="simple_cnn", dataset="shapes32", init="kaiming_normal",
                            optimizer="adam", lr=1e-3, n_samples=600),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[RunStore, dict[str, str]]:
    """Train every case once: (store, case name -> run id)."""
    store = RunStore(tmp_path_factory.mktemp("diag_runs"))
    ids = {}
    for name, over in CASES.items():
        cfg = RunConfig.from_dict({**SMALL, **over, "name": name})
        ids[name] = train(cfg, store).run_id
    return store, ids


def _flags(trained, name: str) -> dict[str, d.Flag]:
    store, ids = trained
    return {f.code: f for f in d.diagnose(store.load(ids[name]))}


@pytest.mark.parametrize("name", ["zeros", "zeros_bias"])
def test_zeros_init_is_symmetry_and_not_exploding(trained, name):
    flags = _flags(trained, name)
    assert "symmetry" in flags and "exploding" not in flags
    assert "fc1" in flags["symmetry"].layers and "fc2" in flags["symmetry"].layers
    store, ids = trained
    run = store.load(ids[name])
    # it holds at init and still after the last epoch ("and staying identical")
    assert "symmetry" in d.timeline(run)[0][1] and "symmetry" in d.timeline(run)[-1][1]
    if name == "zeros":
        assert flags["symmetry"].severity == "critical"
        assert {"fc1", "fc2"} <= set(flags["frozen"].layers)  # zero gradient: nothing moves


@pytest.mark.parametrize("name", ["large_cnn", "large_mlp"])
def test_too_large_init_is_exploding_or_non_finite(trained, name):
    flags = _flags(trained, name)
    assert {"exploding", "non_finite"} & set(flags)
    assert flags["exploding"].guide_step == 1  # it starts at init: the fix is the init
    assert "exploding" in d.timeline(trained[0].load(trained[1][name]))[0][1]


def test_too_large_mlp_diverges_with_the_step_recorded(trained):
    store, ids = trained
    run = store.load(ids["large_mlp"])
    flags = _flags(trained, "large_mlp")
    assert run.status == "diverged"
    f = flags["non_finite"]
    assert f.severity == "critical" and f.guide_step == 1  # exploding from init: fix the init
    assert f.evidence["diverged at step"] == run.meta["diverged_at"]["step"]
    assert f.first_seen["step"] == run.meta["diverged_at"]["step"]


def test_deep_sigmoid_with_too_small_init_vanishes(trained):
    flags = _flags(trained, "sigmoid20_small")
    assert "vanishing" in flags and "exploding" not in flags
    assert flags["vanishing"].evidence["grad ratio input/output"] < 1e-6
    assert "fc1" in flags["frozen"].layers


def test_xavier_on_30_relu_layers_vanishes_and_kaiming_does_not(trained):
    xavier = _flags(trained, "relu30_xavier")
    kaiming = _flags(trained, "relu30_kaiming")
    assert "vanishing" in xavier and "vanishing" not in kaiming
    assert "exploding" not in kaiming and "non_finite" not in kaiming
    # He et al. 2015: the variance halves per layer, so the std falls about 2^-15 in 30 layers
    ratio = xavier["vanishing"].evidence["signal ratio last/first"]
    assert 1e-6 < ratio < 1e-3
    store, ids = trained
    profile = d.signal_profile(store.load(ids["relu30_kaiming"]), 0)
    kept = profile["activation_std"].iloc[-1] / profile["activation_std"].iloc[0]
    assert 0.1 < kept < 10


@pytest.mark.parametrize("name", ["healthy_default", "healthy_kaiming"])
def test_healthy_default_has_no_warning_or_critical(trained, name):
    flags = _flags(trained, name)
    assert all(f.severity == "info" for f in flags.values()), \
        {c: (f.severity, f.evidence) for c, f in flags.items()}
    store, ids = trained
    assert d.flags_at(store.load(ids[name]), 0) == []


def test_recorded_signal_std_is_what_the_profile_shows(trained):
    store, ids = trained
    run = store.load(ids["relu30_kaiming"])
    acts = run.snapshot(1).stats["activations"]
    profile = d.signal_profile(run, 1)
    assert list(profile["activation_std"]) == [acts[layer]["signal_std"]
                                               for layer in profile["layer"]]
    for layer in profile["layer"]:  # the spread across examples is below the total spread
        assert acts[layer]["signal_std"] <= acts[layer]["std"] * (1 + 1e-9)


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
    assert [w.value.split("**")[1] for w in at.warning] == [
        "Exploding signal or gradients", "Learning rate too high"]
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
