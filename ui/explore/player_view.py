"""Explore's "This epoch" view as the epoch player: every chart of a layer redrawn in the
browser as its slider moves (ui.player); the snapshot the user settles on comes back here.

Session keys, under the page's prefix: ``_index`` (the snapshot shown, shared with the
scrubber of the other views), ``_pl_at`` / ``_pl_key`` (where and what Python last sent),
``_pl_seq`` / ``_pl_start`` (a move Python asks the browser to make) and ``_pl_seen`` (the
browser's last report).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from nnviz.analysis import views
from nnviz.errors import NnvizError
from nnviz.figures import epoch_view as ev
from nnviz.store.runs import Run
from ui import diagnostics_panel, player
from ui.explore.charts import track, values
from ui.explore.scrubber import scrubber_state
from ui.text import show_error


@st.cache_resource(max_entries=16, show_spinner="Preparing every snapshot for the player…")
def _player_payload(cache: str, _build: Callable[[], str]) -> str:
    # Shared read-only by every session: a class scrubbing one run builds it once.
    return _build()


def _timeline_rows(run: Run) -> list[tuple[int, float, dict[str, str]]] | None:
    try:
        return diagnostics_panel.timeline_rows(run)
    except Exception:  # noqa: BLE001 - the panel below says what failed; the charts still play
        return None


def play(prefix: str, n: int, cache: str, build: Callable[[], str], png_prefix: str) -> int:
    """Draw the player for the payload ``build`` makes (built once per server for ``cache``);
    returns the index it shows (of ``n``), also kept in ``session_state[prefix + "_index"]``."""
    index_key, at_key = f"{prefix}_index", f"{prefix}_pl_at"
    index = scrubber_state(prefix, n)
    ss = st.session_state
    # Python moves the player only when something else changed the snapshot (a link, another
    # view's scrubber, a new epoch while watching the latest) or the charts are new.
    if ss.get(at_key) != index or ss.get(f"{prefix}_pl_key") != cache:
        ss[f"{prefix}_pl_seq"] = ss.get(f"{prefix}_pl_seq", 0) + 1
        ss[f"{prefix}_pl_start"] = index
        ss[at_key] = index
        ss[f"{prefix}_pl_key"] = cache
    try:
        payload = _player_payload(cache, build)
    except (NnvizError, OSError, ValueError) as exc:
        show_error(exc)
        return index
    value = player.epoch_player(payload, cache, start=ss[f"{prefix}_pl_start"],
                                start_seq=ss[f"{prefix}_pl_seq"], key=f"{prefix}_player",
                                png_prefix=png_prefix)
    if isinstance(value, dict) and value != ss.get(f"{prefix}_pl_seen") \
            and value.get("key") == cache and isinstance(value.get("index"), int):
        ss[f"{prefix}_pl_seen"] = value
        index = min(max(int(value["index"]), 0), n - 1)
        ss[index_key] = index
        ss[at_key] = index
    return index


def render_player(run: Run, layer: str, prefix: str, *, rebin: bool | None = None,
                  more: bool = False, rgb_scale: str = "global", neuron: int = 0) -> int:
    """The "This epoch" view as the epoch player; returns the snapshot index it shows."""
    cache = f"player|{views.run_key(run)}|{run.status}|{layer}|{rebin}|{more}|{rgb_scale}|{neuron}"

    def build() -> str:
        params = views.layer_params(run).get(layer, [])
        tracks = {p: track([run], p) for p in params}
        return player.encode(ev.player_payload(
            run, layer, tracks, values=lambda i, p: values(run, i, p), rebin=rebin, more=more,
            rgb_scale=rgb_scale, neuron=neuron, timeline=_timeline_rows(run)))

    return play(prefix, run.n_snapshots, cache, build, png_prefix=run.run_id)
