"""Tuning guide, the steps (``nnviz.analysis.tuning.steps``): each step's sweep of configs is
valid, varies only its knob and fits the base problem; links and explanations."""

from __future__ import annotations

import json

import pytest

from nnviz.analysis import tuning
from nnviz.config import RunConfig, config_hash
from nnviz.engine.fitting import fit_problem
from nnviz.errors import ConfigError

# The option each step varies (with what its lesson must also fix).
KNOBS = {1: {"init"}, 2: {"batch_size"}, 3: {"early_stopping"},
         4: {"optimizer", "switch_epoch", "momentum"}, 5: {"width", "depth"},
         7: {"activation"}, 8: {"dropout", "weight_decay"}}
IGNORED = {"name"}


def _varying(configs: list[tuple[str, RunConfig]]) -> set[str]:
    dicts = [cfg.to_dict() for _, cfg in configs]
    return {k for k in dicts[0] if len({json.dumps(d[k]) for d in dicts}) > 1} - IGNORED


@pytest.mark.parametrize("size", tuning.SIZES)
@pytest.mark.parametrize("step", sorted(tuning.STEPS))
def test_step_configs_are_valid_and_vary_only_the_knob(step, size):
    configs = tuning.step_configs(step, tuning.tuning_base(), size)
    labels = [label for label, _ in configs]
    assert len(configs) >= 2 and len(set(labels)) == len(labels)
    hashes = {config_hash(cfg) for _, cfg in configs}
    assert len(hashes) == len(configs)  # no two runs of a sweep are the same run
    for label, cfg in configs:
        assert RunConfig.from_dict(cfg.to_dict()) == cfg  # valid
        assert fit_problem(cfg) is None
        assert cfg.name.startswith(f"Tuning step {step}: ") and label in cfg.name
        assert cfg.early_stopping == 0 or step == 3
        if size == "tiny":
            assert cfg.n_samples <= 200 and cfg.probe_size <= 64 and cfg.width <= 8
            assert cfg.epochs <= (20 if cfg.model == "simple_net" else 4)
    if step in KNOBS:
        assert _varying(configs) <= KNOBS[step]
        assert _varying(configs)


def test_step_configs_details():
    base = tuning.tuning_base(seed=7)
    inits = dict(tuning.step_configs(1, base, "small"))
    assert {"default", "kaiming_normal", "too_small", "too_large"} <= set(inits)
    assert all(c.optimizer == "sgd" and c.seed == 7 and c.bias_init == "zeros"
               for c in inits.values())
    loss = dict(tuning.step_configs(6, base, "small"))
    assert {c.loss for c in loss.values()} == {"cross_entropy", "focal", "mse", "mae"}
    assert loss["cross-entropy"].imbalance == 10 and loss["MSE"].outlier_fraction == 0.1
    assert loss["MSE"].model == "simple_net" and loss["MSE"].dataset == "regression"
    acts = tuning.step_configs(7, base, "small")
    assert [c.activation for _, c in acts] == ["relu", "leaky_relu", "sigmoid", "tanh"]
    assert all(c.depth >= 8 for _, c in acts)
    reg = dict(tuning.step_configs(8, base, "small"))
    assert sorted(c.dropout for c in reg.values()) == [0, 0, 0, 0.2, 0.5]


def test_step_configs_fit_other_base_problems():
    cnn = tuning.step_configs(5, RunConfig(model="simple_cnn", dataset="shapes32"), "tiny")
    assert all(c.model == "cnn" and 2 <= c.depth <= 4 for _, c in cnn)
    net = tuning.step_configs(2, RunConfig(model="simple_net", dataset="moons", loss="bce"),
                              "tiny")
    assert all(c.model == "mlp" for _, c in net)


@pytest.mark.parametrize("base", [
    tuning.tuning_base(dataset="moons"), tuning.tuning_base(dataset="xor", seed=3),
    tuning.tuning_base(model="cnn", dataset="shapes28", depth=2, width=8, lr=1e-3),
], ids=["moons", "xor", "cnn-shapes28"])
def test_every_base_problem_of_the_page_gives_valid_sweeps(base):
    for step in tuning.STEPS:
        for size in tuning.SIZES:
            for _, cfg in tuning.step_configs(step, base, size):
                cfg.validate()
                assert fit_problem(cfg) is None  # the model can read the data with this loss
                assert cfg.seed == base.seed


def test_bad_step_or_size_is_a_config_error():
    with pytest.raises(ConfigError, match="1 to 8"):
        tuning.step_configs(9, tuning.tuning_base())
    with pytest.raises(ConfigError, match="small, tiny"):
        tuning.step_configs(1, tuning.tuning_base(), "huge")
    with pytest.raises(ConfigError):
        tuning.step_url(0)


def test_step_links_match_the_diagnostics():
    from nnviz.analysis import diagnostics

    for n, step in tuning.STEPS.items():
        assert tuning.step_url(n) == f"/Tuning_guide#step-{n}" == diagnostics.guide_url(n)
        assert diagnostics.GUIDE_STEPS[n][0].split()[0] == step.title.split()[0]


def test_explanations_teach_the_correct_facts():
    text = {n: (s.explanation + s.correction).lower() for n, s in tuning.STEPS.items()}
    assert "kaiming_uniform" in text[1] and "vanish" in text[1]
    assert "nn.linear" in text[1] and "nn.conv2d" in text[1]
    assert "trade-off" in text[2] and "learning rate with it" in text[2]
    assert "one heuristic" in text[4]
    assert "output" in text[7] and "crossentropyloss" in text[7]
    assert "0.2 to 0.5" in text[8]
    fields = set(RunConfig().to_dict())
    for s in tuning.STEPS.values():
        assert set(s.fields) <= fields
    assert {row["option"] for row in tuning.PARAM_CLASSES} <= fields
    assert {row["class"] for row in tuning.PARAM_CLASSES} == {"Network", "Optimization",
                                                               "Regularization"}
