"""AppTest: after importing hostile-but-valid runs (and with damaged ones on disk), Home, Runs,
Explore and Compare render with no exception; damaged runs are listed, exported and deleted."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore
from tests.fixtures.hostile import make_zip, members

APP = "../app.py"
TIMEOUT = 60
TINY = dict(model="mlp", dataset="moons", n_samples=120, batch_size=32, epochs=2, depth=1,
            width=4)


def _variant(files: dict[str, bytes], change) -> bytes:
    files = dict(files)
    meta = json.loads(files["run.json"])
    change(meta, files)
    files["run.json"] = json.dumps(meta, allow_nan=True).encode()
    return make_zip(files)


def _named(meta, _files):
    meta["run_id"] = "markdown-name"
    meta["config"]["name"] = "![x](http://host/p.png) [Log in](http://evil)"
    meta["status_detail"] = "**bold** <script>alert(1)</script>"


def _extreme(meta, _files):
    meta["run_id"] = "extreme-values"
    meta["history"][0].update(train_loss=float("nan"), val_loss=1e300, lr=0.0, val_acc=1.0)
    meta["history"][-1].update(train_loss=float("inf"), val_loss=float("-inf"))
    meta["created"] = 0.0
    meta["unknown_key"] = {"deep": [[[1]]]}


def _no_snapshots(meta, files):
    meta["run_id"] = "no-snapshots"
    meta["status"] = "failed"
    meta["snapshots"] = []
    meta["history"] = []
    for name in [n for n in files if n.startswith("snapshots/")]:
        del files[name]


def _init_only(meta, files):
    meta["run_id"] = "init-only"
    meta["status"] = "running"  # imported as interrupted
    meta["history"] = []
    meta["snapshots"] = meta["snapshots"][:1]
    for name in sorted(files)[2:]:  # run.json, s0000 stay
        del files[name]


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory):
    src = RunStore(tmp_path_factory.mktemp("src"))
    good = train(RunConfig.from_dict(TINY), src).run_id
    files = members(src.export_zip(good))
    root = tmp_path_factory.mktemp("hostile-runs")
    store = RunStore(root)
    ids = [store.import_zip(_variant(files, change))
           for change in (_named, _extreme, _no_snapshots, _init_only)]
    # on disk after import: a run whose run.json broke, and one with a bit-flipped snapshot
    broken = store.import_zip(_variant(files, lambda m, _f: m.update(run_id="broken-json")))
    (root / broken / "run.json").write_text('{"schema_version": 2, "config": "x"}')
    flipped = store.import_zip(_variant(files, lambda m, _f: m.update(run_id="bit-flip")))
    snap = root / flipped / "snapshots" / "s0001.safetensors"
    data = bytearray(snap.read_bytes())
    data[-2] ^= 0x01
    snap.write_bytes(bytes(data))
    return root, ids + [flipped], broken


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "Something went wrong" in e.value]
    return at


def _runs_page(teacher: bool = False) -> AppTest:
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.session_state["nnviz_admin"] = teacher  # damaged folders are listed to the teacher
    at.switch_page("pages/4_Runs.py")
    return _run(at)


@pytest.fixture()
def env(hostile_root, monkeypatch):
    root, ids, broken = hostile_root
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(root))
    return root, ids, broken


def test_home_and_runs_render(env):
    root, ids, broken = env
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.switch_page("pages/4_Runs.py")
    _run(at)
    listed = set(at.dataframe[0].value["run"])
    assert listed == set(ids)
    assert not any(broken in t.value for t in at.text)  # a student sees no folder names
    at = _runs_page(teacher=True)
    assert any(t.value.startswith(f"{broken} — damaged:") for t in at.text)


@pytest.mark.parametrize("which", range(5))
def test_explore_renders_each_run(env, which):
    _root, ids, _broken = env
    at = AppTest.from_file("../pages/2_Explore.py", default_timeout=TIMEOUT)
    at.query_params["run"] = ids[which]
    _run(at)
    if ids[which] != "no-snapshots":  # the run itself is shown
        assert "model `mlp`" in " ".join(m.value for m in at.markdown)


def test_compare_renders_hostile_pairs(env):
    _root, ids, _broken = env
    for a, b in ((ids[0], ids[1]), (ids[4], ids[3]), (ids[2], ids[0])):
        at = AppTest.from_file("../pages/3_Compare.py", default_timeout=TIMEOUT)
        at.query_params["run"] = a
        at.query_params["run_b"] = b
        _run(at)


def test_damaged_run_exports_and_deletes_from_the_runs_page(env, tmp_path, monkeypatch):
    import shutil

    root, _ids, broken = env
    mine = tmp_path / "runs"
    shutil.copytree(root / broken, mine / broken)
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(mine))
    at = _runs_page(teacher=True)
    at.button(key=f"runs_dmg_zip_{broken}_prepare").click()
    _run(at)
    assert at.get("download_button")  # the raw files, ready to download
    at.button(key=f"runs_dmg_del_{broken}").click()
    _run(at)
    at.button(key=f"runs_dmg_yes_{broken}").click()
    _run(at)
    assert not (mine / broken).exists()


def test_runs_page_download_says_why_an_export_fails(env, tmp_path, monkeypatch):
    import shutil

    root, ids, _broken = env
    run_id = ids[1]
    mine = tmp_path / "runs"
    shutil.copytree(root / run_id, mine / run_id)
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(mine))
    at = _runs_page()
    at.selectbox(key="runs_pick").select(run_id)
    at.button(key="runs_download_prepare").click()
    _run(at)
    assert at.get("download_button") and not at.error  # ready: the zip is built
    (mine / run_id / "snapshots" / "s0001.safetensors").unlink()
    at = _runs_page()
    at.button(key="runs_download_prepare").click()
    _run(at)
    assert not at.get("download_button")
    assert any("snapshot 1" in e.value and "missing" in e.value for e in at.error)
