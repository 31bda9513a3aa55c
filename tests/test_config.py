"""RunConfig: validation messages, coercion from strings, hashing, presets."""

import dataclasses

import pytest

from nnviz.config import RunConfig, config_hash, unchecked
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


def test_val_fraction_range_is_the_same_for_the_config_and_the_data_sets():
    from nnviz.config import option
    from nnviz.engine.data import load_dataset

    share = option("val_fraction")
    for value in (share.low, share.high):
        RunConfig(val_fraction=value).validate()
        load_dataset("moons", n_samples=50, val_fraction=value)
    for value in (share.low / 2, share.high + 0.01):
        with pytest.raises(ConfigError, match="val_fraction"):
            RunConfig(val_fraction=value).validate()
        with pytest.raises(ConfigError, match="val_fraction"):
            load_dataset("moons", n_samples=50, val_fraction=value)


def test_every_field_declares_what_it_accepts():
    from nnviz.config import field_type, options

    for name, opt in options().items():
        kind = field_type(name)
        assert opt.help and opt.label, name
        if kind in (int, float):
            assert opt.low is not None and opt.high is not None and opt.low < opt.high, name
            assert opt.low <= getattr(RunConfig(), name) <= opt.high, name
        elif kind is str:
            assert opt.valid_choices() is not None or opt.max_len, name
            if opt.valid_choices() is not None:
                assert getattr(RunConfig(), name) in opt.valid_choices(), name


def test_a_config_is_validated_once_when_made_and_then_cannot_change():
    with pytest.raises(ConfigError, match="depth: 7 is out of range"):
        RunConfig(model="cnn", depth=7)  # the constructor checks, not only from_dict
    with pytest.raises(ConfigError, match="kaiming_normal"):
        dataclasses.replace(RunConfig(), init="he")
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = -1.0  # type: ignore[misc]  # no way around the check after it
    assert hash(cfg) == hash(RunConfig())


def test_unchecked_is_the_one_bypass_and_validate_still_catches_it():
    loose = unchecked(RunConfig(), model="cnn", depth=7)
    assert (loose.model, loose.depth, loose.lr) == ("cnn", 7, RunConfig().lr)
    with pytest.raises(ConfigError, match="2 to 4"):
        loose.validate()
    with pytest.raises(ConfigError, match="2 to 4"):
        RunConfig.from_dict(loose.to_dict())
    with pytest.raises(TypeError, match="colour"):
        unchecked(RunConfig(), colour="red")
