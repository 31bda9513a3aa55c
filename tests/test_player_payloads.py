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
    (found,) = [c for c in at.get("component_instance")
                if "epoch_player" in c.proto.component_name]  # not the sidebar's prewarm
    return json.loads(found.proto.json_args)


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
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0], "epoch": "2"})
    at.run()
    key, _, _ = sent(at)
    seq = args_of(at)["start_seq"]
    for view in ("Health", "Tables"):
        at.segmented_control(key="explore_mode").set_value(view).run()
        assert not at.exception
        assert sent(at) == (key, False, True), view  # hidden, same frame, nothing resent
        at.segmented_control(key="explore_mode").set_value("This epoch").run()
        assert sent(at) == (key, False, False), view
        assert args_of(at)["start_seq"] == seq  # the snapshot did not change: not moved
    # All epochs is another payload of the same frame, at the same snapshot
    at.segmented_control(key="explore_mode").set_value("All epochs").run()
    all_key, with_payload, hidden = sent(at)
    assert all_key.startswith("all|") and with_payload and not hidden
    assert args_of(at)["start"] == 2
    at.segmented_control(key="explore_mode").set_value("This epoch").run()
    assert sent(at) == (key, False, False)
    # the other view's scrubber moves the snapshot: the player follows when shown again
    at.segmented_control(key="explore_mode").set_value("Health").run()
    at.select_slider(key="explore_slider").set_value(0).run()
    at.segmented_control(key="explore_mode").set_value("This epoch").run()
    args = args_of(at)
    assert args["start"] == 0 and args["start_seq"] > seq and not args["payload"]


def test_compare_keeps_the_player_mounted_behind_health(runs):
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.query_params.update({"run": runs[0], "run_b": runs[1]})
    at.run()
    assert not at.exception
    key, with_payload, hidden = sent(at)
    assert key.startswith("compare|") and with_payload and not hidden
    at.segmented_control(key="compare_mode").set_value("Health").run()
    assert not at.exception
    assert sent(at) == (key, False, True)
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
