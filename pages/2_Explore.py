"""Explore one run: scrub through its epochs, layer by layer."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # a page run on its own (tests, `streamlit run pages/...`)
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from nnviz.analysis import views  # noqa: E402
from nnviz.errors import NnvizError, StorageError  # noqa: E402
from nnviz.figures import epoch_view as ev  # noqa: E402
from ui import explore as ux  # noqa: E402
from ui import ownership as own  # noqa: E402
from ui.common import use_router  # noqa: E402

P = "explore"  # session-state key prefix of this page
VIEWS = ["This epoch", "All epochs", "Health", "Tables"]

use_router()  # a deep link on a fresh server: run through app.py
st.set_page_config(page_title="nnviz · Explore", layout="wide")
st.session_state.setdefault(f"{P}_run", None)
st.session_state.setdefault(f"{P}_url_run", None)
st.session_state.setdefault(f"{P}_adopted_job", None)
st.session_state.setdefault(f"{P}_url_job", {})
st.title("Explore a run")


def run_from_config() -> None:
    """A link that describes a run's config: train it (or reuse an identical run) and open it."""
    cfg, warnings = ux.config_from_query()
    for w in dict.fromkeys(warnings):
        st.warning(w)
    if cfg is None:
        return
    mgr = ux.job_manager()
    if mgr is None:
        st.info("This link describes a run to train, and training needs the job manager, "
                "which is not available here: train it on the Train page.")
        return
    jobs = st.session_state[f"{P}_url_job"]
    signature = ux.query_signature()
    if signature not in jobs:
        try:
            jobs[signature] = mgr.submit(cfg, owner=own.session_id()).job_id
        except NnvizError as exc:
            ux.show_error(exc)
            return
    run_id, pending = ux.wait_for_job(jobs[signature])
    if pending:
        st.stop()
    if run_id is not None:
        st.session_state[f"{P}_run_pick"] = run_id
        st.session_state[f"{P}_url_run"] = run_id
        ux.list_runs.clear()
        stale = {k: None for k in ux.query_dict() if k not in ("run", "epoch", "layer")}
        ux.set_query(**stale, run=run_id)


def choose_run() -> str | None:
    """The run to show: a new job from another page, the URL's run or config, or the picker."""
    job_id = st.session_state.get("nnviz_job_id")
    url_run = ux.query_value("run")
    if job_id and job_id != st.session_state[f"{P}_adopted_job"]:
        run_id, pending = ux.wait_for_job(job_id)
        if pending:
            st.stop()
        st.session_state[f"{P}_adopted_job"] = job_id
        if run_id is not None:
            st.session_state[f"{P}_run_pick"] = run_id
            st.session_state[f"{P}_url_run"] = run_id
            ux.list_runs.clear()
            ux.set_query(epoch=None, layer=None)
    elif url_run is not None and url_run != st.session_state[f"{P}_url_run"]:
        st.session_state[f"{P}_url_run"] = url_run
        try:
            ux.load_run(url_run)
            st.session_state[f"{P}_run_pick"] = url_run
        except StorageError as exc:
            if ux.config_in_query():
                run_from_config()
            else:
                st.warning(f"The link's run could not be opened ({exc}); pick a run instead.")
    elif url_run is None and ux.config_in_query():
        run_from_config()
    mgr = ux.job_manager()
    if mgr is None:
        return ux.run_select(f"{P}_run_pick", "Run", where=st.sidebar)
    # without a link: this session's own runs and the lessons, never other people's
    return own.run_select(f"{P}_run_pick", "Run", mgr, ux.list_runs(str(ux.runs_root()))[0],
                          where=st.sidebar)


run = ux.run_or_stop(choose_run(), "No runs yet. Train one on the Train page (or pick a "
                     "lesson on the Home page), then come back here.")
if run.n_snapshots == 0:
    st.info("This run has no snapshot yet; it appears here as soon as its first one is saved.")
    ux.watch_run(run, P)
    st.stop()

ux.run_header(run)
ux.watch_run(run, P)
n = run.n_snapshots
labels = [views.snapshot_label(run, i) for i in range(n)]
layers = views.layer_names(run)

# A newly shown run opens at the link's epoch and layer (when the link names this run), else at
# its last snapshot, on the same layer if it has one.
if st.session_state.get(f"{P}_shown_run") != run.run_id:
    st.session_state[f"{P}_shown_run"] = run.run_id
    index, layer = n - 1, st.session_state.get(f"{P}_layer")
    if ux.query_value("run") in (None, run.run_id):
        index, layer, warnings = ux.view_from_query(n, layers)
        for w in warnings:
            st.warning(w)
    st.session_state[f"{P}_index"] = index
    st.session_state[f"{P}_n"] = n
    st.session_state[f"{P}_layer"] = layer
    st.session_state[f"{P}_playing"] = False
if st.session_state.get(f"{P}_layer") not in layers:
    st.session_state[f"{P}_layer"] = layers[0]

top = st.columns([1, 1])
with top[0]:
    layer = st.selectbox("Layer", layers, key=f"{P}_layer",
                         format_func=lambda m: f"{m} ({', '.join(views.layer_params(run)[m])})")
with top[1]:
    mode = st.segmented_control("View", VIEWS, default=VIEWS[0], key=f"{P}_mode",
                                help="This epoch: the layer's histograms, tiles and bars at one "
                                     "snapshot; its scrubber and ▶ Play run in your browser. "
                                     "All epochs draws every snapshot at once; Health holds "
                                     "the diagnostics; Tables every number, as CSV.")
    mode = mode or VIEWS[0]
if mode != "This epoch":
    ux.play_button(P, n)


def epoch_view() -> None:
    """Scrubber and every chart that depends on the snapshot shown."""
    if mode == "This epoch":
        controls = st.columns([2, 1, 2])
        with controls[0]:
            rebin = ux.bins_control(f"{P}_bins")
        with controls[1]:
            more = ux.more_views_control(f"{P}_more")
        rgb_scale, neuron = "global", 0
        if more:
            with controls[2]:
                for param in views.layer_params(run).get(layer, []):
                    if ev.extra_kind(run, param):
                        rgb_scale, neuron = ux.extra_controls(run, param, f"{P}_{param}")
        index = ux.render_player(run, layer, P, rebin=rebin, more=more, rgb_scale=rgb_scale,
                                 neuron=neuron)
        ux.set_query(run=run.run_id, epoch=index, layer=layer)
        with st.expander("Share this view"):
            ux.share_view(run, index, layer)
        return
    index = ux.scrubber(P, labels)
    ux.set_query(run=run.run_id, epoch=index, layer=layer)
    if mode == "All epochs":
        ux.render_curves(run, index, key=f"{P}_c")
        ux.render_all_epochs(run, index, layer, key=f"{P}_a")
    elif mode == "Health":
        ux.render_timeline(run, index, key=f"{P}_tl")
        ux.render_diagnostics(run, index, key=f"{P}_d")
        ux.render_health(run, index, key=f"{P}_h")
    else:
        st.markdown("**Weight statistics, every parameter**")
        ux.render_stats_table(run, index, key=f"{P}_t")
        ux.render_health(run, index, key=f"{P}_th", charts=False)
    with st.expander("Share this view"):
        ux.share_view(run, index, layer)


ux.playing_fragment(P, epoch_view)
ux.page_link("compare", "Compare with another run", icon="⚖️")
