"""The reader's language in the app: chosen in the sidebar, carried by ``?lang=`` in the URL,
defaulting to the browser's language on a first visit, and kept for the session.

Which language wins, on every run of a page (``use_language``):

1. ``?lang=`` in the URL, when it is one of ``nnviz.i18n.LANGUAGES`` (``zh``, ``zh-CN``,
   ``zh-TW`` ... are understood; see ``normalize``). A bad value is dropped with a warning.
2. The language this session chose before (the sidebar picker, or a link it opened).
3. The browser's language (``st.context.locale``) on the first visit; English otherwise.

The language goes into the URL (``lang=``, left out for English) and into every link the app
makes (``lang_query``), so a shared link opens in the sender's language. ``nnviz.i18n`` keeps
the language per thread: a page calls ``use_language`` first (``ui.shell.page`` does), and a
fragment, whose timer reruns may run in a fresh thread, calls ``apply_language``.
"""

from __future__ import annotations

import streamlit as st

from nnviz.i18n import LANGUAGES, SOURCE, get_language, normalize, set_language, t

LANG_PARAM = "lang"              # the URL's query parameter
LANG_KEY = "nnviz_lang"          # session state: the session's language
PICK_KEY = "nnviz_lang_pick"     # the sidebar picker's widget (copied into LANG_KEY)


def _browser_language() -> str | None:
    try:
        return normalize(st.context.locale)
    except Exception:  # noqa: BLE001 - no browser session (bare mode)
        return None


def use_language() -> str | None:
    """Settle this run's language (URL, then session, then browser) and use it for every t();
    returns the warning about a bad ``lang=`` value, if any (in the language used instead)."""
    state = st.session_state
    problem = None
    given = st.query_params.get_all(LANG_PARAM)
    if given:
        code = normalize(given[-1])
        if code is not None:
            state[LANG_KEY] = code
        else:
            problem = given[-1]
    if LANG_KEY not in state:
        state[LANG_KEY] = _browser_language() or SOURCE
    apply_language()
    _keep_in_url()
    if problem is None:
        return None
    shown = problem if len(problem) <= 30 else problem[:30] + "…"
    return t("lang={value} in the link is not a language of nnviz; showing {language}. "
             "Languages: {choices}.", value=repr(shown), language=LANGUAGES[get_language()],
             choices=", ".join(LANGUAGES))


def apply_language() -> str:
    """Use the session's language in this thread (call first in a fragment); returns it."""
    code = normalize(st.session_state.get(LANG_KEY)) or SOURCE
    set_language(code)
    return code


def lang_query() -> dict[str, str]:
    """The language's query parameter for a link (empty for English)."""
    code = get_language()
    return {} if code == SOURCE else {LANG_PARAM: code}


def with_lang(params: dict[str, str] | None) -> dict[str, str]:
    """``params`` plus the language, for a link to another page or a share box."""
    return {**(params or {}), **lang_query()}


def _keep_in_url() -> None:
    want = lang_query().get(LANG_PARAM)
    if st.query_params.get_all(LANG_PARAM) != ([want] if want else []):
        if want:
            st.query_params[LANG_PARAM] = want
        else:
            del st.query_params[LANG_PARAM]


def _picked() -> None:
    """on_change of the picker: the new language for the session and the URL."""
    code = normalize(st.session_state.get(PICK_KEY)) or SOURCE
    st.session_state[LANG_KEY] = code
    set_language(code)
    _keep_in_url()


def language_picker() -> None:
    """English / 简体中文 / 繁體中文 in the sidebar (each name in its own language)."""
    st.session_state[PICK_KEY] = get_language()
    label = t("Language")  # the English word too, for a reader who cannot read this one
    label = label if label == "Language" else f"{label} · Language"
    st.sidebar.selectbox(label, list(LANGUAGES), format_func=LANGUAGES.__getitem__,
                         key=PICK_KEY, on_change=_picked,
                         help=t("The language of the app. Links you copy keep it."))
