"""Background jobs in real worker processes: run, dedupe, reuse, queue, cancel, failures."""

import os
import signal
import threading
import time

import pytest

from nnviz.config import RunConfig, unchecked
from nnviz.engine.data import load_dataset
from nnviz.errors import DataError, NnvizError
from nnviz.store.runs import RunStore
from tests.fixtures.waiting import wait_until as _wait_until
from ui.services.jobs import WORKER_DIED, JobManager, default_concurrency

TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=50, epochs=1, depth=2,
            width=8)
# Long enough to still be training when the test acts on it (always cancelled).
LONG = dict(model="mlp", dataset="moons", n_samples=2000, batch_size=1, epochs=50, depth=2,
            width=8)
WAIT = 90.0


def tiny(**changes) -> RunConfig:
    return RunConfig.from_dict({**TINY, **changes})


def long(**changes) -> RunConfig:
    return RunConfig.from_dict({**LONG, **changes})


def wait_until(predicate, timeout=WAIT, every=0.02):
    return _wait_until(predicate, timeout, every)


def run_folders(root) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("jobs-runs")


@pytest.fixture(scope="module")
def manager(root):
    m = JobManager(root, max_concurrent=1, threads_per_job=1)
    yield m
    m.shutdown()


def test_default_concurrency_bounds_jobs_and_threads():
    assert default_concurrency(1) == (1, 1)
    assert default_concurrency(2) == (1, 2)
    assert default_concurrency(8) == (4, 2)
    assert default_concurrency(64) == (4, 16)


def test_submit_trains_in_a_worker_and_the_run_loads(manager, root):
    job = manager.submit(tiny(seed=1))
    assert job.state in ("queued", "running") and job.job_id and not job.reused
    done = manager.wait(job.job_id, WAIT)
    assert done.state == "done", done.status_detail
    assert done.finished >= done.started >= done.submitted
    run = RunStore(root).load(done.run_id)
    assert run.status == "completed"
    assert run.config == tiny(seed=1)
    assert run.n_snapshots == 2 and len(run.record.history) == 1
    assert run.record.pid != os.getpid()  # trained in another process
    assert run.record.environment["threads"] == 1  # the job's thread budget
    assert done.progress["epoch"] == 1 and done.progress["epochs"] == 1


def test_warm_worker_writes_the_first_snapshot_within_3_seconds(manager, root):
    manager.wait(manager.submit(tiny(seed=2)).job_id, WAIT)  # the worker is warm now
    start = time.monotonic()
    job = manager.submit(tiny(seed=3))
    run_id = wait_until(lambda: manager.get(job.job_id).run_id, timeout=10, every=0.005)
    elapsed = time.monotonic() - start
    assert (root / run_id / "snapshots" / "s0000.safetensors").is_file()
    assert elapsed < 3.0
    manager.wait(job.job_id, WAIT)


def test_waiting_for_the_run_returns_once_the_first_snapshot_is_on_disk(manager, root):
    job = manager.submit(long(seed=21))  # trains for many seconds: only its start is awaited
    try:
        started = manager.wait(job.job_id, WAIT, run=True)
        assert started.state == "running" and started.run_id
        assert (root / started.run_id / "snapshots" / "s0000.safetensors").is_file()
    finally:
        manager.cancel(job.job_id)
    assert manager.wait(job.job_id, WAIT).state == "cancelled"


def test_identical_submits_share_one_job_and_a_finished_run_is_reused(manager, root):
    cfg = tiny(seed=4, epochs=2)
    first = manager.submit(cfg)
    second = manager.submit(RunConfig.from_dict(cfg.to_dict()))  # equal, not the same object
    assert second.job_id == first.job_id
    done = manager.wait(first.job_id, WAIT)
    assert done.state == "done"
    before = run_folders(root)
    again = manager.submit(cfg.replace(threads=1, name="a label"))  # not part of the outcome
    assert again.state == "done" and again.reused
    assert again.run_id == done.run_id and again.job_id != done.job_id
    assert manager.get(again.job_id).reused
    assert run_folders(root) == before  # nothing trained
    fresh = manager.submit(cfg, reuse=False)
    assert fresh.job_id not in (first.job_id, again.job_id) and not fresh.reused
    assert manager.wait(fresh.job_id, WAIT).run_id != done.run_id


def test_concurrent_identical_submits_from_many_threads_give_one_job(manager):
    cfg = long(seed=5)
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(manager.submit(cfg).job_id))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    manager.cancel(ids[0])
    assert manager.wait(ids[0], WAIT).state == "cancelled"


def test_queue_positions_and_cancelling_queued_and_running_jobs(manager, root):
    a, b, c = manager.submit(long(seed=6)), manager.submit(tiny(seed=7)), \
        manager.submit(tiny(seed=8))
    assert a.state == "running" and a.queue_position is None
    assert (b.state, b.queue_position) == ("queued", 1)
    assert (c.state, c.queue_position) == ("queued", 2)
    assert [j.job_id for j in manager.jobs()[:3]] == [c.job_id, b.job_id, a.job_id]

    manager.cancel(b.job_id)  # queued: leaves the queue, never trains
    assert manager.get(b.job_id).state == "cancelled"
    assert manager.get(b.job_id).run_id is None
    assert manager.get(c.job_id).queue_position == 1

    wait_until(lambda: manager.get(a.job_id).progress.get("step", 0) > 0)
    manager.cancel(a.job_id)  # running: the trainer stops within one step, keeps its snapshots
    stopped = manager.wait(a.job_id, WAIT)
    assert stopped.state == "cancelled" and stopped.status_detail.startswith("cancelled at")
    run = RunStore(root).load(stopped.run_id)
    assert run.status == "cancelled" and run.n_snapshots >= 1
    assert not (run.folder / "CANCEL").exists()
    assert manager.wait(c.job_id, WAIT).state == "done"  # the queue moved on


def test_cancel_before_the_run_folder_exists_still_stops_it(manager, root):
    job = manager.submit(long(seed=9))
    manager.cancel(job.job_id)  # the worker may not have created the run yet
    done = manager.wait(job.job_id, WAIT)
    assert done.state == "cancelled"
    if done.run_id:
        assert RunStore(root).load(done.run_id).status == "cancelled"


def test_a_data_error_fails_the_job_with_its_message_and_the_manager_goes_on(manager):
    with pytest.raises(DataError) as expected:
        load_dataset("mnist", data_dir=None)
    job = manager.submit(RunConfig(model="cnn", dataset="mnist", epochs=1))
    failed = manager.wait(job.job_id, WAIT)
    assert failed.state == "failed"
    assert failed.status_detail == str(expected.value)
    assert manager.wait(manager.submit(tiny(seed=10)).job_id, WAIT).state == "done"


def test_an_invalid_config_fails_at_once_naming_the_option(manager):
    job = manager.submit(unchecked(RunConfig(), model="transformer"))
    assert job.state == "failed" and "model" in job.status_detail
    assert "simple_cnn" in job.status_detail  # lists the valid choices
    assert manager.get(job.job_id).state == "failed"


def test_unknown_job_ids_are_nnviz_errors(manager):
    with pytest.raises(NnvizError):
        manager.get("nope")
    with pytest.raises(NnvizError):
        manager.cancel("nope")


def test_a_killed_worker_fails_its_job_and_the_pool_recovers(manager, root):
    job = manager.submit(long(seed=11))
    run_id = wait_until(lambda: manager.get(job.job_id).run_id)
    store = RunStore(root)
    pid = store.load(run_id).record.pid
    os.kill(pid, signal.SIGKILL)
    failed = manager.wait(job.job_id, WAIT)
    assert failed.state == "failed" and failed.status_detail == WORKER_DIED
    run = store.load(run_id)
    assert run.status == "failed" and run.n_snapshots >= 1  # what it recorded is kept
    after = manager.wait(manager.submit(tiny(seed=12)).job_id, WAIT)
    assert after.state == "done"
    assert store.load(after.run_id).record.pid != pid


def test_shutdown_cancels_queued_and_running_jobs(tmp_path):
    m = JobManager(tmp_path, max_concurrent=1, threads_per_job=1)
    running, queued = m.submit(long(seed=13)), m.submit(long(seed=14))
    wait_until(lambda: m.get(running.job_id).run_id)
    m.shutdown()
    assert m.closed
    assert m.get(queued.job_id).state == "cancelled"
    stopped = m.get(running.job_id)
    assert stopped.state == "cancelled"
    assert RunStore(tmp_path).load(stopped.run_id).status == "cancelled"
    with pytest.raises(NnvizError):
        m.submit(tiny())


EXIT_SCRIPT = """
import sys, time
from nnviz.config import RunConfig
from ui.services.jobs import JobManager
if __name__ == "__main__":
    m = JobManager(sys.argv[1], max_concurrent=1, threads_per_job=1)
    job = m.submit(RunConfig.from_dict({cfg!r}))
    while m.get(job.job_id).run_id is None:
        time.sleep(0.05)
    print(m.get(job.job_id).run_id, flush=True)
    # leave without shutdown(): the exit hook must stop the job instead of waiting for it
"""


def test_interpreter_exit_stops_running_jobs_instead_of_waiting(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "leave.py"
    script.write_text(EXIT_SCRIPT.format(cfg={**LONG, "seed": 15}))
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(script), str(root)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[-1]
    assert time.monotonic() - start < 60  # the long run alone would take minutes
    assert RunStore(root).load(run_id).status == "cancelled"
