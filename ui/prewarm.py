"""plotly.js compiled before the epoch player needs it: a hidden frame in the sidebar of every
page (``ui.shell``) runs the player's plotly.js when the page is idle.

The player (``ui.player``) loads plotly.js (1.4 MB) into its own frame, where Chromium compiles
and runs it: about 0.35-0.55 s of the page's main thread, in front of its first chart. Frames
of one page share one JavaScript engine (same origin), which keeps what it compiled for a script
URL, so a frame that loads the same URL again runs it in about 0.1 s. This frame loads that URL
(``/component/<the player's name>/<its plotly.js>``) once the page is idle, so the player of a
lesson clicked on Home, of Train's "Open in Explore" or of a Compare opened from Explore finds
it compiled. Streamlit makes the frame again on every page (its address names the page); the
compiled code outlives it. On a page whose player is still loading plotly.js (a link to Explore)
it waits for that player, so the two never share the main thread. Its element is hidden
(``display: none``: no height, no gap) and it draws nothing; if it is slow or fails, the
player loads plotly.js on its own as before.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from ui import player  # declares the player's component, so its files are served

KEY = "nnviz_plotly_prewarm"
# Streamlit gives a keyed element's container the class st-key-<key>: out of the layout.
CSS = f"<style>.st-key-{KEY} {{ display: none; }}</style>"

_FRONTEND = components.declare_component(
    "plotly_prewarm", path=str(Path(__file__).resolve().parent / "player" / "prewarm"))


def player_plotly_url() -> str:
    """The player's plotly.js, relative to this frame (/component/<name>/index.html)."""
    return f"../{player.component_name()}/{player.PLOTLY_SRC}"


def prewarm() -> None:
    """The hidden frame (inside ``st.sidebar``, on every page: ``ui.shell`` calls it)."""
    st.html(CSS)
    _FRONTEND(src=player_plotly_url(), key=KEY, default=None)
