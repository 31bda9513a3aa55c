"""The Home, Train and Runs pages under Streamlit's AppTest, with real background jobs."""

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.presets import PRESETS
from nnviz.store.runs import RunStore
from tests.fixtures.explore import player_instances
from ui.text import unescape

APP = "../app.py"
TIMEOUT = 60
TINY = dict(model="mlp", dataset="moons", n_samples=200, batch_size=50, epochs=1, depth=2,
            width=8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A runs folder holding one tiny finished run (trained once for the whole module)."""
    root = tmp_path_factory.mktemp("seeded-runs")
    store = RunStore(root)
    run_id = train(RunConfig.from_dict({**TINY, "seed": 3}), store).run_id
    return root, run_id


@pytest.fixture(scope="module")
def app_runs(trained):
    """One runs folder (and so one job manager) shared by the Home and Train tests."""
    root, run_id = trained
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNVIZ_RUNS_DIR", str(root))
        yield root, run_id
    from ui.state import _manager

    _manager.clear(str(root.resolve()))  # this folder's manager only: its workers stop


@pytest.fixture()
def fresh_runs(trained, tmp_path, monkeypatch):
    """A runs folder of its own with a copy of the tiny run (for tests that change runs)."""
    root, run_id = trained
    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copytree(root / run_id, folder / run_id)
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(folder))
    return folder, run_id


def open_page(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page:
        if query:
            at.query_params.update(query)
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def manager():
    from ui.state import job_manager

    return job_manager()


# --- Home ---------------------------------------------------------------------------------


def test_home_shows_every_lesson_and_the_recent_runs(app_runs):
    _, run_id = app_runs
    at = open_page()
    keys = {b.key for b in at.button}
    assert {f"home_preset_{name}" for name in PRESETS} <= keys
    text = " ".join(str(m.value) for m in at.markdown)
    assert "kaiming_uniform_(a=√5)" in text and "0.00902" in text  # the corrected fact
    labels = [unescape(m.value) for m in at.markdown] + \
        [unescape(p.proto.label) for p in at.get("page_link")]
    assert any("mlp · default · moons · seed 3" in str(label) for label in labels)


def test_a_lesson_click_submits_its_job_and_remembers_it(app_runs):
    from ui.state import JOB_KEY

    at = open_page()
    at.button(key="home_preset_symmetry").click().run()
    job_id = at.session_state[JOB_KEY]
    job = manager().get(job_id)
    try:
        assert job.config == PRESETS["symmetry"].config()
    finally:
        manager().cancel(job_id)


@pytest.mark.parametrize("page", [None, "pages/1_Train.py", "pages/4_Runs.py"])
def test_every_page_carries_the_hidden_plotly_prewarm_with_the_players_url(app_runs, page):
    import json

    from ui import player, prewarm

    at = open_page(page)
    (frame,) = [c for c in at.sidebar.get("component_instance")
                if c.proto.component_name.endswith("plotly_prewarm")]
    src = json.loads(frame.proto.json_args)["src"]
    assert src == f"../{player.component_name()}/{player.PLOTLY_SRC}"
    assert (player._HERE / "player" / player.PLOTLY_SRC).is_file()  # what that URL serves
    # and what the player's own page preloads (the same URL: compiled once for both)
    index = (player._HERE / "player" / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="preload" href="{player.PLOTLY_SRC}" as="script">' in index
    assert any(f".st-key-{prewarm.KEY} {{ display: none; }}" in h.proto.body
               for h in at.get("html"))  # out of the layout


def test_explore_waits_in_its_own_run_for_a_running_jobs_first_snapshot(app_runs,
                                                                         monkeypatch):
    """A lesson click hands Explore a job that has just started: Explore waits for its init
    snapshot in that same run and draws the player, instead of drawing "Training" and polling
    for it (a poll interval and a second run of the page later)."""
    from ui.explore import jobs as explore_jobs
    from ui.state import JOB_KEY

    monkeypatch.setattr(explore_jobs, "FIRST_WAIT_S", 60.0)  # no machine's load makes it miss
    at = open_page()
    warm = manager().submit(RunConfig.from_dict({**TINY, "seed": 11}))
    assert manager().wait(warm.job_id, 90).state == "done"  # the worker is warm now
    # its data (3,000 images) take a few tenths of a second to draw before the init snapshot
    job = manager().submit(RunConfig.from_dict(dict(model="simple_cnn", dataset="shapes32",
                                                    n_samples=3000, epochs=1, seed=12)))
    try:
        assert job.state == "running" and job.run_id is None
        at.session_state[JOB_KEY] = job.job_id
        at.switch_page("pages/2_Explore.py").run()
        assert not at.exception, at.exception
        assert not [i for i in at.info if "Training this run" in str(i.value)]
        (player,) = player_instances(at)
        run_id = manager().get(job.job_id).run_id
        assert run_id and run_id in player.proto.json_args
    finally:
        manager().cancel(job.job_id)


# --- Train --------------------------------------------------------------------------------


def test_train_page_shows_the_form_devices_and_buttons(app_runs):
    at = open_page("pages/1_Train.py")
    selects = {s.key: s for s in at.sidebar.selectbox}
    assert {"train_model", "train_init", "train_bias_init", "train_dataset", "train_optimizer",
            "train_scheduler", "train_loss", "train_device"} <= set(selects)
    assert selects["train_model"].value == "simple_cnn"
    assert selects["train_device"].options[0] == "auto"
    assert "cpu" in selects["train_device"].options
    # simple_cnn has no depth / width / activation: they are hidden
    numbers = {n.key for n in at.sidebar.number_input}
    assert "train_depth" not in numbers and "train_lr" in numbers
    assert not any(s.key == "train_activation" for s in at.sidebar.selectbox)
    assert at.button(key="train_start").disabled is False
    assert at.button(key="train_cancel").disabled is True
    assert any("Devices on this server: " in c.value for c in at.caption)
    # choosing a deep model shows its options, and the data sets it can read
    at.sidebar.selectbox(key="train_model").set_value("cnn").run()
    numbers = {n.key: n for n in at.sidebar.number_input}
    assert numbers["train_depth"].max == 4 and numbers["train_depth"].value == 3
    assert "moons" not in at.sidebar.selectbox(key="train_dataset").options


def test_submitting_tiny_settings_creates_a_job_that_trains(app_runs):
    root, _ = app_runs
    at = open_page("pages/1_Train.py")
    at.sidebar.selectbox(key="train_model").set_value("mlp").run()
    at.sidebar.selectbox(key="train_dataset").set_value("moons").run()
    for key, value in (("train_n_samples", 200), ("train_epochs", 1), ("train_width", 8),
                       ("train_depth", 2), ("train_seed", 11)):
        at.sidebar.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert at.query_params["seed"] == "11" and at.query_params["model"] == "mlp"  # URL = form
    at.button(key="train_start").click().run()
    assert not at.exception
    job_id = at.session_state["train_job_id"]
    assert at.session_state["nnviz_job_id"] == job_id
    job = manager().wait(job_id, 90)
    assert job.state == "done", job.status_detail
    assert job.config == RunConfig.from_dict({**TINY, "seed": 11, "batch_size": 64})
    assert RunStore(root).load(job.run_id).status == "completed"
    at.run()
    assert any(job.run_id in unescape(s.value) for s in at.success)
    # the same settings again open the finished run instead of training
    at.button(key="train_start").click().run()
    again = manager().get(at.session_state["train_job_id"])
    assert again.reused and again.run_id == job.run_id


def test_bad_query_params_show_warnings_and_fall_back_to_defaults(app_runs):
    at = open_page("pages/1_Train.py", {"lr": "fast", "seed": "7", "colour": "red",
                                        "epochs": "99999"})
    warnings = " ".join(unescape(w.value) for w in at.warning)
    assert "lr='fast'" in warnings and "'colour'" in warnings and "epochs='99999'" in warnings
    assert at.sidebar.number_input(key="train_lr").value == RunConfig().lr
    assert at.sidebar.number_input(key="train_epochs").value == RunConfig().epochs
    assert at.sidebar.number_input(key="train_seed").value == 7  # the good value is kept
    assert at.query_params.get("colour") is None  # the URL now shows the settings in use


def test_a_lesson_link_fills_the_train_form(app_runs):
    at = open_page("pages/1_Train.py", {"preset": "xavier_deep_relu"})
    assert not at.warning
    assert at.sidebar.selectbox(key="train_model").value == "mlp"
    assert at.sidebar.number_input(key="train_depth").value == 30
    assert at.sidebar.selectbox(key="train_init").value == "xavier_normal"


def test_form_edits_and_the_job_survive_a_page_switch(app_runs):
    at = open_page("pages/1_Train.py")
    at.sidebar.selectbox(key="train_model").set_value("mlp").run()
    at.sidebar.number_input(key="train_depth").set_value(5).run()
    at.sidebar.number_input(key="train_lr").set_value(0.05).run()
    at.session_state["train_job_id"] = "kept-job-id"
    at.switch_page("pages/4_Runs.py").run()
    assert not at.exception
    at.query_params.clear()  # the sidebar link back to Train carries no settings
    at.switch_page("pages/1_Train.py").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="train_model").value == "mlp"
    assert at.sidebar.number_input(key="train_depth").value == 5
    assert at.sidebar.number_input(key="train_lr").value == 0.05
    assert at.query_params["depth"] == "5"
    # an unknown job id (say, the server restarted) is forgotten quietly
    assert at.session_state["train_job_id"] is None and not at.error


# --- Runs ---------------------------------------------------------------------------------


def test_runs_lists_the_run_and_delete_asks_for_confirmation(fresh_runs):
    root, run_id = fresh_runs
    at = open_page("pages/4_Runs.py")
    at.session_state["nnviz_admin"] = True  # a run no session made: the teacher deletes it
    at.run()
    table = at.dataframe[0].value
    assert list(table["run"]) == [run_id]
    assert table.loc[0, "status"] == "completed" and table.loc[0, "epochs"] == "1/1"
    assert at.selectbox(key="runs_pick").value == run_id

    at.button(key="runs_delete").click().run()
    assert any("cannot be undone" in unescape(w.value) for w in at.warning)
    assert (root / run_id).is_dir()  # nothing deleted yet
    at.button(key="runs_delete_no").click().run()
    assert (root / run_id).is_dir() and not any("cannot be undone" in w.value
                                                for w in at.warning)

    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception
    assert not (root / run_id).exists()
    assert any(f"Deleted run {run_id}" in unescape(s.value) for s in at.success)
    assert RunStore(root).list_runs() == ([], [])


def test_a_bad_upload_shows_an_error_and_changes_nothing(fresh_runs):
    root, run_id = fresh_runs
    before = sorted(p.name for p in root.iterdir())
    at = open_page("pages/4_Runs.py")
    at.file_uploader(key="runs_upload").upload("run.zip", b"this is not a zip",
                                               "application/zip").run()
    assert not at.exception
    assert any("not a zip file" in unescape(e.value) for e in at.error)
    assert sorted(p.name for p in root.iterdir()) == before


def test_a_good_upload_adds_the_run(fresh_runs):
    root, run_id = fresh_runs
    data = RunStore(root).export_zip(run_id)
    at = open_page("pages/4_Runs.py")
    at.file_uploader(key="runs_upload").upload(f"{run_id}.zip", data, "application/zip").run()
    assert not at.exception and not at.error
    rows, _ = RunStore(root).list_runs()
    assert len(rows) == 2
    assert any("Imported run" in unescape(s.value) for s in at.success)
    at.run()  # the same upload is not imported twice
    assert len(RunStore(root).list_runs()[0]) == 2


def test_unreadable_run_folders_are_listed(fresh_runs):
    root, _ = fresh_runs
    (root / "broken-run").mkdir()
    (root / "broken-run" / "run.json").write_text("{not json")
    at = open_page("pages/4_Runs.py")
    assert not any("broken-run" in t.value for t in at.text)  # folder names: the teacher's
    at.session_state["nnviz_admin"] = True
    at.run()
    assert any("broken-run — damaged:" in t.value for t in at.text)
    assert len(at.dataframe[0].value) == 1


def test_runs_page_with_no_runs_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(tmp_path / "empty"))
    at = open_page("pages/4_Runs.py")
    assert any("No runs yet" in unescape(i.value) for i in at.info)
    assert not at.dataframe

