"""Plotly charts and CSV downloads of Explore and Compare, with server-wide caches.

Heavy data is cached by strings: a parameter's run-wide axes and histograms by (runs @
snapshot counts, parameter), stored values by (run, snapshot index, parameter). Figures are
built once per (runs, snapshot, parameter, view) and shared read-only by every session, so a
class scrubbing one run builds each view once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from nnviz.analysis import views
from nnviz.figures import epoch_view as ev
from nnviz.figures.style import PLOT_CONFIG
from nnviz.i18n import get_language, t
from nnviz.store.runs import Run


class SentFigure(go.Figure):
    """A built figure as the dict ``st.plotly_chart`` sends: it asks a Figure for
    ``to_dict()`` (a deep copy, a quarter of a second for a view's charts) on every rerun; this
    one answers with the dict made once. Read-only: nothing but ``to_dict`` works on it."""

    def __init__(self, figure: go.Figure) -> None:  # noqa: D107 - no Figure.__init__: no re-validation
        object.__setattr__(self, "_sent", figure.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return self._sent


@st.cache_resource(max_entries=512, show_spinner=False)
def cached_figure(cache: str, _build: Callable[[], go.Figure]) -> SentFigure:
    """The figure ``_build`` makes, built once per server for ``cache`` (a string naming
    everything it depends on), ready to send; shared read-only by every session."""
    return SentFigure(_build())


def png_name(*parts: Any) -> str:
    """A file name for a chart's PNG download from its run, layer and epoch."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120] or "nnviz"


def chart(fig: go.Figure | Callable[[], go.Figure], key: str, cache: str | None = None,
          png: str | None = None) -> None:
    """A plotly chart at container width, with the PNG download (named ``png``) in its
    toolbar.

    With ``cache`` (a string naming everything the figure depends on), ``fig`` is a builder
    called once per server for that string: a class scrubbing one run builds each view once.
    """
    if cache is not None:
        figure = cached_figure(f"{cache}|{get_language()}", fig)  # its texts are translated
    else:
        figure = fig() if callable(fig) else fig
    config = {**PLOT_CONFIG, "toImageButtonOptions": {
        **PLOT_CONFIG.get("toImageButtonOptions", {}), "filename": png or png_name(key)}}
    # theme=None: the figure's own template (nnviz.figures.style), not Streamlit's small grey
    # tick labels
    st.plotly_chart(figure, width="stretch", config=config, key=key, theme=None)


def _cell(column: str, value: Any) -> Any:
    """A table cell for people: "—" where a value is missing (never "None"), 4 significant
    digits, NaN / Inf spelled out; the relative drift of a parameter that started at zero
    (‖W₀‖ = 0) is undefined, not "Infinity"."""
    if value is None or (isinstance(value, float) and math.isnan(value) and
                         column not in _NAN_MEANS_NAN):
        return "—"
    if isinstance(value, float | np.floating):
        if "‖W₀‖" in column and math.isinf(value):
            return "— (W₀ = 0)"
        return ev.fmt(value)
    return value


# Columns where a NaN is a measured NaN (a diverged run), not a missing value.
_NAN_MEANS_NAN = {"mean", "std", "min", "max"}


def table(df: Any) -> None:
    """A table at container width whose cells read as the app writes numbers: float columns
    become text ("—" where missing, 4 significant digits), so every cell is as wide as what it
    shows and nothing is cut off; the CSV download keeps the raw numbers."""
    shown = df.copy()
    for column in shown.columns:
        if shown[column].dtype.kind in "fO":
            shown[column] = [_cell(str(column), v) for v in df[column].tolist()]
    shown.columns = [t(str(c)) for c in shown.columns]  # headers the library names
    st.dataframe(shown, hide_index=True, width="stretch")


def csv_button(df: Any, file_name: str, key: str, label: str | None = None) -> None:
    """A CSV download of a table."""
    st.download_button(label or t("Download CSV"), views.to_csv(df), file_name=file_name,
                       mime="text/csv", key=key,
                       icon=":material/download:")


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
    return _values(f"{run.run_id}@{run.record.created}", index, param, run)
