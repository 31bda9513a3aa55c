"""plotly.js compiled before the epoch player needs it: a hidden frame in the sidebar of every
page (``ui.shell``) runs the player's plotly.js once per browser tab.

The player (``ui.player``) loads plotly.js (1.4 MB) into its own frame, where Chromium compiles
and runs it: about 0.35 s of the page's main thread on a page opened by link, before its first
chart. Frames of one page share one JavaScript engine (same origin), and the engine keeps what it
compiled for a script URL while a frame holds that script, so a second frame that loads the
same URL runs it in about 0.08 s. This frame is that first one: the same URL
(``/component/<the player's name>/<its plotly.js>``), loaded at the top of every page (a lesson
click on Home, Train's "Open in Explore" and a link to Explore or Compare all find it compiled).
It sits in the sidebar, at the same place on every page, so Streamlit keeps the frame (and what
it compiled) across page switches; its element is hidden (``display: none``: no height, no
gap), and it draws nothing. If it is slow or fails, the player loads plotly.js on its own.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

# The player's component name (ui.player: module "ui.player", name "epoch_player") and its
# plotly.js file; ui.player is not imported here (it loads plotly's Python package), a test
# checks that both match it.
PLAYER_COMPONENT = "ui.player.epoch_player"
PLOTLY_SRC = "plotly-cartesian.min.js"
KEY = "nnviz_plotly_prewarm"
# Streamlit gives a keyed element's container the class st-key-<key>: out of the layout.
CSS = f"<style>.st-key-{KEY} {{ display: none; }}</style>"

_FRONTEND = components.declare_component(
    "plotly_prewarm", path=str(Path(__file__).resolve().parent / "player" / "prewarm"))


def player_plotly_url() -> str:
    """The player's plotly.js, relative to this frame (/component/<name>/index.html)."""
    return f"../{PLAYER_COMPONENT}/{PLOTLY_SRC}"


def prewarm() -> None:
    """The hidden frame (call inside ``st.sidebar``, at the same place on every page)."""
    st.html(CSS)
    _FRONTEND(src=player_plotly_url(), key=KEY, default=None)
