"""Streamlit rendering shared by the Explore and Compare pages.

Heavy data is cached by strings: a run by (runs folder, run id, run.json's mtime), a parameter's
run-wide axes and histograms by (runs @ snapshot counts, parameter), stored values by (run,
snapshot index, parameter). Figures are built once per (runs, snapshot, parameter, view) and
shared read-only by every session, so a class scrubbing one run builds each view once and a
scrubber move to an epoch already seen only sends the figure.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from nnviz.analysis import views
from nnviz.analysis.overview import missing_text, source_line
from nnviz.config import RunConfig
from nnviz.errors import NnvizError, StorageError
from nnviz.figures import captions
from nnviz.figures import curves as fc
from nnviz.figures import epoch_view as ev
from nnviz.figures import weights as fw
from nnviz.figures.style import PLOT_CONFIG
from nnviz.store.runs import RUN_FILE, RUN_ID_RE, Run, RunStore, default_root
from ui.services import urlstate

PLAY_EVERY_S = 0.8        # seconds between frames while playing
POLL_EVERY_S = 2.0        # seconds between checks for new snapshots of a running run
ROOT = Path(__file__).resolve().parent.parent
PAGES = {"train": "pages/1_Train.py", "explore": "pages/2_Explore.py",
         "compare": "pages/3_Compare.py", "runs": "pages/4_Runs.py"}

# ----------------------------------------------------------------------------- captions

CAPTIONS = captions.CAPTIONS


# ---------------------------------------------------------------------------- formatting


fmt = ev.fmt
stats_line = ev.stats_line


@st.cache_resource(max_entries=512, show_spinner=False)
def _figure(cache: str, _build: Callable[[], go.Figure]) -> go.Figure:
    # Shared read-only by every session: st.plotly_chart copies a figure before sending it.
    return _build()


def chart(fig: go.Figure | Callable[[], go.Figure], key: str, cache: str | None = None) -> None:
    """A plotly chart at container width, with the PNG download in its toolbar.

    With ``cache`` (a string naming everything the figure depends on), ``fig`` is a builder
    called once per server for that string: a class scrubbing one run builds each view once.
    """
    figure = _figure(cache, fig) if cache is not None else (fig() if callable(fig) else fig)
    st.plotly_chart(figure, width="stretch", config=PLOT_CONFIG, key=key)


def csv_button(df: Any, file_name: str, key: str, label: str = "Download CSV") -> None:
    """A CSV download of a table."""
    st.download_button(label, views.to_csv(df), file_name=file_name, mime="text/csv", key=key)


# ------------------------------------------------------------------------------- peers


def peer(module: str, name: str) -> Callable[..., Any] | None:
    """A function from a module another engineer owns, or None when it is not there yet."""
    try:
        mod = __import__(module, fromlist=[name])
    except ImportError:
        return None
    return getattr(mod, name, None)


def show_error(exc: BaseException) -> None:
    """A user-facing error in plain words (ui.common's version when available)."""
    common = peer("ui.common", "show_error")
    if common is not None:
        common(exc)
    else:
        st.error(str(exc) if isinstance(exc, NnvizError) else
                 f"Something went wrong: {type(exc).__name__}: {exc}")


def run_or_stop(run_id: str | None, no_runs: str) -> Run:
    """The run to show, or stop the page with ``no_runs`` (and a Train link) or the load error."""
    if run_id is None:
        st.info(no_runs)
        page_link("train", "Train a run", icon="🏋️")
        st.stop()
    try:
        return load_run(run_id)
    except StorageError as exc:
        show_error(exc)
        st.stop()
    raise AssertionError("unreachable: st.stop() ends the script")


def page_link(page: str, label: str, **kwargs: Any) -> None:
    """st.page_link to one of the app's pages, if that page exists."""
    path = PAGES.get(page, page)
    if (ROOT / path).exists():
        try:
            st.page_link(path, label=label, **kwargs)
        except Exception:  # outside a multipage app (e.g. a page run alone in a test)
            st.caption(f"{label}: see the {Path(path).stem.split('_', 1)[-1]} page.")


# ------------------------------------------------------------------------------ loading


def runs_root() -> Path:
    """The runs folder: $NNVIZ_RUNS_DIR or ./runs."""
    return default_root()


def _stamp(root: Path, run_id: str) -> int:
    try:
        return (root / run_id / RUN_FILE).stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(max_entries=32, show_spinner=False)
def _load_run(root: str, run_id: str, stamp: int) -> Run:
    return RunStore(root).load(run_id)


def load_run(run_id: str) -> Run:
    """A run, re-read whenever its run.json changes; StorageError if missing or damaged."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise StorageError(f"{run_id!r} is not a valid run id.")
    root = runs_root()
    return _load_run(str(root.resolve()), run_id, _stamp(root, run_id))


@st.cache_data(max_entries=32, ttl=5, show_spinner=False)
def list_runs(root: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Run summaries newest first (cached a few seconds)."""
    return RunStore(root).list_runs()


def runs_key(runs: Sequence[Run]) -> str:
    """Cache key of a set of runs at their current length."""
    return "|".join(views.run_key(r) for r in runs)


@st.cache_data(max_entries=256, show_spinner=False)
def _track(key: str, param: str, _runs: tuple[Run, ...]) -> views.ParamTrack:
    return views.param_track(list(_runs), param)


def track(runs: Sequence[Run], param: str) -> views.ParamTrack:
    """Run-wide (or both-runs-wide) axes and histograms of a parameter, cached."""
    return _track(runs_key(runs), param, tuple(runs))


@st.cache_data(max_entries=128, show_spinner=False)
def _values(run: str, index: int, param: str, _run: Run) -> np.ndarray:
    return ev.stored_values(_run, index, param)


def values(run: Run, index: int, param: str) -> np.ndarray:
    """Stored values of a parameter at a snapshot (in its shape when stored whole)."""
    return _values(f"{run.run_id}@{run.meta.get('created', '')}", index, param, run)


# ----------------------------------------------------------------------------- run choice


def run_label(row: dict[str, Any]) -> str:
    """'cnn · kaiming_normal · seed 42 · completed (3/3) · 20261121-…'."""
    name = f"{row['name']} · " if row.get("name") else ""
    return (f"{name}{row['model']} · {row['init']} · seed {row['seed']} · {row['status']} "
            f"({row['epochs_done']}/{row['epochs']}) · {row['run_id']}")


def run_select(key: str, label: str, default: str | None = None,
               where: Any = None) -> str | None:
    """A selectbox of the stored runs (newest first); returns the chosen run id."""
    root = str(runs_root())
    rows, problems = list_runs(root)
    wanted = {st.session_state.get(key), default} - {None}
    if wanted - {r["run_id"] for r in rows}:  # a run newer than the cached list
        list_runs.clear()
        rows, problems = list_runs(root)
    area = where or st
    if not rows:
        return None
    ids = [r["run_id"] for r in rows]
    label_of = peer("ui.common", "run_label") or run_label
    labels = {r["run_id"]: label_of(r) for r in rows}
    if default in ids and st.session_state.get(key) not in ids:
        st.session_state[key] = default
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]
    choice = area.selectbox(label, ids, format_func=lambda i: labels.get(i, i), key=key)
    if problems:
        area.caption(f"{len(problems)} run folder(s) could not be read (see the Runs page).")
    return choice


def query_value(name: str) -> str | None:
    """One st.query_params value as a string (the last one if repeated), else None."""
    try:
        values_ = st.query_params.get_all(name)
    except Exception:
        return None
    return str(values_[-1]) if values_ else None


def set_query(**params: Any) -> None:
    """Write URL parameters that changed (None removes one); a copied link reopens the view."""
    for name, value in params.items():
        current = query_value(name)
        if value is None:
            if current is not None and name in st.query_params:
                del st.query_params[name]
        elif current != str(value):
            st.query_params[name] = str(value)


def query_dict() -> dict[str, list[str]]:
    """Every URL parameter with all its values."""
    return {k: st.query_params.get_all(k) for k in st.query_params.keys()}


def query_signature(ignore: Sequence[str] = ("run", "epoch", "layer")) -> str:
    """The URL's parameters (except the view keys) as one string: identifies a linked config."""
    q = query_dict()
    return "&".join(f"{k}={v}" for k in sorted(q) if k not in ignore for v in q[k])


def config_in_query() -> bool:
    """Whether the URL carries run options (or a preset) instead of a run id."""
    return urlstate.has_config(query_dict())


def config_from_query(ignore: Sequence[str] = urlstate.VIEW_KEYS
                      ) -> tuple[RunConfig | None, list[str]]:
    """The RunConfig a URL describes (preset and/or options), with warnings for bad values."""
    try:
        return urlstate.query_to_config(query_dict(), ignore=ignore)
    except NnvizError as exc:
        return None, [str(exc)]


def view_from_query(n_snapshots: int, layers: Sequence[str]
                    ) -> tuple[int, str, list[str]]:
    """(snapshot index, layer, warnings) from the URL's epoch and layer; defaults: the last
    snapshot and the first layer."""
    q = {k: v for k, v in query_dict().items() if k in ("epoch", "layer")}
    view, warnings = urlstate.query_to_view(q, n_snapshots, list(layers))
    index = view["epoch"] if view["epoch"] is not None else n_snapshots - 1
    layer = view["layer"] if view["layer"] is not None else layers[0]
    return int(index), layer, warnings


def job_manager() -> Any | None:
    """The app's shared JobManager (ui.common), or None when it is not available."""
    get = peer("ui.common", "job_manager")
    if get is None:
        return None
    try:
        return get()
    except Exception as exc:  # the manager failed to start: say so, keep the page usable
        show_error(exc)
        return None


def show_job(job: Any) -> None:
    """Progress of a training job (ui.common.job_status when available)."""
    status = peer("ui.common", "job_status")
    if status is not None:
        status(job)
        return
    prog = job.progress or {}
    epochs = prog.get("epochs") or job.config.epochs
    done = prog.get("epoch") or 0
    st.progress(min(1.0, float(done) / max(int(epochs), 1)),
                text=f"{job.state}: epoch {done} of {epochs}")


def wait_for_job(job_id: str) -> tuple[str | None, bool]:
    """(run id, pending) of a training job: the run id once its first snapshot exists; while
    it is not there yet, its progress (refreshed every second) and pending = True; for a failed,
    cancelled or unknown job, an error and (None, False)."""
    mgr = job_manager()
    if mgr is None:
        return None, False
    try:
        job = mgr.get(job_id)
    except NnvizError as exc:
        show_error(exc)
        return None, False
    if job.run_id and _has_snapshot(job.run_id):
        return job.run_id, False
    if job.state in ("failed", "cancelled", "done"):
        st.error(f"Training {job.state}: {job.status_detail or 'no details given'}")
        return None, False

    @st.fragment(run_every=1.0)
    def _poll() -> None:
        try:
            current = mgr.get(job_id)
        except NnvizError as exc:
            show_error(exc)
            return
        show_job(current)
        if (current.run_id and _has_snapshot(current.run_id)) or \
                current.state in ("failed", "cancelled", "done"):
            st.rerun()  # the whole page: the run can be explored (or the job ended)

    st.info("Training this run; its epochs appear here as soon as they are recorded.")
    _poll()
    return None, True


def _has_snapshot(run_id: str) -> bool:
    try:
        return load_run(run_id).n_snapshots > 0
    except StorageError:
        return False


def watch_run(run: Run, prefix: str) -> None:
    """While a run trains, re-run the page when a new snapshot or a new status is saved.

    Always one element, so the charts below keep their place (and the epoch player its
    frame) when the run finishes.
    """
    if run.status != "running":
        st.empty()
        return
    seen = (run.n_snapshots, run.status)

    @st.fragment(run_every=POLL_EVERY_S)
    def _watch() -> None:
        try:
            fresh = load_run(run.run_id)
        except StorageError:
            return
        if (fresh.n_snapshots, fresh.status) != seen:
            st.rerun()
        st.caption(f"Training: {len(fresh.history)} of {fresh.config.epochs} epochs done; "
                   "new epochs appear here as they finish.")

    _watch()


def share_view(run: Run, index: int, layer: str) -> None:
    """Two links: this run on this server, and its settings (any nnviz trains the same run)."""
    view = urlstate.view_to_query(epoch=index, layer=layer)
    by_config = {**urlstate.config_to_query(run.config), **view}
    by_run = urlstate.view_to_query(run_id=run.run_id, epoch=index, layer=layer)
    link = peer("ui.common", "share_link")
    if link is not None and source_line(run):  # not trained by nnviz: no settings to share
        link(by_run, label="This run (on this server)")
    elif link is not None:
        link(by_run, label="This run (on this server)")
        link(by_config, label="Its settings: any nnviz trains the same seeded run and opens "
                              "this view")
    else:
        st.code("?" + urlencode(by_run), language=None)
        st.code("?" + urlencode(by_config), language=None)


# ------------------------------------------------------------------------------ scrubber


def scrubber_state(prefix: str, n: int) -> int:
    """Before the scrubber is drawn: clamp its index and, while playing, advance one frame."""
    key = f"{prefix}_index"
    st.session_state.setdefault(key, n - 1)
    st.session_state.setdefault(f"{prefix}_playing", False)
    st.session_state.setdefault(f"{prefix}_tick", 0.0)
    index = int(st.session_state[key]) if st.session_state[key] is not None else n - 1
    seen = st.session_state.get(f"{prefix}_n", n)
    if n > seen and index == seen - 1:  # a new snapshot while watching the latest: follow it
        index = n - 1
    st.session_state[f"{prefix}_n"] = n
    index = min(max(index, 0), n - 1)
    if st.session_state[f"{prefix}_playing"]:
        now = time.monotonic()
        if now - st.session_state[f"{prefix}_tick"] >= 0.9 * PLAY_EVERY_S:
            st.session_state[f"{prefix}_tick"] = now
            if index >= n - 1:
                st.session_state[f"{prefix}_playing"] = False
            else:
                index += 1
    st.session_state[key] = index
    return index


def _toggle_play(prefix: str, n: int) -> None:
    playing = not st.session_state.get(f"{prefix}_playing", False)
    st.session_state[f"{prefix}_playing"] = playing
    if playing:
        st.session_state[f"{prefix}_tick"] = time.monotonic()
        if int(st.session_state.get(f"{prefix}_index") or 0) >= n - 1:
            st.session_state[f"{prefix}_index"] = 0


def _pause(prefix: str) -> None:
    st.session_state[f"{prefix}_playing"] = False


def play_button(prefix: str, n: int) -> None:
    """Play / Pause: animates the scrubber through the snapshots (outside the fragment)."""
    playing = st.session_state.get(f"{prefix}_playing", False)
    st.button("⏸ Pause" if playing else "▶ Play", key=f"{prefix}_play",
              on_click=_toggle_play, args=(prefix, n), disabled=n < 2,
              help="Step through the epochs automatically.")


def scrubber(prefix: str, labels: Sequence[str]) -> int:
    """The epoch scrubber (a select slider over snapshot indices); returns the index shown."""
    n = len(labels)
    index = scrubber_state(prefix, n)
    if n == 1:
        st.caption(f"Snapshot: {labels[0]} (the only one so far)")
        return 0
    st.select_slider("Epoch", options=list(range(n)), format_func=lambda i: labels[i],
                     key=f"{prefix}_index", on_change=_pause, args=(prefix,),
                     help="Drag to scrub through the recorded snapshots; bins and colour "
                          "scales stay fixed so every change you see is real.")
    return index


def playing_fragment(prefix: str, body: Callable[[], None]) -> None:
    """Run ``body`` as a fragment that re-runs every PLAY_EVERY_S while playing."""
    playing = st.session_state.get(f"{prefix}_playing", False)

    def _frame() -> None:
        body()
        if playing and not st.session_state.get(f"{prefix}_playing", False):
            st.rerun()  # stopped at the end (or paused): redraw the page without the timer

    st.fragment(_frame, run_every=PLAY_EVERY_S if playing else None)()


# ------------------------------------------------------------------------------- headers


def run_header(run: Run, where: Any = None) -> None:
    """Model, initializer, seed, data, status and the init digest of a run."""
    area = where or st
    cfg = run.config
    status = run.status
    badge = {"completed": "✅", "running": "⏳", "diverged": "💥", "cancelled": "⏹",
             "failed": "❌", "interrupted": "⚠️"}.get(status, "")
    own = source_line(run)  # a user's own model or checkpoints: its config is a placeholder
    if own:
        area.markdown(f"**{cfg.name or run.run_id}** — {own}, {badge} {status} "
                      f"({len(run.history)} epochs recorded)")
    else:
        area.markdown(
            f"**{cfg.name or run.run_id}** — model `{cfg.model}`, init `{cfg.init}`, seed "
            f"`{cfg.seed}`, data `{cfg.dataset}`, optimizer `{cfg.optimizer}` (lr "
            f"{fmt(cfg.lr)}), {badge} {status} ({len(run.history)}/{cfg.epochs} epochs)")
    detail = run.meta.get("status_detail")
    if status in ("diverged", "failed") and detail:
        area.error(f"This run {status}: {detail}")
    elif detail:
        area.caption(detail)
    else:
        area.empty()  # one element either way: what follows keeps its place


# ------------------------------------------------------------------------ one parameter


def _histogram(run: Run, index: int, param: str, tr: views.ParamTrack, key: str,
               rebin: bool = False) -> None:
    """The histogram with the theory curve, on the track's bins and y range (or, with
    ``rebin``, on this snapshot's own range), and its caption."""
    at = f"{tr.runs}|{run.run_id}|{index}|{param}"
    chart(lambda: ev.histogram_figure(run, index, param, tr, rebin=rebin), key=f"{key}_hist",
          cache=f"{'rebin' if rebin else 'hist'}|{at}")
    for note in ev.histogram_notes(run, index, param, tr, rebin=rebin):
        st.caption(note)
    if not rebin:
        for text in ev.histogram_caption(run, param, tr):
            st.caption(text)


def _main_view(run: Run, index: int, param: str, tr: views.ParamTrack, key: str) -> None:
    """Conv filter tiles, the tutorial's neuron tiles, or bars, by the parameter's shape."""
    kind = ev.main_kind(run, param)
    if kind is None:
        return
    chart(lambda: ev.main_figure(run, index, param, tr, values(run, index, param)),
          key=f"{key}_{kind}", cache=f"{kind}|{tr.runs}|{run.run_id}|{index}|{param}")
    st.caption(CAPTIONS[kind])


def _extra_view(run: Run, index: int, param: str, tr: views.ParamTrack, key: str,
                control_key: str) -> None:
    """RGB filters of a first conv layer, or one neuron's weights on its input map."""
    kind = ev.extra_kind(run, param)
    if kind is None:
        return
    rgb_scale, neuron = extra_controls(run, param, control_key)
    chart(lambda: ev.extra_figure(run, index, param, tr, values(run, index, param),
                                  rgb_scale=rgb_scale, neuron=neuron), key=f"{key}_{kind}",
          cache=f"{kind}|{rgb_scale}|{neuron}|{tr.runs}|{run.run_id}|{index}|{param}")
    st.caption(CAPTIONS[kind])


def extra_controls(run: Run, param: str, control_key: str) -> tuple[str, int]:
    """The RGB scale switch (first conv layer) or the output-neuron picker (a linear layer on
    a feature map) of the secondary view: (rgb scale, neuron)."""
    kind = ev.extra_kind(run, param)
    if kind == "rgb":
        scale = st.segmented_control(
            "RGB scale", list(ev.RGB_SCALES), default="global", key=f"{control_key}_rgbscale",
            help="Global: one scale for all filters and epochs; per filter: each stretched to "
                 "its own range.") or "global"
        return scale, 0
    if kind == "spatial":
        n_out = int(run.params[param]["shape"][0])
        neuron = st.number_input("Output neuron", 0, n_out - 1, 0, step=1,
                                 key=f"{control_key}_neuron",
                                 help="Which output neuron's weights to fold back onto the "
                                      "input feature map.")
        return "global", int(neuron)
    return "global", 0


def _delta(run: Run, index: int, param: str, tr: views.ParamTrack, key: str) -> None:
    chart(lambda: ev.delta_figure(run, index, param, tr), key=f"{key}_delta",
          cache=f"delta|{tr.runs}|{run.run_id}|{index}|{param}")
    st.caption(ev.delta_caption(index))


def param_title(run: Run, param: str, theory: bool = True) -> None:
    """'#### `conv1.weight` · 16×3×3×3 = 432' and (optionally) the init theory's formula."""
    st.markdown(f"#### `{param}` · {views.shape_text(run.params[param]['shape'])}")
    if theory:
        theory_caption(run, param)


def theory_caption(run: Run, param: str) -> None:
    """The initializer's formula for this parameter, with its theoretical std."""
    theory = views.theory_of(run, param)
    if theory is not None and theory.formula:
        st.caption(f"Init theory: {theory.formula}")


def render_param_column(run: Run, index: int, param: str, tr: views.ParamTrack, key: str,
                        control_key: str) -> None:
    """The views of one parameter stacked in one column (one side of Compare)."""
    theory_caption(run, param)
    st.markdown(stats_line(views.stats_row(run, index, param)))
    _histogram(run, index, param, tr, key)
    _main_view(run, index, param, tr, key)
    _extra_view(run, index, param, tr, key, control_key)
    _delta(run, index, param, tr, key)


BINS = ["fixed for the run", "this snapshot"]


def bins_control(key: str) -> bool:
    """The histogram-bins switch; True when the histograms are re-binned per snapshot."""
    choice = st.segmented_control(
        "Histogram bins", BINS, default=BINS[0], key=key,
        help="Fixed: the same bins and y axis for every epoch, so movement is real. This "
             "snapshot: re-binned on its own range, to read the shape of a histogram that a "
             "later explosion squeezed into a few bins.")
    return choice == BINS[1]


MORE_VIEWS_HELP = ("Adds the RGB view of first-layer filters (or one neuron's weights on its "
                   "input feature map) and the histogram of W_t − W_0 (how far each weight "
                   "moved since init). Off by default: fewer charts keep the page light.")


def more_views_control(key: str) -> bool:
    """The toggle for the secondary per-parameter views."""
    return st.toggle("More views", value=False,
                     key=key, help=MORE_VIEWS_HELP)


# ----------------------------------------------------------------------- all-epoch views


def render_all_epochs(run: Run, index: int, layer: str, key: str) -> None:
    """Ridgeline and percentile bands of the layer's parameters, drift and update ratio."""
    epochs = views.snapshot_epochs(run)
    labels = [views.snapshot_label(run, i) for i in range(run.n_snapshots)]
    current = epochs[index]
    for param in views.layer_params(run).get(layer, []):
        tr = track([run], param)
        left, right = st.columns(2)
        with left:
            chart(fw.ridgeline(tr.edges, tr.counts_matrix(run.run_id), labels, index,
                               title=f"{param}: every snapshot, fixed bins"),
                  key=f"{key}_{param}_ridge")
            st.caption(CAPTIONS["ridgeline"])
        with right:
            ep, pct = views.percentile_series(run, param)
            chart(fw.percentile_bands(ep, pct, current, title=f"{param}: distribution over "
                                      "epochs"), key=f"{key}_{param}_bands")
            st.caption(CAPTIONS["bands"])
    names = views.param_names(run)
    left, right = st.columns(2)
    with left:
        ep, drift = views.param_series(run, "drift", names)
        chart(fc.drift_curves(ep, drift, current), key=f"{key}_drift")
        st.caption(CAPTIONS["drift"])
    with right:
        ep, ratio = views.param_series(run, "update_ratio", names)
        chart(fc.update_ratio_curves(ep, ratio, current), key=f"{key}_ratio_t")
        st.caption(CAPTIONS["update_ratio"])


# ---------------------------------------------------------------------------- curves


def render_curves(run: Run, index: int, key: str) -> None:
    """Loss and accuracy per epoch with the epoch shown marked; history as CSV."""
    current = views.current_epoch(run, index)
    has_acc = any(h.get("val_acc") is not None or h.get("train_acc") is not None
                  for h in run.history)
    cols = st.columns(2 if has_acc else 1)
    at = f"{run.run_id}|{len(run.history)}|{current}"
    with cols[0]:
        chart(lambda: fc.training_curve(run.history, "loss", current), key=f"{key}_loss",
              cache=f"loss|{at}")
        st.caption(CAPTIONS["loss"])
    if has_acc:
        with cols[1]:
            chart(lambda: fc.training_curve(run.history, "acc", current), key=f"{key}_acc",
                  cache=f"acc|{at}")
            st.caption(CAPTIONS["acc"])
    if run.history:
        csv_button(views.history_frame(run), f"{run.run_id}-history.csv", key=f"{key}_hcsv",
                   label="Download history CSV")


# ---------------------------------------------------------------------------- health


def render_health(run: Run, index: int, key: str, charts: bool = True) -> None:
    """Gradient, update-ratio and activation statistics per layer: charts and CSV tables."""
    grads = views.grad_table(run, index)
    acts = views.activation_table(run, index)
    if charts:
        _health_charts(grads, acts, key, missing_text(run, "gradients"),
                       missing_text(run, "activations"))
    st.markdown("**Gradients and updates**")
    st.dataframe(grads, hide_index=True, width="stretch")
    csv_button(grads, f"{run.run_id}-s{index}-gradients.csv", key=f"{key}_gcsv")
    st.markdown("**Activations (probe batch)**")
    st.dataframe(acts, hide_index=True, width="stretch")
    csv_button(acts, f"{run.run_id}-s{index}-activations.csv", key=f"{key}_acsv")


def _health_charts(grads: Any, acts: Any, key: str, no_grads: str, no_acts: str) -> None:
    """Per-parameter gradient norm and update ratio; per-layer activation std and fractions."""
    left, right = st.columns(2)
    with left:
        if grads["steps"].notna().any():
            chart(fc.layer_bars(list(grads["parameter"]), list(grads["grad norm ‖g‖"]),
                                title="Gradient norm ‖g‖ per parameter", y_title="‖g‖",
                                log_y=True, kind="grad_norm"), key=f"{key}_gnorm")
            st.caption(CAPTIONS["grad"])
            chart(fc.layer_bars(list(grads["parameter"]), list(grads["update ratio ‖ΔW‖/‖W‖"]),
                                title="Update ratio ‖ΔW‖/‖W‖ per parameter",
                                y_title="update ratio", log_y=True, ref=views.UPDATE_RATIO_REF,
                                ref_label="≈1e-3 (CS231n)", kind="update_ratio_bars"),
                  key=f"{key}_ratio")
            st.caption(CAPTIONS["update_ratio"])
        else:
            st.info(no_grads)
    with right:
        if len(acts):
            names = list(acts["layer"])
            chart(fc.activation_std(names, list(acts["mean"]), list(acts["std"])),
                  key=f"{key}_astd")
            chart(fc.activation_fractions(names, list(acts["dead fraction"]),
                                          list(acts["saturated fraction"]),
                                          list(acts["zero fraction"])), key=f"{key}_afrac")
            st.caption(CAPTIONS["activations"])
        else:
            st.info(no_acts)


def render_stats_table(run: Run, index: int, key: str) -> None:
    """Weight statistics of every parameter at the snapshot, with a CSV download."""
    df = views.stats_table(run, index)
    st.dataframe(df, hide_index=True, width="stretch")
    csv_button(df, f"{run.run_id}-s{index}-weights.csv", key=f"{key}_wcsv")


def _diag(name: str, run: Run, index: int, key: str) -> bool:
    """Call ui.diagnostics_panel.<name>(run, index[, key]); False when it is not available."""
    fn = peer("ui.diagnostics_panel", name)
    if fn is None:
        return False
    try:
        if "key" in inspect.signature(fn).parameters:
            fn(run, index, key=key)
        else:
            fn(run, index)
    except Exception as exc:  # a panel bug must not take the page down
        show_error(exc)
    return True


def render_timeline(run: Run, index: int, key: str) -> None:
    """The health timeline (which flags hold at which snapshot), when diagnostics exist."""
    _diag("render_timeline", run, index, key)


def render_diagnostics(run: Run, index: int, key: str, signal: bool = True) -> None:
    """The diagnostics panel (and the signal-through-depth chart), or raw health numbers
    while ui.diagnostics_panel is not available."""
    if _diag("render_panel", run, index, key):
        if signal:
            _diag("render_signal", run, index, key)
        return
    h = views.health_numbers(run, index)
    nonfinite = h["nan_weights"] + h["inf_weights"] + h["nan_activations"] + h["inf_activations"]
    if nonfinite:
        st.error(f"Non-finite values at this snapshot: weights NaN {h['nan_weights']}, Inf "
                 f"{h['inf_weights']}; activations NaN {h['nan_activations']}, Inf "
                 f"{h['inf_activations']}.")
    else:
        st.success("No NaN or Inf in weights or activations at this snapshot.")
    st.markdown(
        f"Update ratio ‖ΔW‖/‖W‖ from {fmt(h['min_update_ratio'])} to "
        f"{fmt(h['max_update_ratio'])} (healthy ≈ 1e-3) · gradient norm from "
        f"{fmt(h['min_grad_norm'])} to {fmt(h['max_grad_norm'])}.")
    acts = views.activation_table(run, index)
    if len(acts):
        st.caption("Activation std per layer: " + ", ".join(
            f"{n} {fmt(s, 3)}" for n, s in zip(acts["layer"], acts["std"], strict=True)))


# ---------------------------------------------------------------------------- epoch player


@st.cache_resource(max_entries=16, show_spinner="Preparing every snapshot for the player…")
def _player_payload(cache: str, _build: Callable[[], str]) -> str:
    # Shared read-only by every session: a class scrubbing one run builds it once.
    return _build()


def _timeline_rows(run: Run) -> list[tuple[int, float, dict[str, str]]] | None:
    rows = peer("ui.diagnostics_panel", "timeline_rows")
    if rows is None:
        return None
    try:
        return rows(run)
    except Exception:  # the panel below says what failed; the charts still play
        return None


def render_player(run: Run, layer: str, prefix: str, *, rebin: bool = False,
                  more: bool = False, rgb_scale: str = "global", neuron: int = 0) -> int:
    """The "This epoch" view as the epoch player (every chart redrawn in the browser as its
    slider moves); returns the snapshot index it shows, which is also kept in
    ``session_state[prefix + "_index"]``."""
    from ui import player

    n = run.n_snapshots
    index_key, at_key = f"{prefix}_index", f"{prefix}_pl_at"
    index = scrubber_state(prefix, n)
    cache = f"player|{views.run_key(run)}|{run.status}|{layer}|{rebin}|{more}|{rgb_scale}|{neuron}"
    ss = st.session_state
    # Python moves the player only when something else changed the snapshot (a link, another
    # view's scrubber, a new epoch while watching the latest) or the charts are new.
    if ss.get(at_key) != index or ss.get(f"{prefix}_pl_key") != cache:
        ss[f"{prefix}_pl_seq"] = ss.get(f"{prefix}_pl_seq", 0) + 1
        ss[f"{prefix}_pl_start"] = index
        ss[at_key] = index
        ss[f"{prefix}_pl_key"] = cache

    def build() -> str:
        params = views.layer_params(run).get(layer, [])
        tracks = {p: track([run], p) for p in params}
        return player.encode(ev.player_payload(
            run, layer, tracks, values=lambda i, p: values(run, i, p), rebin=rebin, more=more,
            rgb_scale=rgb_scale, neuron=neuron, timeline=_timeline_rows(run)))

    try:
        payload = _player_payload(cache, build)
    except (NnvizError, OSError, ValueError) as exc:
        show_error(exc)
        return index
    value = player.epoch_player(payload, cache, start=ss[f"{prefix}_pl_start"],
                                start_seq=ss[f"{prefix}_pl_seq"], key=f"{prefix}_player")
    if isinstance(value, dict) and value != ss.get(f"{prefix}_pl_seen") \
            and value.get("key") == cache and isinstance(value.get("index"), int):
        ss[f"{prefix}_pl_seen"] = value
        index = min(max(int(value["index"]), 0), n - 1)
        ss[index_key] = index
        ss[at_key] = index
    return index
