"""The view's URL parameters: which run, epoch and layer are shown, a linked run config, and
the share links that reopen a view. Every value read from the URL is checked by
ui.services.urlstate; the warnings it returns carry URL text and are shown literally."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from nnviz.analysis.overview import source_line
from nnviz.config import RunConfig
from nnviz.errors import NnvizError
from nnviz.i18n import t
from nnviz.store.runs import Run
from ui.links import share_link
from ui.services import urlstate


def query_dict() -> dict[str, list[str]]:
    """Every URL parameter with all its values."""
    return {k: st.query_params.get_all(k) for k in st.query_params}


def query_value(name: str) -> str | None:
    """One URL parameter as a string (the last one if repeated), else None."""
    found = st.query_params.get_all(name)
    return str(found[-1]) if found else None


def set_query(**params: Any) -> None:
    """Write URL parameters that changed (None removes one); a copied link reopens the view."""
    for name, value in params.items():
        current = query_value(name)
        if value is None:
            if current is not None:
                del st.query_params[name]
        elif current != str(value):
            st.query_params[name] = str(value)


def query_signature(ignore: Sequence[str] = ("run", "epoch", "layer", "lang")) -> str:
    """The URL's parameters (except the view keys) as one string: identifies a linked config."""
    q = query_dict()
    return "&".join(f"{k}={v}" for k in sorted(q) if k not in ignore for v in q[k])


def config_in_query() -> bool:
    """Whether the URL carries run options (or a preset) instead of a run id."""
    return urlstate.has_config(query_dict())


def config_from_query() -> tuple[RunConfig | None, list[str]]:
    """The RunConfig a URL describes (preset and/or options), with warnings for bad values."""
    try:
        return urlstate.query_to_config(query_dict())
    except NnvizError as exc:
        return None, [str(exc)]


def view_from_query(n_snapshots: int, layers: Sequence[str]) -> tuple[int, str, list[str]]:
    """(snapshot index, layer, warnings) from the URL's epoch and layer; defaults: the last
    snapshot and the first layer."""
    q = {k: v for k, v in query_dict().items() if k in ("epoch", "layer")}
    view, warnings = urlstate.query_to_view(q, n_snapshots, list(layers))
    index = view["epoch"] if view["epoch"] is not None else n_snapshots - 1
    layer = view["layer"] if view["layer"] is not None else layers[0]
    return int(index), layer, warnings


def share_view(run: Run, index: int, layer: str) -> None:
    """Two links: this run on this server, and its settings (any nnviz trains the same run)."""
    view = urlstate.view_to_query(epoch=index, layer=layer)
    by_config = {**urlstate.config_to_query(run.config), **view}
    by_run = urlstate.view_to_query(run_id=run.run_id, epoch=index, layer=layer)
    share_link(by_run, label=t("This run (on this server)"))
    if source_line(run):  # not trained by nnviz: no settings to share
        return
    share_link(by_config, label=t("Its settings: any nnviz trains the same seeded run and "
                                  "opens this view"))
