"""The tuning-guide page in AppTest: every step's "Try it" trains tiny runs and draws its chart."""

from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from nnviz.analysis import tuning

TIMEOUT = 60
# Chart kinds (figure layout.meta.kind) each step draws once its sweep is done.
STEP_KINDS = {
    1: ["tuning_curves_val_loss", "tuning_layer_std"],
    2: ["tuning_batch"],
    3: ["tuning_early_stopping"],
    4: ["tuning_curves_val_loss"],
    5: ["tuning_structure"],
    6: ["tuning_loss_classification", "tuning_loss_regression"],
    7: ["tuning_curves_val_loss", "tuning_activation_health"],
    8: ["tuning_regularization"],
}


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    """One runs folder (and so one job manager) for the module; tiny runs by default."""
    root = tmp_path_factory.mktemp("tuning-app-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNVIZ_RUNS_DIR", str(root))
        mp.setenv(tuning.TINY_ENV, "1")
        mp.setenv("NNVIZ_MAX_QUEUED", "100")  # one session runs every sweep at once here
        yield root
        from ui.state import _manager

        _manager.clear()  # shuts the job manager's worker processes down


def _open_page() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/5_Tuning_guide.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> dict[str, str]:
    """Chart key suffix (tune_fig_<step>_<i>, ...) -> figure kind."""
    out = {}
    for chart in at.get("plotly_chart"):
        kind = json.loads(chart.proto.spec)["layout"]["meta"]["kind"]
        out[chart.proto.id.rsplit("-", 1)[-1]] = kind
    return out


def _wait_for(at: AppTest, done, seconds: float = 120.0) -> None:
    """Rerun the page (as the polling fragment would) until ``done(at)`` or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if done(at) or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def test_page_has_every_step_with_its_anchor(app_env):
    at = _open_page()
    anchors = {h.proto.anchor for h in at.header}
    assert {f"step-{n}" for n in tuning.STEPS} <= anchors
    assert any("| Dropout (*regularization*) |" in m.value for m in at.markdown)
    assert any("The tutorial vs. the fact." in i.value for i in at.info)
    assert at.segmented_control(key="tune_size").value == "tiny"
    assert "tuning_schedulers" in _charts(at).values()  # drawn before any training


def test_every_step_runs_and_draws_its_chart(app_env):
    at = _open_page()
    for n in tuning.STEPS:
        at.button(key=f"tune_try_{n}").click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert any(p.proto.text for p in at.get("progress"))  # progress shows while they train

    def all_drawn(at: AppTest) -> bool:
        return all(f"tune_fig_{n}_{i}" in _charts(at) for n, kinds in STEP_KINDS.items()
                   for i in range(len(kinds)))

    _wait_for(at, all_drawn)
    charts = _charts(at)
    for n, kinds in STEP_KINDS.items():
        assert [charts.get(f"tune_fig_{n}_{i}") for i in range(len(kinds))] == kinds
    findings = [m.value for m in at.markdown if m.value.startswith("**What this sweep shows.**")]
    assert len(findings) == len(tuning.STEPS)
    assert not at.error, [e.value for e in at.error]
    links = [link.proto.page for link in at.get("page_link")
             if link.proto.label != "Explore"]  # not the sidebar's page list
    n_runs = sum(len(tuning.step_configs(n, tuning.tuning_base(), "tiny")) for n in tuning.STEPS)
    assert sum("Explore" in page for page in links) == n_runs

    # The LR range test, on demand.
    at.button(key="tune_lr_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "tuning_lr_find" in _charts(at).values()
    assert any("Suggested LR" in m.value or "No suggestion" in m.value for m in at.markdown)


def test_a_second_session_reuses_the_finished_runs(app_env):
    first = _open_page()
    first.button(key="tune_try_2").click().run()
    _wait_for(first, lambda at: "tune_fig_2_0" in _charts(at), seconds=60)
    second = _open_page()  # another student opening the same step
    second.button(key="tune_try_2").click().run()
    _wait_for(second, lambda at: "tune_fig_2_0" in _charts(at), seconds=30)
    assert any(c.value.startswith(":material/recycling: 2 of 2 run(s) were trained before")
               for c in second.caption)


def test_cancel_stops_a_sweep(app_env):
    at = _open_page()
    at.segmented_control(key="tune_size").set_value("small").run()
    at.button(key="tune_try_8").click().run()  # five runs of 30 epochs: most wait in the queue
    cancel = at.button(key="tune_cancel_8")
    assert not cancel.disabled
    cancel.click().run()

    def finished(at: AppTest) -> bool:
        return at.button(key="tune_cancel_8").disabled

    _wait_for(at, finished, seconds=60)
    assert any("cancelled" in w.value for w in at.warning)
    assert not at.exception


def test_page_runs_on_its_own(app_env):
    """Outside the multipage app (no Train / Explore registered) the page still renders."""
    at = AppTest.from_file("../pages/5_Tuning_guide.py", default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert {f"step-{n}" for n in tuning.STEPS} <= {h.proto.anchor for h in at.header}
    assert any("(Train?" in m.value for m in at.markdown)
    at.button(key="tune_try_2").click().run()
    _wait_for(at, lambda at: "tune_fig_2_0" in _charts(at), seconds=60)
    links = [c.value for c in at.caption if "on the Explore page" in c.value]
    assert len(links) == 2  # no page to link to: the runs are named, one per run


def test_settings_survive_a_page_switch(app_env):
    at = _open_page()
    at.selectbox(key="tune_dataset").set_value("moons").run()
    at.number_input(key="tune_seed").set_value(7).run()
    at.switch_page("pages/1_Train.py").run()
    at.switch_page("pages/5_Tuning_guide.py").run()
    assert at.selectbox(key="tune_dataset").value == "moons"
    assert at.number_input(key="tune_seed").value == 7
    assert any("moons" in c.value and "seed 7" in c.value for c in at.caption)
