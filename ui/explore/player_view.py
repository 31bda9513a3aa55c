"""Explore's "This epoch" view as the epoch player: every chart of a layer redrawn in the
browser as its slider moves (ui.player); the snapshot the user settles on comes back here.

Session keys, under the page's prefix: ``_index`` (the snapshot shown, shared with the
scrubber of the other views), ``_pl_at`` / ``_pl_key`` (where and what Python last sent),
``_pl_seq`` / ``_pl_start`` (a move Python asks the browser to make), ``_pl_seen`` (the
browser's last report), ``_pl_sent`` / ``_pl_inst`` (the payload keys the browser's frame holds,
and which frame that is).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from nnviz.analysis import views
from nnviz.errors import NnvizError
from nnviz.figures import epoch_view as ev
from nnviz.i18n import get_language, t
from nnviz.store.runs import Run
from ui import diagnostics_panel, player
from ui.explore.charts import track, values
from ui.explore.scrubber import scrubber_state
from ui.text import show_error


@st.cache_resource(max_entries=16, show_spinner=False)
def _player_payload(cache: str, _build: Callable[[], str]) -> str:
    # Shared read-only by every session: a class scrubbing one run builds it once.
    return _build()


def _timeline_rows(run: Run) -> list[tuple[int, float, dict[str, str]]] | None:
    try:
        return diagnostics_panel.timeline_rows(run)
    except Exception:  # noqa: BLE001 - the panel below says what failed; the charts still play
        return None


def _browser_holds(prefix: str, value: Any) -> set[str]:
    """The payload keys the player's frame holds, as far as Python knows: what it sent, less
    what the frame asked for again; reset when the frame is a new one (a page opened again)."""
    ss = st.session_state
    sent = ss.setdefault(f"{prefix}_pl_sent", set())
    if isinstance(value, dict):
        instance = value.get("instance")
        if isinstance(instance, str) and instance != ss.get(f"{prefix}_pl_inst"):
            ss[f"{prefix}_pl_inst"] = instance
            sent.clear()
            sent.update(k for k in value.get("have") or [] if isinstance(k, str))
        need = value.get("need")
        if isinstance(need, str):
            sent.discard(need)
    return sent


def play(prefix: str, n: int, cache: str, build: Callable[[], str], png_prefix: str,
         hidden: bool = False, family: str | None = None) -> int:
    """Draw the player for the payload ``build`` makes (built once per server for ``cache``);
    returns the index it shows (of ``n``), also kept in ``session_state[prefix + "_index"]``.

    ``hidden``: another view is shown; the player stays mounted (out of sight) with the
    payload it showed last, so coming back to it redraws nothing. ``family`` names the view
    without the run's length: a new payload of the family (a training run's next snapshot)
    replaces the old one in the browser instead of adding to what it keeps."""
    index_key, at_key, key = f"{prefix}_index", f"{prefix}_pl_at", f"{prefix}_player"
    ss = st.session_state
    value = ss.get(key)  # the frame's last report (it started this rerun, if it is new)
    fresh = isinstance(value, dict) and value != ss.get(f"{prefix}_pl_seen")
    sent = _browser_holds(prefix, value) if fresh else ss.setdefault(f"{prefix}_pl_sent", set())
    if fresh:
        ss[f"{prefix}_pl_seen"] = value
        if value.get("key") == cache and isinstance(value.get("index"), int):
            ss[index_key] = min(max(int(value["index"]), 0), n - 1)
            ss[at_key] = ss[index_key]
    if hidden:
        shown = ss.get(f"{prefix}_pl_key")
        if shown is not None and shown in sent:
            player.epoch_player("", shown, start=ss[f"{prefix}_pl_start"],
                                start_seq=ss[f"{prefix}_pl_seq"], key=key,
                                png_prefix=png_prefix, hidden=True)
        return int(ss.get(index_key) or 0)
    index = scrubber_state(prefix, n)
    # Python moves the player only when something else changed the snapshot (a link, another
    # view's scrubber, a new epoch while watching the latest) or the charts are new.
    if ss.get(at_key) != index or ss.get(f"{prefix}_pl_key") != cache:
        ss[f"{prefix}_pl_seq"] = ss.get(f"{prefix}_pl_seq", 0) + 1
        ss[f"{prefix}_pl_start"] = index
        ss[at_key] = index
        ss[f"{prefix}_pl_key"] = cache
    payload = ""
    if cache not in sent:
        try:
            with st.spinner(t("Preparing every snapshot for the player…")):
                payload = _player_payload(cache, build)
        except (NnvizError, OSError, ValueError) as exc:
            show_error(exc)
            return index
    player.epoch_player(payload, cache, start=ss[f"{prefix}_pl_start"],
                        start_seq=ss[f"{prefix}_pl_seq"], key=key, png_prefix=png_prefix,
                        family=family or cache)
    sent.add(cache)
    return index


def render_player(run: Run, layer: str, prefix: str, *, rebin: bool = False,
                  more: bool = False, rgb_scale: str = "global", neuron: int = 0,
                  hidden: bool = False) -> int:
    """The "This epoch" view as the epoch player; returns the snapshot index it shows
    (``hidden``: mounted out of sight while another view is shown, see ``play``)."""
    lang = get_language()  # the payload holds texts: one per language, in the browser too
    cache = (f"player|{lang}|{views.run_key(run)}|{run.status}|{layer}|{rebin}|{more}|"
             f"{rgb_scale}|{neuron}")

    def build() -> str:
        params = views.layer_params(run).get(layer, [])
        tracks = {p: track([run], p) for p in params}
        return player.encode(ev.player_payload(
            run, layer, tracks, values=lambda i, p: values(run, i, p), rebin=rebin, more=more,
            rgb_scale=rgb_scale, neuron=neuron, timeline=_timeline_rows(run)))

    return play(prefix, run.n_snapshots, cache, build, png_prefix=run.run_id, hidden=hidden,
                family=f"player|{lang}|{run.run_id}|{layer}|{rebin}|{more}|{rgb_scale}|{neuron}")
