"""The server-side epoch slider and Play of the views Python draws (Health, Tables and
Compare's); Explore's "This epoch" and "All epochs" views play in the browser instead
(player_view, epochs).

Session keys, under a page's prefix: ``_index`` (the snapshot shown: the one truth),
``_slider`` (the slider widget, set from ``_index`` before every draw), ``_playing``,
``_tick`` (when the last frame advanced) and ``_n`` (snapshots seen, to follow new ones).
While playing, the slider is disabled and a value the browser sends from before the last frame
is ignored: such a stale value used to pause playback part-way and leave the URL's epoch
behind the slider's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import streamlit as st

from nnviz.i18n import t
from ui.i18n import apply_language

PLAY_EVERY_S = 0.8        # seconds between frames while playing


def scrubber_state(prefix: str, n: int) -> int:
    """Before the scrubber is drawn: clamp its index and, while playing, advance one frame."""
    ss = st.session_state
    key = f"{prefix}_index"
    ss.setdefault(key, n - 1)
    ss.setdefault(f"{prefix}_playing", False)
    ss.setdefault(f"{prefix}_tick", 0.0)
    index = int(ss[key]) if ss[key] is not None else n - 1
    seen = ss.get(f"{prefix}_n", n)
    if n > seen and index == seen - 1:  # a new snapshot while watching the latest: follow it
        index = n - 1
    ss[f"{prefix}_n"] = n
    index = min(max(index, 0), n - 1)
    if ss[f"{prefix}_playing"]:
        now = time.monotonic()
        if now - ss[f"{prefix}_tick"] >= 0.9 * PLAY_EVERY_S:
            ss[f"{prefix}_tick"] = now
            if index >= n - 1:
                ss[f"{prefix}_playing"] = False
            else:
                index += 1
    ss[key] = index
    return index


def _toggle_play(prefix: str, n: int) -> None:
    ss = st.session_state
    playing = not ss.get(f"{prefix}_playing", False)
    ss[f"{prefix}_playing"] = playing
    if playing:
        ss[f"{prefix}_tick"] = time.monotonic()
        if int(ss.get(f"{prefix}_index") or 0) >= n - 1:
            ss[f"{prefix}_index"] = 0


def _scrubbed(prefix: str) -> None:
    """on_change of the slider: the user moved it (ignored while playing: a stale value)."""
    ss = st.session_state
    if not ss.get(f"{prefix}_playing", False):
        ss[f"{prefix}_index"] = ss[f"{prefix}_slider"]


def play_button(prefix: str, n: int) -> None:
    """Play / Pause: animates the scrubber through the snapshots (outside the fragment)."""
    playing = st.session_state.get(f"{prefix}_playing", False)
    st.button(t("Pause") if playing else t("Play"), key=f"{prefix}_play",
              icon=":material/pause:" if playing else ":material/play_arrow:",
              on_click=_toggle_play, args=(prefix, n), disabled=n < 2,
              help=t("Step through the epochs automatically."))


def scrubber(prefix: str, labels: Sequence[str]) -> int:
    """The epoch scrubber (a select slider over snapshot indices); returns the index shown."""
    n = len(labels)
    index = scrubber_state(prefix, n)
    if n == 1:
        st.caption(t("Snapshot: {label} (the only one so far)", label=labels[0]))
        return 0
    st.session_state[f"{prefix}_slider"] = index
    st.select_slider(t("Epoch"), options=list(range(n)), format_func=lambda i: labels[i],
                     key=f"{prefix}_slider", on_change=_scrubbed, args=(prefix,),
                     disabled=bool(st.session_state[f"{prefix}_playing"]),
                     help=t("Drag to scrub through the recorded snapshots; bins and colour "
                            "scales stay fixed so every change you see is real. Pause to drag "
                            "while playing."))
    return index


def playing_fragment(prefix: str, body: Callable[[], None]) -> None:
    """Run ``body`` as a fragment that re-runs every PLAY_EVERY_S while playing."""
    playing = st.session_state.get(f"{prefix}_playing", False)

    def _frame() -> None:
        apply_language()  # a timer rerun of the fragment may run in a fresh thread
        body()
        if playing != st.session_state.get(f"{prefix}_playing", False):
            # started (a Play button inside the fragment), stopped at the end or paused:
            # rerun the whole page, to set the fragment's timer on or off
            st.rerun()

    st.fragment(_frame, run_every=PLAY_EVERY_S if playing else None)()
