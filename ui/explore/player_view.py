"""Explore's chart views in the epoch player's frame (ui.player): "This epoch" (every chart of
a layer at one snapshot, redrawn in the browser as its slider moves) and "All epochs"
(ui.explore.epochs). The frame draws the page's view control itself (VIEWS), so a switch between
the two chart views is made in the browser at once, from payloads it holds; the view and the
snapshot the user settles on come back here, and the rerun that follows draws Health or Tables
below the frame (which then shows only its control) and sends the frame nothing new.

A layer switch is made from payloads the frame holds too: once its charts are drawn, the frame
asks ahead for the shown view's payloads of the layers a reader is likely to pick next
(``ahead_layers``: the next and the previous, every layer of a small model), one at a time,
and predraws them out of sight. A pick of such a layer in the page's Layer selectbox is shown
by the frame at once (it watches that selectbox's value, read-only), and the rerun the pick
starts sends no payload. A
payload's family is its view of one layer of one run (``Payload``): a newer payload of it (a
rebin, another language, a run that has grown) makes the frame and Python drop the older one.

Session keys, under the page's prefix: ``_index`` (the snapshot shown, shared with the
scrubber of the other views), ``_view`` (the view shown, one of VIEWS), ``_pl_at`` (the
snapshot the frame was last told or said), ``_pl_seq`` (a move Python asks the browser to make),
``_pl_view_seq`` / ``_pl_view_heard`` (a view Python asks the frame to show; the view the frame
last said or was told), ``_pl_seen`` (the browser's last report), ``_pl_sent`` / ``_pl_inst``
(the payload keys the browser's frame holds, and which frame that is), ``_pl_want`` (payloads it
asked for ahead of a switch), ``_pl_fam`` (the family of each key sent).

Compare's side-by-side view plays the same way (``control=False``: its view control is the
page's own), so its layer switch is made from payloads the frame holds too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from nnviz.analysis import views
from nnviz.errors import NnvizError
from nnviz.figures import epoch_view as ev
from nnviz.i18n import N_, get_language, t
from nnviz.store.runs import Run
from ui import diagnostics_panel, player
from ui.explore.charts import track, values
from ui.explore.scrubber import scrubber_state
from ui.text import show_error

VIEWS = (N_("This epoch"), N_("All epochs"), N_("Health"), N_("Tables"))
CHART_VIEWS = VIEWS[:2]  # payloads of the player's frame; Python draws the others below it
AHEAD_ALL = 6  # a model with at most this many layers: every layer's payload asked for ahead


@dataclass(frozen=True)
class Payload:
    """A chart view's payload for the player: its key (another key: other charts), its family
    (the view of one layer of one run, whatever its options, language and length: a newer
    payload of the family replaces the older one in the browser) and how to build it (once per
    server, ``_player_payload``)."""

    key: str
    family: str
    build: Callable[[], str]


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
    what the frame asked for again; reset when the frame is a new one (a page opened again).
    A key it asks for ("need") is also kept in ``_pl_want`` until it is sent."""
    ss = st.session_state
    sent = ss.setdefault(f"{prefix}_pl_sent", set())
    if isinstance(value, dict):
        instance = value.get("instance")
        if isinstance(instance, str) and instance != ss.get(f"{prefix}_pl_inst"):
            ss[f"{prefix}_pl_inst"] = instance
            sent.clear()
            sent.update(k for k in value.get("have") or [] if isinstance(k, str))
        elif isinstance(value.get("have"), list):
            # what the frame says it holds: a payload sent in a rerun the next one stopped, or in
            # a render the browser merged into the next, never reached it (sent again if asked)
            sent.intersection_update(k for k in value["have"] if isinstance(k, str))
        need = value.get("need")
        if isinstance(need, str):
            sent.discard(need)
            ss.setdefault(f"{prefix}_pl_want", set()).add(need)
    return sent


def _report(prefix: str) -> dict[str, Any] | None:
    """The frame's last report (its component value) if Python has not heard it yet."""
    value = st.session_state.get(f"{prefix}_player")
    return value if isinstance(value, dict) and value != st.session_state.get(
        f"{prefix}_pl_seen") else None


def _hear(prefix: str, n: int, keys: set[str]) -> set[str]:
    """Hear the frame's last report once: the snapshot it shows (of a payload in ``keys``)
    becomes ``_index``; returns the payload keys it holds (``_browser_holds``)."""
    ss = st.session_state
    value = _report(prefix)
    if value is None:
        return ss.setdefault(f"{prefix}_pl_sent", set())
    ss[f"{prefix}_pl_seen"] = value
    sent = _browser_holds(prefix, value)
    if value.get("key") in keys and isinstance(value.get("index"), int):
        ss[f"{prefix}_index"] = min(max(int(value["index"]), 0), n - 1)
        ss[f"{prefix}_pl_at"] = ss[f"{prefix}_index"]
    return sent


def view_shown(prefix: str) -> str:
    """The view to draw (one of VIEWS): the one the user picked in the player's frame (its
    last report), else the session's (the first view for a new one). Read before the widgets
    of the page, whose options depend on it."""
    ss = st.session_state
    value = _report(prefix)
    if value is not None and value.get("view") in VIEWS:
        ss[f"{prefix}_view"] = ss[f"{prefix}_pl_view_heard"] = value["view"]
    if ss.get(f"{prefix}_view") not in VIEWS:
        ss[f"{prefix}_view"] = VIEWS[0]
    return ss[f"{prefix}_view"]


def ahead_layers(layers: Sequence[str], layer: str) -> list[str]:
    """The layers whose payloads the frame asks for ahead of a pick, nearest first (the next,
    then the previous): every other layer of a model with at most AHEAD_ALL, else those two,
    so a ResNet's 21 layers do not make every reader's browser and the server pay for all."""
    at = layers.index(layer)
    near = sorted(range(len(layers)), key=lambda i: (abs(i - at), i < at))
    return [layers[i] for i in near[1:None if len(layers) <= AHEAD_ALL else 3]]


def _forget_replaced(prefix: str, sent: set[str], payloads: Sequence[Payload]) -> None:
    """Drop from what the frame holds (``sent``) the keys a newer payload of their family
    replaced, as the frame does when it hears of the newer key."""
    fam = st.session_state.setdefault(f"{prefix}_pl_fam", {})
    current = {p.family: p.key for p in payloads}
    for key in [k for k in sent if current.get(fam.get(k), k) != k]:
        sent.discard(key)
        del fam[key]
    fam.update((p.key, p.family) for p in payloads)


def play_views(prefix: str, view: str, charts: Mapping[str, Payload], *, n: int,
               prefetch: bool, png_prefix: str, label: str = "", help: str = "",
               ahead: Mapping[str, Payload] | None = None, picker: str | None = None,
               control: bool = True) -> int:
    """The player's frame with the page's view control (VIEWS, ``label`` and ``help``) and the
    payloads of the chart views (``charts``: view -> Payload) of ``n`` snapshots; ``view`` is
    the view shown. Returns the snapshot index shown (also ``session_state[prefix +
    "_index"]``). ``control=False``: the page draws its own view control (Compare), and the
    frame draws none (a view without a payload here hides the frame, which keeps its payloads).

    The frame holds the payloads it was sent; it is sent the shown view's payload when it lacks
    it, and the other chart view's when it asks for it ahead of a switch (once the charts it
    shows are drawn, with ``prefetch``: not while a run trains), and so are the payloads in
    ``ahead`` (the shown view's of the layers ``ahead_layers`` names, by their option's label
    in the page's selectbox labelled ``picker``: the frame shows a pick of one it holds at
    once), one a rerun. Python moves the frame's snapshot (``start_seq``) only when something
    else changed it, and its view (``views.seq``) only when the view was not the frame's own
    pick (a new session, a test, or the page's own control)."""
    ss = st.session_state
    ahead = ahead or {}
    sent = _hear(prefix, n, {p.key for p in charts.values()})
    want = ss.setdefault(f"{prefix}_pl_want", set())
    named = [*charts.values(), *ahead.values()]
    _forget_replaced(prefix, sent, named)
    want.intersection_update(p.key for p in named)  # asked, and still current
    if view in CHART_VIEWS:
        ss[f"{prefix}_playing"] = False  # the frame has its own Play
    index = scrubber_state(prefix, n)
    if ss.get(f"{prefix}_pl_at") != index:  # a link, Health's scrubber, a new epoch
        ss[f"{prefix}_pl_seq"] = ss.get(f"{prefix}_pl_seq", 0) + 1
        ss[f"{prefix}_pl_at"] = index
    if ss.get(f"{prefix}_pl_view_heard") != view:
        ss[f"{prefix}_pl_view_seq"] = ss.get(f"{prefix}_pl_view_seq", 0) + 1
        ss[f"{prefix}_pl_view_heard"] = view
    shown = charts.get(view)
    payload, extra, failed = "", {}, set()
    for name, p in [*charts.items(), *(("", p) for p in ahead.values())]:
        if p.key in sent or (p is not shown and p.key not in want):
            continue
        try:
            if p is shown:
                with st.spinner(t("Preparing every snapshot for the player…")):
                    payload = _player_payload(p.key, p.build)
            else:
                extra[p.key] = _player_payload(p.key, p.build)
        except (NnvizError, OSError, ValueError) as exc:
            failed.add(name)
            want.discard(p.key)
            if p is shown:
                show_error(exc)  # the frame shows its control only: Tables still work
    options = [{"name": v, "label": label}
               for v, label in zip(VIEWS, map(t, VIEWS), strict=True)]
    for option in options:
        if option["name"] in charts and option["name"] not in failed:
            chart = charts[option["name"]]
            option.update(key=chart.key, family=chart.family)
    spec = {"label": label, "help": help, "view": view, "seq": ss[f"{prefix}_pl_view_seq"],
            "options": options, "prefetch": prefetch, "picker": picker, "control": control,
            "ahead": [{"key": p.key, "family": p.family, "label": option}
                      for option, p in ahead.items()]}
    shown_key = shown.key if shown is not None and view not in failed else ""
    seen = ss.get(f"{prefix}_pl_seen")  # the report heard last: asks up to it are answered
    heard = {"instance": seen.get("instance"), "seq": seen.get("seq")} if isinstance(
        seen, dict) else None
    player.epoch_player(payload, shown_key, start=index, start_seq=ss[f"{prefix}_pl_seq"],
                        key=f"{prefix}_player", png_prefix=png_prefix, hidden=not shown_key,
                        family=shown.family if shown_key else None, views=spec, extra=extra,
                        heard=heard)
    for key in filter(None, [shown_key, *extra]):  # what the frame now holds
        sent.add(key)
        want.discard(key)
    return index


def this_epoch(run: Run, layer: str, *, rebin: bool | None = None, more: bool = False,
               rgb_scale: str = "global", neuron: int = 0) -> Payload:
    """The "This epoch" view's payload: every chart of ``layer`` at every snapshot the player
    carries (``rebin`` None: automatic bins)."""
    lang = get_language()  # the payload holds texts: one per language, in the browser too
    options = f"{layer}|{rebin}|{more}|{rgb_scale}|{neuron}"

    def build() -> str:
        params = views.layer_params(run).get(layer, [])
        tracks = {p: track([run], p) for p in params}
        return player.encode(ev.player_payload(
            run, layer, tracks, values=lambda i, p: values(run, i, p), rebin=rebin, more=more,
            rgb_scale=rgb_scale, neuron=neuron, timeline=_timeline_rows(run)))

    return Payload(f"player|{lang}|{views.run_key(run)}|{run.status}|{options}",
                   f"player|{run.run_id}|{layer}", build)
