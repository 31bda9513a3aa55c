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
