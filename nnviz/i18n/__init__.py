"""Every user-facing sentence goes through here: ``t()`` looks it up in the reader's language.

English is the source: a message id *is* the English text, so code reads naturally and an
untranslated id falls back to English (a test makes sure none is missing). Catalogues are
gettext ``.po`` files under ``nnviz/i18n/locales/<language>/``, one per domain (``app.po`` for
the screens, ``library.po`` for diagnostics, lessons, the tuning guide and figures); they are
read with Babel, the well-kept gettext reader, so translators can use Poedit or Weblate.
``zh-Hant`` is generated from ``zh-Hans`` with OpenCC plus the overrides in
``locales/zh-Hant/overrides.tsv`` (``python3 scripts/i18n.py update``), never written by hand.

    t("Epoch {epoch} of {n}", epoch=3, n=5)      # fields are filled after translation
    tn("{n} warning", "{n} warnings", n)         # plural forms
    N_("Weights")                                # mark a constant; translate it with t() on use

The language lives in a context variable, so each Streamlit session's script thread and each
CLI call sees its own: ``set_language("zh-Hans")`` or ``with language("zh-Hans"): ...``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from pathlib import Path

LANGUAGES: dict[str, str] = {"en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文"}
SOURCE = "en"
LOCALES = Path(__file__).with_name("locales")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("nnviz_language", default=SOURCE)


def normalize(tag: object) -> str | None:
    """A language tag from a URL, a browser or a flag as one of ``LANGUAGES``; None if unknown.

    ``zh``, ``zh-CN``, ``zh_SG``, ``zh-Hans-CN`` → ``zh-Hans``; ``zh-TW``, ``zh-HK``, ``zh-MO``,
    ``zh-Hant`` → ``zh-Hant``; ``en``, ``en-GB`` → ``en``.
    """
    if not isinstance(tag, str) or not 0 < len(tag) <= 35:
        return None
    parts = [p.lower() for p in tag.strip().replace("_", "-").split("-") if p]
    if not parts:
        return None
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh":
        rest = set(parts[1:])
        if "hant" in rest or rest & {"tw", "hk", "mo"}:
            return "zh-Hant"
        return "zh-Hans"
    return None


def set_language(lang: str) -> contextvars.Token:
    """Use ``lang`` for every ``t()`` in this context (thread) from now on."""
    code = normalize(lang)
    if code is None:
        raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGUAGES)}")
    return _current.set(code)


def get_language() -> str:
    return _current.get()


@contextlib.contextmanager
def language(lang: str) -> Iterator[None]:
    """Translate into ``lang`` inside the block, then restore the previous language."""
    token = set_language(lang)
    try:
        yield
    finally:
        _current.reset(token)


@functools.cache
def catalogue(lang: str) -> dict[str, str | tuple[str, ...]]:
    """Every translated message of ``lang``: msgid, or (singular, plural), → its text(s)."""
    from babel.messages.pofile import read_po

    out: dict = {}
    folder = LOCALES / lang
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as fh:
            for message in read_po(fh, locale=lang.replace("-", "_")):
                if not message.id or not message.string:
                    continue
                if isinstance(message.id, tuple):
                    forms = tuple(message.string)
                    if all(forms):
                        out[message.id] = forms
                elif not message.fuzzy:
                    out[message.id] = message.string
    return out


def _fill(text: str, fields: dict) -> str:
    return text.format(**fields) if fields else text


def t(msgid: str, /, **fields: object) -> str:
    """``msgid`` (English) in the current language, with ``{fields}`` filled in."""
    lang = _current.get()
    if lang != SOURCE:
        found = catalogue(lang).get(msgid)
        if isinstance(found, str):
            return _fill(found, fields)
    return _fill(msgid, fields)


def tn(singular: str, plural: str, n: int, /, **fields: object) -> str:
    """The singular or plural message for count ``n``; ``{n}`` is filled in too.

    Chinese has one form, so its catalogues give the same text for both.
    """
    fields = {"n": n, **fields}
    lang = _current.get()
    if lang != SOURCE:
        found = catalogue(lang).get((singular, plural))
        if isinstance(found, tuple) and found:
            return _fill(found[0] if len(found) == 1 or n == 1 else found[-1], fields)
    return _fill(singular if n == 1 else plural, fields)


def N_(msgid: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a module-level constant for translation; translate it with ``t()`` where shown."""
    return msgid
