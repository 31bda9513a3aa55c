"""One server, many sessions: ownership, the teacher token, the per-session queue limit, wait
estimates, the status word, CPU sizing from cgroups, idle workers and the lesson warm-up."""


import pytest

from nnviz.config import RunConfig, config_hash
from nnviz.errors import NnvizError
from nnviz.presets import PRESETS
from nnviz.store.runs import RunStore
from tests.fixtures.waiting import wait_until as _wait_until
from ui.services import jobs as jobs_module
from ui.services.jobs import JobManager, QueueFull, available_cpus, cgroup_cpu_quota
from ui.services.sessions import (
    ADMIN_TOKEN_ENV,
    SERVER_RUN,
    Actor,
    NotAllowed,
    check_delete,
    configured_token,
    is_lesson,
    may_cancel,
    may_delete,
    may_list,
    token_ok,
)

TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=50, epochs=1, depth=2,
            width=8)
LONG = dict(model="mlp", dataset="moons", n_samples=2000, batch_size=1, epochs=50, depth=2,
            width=8)
DIVERGES = dict(model="mlp", dataset="moons", n_samples=200, batch_size=32, epochs=4, depth=6,
                width=16, init="too_large", optimizer="sgd", lr=50.0, momentum=0.9)
WAIT = 90.0
ALICE, BOB = Actor("alice"), Actor("bob")
TEACHER = Actor("teacher", admin=True)


def cfg(base=TINY, **changes) -> RunConfig:
    return RunConfig.from_dict({**base, **changes})


def wait_until(predicate, timeout=WAIT, every=0.05):
    return _wait_until(predicate, timeout, every)


# --- CPU sizing from a faked cgroup ------------------------------------------------------


def fake_cgroup(tmp_path, self_line: str, files: dict[str, str]):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "self-cgroup"
    proc.write_text(self_line + "\n")
    return root, proc


def test_cgroup_v2_quota_of_the_process_or_a_parent_caps_the_cpus(tmp_path):
    root, proc = fake_cgroup(tmp_path, "0::/app/worker", {
        "cpu.max": "max 100000\n",
        "app/cpu.max": "150000 100000\n",            # 1.5 CPUs on the parent
        "app/worker/cpu.max": "max 100000\n",
    })
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)
    assert available_cpus(root, proc, affinity=16) == 1
    (root / "app" / "cpu.max").write_text("400000 100000\n")
    assert available_cpus(root, proc, affinity=16) == 4
    assert available_cpus(root, proc, affinity=2) == 2   # affinity is the tighter limit
    (root / "app" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(root, proc) is None
    assert available_cpus(root, proc, affinity=16) == 16


def test_cgroup_v1_cfs_quota_and_a_missing_cgroup(tmp_path):
    root, proc = fake_cgroup(tmp_path, "4:cpu,cpuacct:/docker/abc\n0::/", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup_cpu_quota(root, proc) == pytest.approx(2.0)
    (root / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(root, proc) is None
    assert cgroup_cpu_quota(tmp_path / "nowhere", tmp_path / "no-file") is None


@pytest.mark.parametrize("quota, jobs, threads", [
    ("100000 100000", 1, 1), ("200000 100000", 1, 2), ("400000 100000", 2, 2),
    ("800000 100000", 4, 2), ("50000 100000", 1, 1),
])
def test_the_worker_count_follows_a_faked_cgroup_quota(tmp_path, monkeypatch, quota, jobs,
                                                      threads):
    monkeypatch.delenv("NNVIZ_MAX_JOBS", raising=False)
    root, proc = fake_cgroup(tmp_path, "0::/", {"cpu.max": quota})
    monkeypatch.setattr(jobs_module, "CGROUP_ROOT", root)
    monkeypatch.setattr(jobs_module, "SELF_CGROUP", proc)
    monkeypatch.setattr(jobs_module.os, "sched_getaffinity", lambda pid: set(range(32)))
    m = JobManager(tmp_path / "runs")  # no worker starts until a job or warm()
    assert (m.cpus, m.max_concurrent, m.threads_per_job) == (
        min(32, max(1, int(quota.split()[0]) // 100000)), jobs, threads)


def test_nnviz_max_jobs_overrides_the_worker_count(tmp_path, monkeypatch):
    monkeypatch.setenv("NNVIZ_MAX_JOBS", "3")
    m = JobManager(tmp_path, cpus=6)
    assert (m.max_concurrent, m.threads_per_job) == (3, 2)
    monkeypatch.setenv("NNVIZ_MAX_JOBS", "lots")  # ignored (logged), the default applies
    assert JobManager(tmp_path, cpus=6).max_concurrent == 3 // 1
    monkeypatch.setenv("NNVIZ_MAX_JOBS", "0")
    assert JobManager(tmp_path, cpus=2).max_concurrent == 1


# --- the rules --------------------------------------------------------------------------


def test_the_teacher_token_works_and_a_wrong_one_is_refused():
    assert token_ok("s3cret-token", "s3cret-token")
    assert token_ok("  s3cret-token ", "s3cret-token")     # pasted with spaces
    assert not token_ok("s3cret-tokem", "s3cret-token")
    assert not token_ok("", "s3cret-token")
    assert not token_ok(None, "s3cret-token")
    assert not token_ok("anything", None)                  # no token set: nobody is admin
    assert not token_ok("", "")


def test_the_token_comes_from_the_environment_or_the_secrets():
    assert configured_token({}, {ADMIN_TOKEN_ENV: " abc "}) == "abc"
    assert configured_token({ADMIN_TOKEN_ENV: "from-secrets"}, {}) == "from-secrets"
    assert configured_token({ADMIN_TOKEN_ENV: "s"}, {ADMIN_TOKEN_ENV: "e"}) == "e"
    assert configured_token(None, {}) is None

    class NoSecretsFile(dict):
        def get(self, key, default=None):
            raise FileNotFoundError("No secrets found")

    assert configured_token(NoSecretsFile(), {}) is None


def test_who_may_cancel_delete_and_list():
    assert may_cancel(ALICE, "alice") and not may_cancel(BOB, "alice")
    assert may_cancel(TEACHER, "alice") and may_cancel(TEACHER, None)
    assert not may_cancel(ALICE, None) and not may_cancel(Actor(None), None)
    assert may_delete(ALICE, "alice", lesson=False)
    assert not may_delete(ALICE, "alice", lesson=True)   # lessons are the class's
    assert not may_delete(BOB, "alice", lesson=False)
    assert may_delete(TEACHER, None, lesson=True)
    assert may_list(BOB, None, lesson=True) and not may_list(BOB, "alice", lesson=False)
    assert not may_list(BOB, None, lesson=False)          # nobody known: not listed
    assert may_list(BOB, SERVER_RUN, lesson=False)         # made with the CLI: everyone's
    assert not may_delete(BOB, SERVER_RUN, lesson=False)   # ... but only the teacher deletes
    with pytest.raises(NotAllowed, match="teacher"):
        check_delete(BOB, None, lesson=True)
    assert isinstance(NotAllowed("x"), NnvizError)
    assert all(is_lesson(config_hash(p.config())) for p in PRESETS.values())
    assert not is_lesson(config_hash(cfg())) and not is_lesson(None)


# --- through the job manager, with real workers -------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("sharing-runs")


@pytest.fixture(scope="module")
def manager(root):
    m = JobManager(root, max_concurrent=1, threads_per_job=1, max_active_per_session=2)
    yield m
    m.shutdown()


def test_a_session_cannot_cancel_another_sessions_job(manager, root):
    job = manager.submit(cfg(LONG, seed=21), owner="alice")
    assert job.owner == "alice"
    joined = manager.submit(cfg(LONG, seed=21), owner="bob")  # the same link: one job
    assert joined.job_id == job.job_id and joined.owner == "alice"
    with pytest.raises(NotAllowed):
        manager.cancel(job.job_id, BOB)
    run_id = wait_until(lambda: manager.get(job.job_id).run_id)
    assert manager.get(job.job_id).state == "running"    # Bob's attempt changed nothing
    assert manager.run_owner(run_id) == "alice"
    assert manager.owned_runs("alice")[0] == run_id and manager.owned_runs("bob") == []
    manager.cancel(job.job_id, ALICE)
    assert manager.wait(job.job_id, WAIT).state == "cancelled"
    assert RunStore(root).load(run_id).status == "cancelled"


def test_the_teacher_cancels_anything_and_clears_the_queue(manager):
    running = manager.submit(cfg(LONG, seed=22), owner="alice")
    queued = manager.submit(cfg(LONG, seed=23), owner="bob")
    assert manager.get(queued.job_id).state == "queued"
    with pytest.raises(NotAllowed):
        manager.clear_queue(ALICE)
    assert manager.clear_queue(TEACHER) == 1
    assert manager.get(queued.job_id).state == "cancelled"
    manager.cancel(running.job_id, TEACHER)
    assert manager.wait(running.job_id, WAIT).state == "cancelled"


def test_the_queue_limit_holds_per_session_and_a_sweep_counts_as_its_jobs(manager):
    a1 = manager.submit(cfg(LONG, seed=31), owner="alice")
    a2 = manager.submit(cfg(LONG, seed=32), owner="alice")
    try:
        with pytest.raises(QueueFull, match="2 at once"):
            manager.submit(cfg(LONG, seed=33), owner="alice")
        # joining an identical job (someone else's or one's own) costs nothing
        assert manager.submit(cfg(LONG, seed=31), owner="alice").job_id == a1.job_id
        before = len(manager.jobs())
        with pytest.raises(QueueFull, match="adds 3"):  # a sweep: all or nothing
            manager.submit_many([cfg(LONG, seed=s) for s in (34, 35, 36)], owner="bob")
        assert len(manager.jobs()) == before
        sweep = manager.submit_many([cfg(LONG, seed=s) for s in (34, 35)], owner="bob")
        assert [j.state for j in sweep] == ["queued", "queued"]
        assert [j.queue_position for j in sweep] == [2, 3]
    finally:
        for job in manager.jobs():
            if job.active:
                manager.cancel(job.job_id)
    for job in (a1, a2):
        manager.wait(job.job_id, WAIT)
    assert manager.submit(cfg(seed=37), owner="alice").state in ("queued", "running")


def test_lesson_runs_and_reused_runs_belong_to_nobody(manager, monkeypatch):
    lesson = PRESETS["symmetry"].config()
    job = manager.wait(manager.submit(lesson, owner="alice").job_id, WAIT)
    assert job.state == "done" and job.owner == "alice"
    assert manager.run_owner(job.run_id) is None          # the class's, not Alice's
    mine = manager.wait(manager.submit(cfg(seed=41), owner="alice").job_id, WAIT)
    again = manager.submit(cfg(seed=41), owner="bob")
    assert again.reused and again.run_id == mine.run_id
    assert manager.run_owner(mine.run_id) == "alice"       # reusing does not take it over


def test_a_diverged_run_says_diverged_and_queued_jobs_get_a_wait_estimate(manager):
    done = manager.wait(manager.submit(cfg(DIVERGES)).job_id, WAIT)
    assert done.state == "done" and done.run_status == "diverged"
    assert done.word == "diverged"
    reused = manager.submit(cfg(DIVERGES))
    assert reused.reused and reused.word == "diverged"
    assert manager.wait(manager.submit(cfg(seed=52)).job_id, WAIT).word == "completed"
    # the throughput of the finished jobs gives queued jobs an estimated wait
    running = manager.submit(cfg(LONG, seed=53), owner="carol")
    first = manager.submit(cfg(seed=54), owner="dave")
    second = manager.submit(cfg(seed=55), owner="erin")
    try:
        assert first.queue_position == 1 and second.queue_position == 2
        assert first.eta_s is not None and second.eta_s is not None
        assert second.eta_s > first.eta_s >= 0
    finally:
        for job in (second, first, running):
            manager.cancel(job.job_id)


def test_idle_workers_exit_and_come_back_on_demand(tmp_path):
    m = JobManager(tmp_path, max_concurrent=1, threads_per_job=1, idle_exit_s=1.0)
    try:
        assert m.wait(m.submit(cfg(seed=61)).job_id, WAIT).state == "done"
        wait_until(lambda: not m.workers_alive, timeout=30)
        assert m.wait(m.submit(cfg(seed=62)).job_id, WAIT).state == "done"
    finally:
        m.shutdown()


def test_the_worker_niceness_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(jobs_module.WORKER_NICE_ENV, raising=False)
    assert jobs_module.worker_nice() == jobs_module.WORKER_NICE == 10
    for text, nice in (("3", 3), ("0", 0), ("40", 19), ("-5", 10), ("fast", 10)):
        monkeypatch.setenv(jobs_module.WORKER_NICE_ENV, text)
        assert jobs_module.worker_nice() == nice, text


@pytest.mark.parametrize("env, expected", [(None, 10), ("3", 3)])
def test_a_started_worker_trains_at_a_lower_cpu_priority(tmp_path, monkeypatch, env, expected):
    import multiprocessing
    import os

    if env is None:
        monkeypatch.delenv(jobs_module.WORKER_NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(jobs_module.WORKER_NICE_ENV, env)
    before = set(multiprocessing.active_children())
    server_nice = os.getpriority(os.PRIO_PROCESS, 0)
    m = JobManager(tmp_path, max_concurrent=1, threads_per_job=1)
    try:
        assert m.wait(m.submit(cfg(seed=63)).job_id, WAIT).state == "done"
        workers = [p for p in multiprocessing.active_children() if p not in before]
        assert workers, "no worker process was started"
        assert {os.getpriority(os.PRIO_PROCESS, p.pid) for p in workers} == \
            {min(19, server_nice + expected)}
        assert os.getpriority(os.PRIO_PROCESS, 0) == server_nice  # the server keeps its own
    finally:
        m.shutdown()


def test_the_lesson_warm_up_queues_each_lesson_once(tmp_path, monkeypatch):
    cheap = {"symmetry": PRESETS["symmetry"]}
    monkeypatch.setattr(jobs_module, "PRESETS", cheap)
    m = JobManager(tmp_path, max_concurrent=1, threads_per_job=1)
    try:
        assert m.lesson_progress() is None
        m.warm_lessons()
        m.warm_lessons()  # a second call adds nothing
        assert len(m.jobs()) == 1
        wait_until(lambda: m.lesson_progress().finished)
        progress = m.lesson_progress()
        assert (progress.total, progress.ready, progress.failed) == (1, 1, [])
    finally:
        m.shutdown()
    again = JobManager(tmp_path, max_concurrent=1, threads_per_job=1)  # a restarted server
    try:
        again.warm_lessons()
        assert [j.reused for j in again.jobs()] == [True]
        assert len(RunStore(tmp_path).run_ids()) == 1
    finally:
        again.shutdown()


def test_nnviz_warm_twice_trains_once(tmp_path, capsys):
    from nnviz.cli.main import main

    args = ["--runs-dir", str(tmp_path), "warm", "--only", "symmetry"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "1 lesson(s) trained, 0 already there" in first
    runs = RunStore(tmp_path).run_ids()
    assert len(runs) == 1
    assert RunStore(tmp_path).load(runs[0]).config == PRESETS["symmetry"].config()
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "0 lesson(s) trained, 1 already there" in second and runs[0] in second
    assert RunStore(tmp_path).run_ids() == runs
    assert main(["--runs-dir", str(tmp_path), "warm", "--only", "nope"]) == 2
    assert "Unknown preset 'nope'" in capsys.readouterr().err
