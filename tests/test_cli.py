"""The command line, run as a user would: python -m nnviz ..."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def nnviz(runs_dir, *args, check=True):
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(runs_dir)}
    proc = subprocess.run([sys.executable, "-m", "nnviz", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def test_train_list_show_export_import(runs_dir, tmp_path):
    out = nnviz(runs_dir, "train", "--preset", "tutorial_cnn", "--n-samples", "120",
                "--epochs", "1", "--json")
    result = json.loads(out.stdout)
    assert result["status"] == "completed"
    run_id = result["run_id"]
    rows = json.loads(nnviz(runs_dir, "list", "--json").stdout)["runs"]
    assert [r["run_id"] for r in rows] == [run_id]
    shown = json.loads(nnviz(runs_dir, "show", run_id, "--epoch", "0", "--json").stdout)
    theory = {row["param"]: row["theory_std"] for row in shown["layers"]}
    assert theory["conv1.weight"] == pytest.approx(0.1111, abs=1e-4)
    assert theory["fc.weight"] == pytest.approx(0.00902, abs=1e-5)
    text = nnviz(runs_dir, "show", run_id).stdout
    assert "theory_std" in text and "conv1.weight" in text
    zip_path = tmp_path / "run.zip"
    nnviz(runs_dir, "export", run_id, "-o", str(zip_path))
    other = tmp_path / "other"
    assert nnviz(other, "import", str(zip_path)).stdout.strip() == run_id


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--init", "he"], "kaiming_normal"),
    (["train", "--lr", "fast"], "expected a number"),
    (["train", "--preset", "nope"], "tutorial_cnn"),
    (["train", "--model", "simple_cnn", "--dataset", "moons"], "32×32 RGB"),
    (["train", "--dataset", "mnist", "--model", "mlp"], "never downloads data"),
    (["show", "no-such-run"], "No run named"),
    (["import", "/nonexistent.zip"], "cannot read"),
])
def test_bad_input_is_a_clear_message_and_exit_2(runs_dir, args, message):
    proc = nnviz(runs_dir, *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("kind", ["models", "inits", "datasets", "presets"])
def test_registry_listings(runs_dir, kind):
    out = nnviz(runs_dir, kind).stdout
    expected = {"models": "simple_cnn", "inits": "kaiming_normal", "datasets": "shapes32",
                "presets": "vanishing"}[kind]
    assert expected in out


def test_library_never_imports_streamlit():
    code = ("import importlib, pkgutil, sys, nnviz\n"
            "for m in pkgutil.walk_packages(nnviz.__path__, 'nnviz.'):\n"
            "    if m.name != 'nnviz.__main__': importlib.import_module(m.name)\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_help_lists_choices_ranges_and_defaults_from_the_config_fields(capsys):
    from nnviz.cli import main
    from nnviz.config import option

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "one of MODELS" not in text and "INIT_NAMES" not in text
    assert "one of: simple_net, simple_cnn, mlp, cnn; default: simple_cnn" in text
    assert "one of: " + ", ".join(option("init").valid_choices()) in text
    assert "0.01 to 0.9; default: 0.2" in text  # val_fraction: the field's own range
    assert "true or false; default: false" in text


@pytest.mark.parametrize("kind", ["models", "inits", "datasets", "presets"])
def test_registry_json(kind, capsys):
    from nnviz.cli import main
    from nnviz.engine.data import DATASETS
    from nnviz.engine.initializers import BIAS_INITS, INITIALIZERS
    from nnviz.engine.models import MODELS
    from nnviz.presets import PRESETS

    assert main([kind, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)[kind]
    expected = {"models": list(MODELS), "datasets": list(DATASETS), "presets": list(PRESETS),
                "inits": [*INITIALIZERS, *BIAS_INITS]}[kind]
    assert [r["name"] for r in rows] == expected
    assert all(r["description" if kind != "presets" else "lesson"] for r in rows)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from nnviz.config import RunConfig
    from nnviz.engine.training import train
    from nnviz.store.runs import RunStore

    root = tmp_path_factory.mktemp("runs")
    cfg = RunConfig(model="mlp", dataset="moons", n_samples=120, depth=1, width=4, epochs=2,
                    snapshots_per_epoch=2, device="cpu")
    return root, train(cfg, RunStore(root)).run_id


@pytest.mark.parametrize("epoch", ["99", "-1", "0.7", "2.01"])
def test_show_an_epoch_without_a_snapshot_is_an_error(small_run, epoch, capsys):
    from nnviz.cli import main

    root, run_id = small_run
    assert main(["--runs-dir", str(root), "show", run_id, "--epoch", epoch, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "has no snapshot there" in captured.err and "to epoch 2" in captured.err


@pytest.mark.parametrize(("epoch", "index"), [("0", 0), ("0.5", 1), ("0.5004", 1), ("1", 2),
                                              ("2", 4)])
def test_show_a_recorded_epoch(small_run, epoch, index, capsys):
    from nnviz.cli import main

    root, run_id = small_run
    assert main(["--runs-dir", str(root), "show", run_id, "--epoch", epoch, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["snapshot"] == index and shown["epoch"] == pytest.approx(float(epoch), abs=5e-4)


def test_a_closed_pipe_ends_quietly(small_run):
    root, run_id = small_run
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "nnviz", "show", run_id], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `| head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_a_model_gets_a_data_set_it_reads_unless_one_was_asked_for(capsys):
    from nnviz.cli.main import build_parser
    from nnviz.cli.options import config_from_args
    from nnviz.engine.fitting import fit_problem

    cfg = config_from_args(build_parser().parse_args(["lr-find", "--model", "simple_net"]))
    assert cfg.dataset == "regression"
    assert "using regression" in capsys.readouterr().err
    cfg = config_from_args(build_parser().parse_args(["train", "--preset", "vanishing"]))
    assert cfg.dataset == "spiral"  # the preset names its data set: kept
    cfg = config_from_args(build_parser().parse_args(
        ["train", "--model", "simple_cnn", "--dataset", "moons"]))
    assert cfg.dataset == "moons" and "32×32 RGB" in fit_problem(cfg)  # asked for: reported
