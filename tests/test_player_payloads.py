"""The epoch player's payloads cross the wire once (AppTest): a layer seen before is sent as its
key only, a frame that lacks one gets it again, and the player stays mounted (hidden) behind
Explore's and Compare's other views (Explore's All epochs is a payload of the same frame).
The browser side is tests/browser/test_e2e.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore
from tests.browser.harness import ROOT
from tests.fixtures.explore import pick_view, player_args

EXPLORE = "../pages/2_Explore.py"
COMPARE = "../pages/3_Compare.py"
TIMEOUT = 60


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small MLP runs of one seed and two initializers, in $NNVIZ_RUNS_DIR."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    made = [train(RunConfig(model="mlp", dataset="moons", depth=2, width=8, n_samples=200,
                            epochs=2, batch_size=64, probe_size=32, seed=3, init=init),
                  store).run_id for init in ("default", "xavier_uniform")]
    mp = pytest.MonkeyPatch()
    mp.setenv("NNVIZ_RUNS_DIR", str(root))
    yield made
    mp.undo()


def args_of(at: AppTest) -> dict:
    return player_args(at)


def sent(at: AppTest) -> tuple[str, bool, bool]:
    """(payload key, whether the payload itself was sent, hidden) of the player drawn."""
    args = args_of(at)
    return args["payload_key"], bool(args["payload"]), bool(args["hidden"])


def report(at: AppTest, prefix: str, **value) -> AppTest:
    """What the player's frame sends (a drag, a payload it lacks, a new frame)."""
    at.session_state[f"{prefix}_player"] = {"seq": time.monotonic_ns(), "index": None,
                                            "have": [], "need": None, **value}
    return at.run()


def test_a_layer_seen_before_is_sent_as_its_key_only(runs):
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0], "epoch": "1"})
    at.run()
    assert not at.exception
    layers = at.selectbox(key="explore_layer").options
    assert len(layers) >= 2
    first, with_payload, hidden = sent(at)
    assert with_payload and not hidden
    at.selectbox(key="explore_layer").set_value(layers[1]).run()
    second, with_payload, _ = sent(at)
    assert second != first and with_payload  # a new layer: its payload, once
    for _ in range(2):
        at.selectbox(key="explore_layer").set_value(layers[0]).run()
        assert sent(at) == (first, False, False)  # seen before: only its key
        at.selectbox(key="explore_layer").set_value(layers[1]).run()
        assert sent(at) == (second, False, False)
    at.run()  # any other rerun (a report, a widget) resends nothing either
    assert sent(at) == (second, False, False)


def test_a_frame_that_lacks_a_payload_gets_it_again(runs):
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0]})
    at.run()
    key, with_payload, _ = sent(at)
    assert with_payload
    at.run()
    assert sent(at) == (key, False, False)
    # the frame let it go (or is a new frame, after the page was opened again): it asks
    report(at, "explore", instance="frame-2", key=key, need=key)
    assert sent(at) == (key, True, False)
    at.run()
    assert sent(at) == (key, False, False)
    # a new frame says what it holds: nothing, so the next payload is sent whole
    report(at, "explore", instance="frame-3", key=key, index=0)
    assert sent(at) == (key, True, False)


def test_explore_keeps_the_player_mounted_behind_other_views(runs):
    """The frame (with its view control) is drawn in every view: for Health and Tables it
    shows only the control, keeps its payloads and is sent none; Python's scrubber there moves
    its snapshot at once, so a switch back in the browser shows the right one."""
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0], "epoch": "2"})
    at.run()
    key, _, _ = sent(at)
    seq, view_seq = args_of(at)["start_seq"], args_of(at)["views"]["seq"]
    for view in ("Health", "Tables"):
        pick_view(at, view)
        assert sent(at) == ("", False, True), view  # the control only, nothing sent
        assert args_of(at)["views"]["view"] == view
        pick_view(at, "This epoch")
        assert sent(at) == (key, False, False), view
        assert args_of(at)["start_seq"] == seq  # the snapshot did not change: not moved
    assert args_of(at)["views"]["seq"] == view_seq  # the frame's own picks: Python follows
    # All epochs is another payload of the same frame, at the same snapshot
    pick_view(at, "All epochs")
    all_key, with_payload, hidden = sent(at)
    assert all_key.startswith("all|") and with_payload and not hidden
    assert args_of(at)["start"] == 2 and args_of(at)["start_seq"] == seq
    pick_view(at, "This epoch")
    assert sent(at) == (key, False, False)
    # Health's scrubber moves the snapshot: the frame, out of sight, is moved at once
    pick_view(at, "Health")
    at.select_slider(key="explore_slider").set_value(0).run()
    args = args_of(at)
    assert args["start"] == 0 and args["start_seq"] > seq and not args["payload"]
    pick_view(at, "This epoch")
    assert args_of(at)["start_seq"] == args["start_seq"]  # and not moved again
    assert at.session_state["explore_index"] == 0


def test_the_frame_gets_the_other_chart_view_ahead_of_a_switch(runs):
    """Once its charts are drawn, the frame asks for the other chart view's payload: the rerun
    sends it beside (``extra``), not instead of, the one shown; a switch to it then sends
    nothing, and a switch's rerun leaves the frame's snapshot and view alone."""
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0], "epoch": "1"})
    at.run()
    args = args_of(at)
    key, options = args["payload_key"], {o["name"]: o for o in args["views"]["options"]}
    all_key = options["All epochs"]["key"]
    assert args["views"]["prefetch"] is True and args["extra"] == {}  # a finished run
    report(at, "explore", key=key, index=1, view="This epoch", need=all_key, have=[key])
    args = args_of(at)
    assert args["payload_key"] == key and not args["payload"]
    assert list(args["extra"]) == [all_key]
    assert json.loads(args["extra"][all_key])["snapshots"] == [0, 1, 2]
    # an answer the frame never got (a rerun stopped by the next, renders merged): its next
    # report says what it holds, and what it shows is sent again
    report(at, "explore", key=key, index=1, view="This epoch", have=[all_key])
    args = args_of(at)
    assert args["payload_key"] == key and args["payload"]
    at.run()
    assert args_of(at)["extra"] == {}  # sent once
    seq, view_seq = args_of(at)["start_seq"], args_of(at)["views"]["seq"]
    pick_view(at, "All epochs")
    args = args_of(at)
    assert (args["payload_key"], args["payload"], args["extra"]) == (all_key, "", {})
    assert (args["start_seq"], args["views"]["seq"]) == (seq, view_seq)
    assert at.query_params["epoch"] == "1"


def test_python_moves_the_frames_view_only_when_the_view_was_not_its_pick(runs):
    """A view set by Python (a session that comes back to the page, a test) is sent with a new
    ``views.seq``: a new frame, or one that shows another view, follows it; a stale rerun (the
    frame's pick not heard yet) sends the old seq, which the frame ignores."""
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0]})
    at.run()
    view_seq = args_of(at)["views"]["seq"]
    at.run()
    assert args_of(at)["views"]["seq"] == view_seq
    at.session_state["explore_view"] = "Tables"
    at.run()
    args = args_of(at)
    assert args["views"]["view"] == "Tables" and args["views"]["seq"] == view_seq + 1
    assert args["hidden"] and at.dataframe  # Python draws Tables below the frame
    pick_view(at, "This epoch")
    assert args_of(at)["views"]["seq"] == view_seq + 1


def test_the_chart_options_keep_their_choices_through_other_views(runs):
    """The chart options are drawn in every view (usable in This epoch only), so their choices
    and the This epoch payload they name survive a trip to another view."""
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0]})
    at.run()
    at.segmented_control(key="explore_bins").set_value("this snapshot").run()
    key = args_of(at)["payload_key"]
    assert "|True|" in key
    for view in ("All epochs", "Health", "Tables"):
        pick_view(at, view)
        assert at.segmented_control(key="explore_bins").value == "this snapshot", view
        assert {o["name"]: o for o in args_of(at)["views"]["options"]}["This epoch"]["key"] == key
    pick_view(at, "This epoch")
    assert sent(at) == (key, False, False)


def test_compare_keeps_the_player_mounted_behind_health(runs):
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0], "run_b": runs[1]})
    at.run()
    assert not at.exception
    key, with_payload, hidden = sent(at)
    assert key.startswith("compare|") and with_payload and not hidden
    spec = args_of(at)["views"]
    assert spec["control"] is False and spec["view"] == "This epoch"  # the page's own control
    at.segmented_control(key="compare_mode").set_value("Health").run()
    assert not at.exception
    args = args_of(at)  # out of sight, naming no payload: the frame keeps the ones it holds
    assert sent(at) == ("", False, True) and args["views"]["seq"] == spec["seq"] + 1
    assert args["views"]["view"] == "Health" and args["views"]["ahead"] == []
    assert {o["name"]: o for o in args["views"]["options"]}["This epoch"]["key"] == key
    at.segmented_control(key="compare_mode").set_value("Side by side").run()
    assert sent(at) == (key, False, False)


def test_the_app_shell_and_the_run_store_load_without_torch():
    """Home draws its title and lessons before torch is imported (a cold server's first page);
    reading a run's tensors imports it when needed."""
    code = ("import sys; import ui.shell, ui.links, ui.ownership, ui.state, ui.text, "
            "ui.services.urlstate, nnviz.presets, nnviz.store.runs; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
