"""What users and files supply, shown as text: never interpreted as Markdown or HTML.

Streamlit renders Markdown in ``st.markdown``, ``st.caption``, the message boxes
(``st.error`` ...), widget labels and ``st.page_link`` labels. Run names, status details,
formulas from imported runs, URL values echoed in warnings and error messages come from users
or files, so they go through ``literal`` (one value inside the app's own Markdown) or are shown
with the ``error`` / ``warning`` / ``info`` helpers here, which escape the whole message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import streamlit as st

from nnviz.errors import NnvizError
from nnviz.i18n import t

log = logging.getLogger(__name__)

# CommonMark lets a backslash escape any ASCII punctuation; ':' also stops Streamlit's
# ":material/...:" icons, ":red[...]" colours and emoji shortcodes, '$' its LaTeX.
_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~:$&])")
ERROR_ICON = ":material/error:"
WARNING_ICON = ":material/warning:"
INFO_ICON = ":material/info:"


def literal(value: Any) -> str:
    """``value`` as Markdown that shows exactly its characters (newlines become spaces).

    ``unescape`` (what a reader sees) inverts it: ``unescape(literal(s)) == " ".join(s.split())``.
    """
    text = " ".join(str(value).split())
    return _PUNCT.sub(r"\\\1", text)


def unescape(markdown: str) -> str:
    """The characters a reader sees of ``literal``'s output (for tests and logs)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def error(text: Any, icon: str = ERROR_ICON) -> None:
    """st.error of a message that may carry user or file text, shown literally."""
    st.error(literal(text), icon=icon)


def warning(text: Any, icon: str = WARNING_ICON) -> None:
    """st.warning of a message that may carry user or file text, shown literally."""
    st.warning(literal(text), icon=icon)


def info(text: Any, icon: str = INFO_ICON) -> None:
    """st.info of a message that may carry user or file text, shown literally."""
    st.info(literal(text), icon=icon)


def show_error(exc: BaseException) -> None:
    """An error in plain words: the message of an nnviz error, never a traceback."""
    if isinstance(exc, NnvizError):
        error(exc)
        return
    log.exception("unexpected error in the app", exc_info=exc)
    error(t("Something went wrong ({kind}: {error}). The details are in the server log; please "
            "report it.", kind=type(exc).__name__, error=exc))
