"""Runs of users' own models (nnviz.watch, checkpoints) in the app: Explore opens them, the
Overview page lists every parameter, searches, and opens checkpoints."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

import nnviz
from nnviz.analysis.overview import COLUMNS, filter_rows, overview
from nnviz.store.checkpoints import checkpoint_run
from nnviz.store.runs import RunStore
from tests.fixtures.explore import pick_view
from tests.fixtures.resnet import resnet18
from tests.test_app_explore_compare import histograms, no_exception, player
from tests.test_watch import SeqModel, TinyTransformer, train_steps
from ui.text import unescape

EXPLORE = "../pages/2_Explore.py"
OVERVIEW = "../pages/6_Overview.py"
TIMEOUT = 90


@pytest.fixture(scope="module")
def own_runs(tmp_path_factory):
    """A watched transformer (2 epochs), a watched ResNet-18 and a two-checkpoint run."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    torch.manual_seed(0)
    model = TinyTransformer()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randint(0, 30, (16, 6)), torch.randint(0, 4, (16,))
    with nnviz.watch(model, opt, probe=x[:8], name="tiny transformer", runs_dir=root) as rec:
        for epoch in (1, 2):
            train_steps(model, opt, x, y, 3)
            rec.snapshot(epoch=epoch, metrics={"train_loss": 1.0})
    seq = SeqModel()
    seq_opt = torch.optim.SGD(seq.parameters(), lr=0.1)
    sx, sy = torch.randint(0, 40, (8, 5)), torch.randint(0, 3, (8,))
    with nnviz.watch(seq, seq_opt, probe=sx, runs_dir=root) as seq_rec:
        train_steps(seq, seq_opt, sx, sy, 2)
        seq_rec.snapshot(epoch=1)
    with nnviz.watch(resnet18(), probe=torch.randn(2, 3, 32, 32), name="resnet",
                     runs_dir=root) as big:
        pass
    folder = tmp_path_factory.mktemp("ckpts")
    for k in (1, 2):
        save_file({n: p.detach().clone() * k for n, p in model.named_parameters()},
                  folder / f"epoch={k}.safetensors")
    ckpt = checkpoint_run(folder, store)
    mp = pytest.MonkeyPatch()
    mp.setenv("NNVIZ_RUNS_DIR", str(root))
    yield {"store": store, "tf": rec.run_id, "seq": seq_rec.run_id, "resnet": big.run_id,
           "ckpt": ckpt, "folder": folder}
    mp.undo()


def explore(**query) -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def test_explore_opens_a_watched_run(own_runs):
    at = explore(run=own_runs["tf"], epoch="2", layer="enc.layers.0.self_attn")
    no_exception(at)
    assert player(at) is not None
    assert histograms(at, "enc.layers.0.self_attn.in_proj_weight")
    header = unescape(" ".join(m.value for m in at.markdown))
    assert "recorded with nnviz.watch" in header and "TinyTransformer" in header
    row = next(r for r in own_runs["store"].list_runs()[0] if r["run_id"] == own_runs["tf"])
    assert row["model"] == "TinyTransformer" and row["init"] == "(own)"
    at = explore(run=own_runs["seq"], epoch="1", layer="frozen")
    no_exception(at)
    assert player(at) is not None


def test_explore_opens_a_checkpoint_run(own_runs):
    at = explore(run=own_runs["ckpt"], epoch="1", layer="head")
    no_exception(at)
    assert histograms(at, "head.weight")


def test_overview_rows_search_and_frozen_layers(own_runs):
    run = own_runs["store"].load(own_runs["seq"])
    df = overview(run, 1)
    assert list(df.columns) == COLUMNS and len(df) == len(run.record.params)
    frozen = df[df["param"] == "frozen.weight"].iloc[0]
    assert frozen["gradient"] == "no gradient"
    lstm = df[df["param"] == "lstm.weight_hh_l0"].iloc[0]
    assert lstm["gradient"] == "yes" and lstm["grad_norm"] > 0
    assert lstm["std_vs_theory"] == pytest.approx(lstm["std"] / lstm["theory_std"])
    assert set(filter_rows(df, "LSTM hh")["param"]) == {"lstm.weight_hh_l0", "lstm.bias_hh_l0"}
    assert overview(run, 0)["gradient"].eq("not recorded").all()


def test_overview_page_lists_searches_and_stays_responsive(own_runs):
    at = AppTest.from_file(OVERVIEW, default_timeout=TIMEOUT)
    at.query_params["run"] = own_runs["resnet"]
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    no_exception(at)
    table = at.dataframe[0].value
    assert len(table) == 62 and table["param"].iloc[0] == "conv1.weight"
    at.text_input(key=f"overview_{own_runs['resnet']}_search").input("layer4 conv2").run()
    no_exception(at)
    assert set(at.dataframe[0].value["param"]) == {"layer4.0.conv2.weight",
                                                   "layer4.1.conv2.weight"}
    t0 = time.perf_counter()
    at.toggle(key="overview_signal").set_value(True).run()
    redraw = time.perf_counter() - t0
    no_exception(at)
    signal = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert signal and len(signal[0]["data"][0]["x"]) >= 21  # 20 convs + fc
    print(f"ResNet-18 overview: first run {first:.2f} s, with the signal chart {redraw:.2f} s")


def test_overview_page_opens_checkpoint_uploads(own_runs):
    at = AppTest.from_file(OVERVIEW, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert "Open checkpoints as a run" in [e.label for e in at.expander]


@pytest.mark.parametrize("which", ["tf", "ckpt"])
def test_explore_health_and_all_epochs_views(own_runs, which):
    at = explore(run=own_runs[which], epoch="1", layer="head")
    for mode in ("Health", "All epochs", "Tables"):
        pick_view(at, mode)
        no_exception(at)
    pick_view(at, "Health")
    infos = " ".join(i.value for i in at.info)
    if which == "ckpt":
        assert "checkpoints hold weights only" in infos
    else:
        assert "checkpoints" not in infos


def test_explore_opens_a_sampled_resnet_layer(own_runs):
    """layer4's 512x512x3x3 kernels (2.4 M values) are stored as a sample: histogram and
    W_t - W_0 only, no filter tiles (a sample cannot be reshaped into kernels)."""
    at = explore(run=own_runs["resnet"], layer="layer4.1.conv2")
    no_exception(at)
    assert histograms(at, "layer4.1.conv2.weight")
