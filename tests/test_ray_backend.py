"""Training on a real local Ray cluster: a sweep, dedupe, cancel, a killed worker, the Train page.

One Ray cluster for the module (``ray.init(num_cpus=2)`` on 127.0.0.1, stopped at the end);
tiny configs (an MLP on 2-D moons, 1–2 epochs) keep the whole file short. Without the ``ray``
extra the module skips with its reason; CI installs it (requirements-dev.txt includes
requirements-ray.txt), so there it runs.
"""

import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip(
    "ray", reason="Ray is the optional extra: pip install -r requirements-ray.txt (CI has it)")

from nnviz.backends.ray import RAY_WORKER_DIED, RayBackend  # noqa: E402
from nnviz.cli.main import main  # noqa: E402
from nnviz.config import RunConfig  # noqa: E402
from nnviz.store.runs import RunStore  # noqa: E402
from tests.fixtures.waiting import wait_until  # noqa: E402
from ui.services.jobs import JobManager  # noqa: E402

TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=50, epochs=1, depth=2,
            width=8)
LONG = dict(model="mlp", dataset="moons", n_samples=2000, batch_size=1, epochs=50, depth=2,
            width=8)  # still training when the test acts on it (always stopped)
WAIT = 120.0


def tiny(**changes) -> RunConfig:
    return RunConfig.from_dict({**TINY, **changes})


def long(**changes) -> RunConfig:
    return RunConfig.from_dict({**LONG, **changes})


def run_folders(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


def parent_pid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


@pytest.fixture(scope="module")
def cluster():
    """A real Ray cluster on this machine: 2 CPUs, 127.0.0.1, its own temp folder."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=temp, log_to_driver=False, namespace="nnviz-tests")
    yield ray.cluster_resources()
    ray.shutdown()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("ray-runs")


@pytest.fixture(scope="module")
def manager(cluster, root):
    m = JobManager(root, backend=RayBackend())  # joins the cluster this process started
    yield m
    m.shutdown()


def test_the_manager_trains_on_the_cluster_up_to_its_size(manager, cluster):
    assert manager.backend == "ray"
    assert manager.max_concurrent == int(cluster["CPU"]) == 2  # one CPU per job


def test_a_sweep_of_eight_runs_lands_as_loadable_runs(cluster, tmp_path, capsys):
    args = ["--runs-dir", str(tmp_path), "sweep", "--ray", "auto", "--json", "--quiet",
            "--init", "xavier_uniform,kaiming_normal", "--lr", "0.01,0.1", "--seed", "0,1",
            *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and {r["action"] for r in rows} == {"trained"}
    store = RunStore(tmp_path)
    grid = {(r["init"], r["lr"], r["seed"]) for r in rows}
    assert len(grid) == 8
    for r in rows:
        run = store.load(r["run_id"])  # validated: every snapshot's checksum, shapes
        assert run.status == "completed" and run.n_snapshots == 2
        assert run.config == tiny(init=r["init"], lr=r["lr"], seed=r["seed"])
        assert r["val_loss"] == run.record.history[-1].val_loss
        assert run.record.pid != os.getpid()  # trained in a Ray worker
    assert len(run_folders(tmp_path)) == 8
    # the same grid again trains nothing: every config's finished run is reused
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert {r["action"] for r in again} == {"reused"}
    assert [r["run_id"] for r in again] == [r["run_id"] for r in rows]
    assert len(run_folders(tmp_path)) == 8


def test_identical_configs_share_one_job_and_a_finished_run_is_reused(manager, root):
    cfg = tiny(seed=4, epochs=2)
    first = manager.submit(cfg)
    second = manager.submit(RunConfig.from_dict(cfg.to_dict()))  # equal, not the same object
    assert second.job_id == first.job_id
    done = manager.wait(first.job_id, WAIT)
    assert done.state == "done", done.status_detail
    assert done.progress["epochs_done"] == 2  # progress events came back through Ray
    before = run_folders(root)
    again = manager.submit(cfg.replace(name="a label"))  # the name is not part of the outcome
    assert again.state == "done" and again.reused and again.run_id == done.run_id
    assert run_folders(root) == before


def test_cancel_stops_a_running_ray_job_and_keeps_what_it_recorded(manager, root):
    job = manager.submit(long(seed=6))
    wait_until(lambda: manager.get(job.job_id).progress.get("step", 0) > 0, WAIT)
    manager.cancel(job.job_id)
    stopped = manager.wait(job.job_id, 30)
    assert stopped.state == "cancelled", stopped.status_detail
    assert stopped.status_detail.startswith("cancelled at")
    run = RunStore(root).load(stopped.run_id)
    assert run.status == "cancelled" and run.n_snapshots >= 1
    assert not (run.folder / "CANCEL").exists()


def test_a_killed_ray_worker_fails_its_job_clearly_and_the_next_job_runs(manager, root):
    job = manager.submit(long(seed=11))
    run_id = wait_until(lambda: manager.get(job.job_id).run_id, WAIT)
    store = RunStore(root)
    pid = store.load(run_id).record.pid
    assert parent_pid(pid) != os.getpid()  # a Ray worker (the raylet's child), not ours
    os.kill(pid, signal.SIGKILL)
    failed = manager.wait(job.job_id, WAIT)
    assert failed.state == "failed"
    assert failed.status_detail == RAY_WORKER_DIED.format(reason="WorkerCrashedError")
    run = store.load(run_id)
    assert run.status == "failed" and run.n_snapshots >= 1  # what it recorded is kept
    after = manager.wait(manager.submit(tiny(seed=12)).job_id, WAIT)
    assert after.state == "done", after.status_detail
    assert store.load(after.run_id).record.pid != pid


def test_the_train_page_submits_to_ray(cluster, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui.state import _manager, job_manager

    monkeypatch.setenv("NNVIZ_RAY_ADDRESS", "auto")
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.switch_page("pages/1_Train.py").run()
    assert not at.exception, at.exception
    try:
        at.sidebar.selectbox(key="train_model").set_value("mlp").run()
        at.sidebar.selectbox(key="train_dataset").set_value("moons").run()
        for key, value in (("train_n_samples", 200), ("train_epochs", 1), ("train_width", 8),
                           ("train_depth", 2), ("train_seed", 21)):
            at.sidebar.number_input(key=key).set_value(value).run()
        at.button(key="train_start").click().run()
        assert not at.exception, at.exception
        manager = job_manager()
        assert manager.backend == "ray"
        job = manager.wait(at.session_state["train_job_id"], WAIT)
        assert job.state == "done", job.status_detail
        run = RunStore(tmp_path).load(job.run_id)
        assert run.status == "completed"
        assert parent_pid(run.record.pid) != os.getpid()  # not a local pool worker
        at.run()
        assert not at.exception, at.exception
    finally:
        _manager.clear(str(tmp_path.resolve()))  # this folder's manager only


def test_the_tuning_guides_try_it_runs_its_sweep_on_ray(cluster, tmp_path, monkeypatch):
    import time

    from streamlit.testing.v1 import AppTest

    from nnviz.analysis import tuning
    from ui.state import _manager, job_manager

    monkeypatch.setenv("NNVIZ_RAY_ADDRESS", "auto")
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv(tuning.TINY_ENV, "1")
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.switch_page("pages/5_Tuning_guide.py").run()
    assert not at.exception, at.exception
    try:
        at.button(key="tune_try_2").click().run()  # step 2: two batch sizes
        assert not at.exception, at.exception
        manager = job_manager()
        assert manager.backend == "ray"
        jobs = [j for j in manager.jobs() if j.owner is not None]
        assert len(jobs) == 2
        deadline = time.monotonic() + WAIT
        while any(manager.get(j.job_id).active for j in jobs) and time.monotonic() < deadline:
            time.sleep(0.5)
        store = RunStore(tmp_path)
        for job in jobs:
            done = manager.get(job.job_id)
            assert done.state == "done", done.status_detail
            assert parent_pid(store.load(done.run_id).record.pid) != os.getpid()
        def drawn() -> bool:
            at.run()
            assert not at.exception, at.exception
            return any(c.proto.id.endswith("tune_fig_2_0") for c in at.get("plotly_chart"))

        wait_until(drawn, 60, every=0.5)  # the step's chart, drawn from the Ray-trained runs
    finally:
        _manager.clear(str(tmp_path.resolve()))
