"""URL state: configs and views survive a round trip; every bad value becomes a warning."""

from urllib.parse import parse_qs, urlencode

import pytest

from nnviz.config import RunConfig, config_hash
from nnviz.engine.data import DATASETS
from nnviz.presets import PRESETS
from ui.services.urlstate import (
    MAX_VALUE_LEN,
    MAX_WARNINGS,
    config_to_query,
    fit_problem,
    fitting_datasets,
    has_config,
    query_to_config,
    query_to_view,
    view_to_query,
)


def test_default_config_writes_only_the_four_identity_keys():
    assert config_to_query(RunConfig()) == {"model": "simple_cnn", "init": "default",
                                            "seed": "42", "dataset": "shapes32"}


def test_only_changed_fields_are_written_and_never_data_dir_or_threads():
    cfg = RunConfig(model="mlp", dataset="spiral", depth=30, lr=1e-5, batch_norm=True,
                    data_dir="/home/me/data", threads=3, name="lesson 1")
    q = config_to_query(cfg)
    assert q == {"model": "mlp", "init": "default", "seed": "42", "dataset": "spiral",
                 "depth": "30", "lr": "1e-05", "batch_norm": "true", "name": "lesson 1"}
    assert all(isinstance(v, str) for v in q.values())


@pytest.mark.parametrize("cfg", [
    RunConfig(),
    RunConfig(model="mlp", dataset="spiral", depth=30, width=64, activation="tanh",
              init="kaiming_normal", init_mode="fan_out", lr=0.0123456789, seed=7,
              optimizer="sgd", momentum=0.5, scheduler="step", step_size=3, gamma=0.3),
    RunConfig(model="cnn", depth=4, batch_norm=True, dropout=0.25, init="uniform", init_a=0.01,
              bias_init="constant", bias_value=0.01, imbalance=3.5, snapshots_per_epoch=4,
              deterministic=False, name="ä b&c=d"),
    RunConfig(model="simple_net", dataset="regression", outlier_fraction=0.1, loss="mae",
              optimizer="adam_then_sgd", switch_epoch=2, scheduler="plateau", patience=0),
    *(p.config() for p in PRESETS.values()),
])
def test_config_round_trips_exactly_through_a_real_query_string(cfg):
    text = urlencode(config_to_query(cfg))
    parsed = parse_qs(text, keep_blank_values=True)  # what a browser gives back
    back, warnings = query_to_config(parsed)
    assert warnings == []
    assert back == cfg
    assert config_hash(back) == config_hash(cfg)


def test_data_dir_and_threads_are_not_carried_and_are_refused_from_links():
    cfg = RunConfig(data_dir="/srv/mnist", threads=4)
    back, warnings = query_to_config(config_to_query(cfg))
    assert (back.data_dir, back.threads) == ("", 0) and warnings == []
    back, warnings = query_to_config({"data_dir": "/etc", "threads": "64"})
    assert (back.data_dir, back.threads) == ("", 0)
    assert any(w.startswith("data_dir cannot be set") for w in warnings)
    assert any(w.startswith("threads cannot be set") for w in warnings)


def test_a_preset_starts_the_config_and_explicit_keys_override_it():
    cfg, warnings = query_to_config({"preset": "vanishing", "seed": "7"})
    assert warnings == []
    assert cfg == PRESETS["vanishing"].config().replace(seed=7)


def test_view_keys_are_not_config_keys_and_pages_can_ignore_their_own():
    cfg, warnings = query_to_config({"run": "abc", "epoch": "2", "layer": "fc1", "lr": "0.01"})
    assert warnings == [] and cfg.lr == 0.01
    _, warnings = query_to_config({"compare": "x"})
    assert len(warnings) == 1 and "'compare'" in warnings[0]
    _, warnings = query_to_config({"compare": "x"}, ignore=("compare",))
    assert warnings == []


@pytest.mark.parametrize("params, key, used", [
    ({"lr": "fast"}, "lr", 0.001),                        # not a number
    ({"epochs": "2.5"}, "epochs", 3),                     # not a whole number
    ({"epochs": "0"}, "epochs", 3),                       # out of range
    ({"lr": "1e9"}, "lr", 0.001),                         # out of range
    ({"lr": "nan"}, "lr", 0.001),                         # not finite
    ({"lr": "inf"}, "lr", 0.001),
    ({"seed": "-1"}, "seed", 42),
    ({"seed": "9" * 40}, "seed", 42),                     # huge number
    ({"init": "magic"}, "init", "default"),               # unknown choice
    ({"model": "transformer"}, "model", "simple_cnn"),
    ({"batch_norm": "maybe"}, "batch_norm", False),
    ({"dropout": "0.99"}, "dropout", 0.0),
])
def test_every_bad_value_is_dropped_with_a_warning_naming_it(params, key, used):
    cfg, warnings = query_to_config(params)
    assert getattr(cfg, key) == used
    assert len(warnings) == 1
    assert f"{key}=" in warnings[0] and f"Used {used!r} instead" in warnings[0]
    cfg.validate()


def test_unknown_keys_are_named_in_one_warning():
    cfg, warnings = query_to_config({"colour": "red", "lr": "0.01", "size": "9"})
    assert cfg.lr == 0.01
    assert len(warnings) == 1
    assert "'colour'" in warnings[0] and "'size'" in warnings[0] and "lr" in warnings[0]


def test_huge_values_and_keys_are_ignored_without_echoing_them():
    huge = "x" * 100_000
    cfg, warnings = query_to_config({"name": huge, huge: "1", "lr": "0.5" + "0" * 200})
    assert cfg == RunConfig()
    assert len(warnings) == 3
    assert all(len(w) < 400 for w in warnings)
    assert any(f"at most {MAX_VALUE_LEN}" in w and "'name'" in w for w in warnings)


def test_repeated_keys_use_the_last_value_and_say_so():
    cfg, warnings = query_to_config({"seed": ["1", "2", "3"], "lr": ["0.5"]})
    assert cfg.seed == 3 and cfg.lr == 0.5
    assert warnings == ["'seed' appears 3 times in the link; used the last value '3'."]


def test_a_bad_value_is_checked_against_the_earlier_keys_of_the_link():
    cfg, warnings = query_to_config({"model": "cnn", "depth": "10"})
    assert (cfg.model, cfg.depth) == ("cnn", 3)
    assert "1 to 4" in warnings[0]
    cfg, warnings = query_to_config({"model": "mlp", "depth": "10"})
    assert (cfg.depth, warnings) == (10, [])


def test_a_model_that_cannot_read_the_data_set_gets_one_that_fits():
    cfg, warnings = query_to_config({"model": "simple_cnn", "dataset": "moons"})
    assert cfg.dataset == "shapes32" and fit_problem(cfg) is None
    assert "'shapes32' instead of 'moons'" in warnings[0]
    cfg, warnings = query_to_config({"model": "simple_net", "dataset": "spiral"})
    assert fit_problem(cfg) is None and cfg.dataset != "spiral"
    cfg, warnings = query_to_config({"model": "mlp", "dataset": "moons", "loss": "mse"})
    assert (cfg.dataset, cfg.loss) == ("moons", "auto") and fit_problem(cfg) is None
    assert "loss 'auto'" in warnings[0]


def test_fitting_datasets_follow_the_models_inputs():
    assert fitting_datasets(RunConfig(model="simple_cnn")) == ["shapes32", "cifar10"]
    assert "moons" not in fitting_datasets(RunConfig(model="cnn"))
    assert "spiral" not in fitting_datasets(RunConfig(model="simple_net"))
    assert fitting_datasets(RunConfig(model="mlp")) == list(DATASETS)


def test_an_unknown_preset_is_reported_and_the_rest_is_used():
    cfg, warnings = query_to_config({"preset": "nope", "seed": "5"})
    assert cfg.seed == 5 and "preset='nope'" in warnings[0] and "vanishing" in warnings[0]
    view, view_warnings = query_to_view({"preset": "nope"})
    assert view["preset"] is None and view_warnings == warnings


def test_an_absent_device_from_a_gpu_link_becomes_auto(monkeypatch):
    import nnviz.engine.training

    monkeypatch.setattr(nnviz.engine.training, "available_devices", lambda: ["cpu"])
    cfg, warnings = query_to_config({"device": "cuda"})
    assert cfg.device == "auto" and "device='cuda'" in warnings[0]
    cfg, warnings = query_to_config({"device": "cpu"})
    assert cfg.device == "cpu" and warnings == []


def test_too_many_problems_are_summed_up():
    params = {f"x{i}": "1" for i in range(3)}
    params.update({"lr": "a", "seed": "b", "epochs": "c", "depth": "d", "width": "e",
                   "dropout": "f", "init_std": "g", "noise": "h", "gamma": "i", "momentum": "j",
                   "patience": "k", "batch_size": "l"})
    cfg, warnings = query_to_config(params)
    assert cfg == RunConfig()
    assert len(warnings) == MAX_WARNINGS + 1
    assert warnings[-1] == "... and 3 more problem(s) in the link."


def test_view_round_trip():
    q = view_to_query(run_id="20260101-120000-mlp-default-s1", epoch=2, layer="fc1",
                      preset="symmetry")
    assert q == {"run": "20260101-120000-mlp-default-s1", "epoch": "2", "layer": "fc1",
                 "preset": "symmetry"}
    view, warnings = query_to_view(q, n_snapshots=4, layer_names=["fc1", "out"])
    assert warnings == []
    assert view == {"run": "20260101-120000-mlp-default-s1", "epoch": 2, "layer": "fc1",
                    "preset": "symmetry"}
    assert view_to_query() == {}
    assert view_to_query(epoch=0) == {"epoch": "0"}


@pytest.mark.parametrize("epoch, n, expected, says", [
    ("7", 4, 3, "showing snapshot 3"),
    ("-2", 4, 0, "showing snapshot 0"),
    ("two", 4, 0, "showing the first snapshot"),   # the message and the snapshot agree
    ("1.5", 4, 0, "not a whole number"),
    ("inf", 4, 0, "not a whole number"),
    ("1e3", 4, 0, "not a whole number"),
    ("99999999999999999999999", 4, 3, "epoch=99999999999999999999999 "),  # exactly
    ("1", 0, None, "no snapshots"),
    ("-1", None, 0, "negative"),
])
def test_bad_epochs_fall_back_to_a_snapshot_that_exists(epoch, n, expected, says):
    view, warnings = query_to_view({"epoch": epoch}, n_snapshots=n)
    assert view["epoch"] == expected
    assert len(warnings) == 1 and says in warnings[0]


def test_epoch_without_a_known_run_length_is_only_checked_for_form():
    view, warnings = query_to_view({"epoch": "12"}, n_snapshots=None)
    assert view["epoch"] == 12 and warnings == []


def test_bad_run_and_layer_are_dropped_with_warnings():
    view, warnings = query_to_view({"run": "../../etc/passwd", "layer": "fc9"}, 3,
                                   ["conv1", "fc"])
    assert view["run"] is None and view["layer"] is None
    assert "not a valid run name" in warnings[0]
    assert "'fc9'" in warnings[1] and "(conv1)" in warnings[1]
    view, warnings = query_to_view({"layer": "anything"}, 3, None)
    assert view["layer"] == "anything" and warnings == []


def test_view_reader_handles_repeats_and_huge_values_and_ignores_config_keys():
    view, warnings = query_to_view({"epoch": ["1", "2"], "layer": "y" * 5000, "lr": "x"}, 5,
                                   ["y"])
    assert view["epoch"] == 2 and view["layer"] is None
    assert len(warnings) == 2


def test_has_config_sees_config_keys_and_presets_only():
    assert not has_config({})
    assert not has_config({"run": "a", "epoch": "1"})
    assert has_config({"lr": "0.1"}) and has_config({"preset": "healthy"})
