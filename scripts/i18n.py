"""Keep the translation catalogues in step with the code.

    python3 scripts/i18n.py update     # add new ids (empty), drop stale ones, remake zh-Hant
    python3 scripts/i18n.py status     # how many ids each language still lacks, and which
    python3 scripts/i18n.py hant       # only regenerate zh-Hant from zh-Hans (OpenCC + overrides)

A translator edits ``nnviz/i18n/locales/zh-Hans/*.po`` (msgstr lines, Poedit works), then runs
``update``. zh-Hant is derived: OpenCC's ``s2twp`` (Taiwan usage and phrases), then the
phrase overrides in ``locales/zh-Hant/overrides.tsv`` (one ``from<TAB>to`` per line).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a script run from the repository, not an installed module

from babel.messages.catalog import Catalog  # noqa: E402
from babel.messages.pofile import read_po, write_po  # noqa: E402

from nnviz.i18n import LOCALES  # noqa: E402
from nnviz.i18n.extract import messages  # noqa: E402

EDITED = ("zh-Hans",)          # written by translators
DERIVED = {"zh-Hant": "zh-Hans"}  # generated from another language
DOMAINS = ("app", "library")
FIXED = datetime(2026, 1, 1, tzinfo=UTC)  # no dates in the header: they would churn every update


def _catalog(lang: str, domain: str) -> Catalog:
    catalog = Catalog(locale=lang.replace("-", "_"), domain=domain, project="nnviz",
                      version="1", charset="utf-8", creation_date=FIXED, revision_date=FIXED,
                      header_comment=f"# nnviz: {domain} messages in {lang}. See scripts/i18n.py.")
    catalog.last_translator = "nnviz"
    catalog.language_team = lang
    return catalog


def _read(path: Path, lang: str) -> Catalog:
    if not path.exists():
        return Catalog(locale=lang.replace("-", "_"), domain=path.stem)
    with path.open("rb") as fh:
        return read_po(fh, locale=lang.replace("-", "_"), domain=path.stem)


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".po.tmp")
    with tmp.open("wb") as fh:
        write_po(fh, catalog, width=100, sort_output=True, include_previous=False,
                 include_lineno=False)  # file names only: line numbers churn on every edit
    tmp.replace(path)


def _key(msgid: str, plural: str | None):
    return (msgid, plural) if plural else msgid


def update() -> None:
    wanted: dict[str, dict] = {d: {} for d in DOMAINS}
    for m in messages():
        entry = wanted[m.domain].setdefault(_key(m.msgid, m.plural), [])
        entry.append(m.where)
    for lang in EDITED:
        for domain in DOMAINS:
            path = LOCALES / lang / f"{domain}.po"
            old = _read(path, lang)
            new = _catalog(lang, domain)
            for key, where in wanted[domain].items():
                prev = old.get(key)
                empty = ("", "") if isinstance(key, tuple) else ""
                files = sorted({w.rsplit(":", 1)[0] for w in where})[:3]
                new.add(key, prev.string if prev is not None else empty,
                        locations=[(f, None) for f in files])
            _write(path, new)
    hant()


def _overrides(lang: str) -> list[tuple[str, str]]:
    path = LOCALES / lang / "overrides.tsv"
    if not path.exists():
        return []
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            src, _, dst = line.partition("\t")
            pairs.append((src, dst))
    return pairs


def convert(text: str, converter, overrides: list[tuple[str, str]]) -> str:
    out = converter.convert(text)
    for src, dst in overrides:
        out = out.replace(src, dst)
    return out


def hant() -> None:
    import opencc

    converter = opencc.OpenCC("s2twp")
    for lang, base in DERIVED.items():
        overrides = _overrides(lang)
        for domain in DOMAINS:
            src = _read(LOCALES / base / f"{domain}.po", base)
            out = _catalog(lang, domain)
            for message in src:
                if not message.id:
                    continue
                if isinstance(message.string, (tuple, list)):
                    string = tuple(convert(s, converter, overrides) for s in message.string)
                else:
                    string = convert(message.string, converter, overrides)
                out.add(message.id, string, locations=message.locations)
            _write(LOCALES / lang / f"{domain}.po", out)


def status() -> int:
    from nnviz.i18n import catalogue

    ids = {_key(m.msgid, m.plural) for m in messages()}
    bad = 0
    for lang in (*EDITED, *DERIVED):
        catalogue.cache_clear()
        have = catalogue(lang)
        missing = sorted(str(k) for k in ids if k not in have)
        bad += len(missing)
        print(f"{lang}: {len(ids) - len(missing)} of {len(ids)} translated")
        for k in missing[:40]:
            print("   missing:", k[:100])
    return 1 if bad else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "status"
    if command == "update":
        update()
        sys.exit(status())
    if command == "hant":
        hant()
        sys.exit(0)
    sys.exit(status())
