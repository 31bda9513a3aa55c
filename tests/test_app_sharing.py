"""Two browser sessions on one server (AppTest): each owns its work, the teacher owns all."""

import pytest
from streamlit.testing.v1 import AppTest

from nnviz.config import RunConfig
from nnviz.store.runs import RunStore

APP = "../app.py"
TIMEOUT = 60
TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=50, epochs=1, depth=2,
            width=8)
LONG = dict(model="mlp", dataset="moons", n_samples=2000, batch_size=1, epochs=50, depth=2,
            width=8)
TOKEN = "projector-7f3a"


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """A runs folder (so a job manager) of its own, with a teacher token set."""
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(folder))
    monkeypatch.setenv("NNVIZ_ADMIN_TOKEN", TOKEN)
    yield folder
    from ui.state import _manager

    _manager.clear(str(folder.resolve()))  # this folder's manager only: its workers stop


def manager():
    from ui.state import job_manager

    return job_manager()


def session(page: str | None = None, **state) -> AppTest:
    """A new browser session (its own session state), optionally on a page."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def sid(at: AppTest) -> str:
    return at.session_state["nnviz_session_id"]


def trained_by(at: AppTest, **changes) -> str:
    """Train a tiny run as this session (through the shared job manager); its run id."""
    job = manager().submit(RunConfig.from_dict({**TINY, **changes}), owner=sid(at))
    done = manager().wait(job.job_id, 90)
    assert done.state == "done", done.status_detail
    return done.run_id


def picker_options(at: AppTest, key: str) -> str:
    """The labels of a run picker, as one string ('' when the page has none)."""
    found = [s for s in at.selectbox if s.key == key]
    return " | ".join(found[0].options) if found else ""


def test_a_session_cannot_delete_another_sessions_run(server):
    alice, bob = session(), session()
    assert sid(alice) != sid(bob)
    run_id = trained_by(alice, seed=101)

    bob.switch_page("pages/4_Runs.py").run()
    assert not bob.exception
    assert "seed 101" not in picker_options(bob, "runs_pick")   # not even listed
    assert not any(run_id in str(m.value) for m in bob.markdown)
    assert not any(str(server) in str(c.value) for c in bob.caption)  # no server path
    bob.switch_page("pages/2_Explore.py").run()                   # Explore without a link
    assert "seed 101" not in picker_options(bob, "explore_run_pick")

    alice.switch_page("pages/4_Runs.py").run()
    assert "seed 101" in picker_options(alice, "runs_pick")
    assert alice.selectbox(key="runs_pick").value == run_id
    alice.button(key="runs_delete").click().run()
    alice.button(key="runs_delete_yes").click().run()
    assert not alice.exception
    assert run_id not in RunStore(server).run_ids()


def test_a_session_opening_a_link_sees_the_run_read_only(server):
    alice, bob = session(), session()
    run_id = trained_by(alice, seed=102)
    bob.query_params["run"] = run_id
    bob.switch_page("pages/2_Explore.py").run()
    assert not bob.exception
    assert "seed 102" in picker_options(bob, "explore_run_pick")  # shared by link: shown
    bob.switch_page("pages/4_Runs.py").run()
    assert bob.selectbox(key="runs_pick").value == run_id
    assert not [b for b in bob.button if b.key in ("runs_delete", "runs_stop")]
    assert any("read-only" in str(c.value) for c in bob.caption)
    assert run_id in RunStore(server).run_ids()


def test_a_session_cannot_cancel_another_sessions_training(server):
    alice = session()
    job = manager().submit(RunConfig.from_dict({**LONG, "seed": 103}), owner=sid(alice))
    try:
        # Bob opened the same link: his page follows Alice's job, but cannot cancel it
        bob = session("pages/1_Train.py", train_job_id=job.job_id)
        assert bob.button(key="train_cancel").disabled is True
        assert manager().get(job.job_id).active
        table = bob.dataframe[0].value
        assert set(table["run"]) == {""}                # Alice's run name is not shown

        alice.session_state["train_job_id"] = job.job_id
        alice.switch_page("pages/1_Train.py").run()
        assert alice.button(key="train_cancel").disabled is False
        alice.button(key="train_cancel").click().run()
        assert manager().wait(job.job_id, 90).state == "cancelled"
    finally:
        if manager().get(job.job_id).active:
            manager().cancel(job.job_id)


def test_the_teacher_token_unlocks_everything_and_a_wrong_one_is_refused(server):
    alice, teacher = session(), session()
    run_id = trained_by(alice, seed=104)
    teacher.switch_page("pages/4_Runs.py").run()
    assert "seed 104" not in picker_options(teacher, "runs_pick")

    teacher.text_input(key="own_token").input("projector-7f3b")
    next(b for b in teacher.button if b.label == "Unlock").click().run()
    assert any("not the teacher token" in str(e.value) for e in teacher.error)
    assert not (teacher.session_state["nnviz_admin"] if "nnviz_admin" in teacher.session_state
                else False)
    assert "seed 104" not in picker_options(teacher, "runs_pick")

    teacher.text_input(key="own_token").input(TOKEN)
    next(b for b in teacher.button if b.label == "Unlock").click().run()
    assert not teacher.exception
    assert teacher.session_state["nnviz_admin"] is True
    assert "seed 104" in picker_options(teacher, "runs_pick")
    teacher.selectbox(key="runs_pick").set_value(run_id).run()
    teacher.button(key="runs_delete").click().run()
    teacher.button(key="runs_delete_yes").click().run()
    assert not teacher.exception
    assert run_id not in RunStore(server).run_ids()


def test_a_hosted_app_warms_the_lessons_on_first_start_and_home_shows_it(server, monkeypatch):
    import time

    from nnviz.presets import PRESETS
    from ui.services import jobs

    monkeypatch.setattr(jobs, "PRESETS", {"symmetry": PRESETS["symmetry"]})  # one cheap lesson
    monkeypatch.setenv("NNVIZ_WARM", "1")
    home = session()
    deadline = time.monotonic() + 90
    while manager().lesson_progress() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the warm-up starts in the background on the first visit
    home.run()
    progress = manager().lesson_progress()
    if not progress.finished:  # still training: Home says how far it got
        texts = [p.proto.text for p in home.get("progress")]
        assert any("Preparing the lessons for the class: 0 of 1 ready" in t for t in texts)
    while not manager().lesson_progress().finished and time.monotonic() < deadline:
        time.sleep(0.2)
    assert manager().lesson_progress().ready == 1
    home.run()
    assert not any("Preparing the lessons" in p.proto.text for p in home.get("progress"))
    (run_id,) = RunStore(server).run_ids()
    assert manager().run_owner(run_id) is None  # the class's lesson, nobody's to delete


def test_polling_pace_follows_the_job_and_stops_when_nothing_is_pending():
    from ui.runs import BACK_OFF_AFTER_S, POLL_FAST_S, POLL_SLOW_S, poll_every
    from ui.services.jobs import JobInfo

    cfg = RunConfig.from_dict(TINY)
    job = JobInfo("j", cfg, "h", "running", submitted=100.0, started=100.0)
    assert poll_every(None) is None
    assert poll_every(JobInfo("j", cfg, "h", "done")) is None
    assert poll_every(JobInfo("j", cfg, "h", "queued", submitted=100.0), now=101.0) == POLL_SLOW_S
    assert poll_every(job, now=101.0) == POLL_FAST_S
    assert poll_every(job, now=100.0 + BACK_OFF_AFTER_S + 1) == POLL_SLOW_S


def test_the_train_page_polls_only_the_sessions_own_training(server):
    alice, bob = session("pages/1_Train.py"), session("pages/1_Train.py")
    job = manager().submit(RunConfig.from_dict({**LONG, "seed": 77}), owner=sid(alice))
    try:
        alice.session_state["train_job_id"] = job.job_id
        alice.run()
        bob.run()
        assert not alice.exception and not bob.exception
        # Alice's page refreshes itself (no button); Bob has nothing pending: a button, no timer
        assert not [b for b in alice.button if b.key == "train_refresh"]
        assert [b for b in bob.button if b.key == "train_refresh"]
    finally:
        manager().cancel(job.job_id)
        manager().wait(job.job_id, 60)
