"""Compare two runs side by side: one scrubber, shared bins and colour scales."""

from __future__ import annotations

import streamlit as st

from nnviz.analysis import views
from nnviz.engine.initializers import INITIALIZERS
from nnviz.errors import NnvizError, StorageError
from nnviz.figures import curves as fc
from nnviz.figures.captions import CAPTIONS
from nnviz.i18n import N_, t
from ui import ownership as own
from ui import shell, state
from ui.explore import health, query
from ui.explore.charts import chart, png_name
from ui.explore.compare_player import (
    aligned_label,
    loss_curves,
    loss_histories,
    render_compare_player,
)
from ui.explore.jobs import manager_or_none, run_or_stop, wait_for_job, watch_run
from ui.explore.scrubber import play_button, playing_fragment, scrubber
from ui.runs import run_header
from ui.text import literal, show_error, warning

P = "compare"  # session-state key prefix of this page
MODES = [N_("Side by side"), N_("Health")]

shell.page("compare")
st.session_state.setdefault(f"{P}_url_seen", None)
st.session_state.setdefault(f"{P}_twin_job", None)
st.title(t("Compare two runs"))
st.caption(t("Same seed, two initializers: the data, the batches and the order are identical, "
             "so every difference you see comes from the initializer. Bins and colour scales are "
             "shared by both runs."))

# The URL's runs apply when the link changes (run = A, run_b = B).
url = (query.query_value("run"), query.query_value("run_b"))
if url != st.session_state[f"{P}_url_seen"]:
    st.session_state[f"{P}_url_seen"] = url
    for value, key in zip(url, (f"{P}_a", f"{P}_b"), strict=True):
        if value is None:
            continue
        try:
            state.load_run(value)
            st.session_state[key] = value
        except StorageError as exc:
            warning(t("The link's run {run} could not be opened ({error}); pick one below.",
                      run=repr(value), error=exc))

with st.sidebar:
    a_id = own.run_select(f"{P}_a", t("Run A"), manager_or_none(), where=st.sidebar)
run_a = run_or_stop(a_id, t("No runs yet. Train one on the Train page, then compare it here."))

# "Same seed, other initializer": train (or reuse) A's twin and show it as B.
with st.sidebar:
    st.markdown(t("**Same seed, other initializer**"))
    others = [n for n in INITIALIZERS if n != run_a.config.init]
    twin_init = st.selectbox(t("Initializer for the twin"), others, key=f"{P}_twin_init",
                             format_func=lambda n: t(INITIALIZERS[n].label) if n in INITIALIZERS
                             else n)
    if st.button(t("Train / open the twin"), key=f"{P}_twin_go",
                 help=t("Same config and seed as run A with another initializer; an identical "
                        "finished run is reused instead of trained again.")):
        mgr = manager_or_none()
        if mgr is not None:
            try:
                st.session_state[f"{P}_twin_job"] = mgr.submit(
                    views.twin_config(run_a.config, twin_init), owner=own.session_id()).job_id
            except NnvizError as exc:
                show_error(exc)
twin_job = st.session_state[f"{P}_twin_job"]
if twin_job:
    twin_run, pending = wait_for_job(twin_job)
    if not pending:
        st.session_state[f"{P}_twin_job"] = None
    if twin_run is not None:
        st.session_state[f"{P}_b"] = twin_run
        state.list_runs(fresh=True)

with st.sidebar:
    rows, _ = state.list_runs()
    other = next((r["run_id"] for r in rows if r["run_id"] != a_id), a_id)
    b_id = own.run_select(f"{P}_b", t("Run B"), manager_or_none(), default=other,
                          where=st.sidebar)
try:
    run_b = state.load_run(b_id)
except StorageError as exc:
    show_error(exc)
    st.stop()
if run_b.run_id == run_a.run_id:
    st.warning(t("Run A and run B are the same run: pick another run B, or train the twin with "
                 "another initializer in the sidebar."))
if not run_a.n_snapshots or not run_b.n_snapshots:
    st.info(t("One of the runs has no snapshot yet; it appears as soon as its first one is "
              "saved."))
    watch_run(run_a)
    watch_run(run_b)
    st.stop()

cols = st.columns(2)
for col, run, side in ((cols[0], run_a, "A"), (cols[1], run_b, "B")):
    with col:
        st.subheader(t("Run {side}", side=side))
        run_header(run)
        watch_run(run)

with st.expander(t("What differs: config and initial weights"), expanded=True):
    diff = views.config_diff(run_a.config, run_b.config)
    if len(diff):
        st.dataframe(diff, hide_index=True, width="stretch")
    else:
        st.write(t("The two configs are identical."))
    da, db = run_a.record.init_digest, run_b.record.init_digest
    same = t("identical") if da and da == db else t("different")
    st.markdown(t("Initial-weight digests (SHA-256 of every parameter at init): A {a}, B {b}: "
                  "{same}.", a=literal(da) or "—", b=literal(db) or "—", same=same))

aligned = views.align_snapshots(run_a, run_b)
labels = [aligned_label(e) for e, _, _ in aligned]
layers = views.comparable_layers(run_a, run_b)
if st.session_state.get(f"{P}_shown") != (run_a.run_id, run_b.run_id):
    st.session_state[f"{P}_shown"] = (run_a.run_id, run_b.run_id)
    st.session_state[f"{P}_index"] = len(aligned) - 1
    if layers and (query.query_value("run"), query.query_value("run_b")) == (run_a.run_id,
                                                                             run_b.run_id):
        index, layer, warnings = query.view_from_query(len(aligned), layers)
        for w in warnings:
            warning(w)
        st.session_state[f"{P}_index"] = index
        st.session_state[f"{P}_layer"] = layer
    st.session_state[f"{P}_n"] = len(aligned)
    st.session_state[f"{P}_playing"] = False

def compare_view() -> None:
    """The layer and view pickers, the shared scrubber (or the player) and both runs' charts at
    the aligned snapshots: one fragment, so a layer or view switch reruns only this part."""
    top = st.columns([3, 1])
    with top[0]:
        if layers:
            if st.session_state.get(f"{P}_layer") not in layers:
                st.session_state[f"{P}_layer"] = layers[0]
            layer = st.selectbox(t("Layer"), layers, key=f"{P}_layer")
        else:
            layer = None
            st.info(t("These runs have different layers (different models or sizes), so only their "
                      "curves and health can be compared."))
    with top[1]:
        mode = st.segmented_control(t("View"), MODES, default=MODES[0], key=f"{P}_mode",
                                    format_func=t) or MODES[0]
    in_player = mode == "Side by side" and layer is not None  # scrubbed in the browser
    bar = st.container()  # Play, in the views Python draws (a fixed place, like the player's)
    if not in_player:
        with bar:
            play_button(P, len(aligned))
    slot = st.container()  # the player's place in both views (hidden in Health: kept mounted)
    if in_player:
        with slot:
            pos = render_compare_player(run_a, run_b, aligned, layers, layer, P)
    else:
        if layer is not None:
            with slot:
                render_compare_player(run_a, run_b, aligned, layers, layer, P,
                                      hidden=True)
        pos = scrubber(P, labels)
    epoch, ia, ib = aligned[pos]
    query.set_query(run=run_a.run_id, run_b=run_b.run_id, epoch=pos, layer=layer)
    if mode == "Health":
        st.markdown(t("Showing A at {a} and B at {b}.",
                      a=f"**{views.snapshot_label(run_a, ia)}**",
                      b=f"**{views.snapshot_label(run_b, ib)}**"))
        left, right = st.columns(2)
        for col, run, idx, side in ((left, run_a, ia, "a"), (right, run_b, ib, "b")):
            with col:
                st.markdown(t("**Run {side}** · init `{init}`", side=side.upper(),
                              init=run.config.init))
                health.render_diagnostics(run, idx, key=f"{P}_{side}_d")
                health.render_health(run, idx, key=f"{P}_{side}_h")
    if in_player:
        return  # the player's frame draws the loss curves too (compare_payload)
    histories = loss_histories(run_a, run_b)
    for col, (key, title, png) in zip(st.columns(2), loss_curves(), strict=True):
        with col:
            chart(fc.compare_curves(histories, key, epoch, title=title), key=f"{P}_{key}",
                  png=png_name(run_a.run_id, run_b.run_id, png))
    st.caption(CAPTIONS["loss"])


playing_fragment(P, compare_view)
