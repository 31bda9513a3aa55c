"""RunConfig: validation messages, coercion from strings, hashing, presets."""

import pytest

from nnviz.config import RunConfig, config_hash, field_help
from nnviz.errors import ConfigError
from nnviz.presets import PRESETS, preset


def test_defaults_validate_and_round_trip():
    cfg = RunConfig()
    cfg.validate()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "resnet"}, "simple_net, simple_cnn, mlp, cnn"),
        ({"init": "he"}, "kaiming_normal"),
        ({"optimizer": "rmsprop"}, "adam_then_sgd"),
        ({"lr": "fast"}, "expected a number"),
        ({"lr": -1}, "out of range"),
        ({"lr": float("nan")}, "expected a number"),
        ({"epochs": 2.5}, "whole number"),
        ({"epochs": 0}, "1 to 500"),
        ({"batch_norm": "maybe"}, "true or false"),
        ({"model": "cnn", "depth": 7}, "2 to 4"),
        ({"colour": "red"}, "Unknown option"),
        ({"device": "tpu"}, "auto, cpu, cuda, mps"),
    ],
)
def test_bad_values_name_the_option_and_the_choices(changes, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(changes)


def test_strings_from_cli_and_urls_are_coerced():
    cfg = RunConfig.from_dict({"lr": "0.01", "epochs": "4", "batch_norm": "true", "seed": "7"})
    assert (cfg.lr, cfg.epochs, cfg.batch_norm, cfg.seed) == (0.01, 4, True, 7)


def test_hash_ignores_only_presentation_fields():
    base = RunConfig()
    assert config_hash(base) == config_hash(base.replace(threads=3, name="demo"))
    assert config_hash(base) != config_hash(base.replace(seed=43))
    assert config_hash(base) != config_hash(base.replace(init="zeros"))


def test_presets_are_valid_and_lookup_errors_list_them():
    for p in PRESETS.values():
        p.config().validate()
    with pytest.raises(ConfigError, match="tutorial_cnn"):
        preset("nope")


def test_every_field_has_help_text():
    helps = field_help()
    for name in RunConfig().to_dict():
        assert helps.get(name), name
