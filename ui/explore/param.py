"""The switches of the per-parameter views (histogram bins, more views, RGB scale, output
neuron) and the y range that two runs' histograms share."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from nnviz.analysis import views
from nnviz.figures import epoch_view as ev
from nnviz.i18n import N_, t
from nnviz.store.runs import Run

BINS = [N_("fixed for the run"), N_("this snapshot")]
RGB_SCALE_WORDS = [N_("global"), N_("per filter")]  # the choices of ev.RGB_SCALES, as shown
MORE_VIEWS_HELP = N_("Adds the RGB view of first-layer filters (or one neuron's weights on its "
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


def extra_controls(run: Run, param: str, control_key: str) -> tuple[str, int]:
    """The RGB scale switch (first conv layer) or the output-neuron picker (a linear layer on
    a feature map) of the secondary view: (rgb scale, neuron)."""
    kind = ev.extra_kind(run, param)
    if kind == "rgb":
        scale = st.segmented_control(
            t("RGB scale"), list(ev.RGB_SCALES), default="global", key=f"{control_key}_rgbscale",
            format_func=t, help=t("Global: one scale for all filters and epochs; per filter: "
                                  "each stretched to its own range.")) or "global"
        return scale, 0
    if kind == "spatial":
        n_out = int(run.param(param).shape[0])
        neuron = st.number_input(t("Output neuron"), 0, n_out - 1, 0, step=1,
                                 key=f"{control_key}_neuron",
                                 help=t("Which output neuron's weights to fold back onto the "
                                        "input feature map."))
        return "global", int(neuron)
    return "global", 0


def bins_control(key: str) -> bool:
    """The histogram-bins switch; True when the histograms are re-binned per snapshot."""
    choice = st.segmented_control(
        t("Histogram bins"), BINS, default=BINS[0], key=key, format_func=t,
        help=t("Fixed: the same bins and y axis for every epoch, so movement is real. This "
               "snapshot: re-binned on its own range, to read the shape of a histogram that a "
               "later explosion squeezed into a few bins."))
    return choice == BINS[1]


def more_views_control(key: str) -> bool:
    """The toggle for the secondary per-parameter views."""
    return st.toggle(t("More views"), value=False, key=key, help=t(MORE_VIEWS_HELP))
