"""The job backends without Ray: the local pool is the default, imports no ray, and runs sweeps."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnviz.backends import LocalPool, make_backend
from nnviz.backends.sweep import grid, run_sweep
from nnviz.cli.main import main
from nnviz.config import RunConfig, unchecked
from nnviz.errors import NnvizError
from nnviz.store.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=50, epochs=1, depth=2,
            width=8)

NO_RAY = """
import sys, time
import nnviz.backends, nnviz.cli.main, nnviz.cli.sweep, ui.services.jobs, ui.state, ui.shell
from nnviz.config import RunConfig
from ui.services.jobs import JobManager
if __name__ == "__main__":
    m = JobManager(sys.argv[1], max_concurrent=1, threads_per_job=1)
    job = m.wait(m.submit(RunConfig.from_dict({cfg!r})).job_id, 120)
    m.shutdown()
    print(m.backend, job.state, "ray" in sys.modules)
"""


def test_the_local_default_never_imports_ray(tmp_path, monkeypatch):
    """App modules, the CLI and a real local job leave ``ray`` out of sys.modules (even with
    ray installed, and $NNVIZ_RAY_ADDRESS unset)."""
    script = tmp_path / "local.py"
    script.write_text(NO_RAY.format(cfg=TINY))
    env = {k: v for k, v in __import__("os").environ.items() if k != "NNVIZ_RAY_ADDRESS"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["local", "done", "False"]


def test_without_ray_asking_for_it_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "nnviz.backends.ray", raising=False)
    assert isinstance(make_backend(1, 1), LocalPool)  # not asked for: the local pool
    with pytest.raises(NnvizError, match="requirements-ray.txt"):
        make_backend(1, 1, ray="auto")
    monkeypatch.setenv("NNVIZ_RAY_ADDRESS", "auto")
    with pytest.raises(NnvizError, match="NNVIZ_RAY_ADDRESS"):
        make_backend(1, 1)


def test_grid_is_the_product_of_the_values_with_typed_values():
    points = grid(RunConfig.from_dict(TINY), {"lr": ["1e-3", "0.01"], "seed": ["0", "1", "2"]})
    assert len(points) == 6
    assert points[0][0] == {"lr": 0.001, "seed": 0} and points[-1][0] == {"lr": 0.01, "seed": 2}
    assert points[4][1] == RunConfig.from_dict({**TINY, "lr": 0.01, "seed": 1})


def test_a_local_sweep_trains_each_config_once_and_reuses_finished_runs(tmp_path):
    store = RunStore(tmp_path)
    base = RunConfig.from_dict(TINY)
    points = grid(base, {"seed": [0, 1]}) + grid(base, {"seed": [0]})  # seed 0 twice
    points.append(({"model": "transformer"}, unchecked(base, model="transformer")))  # invalid
    pool = LocalPool(1, 1)
    seen: list[tuple[int, str]] = []
    try:
        rows = run_sweep(points, store, pool, on_event=lambda i, e: seen.append((i, e["event"])))
    finally:
        pool.shutdown(10.0)
    assert [r.action for r in rows] == ["trained", "trained", "reused", "failed"]
    assert rows[2].run_id == rows[0].run_id
    assert "model" in rows[3].detail
    assert {i for i, kind in seen if kind == "finished"} == {0, 1}  # events reached the caller
    for row in rows[:2]:
        run = store.load(row.run_id)
        assert run.status == "completed" and row.val_loss == run.record.history[-1].val_loss
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_nnviz_sweep_reuses_a_finished_grid_and_reports_bad_lists(tmp_path, capsys):
    args = ["--runs-dir", str(tmp_path), "sweep", "--json", "--quiet", "--jobs", "1",
            "--seed", "3,4", *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in first] == ["trained", "trained"]
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in again] == ["reused", "reused"]
    assert main(["--runs-dir", str(tmp_path), "sweep", "--seed", "1,,2"]) == 2
    assert "empty value" in capsys.readouterr().err
    assert main(["--runs-dir", str(tmp_path), "sweep", "--lr", "0.1,fast"]) == 2
    assert "lr" in capsys.readouterr().err
