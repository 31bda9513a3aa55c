"""The shared look of every nnviz figure: readable at a projector, usable on a phone."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

FONT_SIZE = 15                # tick labels and legends, readable from the back of a room
# Plotly's own fonts, then CJK fonts (Linux, macOS, Windows) for Chinese titles and labels,
# in the browser and in its PNG downloads; without them Chromium draws boxes.
FONT_FAMILY = ('"Open Sans", verdana, arial, "Noto Sans CJK SC", "Noto Sans SC", '
               '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK TC", "PingFang TC", '
               '"Microsoft JhengHei", sans-serif')
WEIGHT_COLOR = "#2F6FDE"      # measured histograms, weights
THEORY_COLOR = "#E4572E"      # theoretical distributions
GRAD_COLOR = "#17A398"        # gradients
ACT_COLOR = "#8E44AD"         # activations
MUTED = "#5B6576"           # secondary text and guides, still dark enough for a projector
SEVERITY_COLORS = {"critical": "#C0392B", "warning": "#E69F00", "info": "#3B7DD8"}
# Diverging, colour-blind safe, centred on 0 (white): weights' sign is colour, size is depth.
DIVERGING = "RdBu_r"
SEQUENCE = ["#2F6FDE", "#E4572E", "#17A398", "#8E44AD", "#E69F00", "#5D6D7E", "#C0392B",
            "#1ABC9C"]
# Plotly's modebar: keep the PNG download, drop clutter.
PLOT_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},  # the app names each file
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}


# Axes for a projector: powers of ten written out ("10⁻³", never SI's "1m" or "100μ"), no
# bare "2" / "5" labels between the decades of a log axis, dark tick labels.
_AXIS = {"exponentformat": "power", "minorloglabels": "none", "automargin": True,
         "tickfont": {"size": FONT_SIZE, "color": "#1B2430"},
         "title": {"font": {"size": FONT_SIZE}}}
TEMPLATE = go.layout.Template(pio.templates["plotly_white"])
TEMPLATE.layout.xaxis.update(_AXIS)
TEMPLATE.layout.yaxis.update(_AXIS)
TEMPLATE.layout.coloraxis.colorbar.update(exponentformat="power",
                                          tickfont={"size": FONT_SIZE - 1})


def _set_template(fig: go.Figure) -> None:
    """``fig.layout.template = TEMPLATE`` without validating TEMPLATE again: it was validated
    when it was built, and checking its every key took about 6.5 ms of a figure's 7 (a page of
    player frames builds dozens of figures). The same bytes come out; plotly sets its own
    default template this way (``BaseFigure._initialize_layout_template``)."""
    layout = fig.layout
    layout._validate = False
    try:
        layout.template = TEMPLATE
    finally:
        layout._validate = fig._validate


def apply_layout(fig: go.Figure, title: str = "", height: int = 360, **layout) -> go.Figure:
    """Title, fonts, margins and legend placement shared by all figures."""
    if "template" not in layout:
        _set_template(fig)
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": FONT_SIZE + 2}},
        font={"size": FONT_SIZE, "family": FONT_FAMILY},
        height=height,
        margin={"l": 60, "r": 20, "t": 60 if title else 36, "b": 50},
        # The legend sits left, under the title: the mode bar (top right, where a phone's
        # tap shows it) covers neither.
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "xanchor": "left"},
        modebar={"bgcolor": "rgba(255, 255, 255, 0.6)"},
        **layout,
    )
    return fig
