"""The frame of every page: page config, the app's own sidebar of page links, and the app's
start-up (the training workers), so that a page opened by a link on a fresh server starts
the app exactly as the Home page does.

Streamlit's classic ``pages/`` folder serves each page at its own URL (``/Explore?...``);
its built-in page list is hidden (``client.showSidebarNavigation = false`` in
.streamlit/config.toml) and replaced by ``sidebar_nav``'s links with titles and icons.
"""

from __future__ import annotations

import gc

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from nnviz.i18n import t
from ui import housekeeping, player, state
from ui.i18n import lang_query, language_picker, use_language
from ui.links import PAGES
from ui.prewarm import prewarm
from ui.text import show_error, warning

_FROZEN: list[bool] = []  # once per server process

# Captions at a projector: Streamlit's st.caption is 14 px grey at opacity 0.6, too faint from
# the back of a room for the numbers and explanations it carries. The same size and grey as the
# epoch player's captions (ui/player/player.css): 16 px, 78 % of the text colour, opaque. A
# style-only st.html goes to Streamlit's event container and takes no space on the page.
CAPTION_CSS = ("<style>[data-testid='stCaptionContainer'] { font-size: 1rem; opacity: 1; "
               "color: rgba(27, 36, 48, 0.78); }</style>")


def start() -> None:
    """Start the training workers (once per server; later calls return at once), and on the
    first call freeze the start-up heap out of the garbage collector's reach."""
    housekeeping.start()  # once: before the workers' threads start (malloc arenas)
    try:
        state.job_manager()
    except Exception as exc:  # noqa: BLE001 - the pages stay usable; Train says it cannot train
        show_error(exc)
    if not _FROZEN:
        _FROZEN.append(True)
        # torch, plotly, pandas and the app are imported now: their ~250,000 objects live as
        # long as the server, and a collection that skips them costs microseconds, not
        # ~150 ms of CPU (.streamlit/config.toml turns the collection after each run off)
        gc.collect()
        gc.freeze()


def sidebar_nav() -> None:
    """The app's page links at the top of the sidebar (none for a page file run on its own,
    which has no other pages), then the language picker."""
    with st.sidebar:
        try:
            for page in PAGES.values():
                st.page_link(page.path, label=t(page.title), icon=page.icon,
                             query_params=lang_query())
        except StreamlitPageNotFoundError:
            pass
        language_picker()
        st.divider()
        prewarm()  # the epoch player's plotly.js, compiled before a player needs it


def page(name: str) -> None:
    """Call first on every page (``name``: a key of ui.links.PAGES)."""
    target = PAGES[name]
    problem = use_language()  # before any text: every t() of this run uses the language
    title = "nnviz" if name == "home" else f"nnviz · {t(target.title)}"
    st.set_page_config(page_title=title, page_icon=target.icon, layout="wide")
    st.html(CAPTION_CSS + player.STEADY_CSS)  # style only: no space on the page
    start()
    sidebar_nav()
    if problem:
        warning(problem, icon=":material/translate:")
