"""The Explore and Compare pages in AppTest, on tiny runs trained once for this module."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from nnviz.analysis import stats, views
from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.figures.epoch_view import frame_of
from nnviz.figures.player import frame_figure
from nnviz.store.runs import RunStore
from tests.browser.harness import ROOT
from tests.fixtures.explore import ask_ahead, pick_view, player_args, player_instances
from ui.explore.player_view import _player_payload
from ui.text import unescape

EXPLORE = "../pages/2_Explore.py"
COMPARE = "../pages/3_Compare.py"
TIMEOUT = 60


def tiny(init: str) -> RunConfig:
    """The tutorial's SimpleCNN on a little data, two epochs."""
    return RunConfig(model="simple_cnn", dataset="shapes32", init=init, n_samples=200, epochs=2,
                     batch_size=64, probe_size=32, seed=7)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one seed with two initializers, in a runs folder set as $NNVIZ_RUNS_DIR."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    a = train(tiny("default"), store).run_id
    b = train(tiny("kaiming_normal"), store).run_id
    boom = RunConfig(model="mlp", dataset="spiral", depth=6, width=32, init="too_large",
                     optimizer="sgd", lr=5.0, n_samples=200, epochs=3, batch_size=32,
                     probe_size=32)
    diverged = train(boom, store)
    assert diverged.status == "diverged"
    mp = pytest.MonkeyPatch()
    mp.setenv("NNVIZ_RUNS_DIR", str(root))
    yield {"root": root, "store": store, "a": a, "b": b, "diverged": diverged.run_id}
    mp.undo()


def decode(v):
    """A plotly JSON array: a list, or plotly 6's {'dtype', 'bdata'[, 'shape']} packing."""
    if isinstance(v, dict) and "bdata" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return arr.reshape([int(s) for s in str(v["shape"]).split(",")]) if "shape" in v else arr
    return np.asarray(v)


def player(at: AppTest) -> tuple[dict, dict] | None:
    """(component args, payload) of the epoch player on the page, or None (also while it is
    hidden behind another view). Python sends a payload once, then only its key (the browser's
    frame holds it): then it is the one the server built for that key (a shared cache)."""
    found = player_instances(at)
    if not found:
        return None
    args = json.loads(found[0].proto.json_args)
    if args.get("hidden"):
        return None
    payload = args["payload"] or _player_payload(args["payload_key"], _not_built)
    return args, json.loads(payload)


def _not_built() -> str:
    raise AssertionError("the player was sent the key of a payload the server never built")


def player_frame(at: AppTest) -> int:
    """The player frame the browser opens at (the snapshot Python asks for)."""
    args, payload = player(at)
    return frame_of(payload, args["start"])


def player_charts(at: AppTest, frame: int | None = None) -> list[dict]:
    """Every chart of the player as the browser draws it at ``frame`` (default: where it
    opens): base + that frame's diff (nnviz.figures.player.frame_figure)."""
    found = player(at)
    if found is None:
        return []
    k = player_frame(at) if frame is None else frame
    return [frame_figure(cell["chart"], k) for block in found[1]["blocks"]
            for cell in block.get("row", [])]


def player_texts(at: AppTest, frame: int | None = None) -> str:
    """The player's HTML texts (titles, stats rows, loss line, notes) at ``frame``."""
    found = player(at)
    if found is None:
        return ""
    k = player_frame(at) if frame is None else frame
    out = []
    for block in found[1]["blocks"]:
        out.append(block.get("html") or (block["htmls"][k] if "htmls" in block else ""))
        for cell in block.get("row", []):
            out.extend(cell.get("caption", []))
            if "notes" in cell:
                out.append(cell["notes"][k])
    return "\n".join(out)


def scrub(at: AppTest, index: int) -> AppTest:
    """What the player sends when the user drags its slider to snapshot ``index``."""
    args, _ = player(at)
    at.session_state["explore_player"] = {"index": index, "seq": time.monotonic_ns(),
                                          "key": args["payload_key"]}
    return at.run()


def figures(at: AppTest, frame: int | None = None) -> list[dict]:
    """Every plotly chart on the page, as figure JSON (the player's at ``frame``)."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")] + \
        player_charts(at, frame)


def kind_of(fig: dict) -> str | None:
    """What an nnviz figure is (its layout.meta kind); None for figures without one."""
    meta = fig["layout"].get("meta")
    return meta.get("kind") if isinstance(meta, dict) else None


def kinds(at: AppTest) -> list[str | None]:
    return [kind_of(f) for f in figures(at)]


def histograms(at: AppTest, title_start: str, frame: int | None = None) -> list[dict]:
    """Weight histograms whose title (after Compare's "Run A · ") starts with title_start."""
    def title(f: dict) -> str:
        text = f["layout"]["title"]["text"]
        return text.split(" · ", 1)[1] if text.startswith(("Run A · ", "Run B · ")) else text
    return [f for f in figures(at, frame) if kind_of(f) == "weight_histogram"
            and title(f).startswith(title_start)]


def bar_counts(fig: dict) -> tuple[np.ndarray, int]:
    """(counts of the main bars, every element the figure accounts for)."""
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    meta = fig["layout"]["meta"]
    total = sum(int(decode(t["y"]).sum()) for t in bars) + meta["nan"] + meta["posinf"] + \
        meta["neginf"]
    return decode(bars[0]["y"]), total


def expected_counts(store: RunStore, run_ids: list[str], param: str, index: int, run_id: str):
    """numpy's histogram of the stored values on edges spanning every snapshot of the runs."""
    lows, highs = [], []
    for rid in run_ids:
        for snap in store.load(rid).snapshots():
            lows.append(snap.record.params[param].min)
            highs.append(snap.record.params[param].max)
    edges = stats.run_edges(lows, highs)
    values = store.load(run_id).snapshot(index).values(param).astype(np.float64)
    return np.histogram(values, edges)[0]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def explore(runs, **query) -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


# ---------------------------------------------------------------------------------- Explore


def test_explore_player_holds_each_snapshots_counts_on_fixed_axes(runs):
    """Every frame of the player (what the browser draws as its slider moves) shows that
    snapshot's numpy counts on the run's fixed axes; the slider's report moves the URL."""
    store, a = runs["store"], runs["a"]
    at = explore(runs, run=a, epoch="0", layer="conv1")
    no_exception(at)
    assert at.selectbox(key="explore_layer").value == "conv1"
    assert at.session_state["explore_view"] == "This epoch"
    args, payload = player(at)
    n = store.load(a).n_snapshots
    assert payload["snapshots"] == list(range(n)) and args["start"] == 0
    assert payload["labels"][0].startswith("init")
    axes = set()
    for k in range(n):
        (fig,) = histograms(at, "conv1.weight", frame=k)
        counts, total = bar_counts(fig)
        assert total == 16 * 3 * 3 * 3
        np.testing.assert_array_equal(counts, expected_counts(store, [a], "conv1.weight", k, a))
        assert fig["layout"]["title"]["text"].endswith(payload["labels"][k])
        axes.add((tuple(fig["layout"]["xaxis"]["range"]), tuple(fig["layout"]["yaxis"]["range"])))
    assert len(axes) == 1  # bins and y range fixed while scrubbing
    assert "After epoch 1: train loss" in player_texts(at, frame=1)
    assert "At init" in player_texts(at, frame=0)

    scrub(at, 1)  # the player reports a drag to snapshot 1
    no_exception(at)
    assert at.session_state["explore_index"] == 1
    assert at.query_params["epoch"] == "1" and at.query_params["run"] == a
    assert player(at)[0]["start_seq"] == args["start_seq"]  # Python does not move it back
    at.session_state["explore_share"] = True  # "Share this view" opened: its links
    at.run()
    assert any("epoch=1" in c.value for c in at.code)  # the share links follow


def test_explore_histogram_can_be_rebinned_per_snapshot(runs):
    at = explore(runs, run=runs["a"], epoch="0", layer="conv1")
    fixed = histograms(at, "conv1.weight")[0]["layout"]["xaxis"]["range"]
    at.segmented_control(key="explore_bins").set_value("this snapshot").run()
    no_exception(at)
    (fig,) = histograms(at, "conv1.weight")
    assert fig["layout"]["title"]["text"].endswith("(own bins)")
    assert fig["layout"]["xaxis"]["range"] != fixed
    assert bar_counts(fig)[1] == 432
    values = runs["store"].load(runs["a"]).snapshot(0).values("conv1.weight")
    lo, hi = fig["layout"]["xaxis"]["range"]
    assert lo < values.min() and hi > values.max()


def test_explore_views_of_a_conv_and_a_linear_layer(runs):
    at = explore(runs, run=runs["a"], layer="conv1")
    shown = kinds(at)
    for name in ("weight_histogram", "conv_filters", "bars"):
        assert name in shown
    assert "rgb_filters" not in shown and "delta_histogram" not in shown  # behind "More views"
    at.toggle(key="explore_more").set_value(True).run()
    no_exception(at)
    shown = kinds(at)
    for name in ("weight_histogram", "conv_filters", "rgb_filters", "bars", "delta_histogram"):
        assert name in shown
    filters = [f for f in figures(at) if kind_of(f) == "conv_filters"][0]
    assert filters["layout"]["meta"]["n_tiles"] == 16 * 3
    hm = filters["data"][0]
    assert hm["zmin"] == -hm["zmax"]
    theory = [t for t in histograms(at, "conv1.weight")[0]["data"] if t["type"] == "scatter"]
    assert theory and theory[0]["name"] == "theory at init"
    assert "theoretical std <b>0.1111</b>" in player_texts(at)

    at.selectbox(key="explore_layer").set_value("fc").run()
    no_exception(at)
    shown = kinds(at)
    assert "neurons" in shown and "spatial" in shown
    (fc_hist,) = histograms(at, "fc.weight")
    assert bar_counts(fc_hist)[1] == 40960
    assert "theoretical std <b>0.009021</b>" in player_texts(at)
    at.number_input(key="explore_fc.weight_neuron").set_value(3).run()
    no_exception(at)
    spatial = [f for f in figures(at) if kind_of(f) == "spatial"][0]
    assert spatial["layout"]["meta"]["neuron"] == 3


def test_explore_heavy_views_are_gated(runs):
    at = explore(runs, run=runs["a"])
    assert "ridgeline" not in kinds(at)
    for mode, kind in (("All epochs", "ridgeline"), ("All epochs", "curve_loss"),
                       ("Health", "grad_norm"), ("Health", "update_ratio_bars")):
        pick_view(at, mode)
        no_exception(at)
        assert kind in kinds(at), mode
    pick_view(at, "Tables")
    no_exception(at)
    assert not [k for k in kinds(at) if k not in (None,)]  # tables only
    weights = at.dataframe[0].value
    assert list(weights["parameter"]) == ["conv1.weight", "conv1.bias", "fc.weight", "fc.bias"]
    assert float(weights["theoretical std"].iloc[0]) == pytest.approx(1 / np.sqrt(81), rel=1e-3)
    assert "None" not in weights.astype(str).to_numpy()  # missing values read "—"
    assert len(at.dataframe) == 3
    assert len([b for b in at.get("download_button") if b.label == "Download CSV"]) == 3


def test_all_epochs_plays_in_the_players_frame_and_follows_the_epoch(runs):
    """All epochs is a payload of the player's frame, built once per (run, layer, language):
    its charts mark the snapshot each frame shows, and the frame's view control switches
    between the payloads it holds (each sent once)."""
    at = explore(runs, run=runs["a"], layer="conv1", epoch="1")
    this_key = player(at)[0]["payload_key"]
    options = {o["name"]: o for o in player(at)[0]["views"]["options"]}
    assert options["This epoch"]["key"] == this_key
    assert options["All epochs"]["key"].startswith("all|")  # the frame may ask for it ahead
    assert "key" not in options["Health"] and "key" not in options["Tables"]  # Python's
    pick_view(at, "All epochs")
    args, payload = player(at)
    assert args["payload_key"] == options["All epochs"]["key"] and args["payload"]
    assert not args["hidden"] and args["views"]["view"] == "All epochs"
    assert not at.get("plotly_chart")  # no chart for Streamlit to build
    assert payload["snapshots"] == [0, 1, 2]
    for kind in ("curve_loss", "ridgeline", "drift"):
        assert kind in kinds(at), kind
    ridges = [[f for f in figures(at, k) if kind_of(f) == "ridgeline"] for k in (0, 1)]
    assert len(ridges[0]) == 2 and ridges[0] != ridges[1]  # conv1.weight, .bias; marker moves
    assert args["start"] == 1  # the snapshot the link named
    assert [b.label for b in at.get("download_button")] == ["Download history CSV"]
    pick_view(at, "This epoch")
    assert sent_key(at) == (this_key, False)  # the frame holds it: only the key
    pick_view(at, "All epochs")
    assert sent_key(at) == (args["payload_key"], False)


def sent_key(at: AppTest) -> tuple[str, bool]:
    """(payload key, whether the payload itself was sent) of the player shown."""
    args = player_args(at)
    return args["payload_key"], bool(args["payload"])


def test_the_frame_gets_the_layers_a_reader_picks_next_ahead_and_a_pick_sends_none(runs):
    """Python names the shown view's payloads of the other layers (a small model: all, the
    next first); the frame's ask for one brings it in ``extra`` beside nothing resent; the rerun
    after a pick of that layer sends only its key (the frame shows its predrawn charts), keeps
    the snapshot shown, and names the new layer's neighbours; the link follows."""
    at = explore(runs, run=runs["a"], epoch="1", layer="conv1")
    no_exception(at)
    layers = at.selectbox(key="explore_layer").options
    args = player_args(at)
    ahead = args["views"]["ahead"]
    names = [a["family"].split("|")[-1] for a in ahead]
    assert names == [n.split(" ")[0] for n in layers[1:]]  # conv1's next first, then on
    assert all(a["key"].startswith("player|") and a["family"] == f"player|{runs['a']}|{n}"
               and f"|{n}|" in a["key"] for a, n in zip(ahead, names, strict=True))
    # by their labels in the Layer selectbox, which the frame watches to show a pick at once
    assert args["views"]["picker"] == "Layer"
    assert [a["label"] for a in ahead] == list(layers[1:])
    seq, shown = args["start_seq"], args["payload_key"]
    got = ask_ahead(at, ahead[0]["key"])
    assert list(got["extra"]) == [ahead[0]["key"]] and got["payload"] == ""
    assert got["payload_key"] == shown
    payload = json.loads(got["extra"][ahead[0]["key"]])
    titles = [c["chart"]["base"]["layout"]["title"]["text"] for b in payload["blocks"]
              for c in b.get("row", [])]
    assert any(t.startswith(f"{names[0]}.weight") for t in titles), titles
    at.run()
    assert player_args(at)["extra"] == {}  # sent once
    at.selectbox(key="explore_layer").set_value(layers[1]).run()
    no_exception(at)
    args = player_args(at)
    assert (args["payload_key"], args["payload"]) == (ahead[0]["key"], "")
    assert args["start_seq"] == seq and args["start"] == 1  # the frame's own snapshot
    assert at.query_params["layer"] == names[0] and at.query_params["epoch"] == "1"
    assert [a["family"].split("|")[-1] for a in args["views"]["ahead"]] == [
        n.split(" ")[0] for n in layers if not n.startswith(names[0] + " ")]
    # in All epochs, the layers' All epochs payloads are the ones named
    pick_view(at, "All epochs")
    assert all(a["key"].startswith("all|") for a in player_args(at)["views"]["ahead"])


def test_a_payload_asked_ahead_is_dropped_when_its_layers_data_changes(runs):
    """Other bins give the layer's payload another key of the same family: Python forgets the
    older one (the frame drops it as it hears the new key), so a pick sends the new payload."""
    at = explore(runs, run=runs["a"], epoch="1", layer="conv1")
    old = player_args(at)["views"]["ahead"][0]
    assert ask_ahead(at, old["key"])["extra"]
    at.segmented_control(key="explore_bins").set_value("this snapshot").run()
    no_exception(at)
    new = player_args(at)["views"]["ahead"][0]
    assert new["family"] == old["family"] and new["key"] != old["key"]
    assert old["key"] not in at.session_state["explore_pl_sent"]
    at.selectbox(key="explore_layer").set_value(at.selectbox(key="explore_layer").options[1])
    at.run()
    args = player_args(at)
    assert args["payload_key"] == new["key"] and args["payload"]  # sent whole: never the old
    assert "(own bins)" in args["payload"]


def test_a_training_runs_layers_are_not_asked_ahead_and_a_grown_run_resends(runs):
    """While a run trains the frame asks nothing ahead ("prefetch" off); a payload it holds of
    another layer is an older one once the run has grown: a pick of it sends the new one."""
    import shutil

    src = runs["root"] / runs["a"]
    run_id = runs["a"] + "-ahead"
    shutil.copytree(src, runs["root"] / run_id)
    meta_path = runs["root"] / run_id / "run.json"
    meta = json.loads(meta_path.read_text())
    full = dict(meta)
    meta.update(run_id=run_id, status="running", updated=time.time(),
                snapshots=meta["snapshots"][:2], history=meta["history"][:1])
    meta_path.write_text(json.dumps(meta))
    try:
        at = explore(runs, run=run_id, layer="conv1")
        no_exception(at)
        spec = player_args(at)["views"]
        assert spec["prefetch"] is False
        old = spec["ahead"][0]
        assert ask_ahead(at, old["key"])["extra"]  # an older frame's ask, answered
        meta.update(snapshots=full["snapshots"], history=full["history"], updated=time.time())
        meta_path.write_text(json.dumps(meta))
        at.run()
        no_exception(at)
        assert old["key"] not in at.session_state["explore_pl_sent"]
        at.selectbox(key="explore_layer").set_value(at.selectbox(key="explore_layer").options[1])
        at.run()
        args = player_args(at)
        assert args["payload_key"] != old["key"] and args["payload"]
        assert json.loads(args["payload"])["snapshots"] == [0, 1, 2]
    finally:
        shutil.rmtree(runs["root"] / run_id)


def test_a_cached_figure_is_sent_as_the_dict_it_was_built_into():
    import plotly.io
    import plotly.tools

    from nnviz.figures import weights as fw
    from ui.explore.charts import SentFigure

    fig = fw.ridgeline(np.linspace(-1, 1, 5), np.ones((2, 4)), ["init", "epoch 1"], 1, title="x")
    sent = plotly.tools.return_figure_from_figure_or_data(SentFigure(fig), validate_figure=True)
    assert plotly.io.to_json(sent, validate=False) == plotly.io.to_json(fig, validate=False)


def test_the_players_plotly_bundle_draws_every_trace_the_player_sends(runs):
    """The player loads plotly.js's cartesian bundle: every trace type of Explore's payloads
    (every layer kind, with the more views on) is one the bundle registers."""
    import re

    from ui import player as ui_player

    bundle = (ROOT / "ui" / "player" / ui_player.PLOTLY_SRC).read_text(encoding="utf-8")
    assert set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle)) == ui_player.PLOTLY_TRACES
    at = explore(runs, run=runs["a"], layer="conv1")
    at.toggle(key="explore_more").set_value(True).run()
    used = set()
    for layer in ("conv1", "fc"):
        at.selectbox(key="explore_layer").set_value(layer).run()
        no_exception(at)
        used |= {trace.get("type", "scatter") for fig in figures(at) for trace in fig["data"]}
    assert used and used <= ui_player.PLOTLY_TRACES, used - ui_player.PLOTLY_TRACES


def test_a_just_started_job_is_checked_often_for_its_first_snapshot():
    from ui.explore.jobs import FIRST_POLL_FOR_S, FIRST_POLL_S, first_snapshot_every
    from ui.runs import POLL_FAST_S, POLL_SLOW_S
    from ui.services.jobs import JobInfo

    cfg = tiny("default")
    running = JobInfo("j", cfg, "h", "running", submitted=100.0, started=100.0)
    assert first_snapshot_every(running, now=100.5) == FIRST_POLL_S < POLL_FAST_S
    assert first_snapshot_every(running, now=100.0 + FIRST_POLL_FOR_S + 1) == POLL_FAST_S
    queued = JobInfo("j", cfg, "h", "queued", submitted=100.0)
    assert first_snapshot_every(queued, now=100.5) == POLL_SLOW_S  # waits for a worker
    assert first_snapshot_every(JobInfo("j", cfg, "h", "done"), now=100.5) is None


def test_explore_bad_url_values_warn_and_fall_back(runs):
    at = explore(runs, run=runs["a"], epoch="99", layer="nope")
    no_exception(at)
    text = " ".join(unescape(w.value) for w in at.warning)
    assert "epoch=99" in text and "layer" in text
    assert at.session_state["explore_index"] == 2 and player(at)[0]["start"] == 2
    assert at.selectbox(key="explore_layer").value == "conv1"
    at = explore(runs, run="../../etc")
    no_exception(at)
    assert at.warning and at.selectbox(key="explore_run_pick").value in (
        runs["a"], runs["b"], runs["diverged"])


def test_explore_switching_runs_keeps_the_layer_without_warnings(runs):
    at = explore(runs, run=runs["a"], epoch="0", layer="fc")
    at.selectbox(key="explore_run_pick").set_value(runs["b"]).run()
    no_exception(at)
    assert not at.warning
    assert at.selectbox(key="explore_layer").value == "fc"
    assert player(at)[0]["start"] == 2  # a new run opens at its end
    assert at.query_params["run"] == runs["b"]
    (fig,) = histograms(at, "fc.weight")
    np.testing.assert_array_equal(
        bar_counts(fig)[0], expected_counts(runs["store"], [runs["b"]], "fc.weight", 2, runs["b"]))


def test_explore_play_advances_the_scrubber(runs):
    """The server-side Play of the views drawn by Python (the player plays in the browser)."""
    at = explore(runs, run=runs["a"], epoch="2")
    assert not at.button  # This epoch: the player's own Play
    pick_view(at, "Tables")
    at.button(key="explore_play").click().run()  # at the end: Play restarts from the start
    assert at.session_state["explore_playing"] is True
    slider = at.select_slider(key="explore_slider")
    assert slider.value == 0 and slider.disabled
    time.sleep(0.8)
    at.run()
    no_exception(at)
    assert at.select_slider(key="explore_slider").value == 1
    assert at.query_params["epoch"] == "1"  # the URL follows the frame shown
    # A value the browser sends from before the last frame (a stale slider) neither pauses
    # nor moves back: it once stopped playback at epoch 2 of 5.
    at.session_state["explore_slider"] = 0
    time.sleep(0.8)
    at.run()
    assert at.session_state["explore_playing"] is True
    assert at.select_slider(key="explore_slider").value == 2
    assert at.query_params["epoch"] == "2"
    time.sleep(0.8)
    at.run()  # at the end: playback stops there
    assert at.session_state["explore_playing"] is False
    assert at.select_slider(key="explore_slider").value == 2
    at.select_slider(key="explore_slider").set_value(1).run()  # paused: a move is taken
    assert at.session_state["explore_index"] == 1 and at.query_params["epoch"] == "1"


def test_explore_a_diverged_run_shows_its_nan_and_inf(runs):
    rid = runs["diverged"]
    run = runs["store"].load(rid)
    last = run.n_snapshots - 1
    bad = [p for p, s in run.snapshot(last).record.params.items()
           if s.nan_count or s.inf_count]
    assert bad, "the diverged run should hold non-finite weights"
    layer = run.record.params[bad[0]].module
    at = explore(runs, run=rid, epoch=str(last), layer=layer)
    no_exception(at)
    assert any("diverged" in unescape(e.value) for e in at.error)
    figs = [f for f in figures(at) if kind_of(f) == "weight_histogram"]
    totals = {f["layout"]["title"]["text"].split(" ·")[0]: bar_counts(f)[1] for f in figs}
    for p in views_params(run, layer):
        assert totals[p] == run.record.params[p].numel  # NaN / Inf counted, never dropped
    meta = [f["layout"]["meta"] for f in figs if f["layout"]["title"]["text"].startswith(bad[0])]
    assert meta[0]["nan"] + meta[0]["posinf"] + meta[0]["neginf"] > 0
    # by default each snapshot gets its own bins, and the note says why
    assert "chosen automatically" in player_texts(at, frame=0)
    at.segmented_control(key="explore_bins").set_value("fixed for the run").run()
    no_exception(at)
    assert "Nearly all values" in player_texts(at, frame=0)  # init, on the exploded run's bins


def views_params(run, layer: str) -> list[str]:
    from nnviz.analysis.views import layer_params

    return layer_params(run)[layer]


def test_explore_without_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(tmp_path / "empty"))
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("No runs yet" in unescape(i.value) for i in at.info)


# ---------------------------------------------------------------------------------- Compare


def test_compare_shares_bins_and_colour_scales(runs):
    store, a, b = runs["store"], runs["a"], runs["b"]
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.query_params["run"] = a
    at.query_params["run_b"] = b
    at.run()
    no_exception(at)
    assert at.selectbox(key="compare_a").value == a
    assert at.selectbox(key="compare_b").value == b
    diff = at.dataframe[0].value
    assert list(diff["option"]) == ["init"]
    assert any(b_init in m.value for m in at.markdown for b_init in ("different",))
    hists = histograms(at, "conv1.weight")
    assert len(hists) == 2
    assert hists[0]["layout"]["xaxis"]["range"] == hists[1]["layout"]["xaxis"]["range"]
    assert hists[0]["layout"]["yaxis"]["range"] == hists[1]["layout"]["yaxis"]["range"]
    for fig, rid in zip(hists, (a, b), strict=True):
        counts, total = bar_counts(fig)
        assert total == 432
        np.testing.assert_array_equal(
            counts, expected_counts(store, [a, b], "conv1.weight", 2, rid))
    grids = [f for f in figures(at) if kind_of(f) == "conv_filters"]
    assert len(grids) == 2 and grids[0]["data"][0]["zmax"] == grids[1]["data"][0]["zmax"]

    args, payload = player(at)  # scrubbed in the browser, like Explore's player
    assert args["payload_key"].startswith("compare|") and payload["snapshots"] == [0, 1, 2]
    at.session_state["compare_player"] = {"index": 0, "seq": time.monotonic_ns(),
                                          "key": args["payload_key"]}
    at.run()
    no_exception(at)
    assert at.query_params["epoch"] == "0"
    for fig, rid in zip(histograms(at, "conv1.weight", 0), (a, b), strict=True):
        np.testing.assert_array_equal(
            bar_counts(fig)[0], expected_counts(store, [a, b], "conv1.weight", 0, rid))
    at.segmented_control(key="compare_mode").set_value("Health").run()
    no_exception(at)


def test_compare_gets_the_layers_a_reader_picks_next_ahead_and_a_pick_sends_none(runs):
    """Compare's side-by-side player asks ahead like Explore's: Python names both runs'
    payloads of the other layers by their labels in the page's Layer selectbox; an ask brings
    one in ``extra``; the rerun after a pick of that layer sends only its key, at the snapshot
    the frame shows; the link follows. Its view control is the page's (``control`` off)."""
    a, b = runs["a"], runs["b"]
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.query_params.update({"run": a, "run_b": b, "layer": "conv1", "epoch": "1"})
    at.run()
    no_exception(at)
    layers = at.selectbox(key="compare_layer").options
    args = player_args(at)
    spec = args["views"]
    assert spec["control"] is False and spec["picker"] == "Layer" and spec["prefetch"]
    assert [o["label"] for o in spec["ahead"]] == [n for n in layers if n != "conv1"]
    assert all(o["family"] == f"compare|{a}|{b}|{o['label']}" and o["key"].startswith(
        "compare|") and o["key"].endswith(f"|{o['label']}") for o in spec["ahead"])
    seq, shown, nxt = args["start_seq"], args["payload_key"], spec["ahead"][0]
    got = ask_ahead(at, nxt["key"], prefix="compare")
    assert list(got["extra"]) == [nxt["key"]] and got["payload"] == ""
    assert got["payload_key"] == shown
    payload = json.loads(got["extra"][nxt["key"]])
    titles = [c["chart"]["base"]["layout"]["title"]["text"] for blk in payload["blocks"]
              for c in blk.get("row", [])]
    assert any(f"{nxt['label']}.weight" in t for t in titles), titles
    at.selectbox(key="compare_layer").set_value(nxt["label"]).run()
    no_exception(at)
    args = player_args(at)
    assert (args["payload_key"], args["payload"]) == (nxt["key"], "")
    assert args["start_seq"] == seq and args["start"] == 1
    assert at.query_params["layer"] == nxt["label"] and at.query_params["epoch"] == "1"


def test_compare_loss_curves_play_in_the_frame_and_python_draws_them_in_health(runs):
    """Side by side, the frame carries both runs' loss curves (the snapshot shown marked, as
    numpy reads the histories), so a move's rerun draws no chart of the page; in Health, Python
    draws them under the diagnostics."""
    a, b = runs["a"], runs["b"]
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.query_params.update({"run": a, "run_b": b, "epoch": "1"})
    at.run()
    no_exception(at)
    assert not at.get("plotly_chart")
    args, payload = player(at)
    store = runs["store"]
    ra, rb = store.load(a), store.load(b)
    curves = [c["chart"] for blk in payload["blocks"] for c in blk.get("row", [])
              if c["chart"]["base"]["layout"].get("meta", {}).get("kind") == "compare"]
    assert [c["base"]["layout"]["title"]["text"] for c in curves] == ["Validation loss",
                                                                     "Training loss"]
    for chart, key in zip(curves, ("val_loss", "train_loss"), strict=True):
        for k, pos in enumerate(payload["snapshots"]):
            fig = frame_figure(chart, k)
            *lines, mark = fig["data"]
            for trace, run in zip(lines, (ra, rb), strict=True):
                np.testing.assert_allclose(decode(trace["y"]), [getattr(h, key) for h in
                                                                run.record.history])
            # the marker (a trace: moved by a restyle) at the epoch of the snapshot shown,
            # across every value of both runs
            epoch = views.align_snapshots(ra, rb)[pos][0]
            values = np.concatenate([decode(tr["y"]) for tr in lines])
            assert list(decode(mark["x"])) == [epoch, epoch] and not mark["showlegend"]
            assert list(decode(mark["y"])) == [values.min(), values.max()]
    at.segmented_control(key="compare_mode").set_value("Health").run()
    no_exception(at)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"]
              for c in at.get("plotly_chart")]
    assert "Validation loss" in titles and "Training loss" in titles


def test_compare_histograms_of_a_and_b_share_one_y_axis(runs):
    """At init a too-small initializer's theory curve towers over PyTorch's default one; A and
    B still share one y axis on every layer (it once read 0–25 for A and 0–20 for B)."""
    small = train(tiny("too_small"), runs["store"]).run_id
    try:
        at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
        at.query_params.update({"run": runs["a"], "run_b": small, "epoch": "0"})
        at.run()
        no_exception(at)
        for layer in ("conv1", "fc"):
            at.selectbox(key="compare_layer").set_value(layer).run()
            ha, hb = histograms(at, f"{layer}.weight")
            assert ha["layout"]["yaxis"]["range"] == hb["layout"]["yaxis"]["range"], layer
            theory = [t for t in hb["data"] if t["type"] == "scatter"]
            top = max(float(np.max(decode(t["y"]))) for t in theory)
            assert ha["layout"]["yaxis"]["range"][1] >= top  # B's curve fits on A's axis too
    finally:
        runs["store"].delete(small)


def test_png_downloads_are_named_after_run_layer_and_epoch(runs):
    at = explore(runs, run=runs["a"], epoch="1")
    args, _ = player(at)
    assert args["png_prefix"] == runs["a"]  # the player adds each chart's title (layer, epoch)
    pick_view(at, "Health")  # Streamlit's charts
    names = [json.loads(c.proto.config)["toImageButtonOptions"].get("filename", "newplot")
             for c in at.get("plotly_chart")]
    assert f"{runs['a']}_epoch_1_gradient_norm" in names, names


def test_compare_same_run_twice_warns(runs):
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.query_params["run"] = runs["a"]
    at.query_params["run_b"] = runs["a"]
    at.run()
    no_exception(at)
    assert any("same run" in unescape(w.value) for w in at.warning)


# ------------------------------------------------------------------- links and training jobs


class FakeJobs:
    """A stand-in JobManager: submit() answers with a job that is still training."""

    def __init__(self) -> None:
        from ui.services.jobs import JobInfo

        self.job = JobInfo("job-1", tiny("xavier_normal"), "h", "running",
                           progress={"epoch": 1, "epochs": 2, "step": 1, "steps_per_epoch": 3})
        self.submitted: list[RunConfig] = []

    def submit(self, cfg: RunConfig, reuse: bool = True, owner: str | None = None):
        self.submitted.append(cfg)
        return self.job

    def get(self, job_id: str):
        return self.job

    def run_owner(self, run_id: str):
        return None  # runs made outside the app: everyone may open them

    def owned_runs(self, owner: str):
        return []


@pytest.fixture()
def manager(runs, monkeypatch):
    """A real JobManager on the runs folder (no worker is started: only reuse is exercised)."""
    import ui.state
    from ui.services.jobs import JobManager

    mgr = JobManager(runs["root"])
    monkeypatch.setattr(ui.state, "job_manager", lambda: mgr)
    yield mgr
    mgr.shutdown()


def test_explore_link_with_a_config_reuses_the_identical_run(runs, manager):
    from ui.services.urlstate import config_to_query

    query = {**config_to_query(tiny("default")), "layer": "fc"}
    at = explore(runs, **query)
    no_exception(at)
    assert at.selectbox(key="explore_run_pick").value == runs["a"]
    assert at.query_params["run"] == runs["a"]
    assert "model" not in at.query_params  # the config keys gave way to the run id
    assert at.selectbox(key="explore_layer").value == "fc"
    (job,) = manager.jobs()
    assert job.reused and job.run_id == runs["a"]


def test_explore_opens_the_job_another_page_started(runs, manager):
    job = manager.submit(tiny("kaiming_normal"))
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.session_state["nnviz_job_id"] = job.job_id
    at.run()
    no_exception(at)
    assert at.selectbox(key="explore_run_pick").value == runs["b"]
    at.selectbox(key="explore_run_pick").set_value(runs["a"]).run()  # the job is not re-applied
    assert at.selectbox(key="explore_run_pick").value == runs["a"]


def test_explore_shows_progress_while_the_linked_run_trains(runs, monkeypatch):
    import ui.state

    fake = FakeJobs()
    monkeypatch.setattr(ui.state, "job_manager", lambda: fake)
    at = explore(runs, model="simple_cnn", init="xavier_normal", seed="7")
    no_exception(at)
    assert fake.submitted and fake.submitted[0].init == "xavier_normal"
    assert any("Training this run" in unescape(i.value) for i in at.info)
    assert not at.get("plotly_chart")
    at.run()
    assert len(fake.submitted) == 1  # one submit per link, not one per rerun


def test_compare_trains_the_twin_with_another_initializer(runs, monkeypatch):
    import ui.state

    fake = FakeJobs()
    monkeypatch.setattr(ui.state, "job_manager", lambda: fake)
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.query_params["run"] = runs["a"]
    at.run()
    at.selectbox(key="compare_twin_init").set_value("xavier_normal")
    at.button(key="compare_twin_go").click().run()
    no_exception(at)
    (cfg,) = fake.submitted
    a_cfg = runs["store"].load(runs["a"]).config
    assert cfg.init == "xavier_normal" and cfg.seed == a_cfg.seed
    assert cfg.replace(init=a_cfg.init) == a_cfg


def test_explore_a_run_that_is_still_training(runs):
    """Recorded epochs are explorable while the run trains; the page says more are coming."""
    import shutil

    src = runs["root"] / runs["a"]
    run_id = runs["a"] + "-live"
    shutil.copytree(src, runs["root"] / run_id)
    meta_path = runs["root"] / run_id / "run.json"
    meta = json.loads(meta_path.read_text())
    meta.update(run_id=run_id, status="running", updated=time.time(),
                snapshots=meta["snapshots"][:2], history=meta["history"][:1])
    meta_path.write_text(json.dumps(meta))
    try:
        at = explore(runs, run=run_id)
        no_exception(at)
        assert player(at)[0]["start"] == 1
        assert any("new epochs appear" in c.value for c in at.caption)
        (fig,) = histograms(at, "conv1.weight")
        assert bar_counts(fig)[1] == 432
        full = json.loads((src / "run.json").read_text())
        meta.update(snapshots=full["snapshots"], history=full["history"], updated=time.time())
        meta_path.write_text(json.dumps(meta))
        at.run()  # the next snapshot arrived while the latest was shown: the player follows
        no_exception(at)
        args, payload = player(at)
        assert args["start"] == 2 and payload["snapshots"] == [0, 1, 2]
    finally:
        shutil.rmtree(runs["root"] / run_id)


def test_a_linked_run_that_fails_to_train_shows_no_other_runs_charts(runs, monkeypatch):
    """`?dataset=mnist&data_dir=/etc`: "Training failed" alone, not above another run."""
    import ui.state

    fake = FakeJobs()
    fake.job = fake.job.__class__("job-2", tiny("default"), "h", "failed",
                                  status_detail="no MNIST files in /etc")
    monkeypatch.setattr(ui.state, "job_manager", lambda: fake)
    at = explore(runs, dataset="mnist", data_dir="/etc")
    no_exception(at)
    assert any("Training failed" in unescape(e.value) for e in at.error)
    assert not at.get("plotly_chart") and player(at) is None
    picker = at.selectbox(key="explore_run_pick")  # the way out: pick a stored run
    picker.set_value(runs["b"]).run()
    no_exception(at)
    assert player(at) is not None and at.query_params["run"] == runs["b"]
    assert "dataset" not in at.query_params
