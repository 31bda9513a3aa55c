"""The translation layer: language tags, lookup and fallback, plurals, and catalogues that
match the code exactly (every id the code uses is translated in every language, none is stale,
and zh-Hant is what OpenCC makes of zh-Hans)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from nnviz import i18n
from nnviz.i18n import N_, catalogue, language, normalize, t, tn
from nnviz.i18n.extract import dynamic_calls, messages

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("tag", "want"), [
    ("en", "en"), ("en-GB", "en"), ("zh", "zh-Hans"), ("zh-CN", "zh-Hans"), ("zh_SG", "zh-Hans"),
    ("zh-Hans-CN", "zh-Hans"), ("zh-TW", "zh-Hant"), ("zh-HK", "zh-Hant"), ("zh-Hant", "zh-Hant"),
    ("ZH-hant-tw", "zh-Hant"), ("fr", None), ("", None), (None, None), ("x" * 99, None),
    ("<script>", None),
])
def test_normalize_maps_tags_to_the_supported_languages(tag, want):
    assert normalize(tag) == want


def test_english_is_the_source_and_fields_are_filled():
    with language("en"):
        assert t("Epoch {epoch} of {n}", epoch=3, n=5) == "Epoch 3 of 5"
        assert tn("{n} warning", "{n} warnings", 1) == "1 warning"
        assert tn("{n} warning", "{n} warnings", 2) == "2 warnings"
    assert N_("Weights") == "Weights"


def test_an_unknown_id_falls_back_to_english_in_every_language():
    for lang in i18n.LANGUAGES:
        with language(lang):
            assert t("no such message id {x}", x=1) == "no such message id 1"


def test_the_language_is_per_context_and_restored():
    assert i18n.get_language() == "en"
    with language("zh-Hans"):
        assert i18n.get_language() == "zh-Hans"
        with language("zh-Hant"):
            assert i18n.get_language() == "zh-Hant"
        assert i18n.get_language() == "zh-Hans"
    assert i18n.get_language() == "en"
    with pytest.raises(ValueError, match="unknown language"):
        i18n.set_language("fr")


def _ids() -> set:
    return {(m.msgid, m.plural) if m.plural else m.msgid for m in messages()}


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != i18n.SOURCE])
def test_every_message_the_code_uses_is_translated(lang):
    catalogue.cache_clear()
    missing = sorted(str(k) for k in _ids() if k not in catalogue(lang))
    assert not missing, f"{len(missing)} untranslated in {lang} (see scripts/i18n.py status)"


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != i18n.SOURCE])
def test_no_catalogue_holds_stale_ids(lang):
    from babel.messages.pofile import read_po

    used = _ids()
    for path in sorted((i18n.LOCALES / lang).glob("*.po")):
        with path.open("rb") as fh:
            stale = [m.id for m in read_po(fh) if m.id and m.id not in used]
        assert not stale, f"{path.name}: {stale[:10]} (run scripts/i18n.py update)"


def test_translations_keep_every_field_of_their_message():
    import string

    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    catalogue.cache_clear()
    for lang in i18n.LANGUAGES:
        if lang == i18n.SOURCE:
            continue
        for key, text in catalogue(lang).items():
            src = key if isinstance(key, str) else key[1]
            texts = [text] if isinstance(text, str) else list(text)
            for one in texts:
                assert fields(one) <= fields(src) | {"n"}, (lang, key, one)


def test_t_is_called_with_literal_ids_only():
    """A computed id cannot be checked; constants are marked with N_() and passed to t()."""
    allowed = (ROOT / "nnviz/i18n/dynamic_ok.txt")
    ok = set(allowed.read_text(encoding="utf-8").split()) if allowed.exists() else set()
    bad = [w for w in dynamic_calls() if w.split(":")[0] not in ok]
    assert not bad, f"t()/tn() with a non-literal id (mark the constant with N_): {bad[:10]}"


@pytest.mark.skipif(importlib.util.find_spec("opencc") is None,
                    reason="opencc (requirements-dev.txt) is not installed")
def test_zh_hant_is_generated_from_zh_hans(tmp_path, monkeypatch):
    """The committed zh-Hant catalogues are exactly what scripts/i18n.py hant makes."""
    import shutil

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import i18n as tool
    finally:
        sys.path.pop(0)
    copy = tmp_path / "locales"
    shutil.copytree(i18n.LOCALES, copy)
    monkeypatch.setattr(tool, "LOCALES", copy)
    tool.hant()
    from babel.messages.pofile import read_po

    for path in sorted((i18n.LOCALES / "zh-Hant").glob("*.po")):
        with path.open("rb") as a, (copy / "zh-Hant" / path.name).open("rb") as b:
            want = {m.id: m.string for m in read_po(b) if m.id}
            have = {m.id: m.string for m in read_po(a) if m.id}
        assert have == want, f"{path.name} is out of date: run python3 scripts/i18n.py hant"
