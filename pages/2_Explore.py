"""Explore one run: scrub through its epochs, layer by layer."""

from __future__ import annotations

import streamlit as st

from nnviz.analysis import views
from nnviz.errors import NnvizError, StorageError
from nnviz.figures import epoch_view as ev
from nnviz.i18n import t
from ui import ownership as own
from ui import shell, state
from ui.explore import epochs, health, param, player_view, query
from ui.explore.jobs import manager_or_none, run_or_stop, wait_for_job, watch_run
from ui.explore.player_view import CHART_VIEWS, VIEWS
from ui.explore.scrubber import play_button, playing_fragment, scrubber
from ui.links import page_link
from ui.runs import run_header, run_picker
from ui.text import info, show_error, warning

P = "explore"  # session-state key prefix of this page

shell.page("explore")
ss = st.session_state
ss.setdefault(f"{P}_url_run", None)       # the URL's run id last applied
ss.setdefault(f"{P}_adopted_job", None)   # the job from another page last opened
ss.setdefault(f"{P}_url_job", {})         # linked config signature -> its job id
st.title(t("Explore a run"))


def _leave_link() -> None:
    """on_change of the run picker after a linked run failed: drop the link's settings."""
    query.set_query(**{k: None for k in query.query_dict() if k not in ("run", "lang")})
    query.set_query(run=ss[f"{P}_run_pick"])


def run_from_config() -> None:
    """A link that describes a run's config: train it (or reuse an identical run) and open it.
    If its training fails, say so and show no other run until the user picks one."""
    cfg, warnings = query.config_from_query()
    for w in dict.fromkeys(warnings):
        warning(w)
    if cfg is None:
        return
    mgr = manager_or_none()
    if mgr is None:
        return
    jobs = ss[f"{P}_url_job"]
    signature = query.query_signature()
    if signature not in jobs:
        try:
            jobs[signature] = mgr.submit(cfg, owner=own.session_id()).job_id
        except NnvizError as exc:
            show_error(exc)
            return
    run_id, pending = wait_for_job(jobs[signature])
    if pending:
        st.stop()
    if run_id is None:  # the link's run could not be trained: no other run's charts below it
        info(t("Fix the link's settings on the Train page, or pick a stored run in the sidebar."))
        run_picker(f"{P}_run_pick", t("Run"), where=st.sidebar, on_change=_leave_link)
        st.stop()
    ss[f"{P}_run_pick"] = run_id
    ss[f"{P}_url_run"] = run_id
    state.list_runs(fresh=True)
    query.set_query(**{k: None for k in query.query_dict()
                       if k not in ("run", "epoch", "layer", "lang")},
                    run=run_id)


def choose_run() -> str | None:
    """The run to show: a new job from another page, the URL's run or config, or the picker."""
    job_id = ss.get(state.JOB_KEY)
    url_run = query.query_value("run")
    if job_id and job_id != ss[f"{P}_adopted_job"]:
        run_id, pending = wait_for_job(job_id)
        if pending:
            st.stop()
        ss[f"{P}_adopted_job"] = job_id
        if run_id is not None:
            ss[f"{P}_run_pick"] = run_id
            ss[f"{P}_url_run"] = run_id
            state.list_runs(fresh=True)
            query.set_query(epoch=None, layer=None)
    elif url_run is not None and url_run != ss[f"{P}_url_run"]:
        ss[f"{P}_url_run"] = url_run
        try:
            state.load_run(url_run)
            ss[f"{P}_run_pick"] = url_run
        except StorageError as exc:
            if query.config_in_query():
                run_from_config()
            else:
                warning(t("The link's run could not be opened ({error}); pick a run instead.",
                          error=exc))
    elif url_run is None and query.config_in_query():
        run_from_config()
    mgr = manager_or_none()
    if mgr is None:
        return run_picker(f"{P}_run_pick", t("Run"), where=st.sidebar, empty=None)
    # without a link: this session's own runs and the lessons, never other people's
    return own.run_select(f"{P}_run_pick", t("Run"), mgr, where=st.sidebar)


run = run_or_stop(choose_run(), t("No runs yet. Train one on the Train page (or pick a lesson "
                                  "on the Home page), then come back here."))
if run.n_snapshots == 0:
    st.info(t("This run has no snapshot yet; it appears here as soon as its first one is "
              "saved."))
    watch_run(run)
    st.stop()

run_header(run)
watch_run(run)
n = run.n_snapshots
labels = [views.snapshot_label(run, i) for i in range(n)]
layers = views.layer_names(run)

# A newly shown run opens at the link's epoch and layer (when the link names this run), else at
# its last snapshot, on the same layer if it has one.
if ss.get(f"{P}_shown_run") != run.run_id:
    ss[f"{P}_shown_run"] = run.run_id
    index, layer = n - 1, ss.get(f"{P}_layer")
    if query.query_value("run") in (None, run.run_id):
        index, layer, warnings = query.view_from_query(n, layers)
        for w in warnings:
            warning(w)
    ss[f"{P}_index"] = index
    ss[f"{P}_n"] = n
    ss[f"{P}_layer"] = layer
    ss[f"{P}_playing"] = False
if ss.get(f"{P}_layer") not in layers:
    ss[f"{P}_layer"] = layers[0]


def layer_label(name: str) -> str:
    return f"{name} ({', '.join(views.layer_params(run)[name])})"


def epoch_view() -> None:
    """The layer picker, the chart options, the player's frame with the view control, and
    every chart that depends on the snapshot shown: one fragment, so a layer or view switch
    reruns only this part of the page.

    The frame draws the view control itself and holds "This epoch" and "All epochs" as
    payloads, so a switch between them is made in the browser at once; the rerun it starts
    sends the frame nothing new. For Health and Tables the frame shows only its control and
    Python draws the view below it. The frame keeps its place (after the top row) in every
    view, so it and the payloads it holds survive a switch."""
    view = player_view.view_shown(P)
    # One line of options, so that a phone's first screen reaches the charts; the chart
    # options are drawn in every view (their choices kept), usable in "This epoch".
    top = st.columns([1, 1], vertical_alignment="bottom")
    with top[0]:
        layer = st.selectbox(t("Layer"), layers, key=f"{P}_layer", format_func=layer_label)
    with top[1], st.popover(t("Chart options"), icon=":material/tune:",
                            disabled=view != VIEWS[0],
                            help=t("Histogram bins and more views of the “This epoch” view.")):
        rebin = param.bins_control(f"{P}_bins")
        more = param.more_views_control(f"{P}_more")
        rgb_scale, neuron = "global", 0
        if more:
            for name in views.layer_params(run).get(layer, []):
                if ev.extra_kind(run, name):
                    rgb_scale, neuron = param.extra_controls(run, name, f"{P}_{name}")

    def payload(view: str, name: str, rgb_scale: str = "global", neuron: int = 0):
        if view == VIEWS[1]:
            return epochs.all_epochs(run, name)
        return player_view.this_epoch(run, name, rebin=rebin, more=more, rgb_scale=rgb_scale,
                                      neuron=neuron)

    charts = {v: payload(v, layer, rgb_scale, neuron) for v in CHART_VIEWS}
    # the layers a reader may pick next, asked for ahead by the frame (another layer's extra
    # views open at their controls' defaults: Streamlit forgets a control not drawn)
    ahead = {layer_label(name): payload(view, name)
             for name in player_view.ahead_layers(layers, layer)} if view in CHART_VIEWS else {}
    index = player_view.play_views(
        P, view, charts, n=n, prefetch=run.status != "running", png_prefix=run.run_id,
        ahead=ahead, picker=t("Layer"), label=t("View"),
        help=t("This epoch: the layer's histograms, tiles and bars at "
               "one snapshot; its scrubber and Play run in your browser. "
               "All epochs draws every snapshot at once; Health holds "
               "the diagnostics; Tables every number, as CSV."))
    if view == VIEWS[1]:
        epochs.history_csv(run, key=f"{P}_a")
    elif view not in CHART_VIEWS:
        play_button(P, n)
        index = scrubber(P, labels)
        if view == "Health":
            health.render_timeline(run, index, key=f"{P}_tl")
            health.render_diagnostics(run, index, key=f"{P}_d")
            health.render_health(run, index, key=f"{P}_h")
        else:
            st.markdown(t("**Weight statistics, every parameter**"))
            health.render_stats_table(run, index, key=f"{P}_t")
            health.render_health(run, index, key=f"{P}_th", charts=False)
    query.set_query(run=run.run_id, epoch=index, layer=layer)
    # Its links are drawn once it is opened: a code box loads Streamlit's syntax highlighter
    # (1.5 MB, ~0.2 s of the browser's main thread) in front of the player's first charts.
    share = st.expander(t("Share this view"), key=f"{P}_share", on_change="rerun")
    if share.open:
        with share:
            query.share_view(run, index, layer)


playing_fragment(P, epoch_view)
page_link("compare", t("Compare with another run"))
