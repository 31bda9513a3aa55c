"""One parameter's charts stacked in a column (a side of Compare) and the switches of the
per-parameter views (histogram bins, more views, RGB scale, output neuron)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

from nnviz.analysis import views
from nnviz.figures import captions
from nnviz.figures import epoch_view as ev
from nnviz.store.runs import Run
from ui.explore.charts import cached_figure, chart, png_name, values
from ui.text import literal

CAPTIONS = captions.CAPTIONS
BINS = ["fixed for the run", "this snapshot"]
MORE_VIEWS_HELP = ("Adds the RGB view of first-layer filters (or one neuron's weights on its "
                   "input feature map) and the histogram of W_t − W_0 (how far each weight "
                   "moved since init). Off by default: fewer charts keep the page light.")


def shared_y_top(runs: Sequence[Run], param: str, tr: views.ParamTrack) -> float:
    """The histogram y range that fits every run's counts and theory curve (Compare: one
    y axis for A and B, so equal heights mean equal counts)."""
    top = float(tr.count_max)
    for run in runs:
        curve = views.theory_curve(views.theory_of(run, param), tr.edges, tr.numel)
        if curve is not None:
            top = max(top, float(curve[1].max()))
    return top


def _on_y_range(build: go.Figure, y_top: float) -> go.Figure:
    fig = go.Figure(build)  # a copy: the cached figure is shared by every session
    fig.update_yaxes(range=[0, y_top * 1.08])
    return fig


def _histogram(run: Run, index: int, param: str, tr: views.ParamTrack, key: str,
               rebin: bool = False, y_top: float | None = None) -> None:
    """The histogram with the theory curve, on the track's bins and y range (or, with
    ``rebin``, on this snapshot's own range), and its caption."""
    at = f"{tr.runs}|{run.run_id}|{index}|{param}"
    cache = f"{'rebin' if rebin else 'hist'}|{at}"
    png = png_name(run.run_id, param, views.snapshot_label(run, index), "histogram")
    if y_top is not None and not rebin:
        built = cached_figure(cache, lambda: ev.histogram_figure(run, index, param, tr))
        chart(_on_y_range(built, y_top), key=f"{key}_hist", png=png)
    else:
        chart(lambda: ev.histogram_figure(run, index, param, tr, rebin=rebin),
              key=f"{key}_hist", cache=cache, png=png)
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
          key=f"{key}_{kind}", cache=f"{kind}|{tr.runs}|{run.run_id}|{index}|{param}",
          png=png_name(run.run_id, param, views.snapshot_label(run, index), kind))
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
          cache=f"{kind}|{rgb_scale}|{neuron}|{tr.runs}|{run.run_id}|{index}|{param}",
          png=png_name(run.run_id, param, views.snapshot_label(run, index), kind))
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
          cache=f"delta|{tr.runs}|{run.run_id}|{index}|{param}",
          png=png_name(run.run_id, param, views.snapshot_label(run, index), "drift"))
    st.caption(ev.delta_caption(index))


def param_title(run: Run, param: str) -> None:
    """'#### `conv1.weight` · 16×3×3×3 = 432'."""
    st.markdown(f"#### {literal(param)} · {views.shape_text(run.params[param]['shape'])}")


def theory_caption(run: Run, param: str) -> None:
    """The initializer's formula for this parameter, with its theoretical std (shown
    literally: an imported run's formula is file text)."""
    theory = views.theory_of(run, param)
    if theory is not None and theory.formula:  # its numbers matter: body text, not a caption
        st.markdown(f"Init theory: {literal(theory.formula)}")


def render_param_column(run: Run, index: int, param: str, tr: views.ParamTrack, key: str,
                        control_key: str, y_top: float | None = None) -> None:
    """The views of one parameter stacked in one column (one side of Compare); ``y_top``
    fixes the histogram's y range (shared by both sides)."""
    theory_caption(run, param)
    st.markdown(ev.stats_line(views.stats_row(run, index, param)))
    _histogram(run, index, param, tr, key, y_top=y_top)
    _main_view(run, index, param, tr, key)
    _extra_view(run, index, param, tr, key, control_key)
    _delta(run, index, param, tr, key)


def bins_control(key: str) -> bool:
    """The histogram-bins switch; True when the histograms are re-binned per snapshot."""
    choice = st.segmented_control(
        "Histogram bins", BINS, default=BINS[0], key=key,
        help="Fixed: the same bins and y axis for every epoch, so movement is real. This "
             "snapshot: re-binned on its own range, to read the shape of a histogram that a "
             "later explosion squeezed into a few bins.")
    return choice == BINS[1]


def more_views_control(key: str) -> bool:
    """The toggle for the secondary per-parameter views."""
    return st.toggle("More views", value=False, key=key, help=MORE_VIEWS_HELP)
