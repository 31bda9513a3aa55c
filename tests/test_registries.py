"""One registry entry is all a new initializer needs: the config, the CLI, the Train form, links
and the theory curves all read ``nnviz.engine.initializers.INITIALIZERS``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from nnviz.config import RunConfig
from nnviz.engine import initializers as inits
from nnviz.errors import ConfigError


@pytest.fixture()
def lecun_normal(monkeypatch):
    """LeCun normal, N(0, 1/fan_in), added to the registry and nowhere else."""
    spec = inits.InitSpec(
        "lecun_normal", "LeCun normal", "N(0, 1/fan_in) (LeCun et al. 1998).",
        draw=lambda t, init, act, slope, g: nn.init.normal_(
            t, 0.0, 1 / math.sqrt(inits.fans(t.shape)[0]), generator=g),
        theory=lambda shape, init, act, slope: inits.Theory(
            "normal", 0.0, 1 / math.sqrt(inits.fans(shape)[0]), scale=1 / math.sqrt(
                inits.fans(shape)[0]), formula="N(0, 1/fan_in)"),
    )
    monkeypatch.setitem(inits.INITIALIZERS, spec.name, spec)
    return spec.name


def test_an_unregistered_initializer_is_refused():
    with pytest.raises(ConfigError, match="init: 'lecun_normal' is not a valid choice"):
        RunConfig(init="lecun_normal").validate()


def test_a_registered_initializer_is_everywhere(lecun_normal, capsys):
    from nnviz.cli import main
    from ui.config_form import GROUPS
    from ui.services.urlstate import query_to_config

    RunConfig(init=lecun_normal).validate()  # the config's choices
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert lecun_normal in capsys.readouterr().out  # the CLI's --help
    assert main(["inits", "--json"]) == 0
    assert lecun_normal in [r["name"] for r in json.loads(capsys.readouterr().out)["inits"]]
    field = next(f for _, _, group in GROUPS for f in group if f.name == "init")
    assert lecun_normal in field.choices(RunConfig().to_dict())  # the Train form's options
    cfg, notes = query_to_config({"init": lecun_normal})  # a link
    assert cfg.init == lecun_normal and notes == []


def test_a_registered_initializer_draws_and_has_its_theory(lecun_normal):
    model = nn.Sequential(nn.Linear(400, 300))
    params = inits.InitParams(name=lecun_normal)
    inits.apply_init(model, params, "relu", torch.Generator().manual_seed(0))
    theory = inits.theories(model, params, "relu")["0.weight"]
    assert theory.std == pytest.approx(1 / math.sqrt(400))
    assert model[0].weight.std().item() == pytest.approx(theory.std, rel=0.02)


def test_a_registered_model_is_everywhere(monkeypatch, capsys):
    """A model is one ModelSpec entry too: config, CLI, the form's options and the trainer."""
    import math as m

    from nnviz.cli import main
    from nnviz.engine import models
    from nnviz.engine.training import prepare
    from ui.config_form import GROUPS

    spec = models.ModelSpec(
        "linear_probe", "Linear probe", "One Linear layer on the flattened input.", "any input",
        lambda cfg, shape, out: nn.Sequential(nn.Flatten(), nn.Linear(m.prod(shape), out)),
        lambda shape, n, out: None, fixed_activation="linear")
    monkeypatch.setitem(models.MODELS, spec.name, spec)
    cfg = RunConfig(model="linear_probe", dataset="moons", n_samples=50)
    cfg.validate()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "linear_probe" in capsys.readouterr().out
    fields = {f.name: f for _, _, group in GROUPS for f in group}
    values = cfg.to_dict()
    assert "linear_probe" in fields["model"].choices(values)
    assert not fields["depth"].shown(values)  # the entry's `uses` says it has no depth
    _, model, _, activation = prepare(cfg)
    assert activation == "linear" and isinstance(model[1], nn.Linear)
