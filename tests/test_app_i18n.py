"""The app in every language (AppTest): each page renders in en, zh-Hans and zh-Hant, a Chinese
page has no English sentence left, and the language is chosen by the URL's ``lang=``, the
browser's locale, the sidebar picker, and kept by the session and by every link.

"No English sentence" means no run of three or more plain English words outside code: text in
backticks, URLs, and words that are code names (model, initializer, data set and option
identifiers, layer names such as ``conv1.weight``, units, a few proper names) do not count.

Two sources of text share a page. The app's own text (ui/, pages/) is checked strictly now.
The library's text (lesson texts, diagnostics, the tuning guide's steps, figure titles and
captions, option labels: nnviz/, catalogue ``library.po``) is translated on its own branch;
until it is, an English run that comes word for word from the library's source is reported by
``library_english`` and allowed. Once the library has translated messages (``LIBRARY_DONE``),
the same tests require the whole page, library text included, to be free of English.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nnviz import i18n
from nnviz.engine.training import train
from nnviz.i18n.extract import messages
from nnviz.store.runs import RunStore
from tests.fixtures.explore import pick_view, player_args
from tests.test_app_explore_compare import tiny  # the tutorial's SimpleCNN, two epochs
from tests.test_app_tuning import _wait_for as _until  # rerun as a polling fragment would
from ui.explore.player_view import VIEWS
from ui.text import unescape

ROOT = Path(__file__).resolve().parents[1]
APP = "../app.py"
TIMEOUT = 90
PAGES = ["pages/0_Home.py", "pages/1_Train.py", "pages/2_Explore.py", "pages/3_Compare.py",
         "pages/4_Runs.py", "pages/5_Tuning_guide.py", "pages/6_Overview.py"]
CHINESE = ["zh-Hans", "zh-Hant"]
TITLES = {"en": "Explore a run", "zh-Hans": "探索一次运行", "zh-Hant": "探索一次執行"}

# The library's strings are translated once it marks them (t / N_) and library.po has them.
LIBRARY_DONE = any(m.domain == "library" for m in messages()) and bool(
    set(i18n.catalogue("zh-Hans")) & {m.msgid for m in messages() if m.domain == "library"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one seed and two initializers (Explore, Compare, Overview have data)."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    ids = [train(tiny(init), store).run_id for init in ("default", "kaiming_normal")]
    mp = pytest.MonkeyPatch()
    mp.setenv("NNVIZ_RUNS_DIR", str(root))
    yield ids
    mp.undo()
    from ui.state import _manager

    _manager.clear()


# --------------------------------------------------------------------------- reading a page


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _figure_texts(spec: str) -> list[str]:
    """Titles, axis titles and annotations of a plotly figure's JSON (not its data)."""
    fig = json.loads(spec)
    layout = fig.get("layout", {})
    out = []
    for key, part in layout.items():
        if key == "title" or key.startswith(("xaxis", "yaxis")):
            title = part.get("title") if key != "title" else part
            out.extend(_strings(title.get("text") if isinstance(title, dict) else title))
    out.extend(a.get("text", "") for a in layout.get("annotations", []))
    return out


def _player_texts(blocks: list) -> list[str]:
    """The epoch player's captions, notes, HTML blocks and chart titles."""
    out: list[str] = []
    for block in blocks:
        for key in ("html", "htmls"):
            out.extend(re.sub(r"<[^>]+>", " ", s) for s in _strings(block.get(key, [])))
        for cell in block.get("row", []):
            out.extend(re.sub(r"<[^>]+>", " ", s) for s in _strings(cell.get("caption", [])))
            out.extend(_strings(cell.get("notes", [])))
            base = (cell.get("chart") or {}).get("base")
            if base:
                out.extend(_figure_texts(json.dumps(base)))
    return out


def page_texts(at: AppTest) -> list[str]:
    """Every text a reader sees: Markdown, boxes, labels, help, options, chart titles, the
    epoch player's words and captions."""
    out: list[str] = []
    for kind in ("markdown", "caption", "warning", "error", "info", "success", "title",
                 "header", "subheader", "code", "text", "exception"):
        out.extend(str(e.value) for e in at.get(kind))
    widgets = [e for kind in ("button", "checkbox", "toggle", "selectbox", "multiselect",
                              "text_input", "number_input", "slider", "select_slider", "radio",
                              "page_link", "download_button", "file_uploader", "button_group",
                              "form_submit_button") for e in at.get(kind)]
    for e in [*widgets, *at.expander, *at.tabs]:
        for field in ("label", "help", "placeholder"):
            value = getattr(e, field, None)
            value = getattr(e.proto, field, "") if value is None and hasattr(e, "proto") \
                else value
            out.extend(_strings(value))
        out.extend(_strings(list(getattr(e, "options", None) or [])))
    for e in at.get("plotly_chart"):
        out.extend(_figure_texts(e.proto.spec))
    for e in at.get("component_instance"):
        args = json.loads(e.proto.json_args)
        out.extend(_strings(args.get("labels", {})))
        payload = json.loads(args["payload"]) if args.get("payload") else {}  # "": key only
        out.extend(_player_texts(payload.get("blocks", [])))
        out.extend(_strings(payload.get("labels", [])))
    return [s for s in out if s]


# --------------------------------------------------------------------------- English runs

_CODE = re.compile(r"`[^`]*`|https?://\S+|\]\([^)]*\)|:material/[a-z_]+:|\{[a-z_]+\}")
_EDGE = "()[]{}<>,.;:!?\"'“”‘’*_·—–…|/#=+-"
_WORD = re.compile(r"(?:[A-Za-z][a-z]+|a|A|I)(?:'s)?")


@cache
def code_names() -> frozenset[str]:
    """Identifiers the app shows as they are: registry keys, option names and choices, and a
    few proper names and units (lower-cased)."""
    from nnviz.config import options
    from nnviz.engine.data import DATASETS
    from nnviz.engine.initializers import BIAS_INITS, INITIALIZERS
    from nnviz.engine.models import MODELS
    from nnviz.presets import PRESETS

    names = {*MODELS, *INITIALIZERS, *BIAS_INITS, *DATASETS, *PRESETS}
    for name, opt in options().items():
        names.add(name)
        names.update(str(c) for c in (opt.valid_choices() or ()))
    words = {name.lower() for name in names if name.isalpha()}  # "mlp", "spiral", "adam"
    words.update("""nnviz pytorch torch relu leakyrelu tanh sigmoid softmax adam sgd nan inf csv
        png zip json kaiming xavier glorot bengio he et al mnist fashion cifar resnet
        transformer safetensors linear conv streamlit cosine steplr reducelronplateau
        cosineannealinglr lr std mean min max init cuda cpu mps auto fc
        batchnorm dropout focal mse mae bce xor cnn mlp simplecnn simplenet probe""".split())
    return frozenset(words)


def english_runs(text: str, least: int = 3) -> list[str]:
    """Runs of ``least`` or more consecutive plain English words in ``text`` (code removed)."""
    runs: list[str] = []
    current: list[str] = []
    for token in [*_CODE.sub(" ", text).split(), ""]:
        word = token.strip(_EDGE)
        if _WORD.fullmatch(word) and word.lower().removesuffix("'s") not in code_names():
            current.append(word)
            continue
        if len(current) >= least:
            runs.append(" ".join(current))
        current = []
    return runs


def _source_words(text: str) -> str:
    return " ".join(t.strip(_EDGE) for t in _CODE.sub(" ", text).split())


@cache
def source_text(*folders: str) -> str:
    """Every string constant in the source of ``folders`` (relative to the repository), as
    words on one line: what a page can show of that code's English."""
    parts = []
    for name in folders:
        path = ROOT / name
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    parts.append(_source_words(node.value))
    return f" {' | '.join(parts)} "


def app_english(run: str) -> bool:
    """True when an English run is the app's own text (ui/, pages/, app.py): three of its
    words in a row are in the app's source and not in the library's (nnviz/), whose text is
    translated in library.po."""
    app, library = source_text("ui", "pages", "app.py"), source_text("nnviz")
    words = run.split()
    windows = {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}
    return any(f" {w} " in app and f" {w} " not in library for w in windows)


def english_left(at: AppTest) -> tuple[list[str], list[str]]:
    """(the app's English runs, the other English runs: the library's text) on a page."""
    found = [r for text in page_texts(at) for r in english_runs(text)]
    app = [r for r in found if app_english(r)]
    return app, [r for r in found if r not in app]


# --------------------------------------------------------------------------- opening pages


def open_page(page: str, lang: str | None = None, locale: str | None = None,
              **query: str) -> AppTest:
    """A new session on ``page`` (through app.py, so page links work), in ``lang``."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if locale:
        at.context["locale"] = locale
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for key, value in {**query, **({"lang": lang} if lang else {})}.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def choose(at: AppTest, key: str, value: str, lang: str) -> None:
    """Pick ``value`` in a segmented control whose labels are translated: AppTest formats the
    options in the test's thread, so it needs the page's language there too."""
    with i18n.language(lang):
        at.segmented_control(key=key).set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.segmented_control(key=key).value == value


def assert_no_english(at: AppTest, where: str) -> None:
    app, library = english_left(at)
    assert not app, f"{where}: English app text on a Chinese page: {app[:8]}"
    if LIBRARY_DONE:  # the library's texts are translated too: the whole page must be
        assert not library, f"{where}: English library text on a Chinese page: {library[:8]}"


# --------------------------------------------------------------------------- the tests


def test_the_english_run_detector():
    assert english_runs("第 2 轮 · the signal keeps its size") == ["the signal keeps its size"]
    assert english_runs("模型 `conv1.weight` 的 kaiming_normal 初始化，mlp on spiral") == []
    assert english_runs("Glorot & Bengio 2010; He et al. 2015") == []
    assert english_runs("训练 · Train and explore") == ["Train and explore"]
    assert english_runs("[调参指南](/Tuning_guide#step-4) Adam then SGD") == []
    assert app_english("Train and explore") and app_english("Share these settings")
    assert not app_english("kernel count network")  # library labels joined on a page


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_in_every_language(runs, page, lang):
    at = open_page(page, lang)
    assert at.session_state["nnviz_lang"] == lang
    assert at.selectbox(key="nnviz_lang_pick").value == lang
    title = at.title[0].value
    if lang == "en":
        assert not re.search(r"[\u4e00-\u9fff]", title), title
        return
    assert re.search(r"[\u4e00-\u9fff]", title), title
    assert_no_english(at, f"{page} in {lang}")


@pytest.mark.parametrize("lang", CHINESE)
def test_every_view_of_explore_and_compare_is_chinese(runs, lang):
    at = open_page("pages/2_Explore.py", lang)
    labels = [o["label"] for o in player_args(at)["views"]["options"]]  # the frame's control
    with i18n.language(lang):
        assert labels == [i18n.t(v) for v in VIEWS] and not any(map(app_english, labels))
    for mode in ("All epochs", "Health", "Tables"):
        pick_view(at, mode)
        assert_no_english(at, f"Explore {mode} in {lang}")
    at = open_page("pages/3_Compare.py", lang)
    choose(at, "compare_mode", "Health", lang)
    assert_no_english(at, f"Compare Health in {lang}")


def test_the_url_lang_picks_the_language_and_stays_in_the_url(runs):
    at = open_page("pages/2_Explore.py", "zh-Hans")
    assert at.title[0].value == TITLES["zh-Hans"]
    assert at.query_params["lang"] == "zh-Hans"
    at = open_page("pages/2_Explore.py", "zh-TW")  # a browser-style tag is understood
    assert at.title[0].value == TITLES["zh-Hant"]
    assert at.query_params["lang"] == "zh-Hant"


def test_a_bad_lang_is_a_plain_warning_and_the_page_stays_english(runs):
    at = open_page("pages/2_Explore.py", "fr<script>")
    assert at.title[0].value == TITLES["en"]
    warnings = " ".join(w.value for w in at.warning)
    assert "lang='fr<script>' in the link is not a language" in unescape(warnings)
    assert "showing English" in warnings and "<script>" not in warnings  # shown as text
    assert "lang" not in at.query_params  # the bad value is dropped from the URL


@pytest.mark.parametrize(("locale", "lang"), [("zh-CN", "zh-Hans"), ("zh-TW", "zh-Hant"),
                                              ("en-US", "en"), ("de-DE", "en"), (None, "en")])
def test_the_browser_locale_is_the_first_visits_default(runs, locale, lang):
    at = open_page("pages/2_Explore.py", locale=locale)
    assert at.title[0].value == TITLES[lang]


def test_the_url_wins_over_the_locale_and_the_session_keeps_the_choice(runs):
    at = open_page("pages/2_Explore.py", "en", locale="zh-CN")
    assert at.title[0].value == TITLES["en"]
    at = open_page("pages/2_Explore.py", "zh-Hans")
    at.switch_page("pages/4_Runs.py").run()  # a page switch without lang= in the URL
    at.query_params.pop("lang", None)
    at.run()
    assert at.title[0].value == "运行记录"


def test_the_sidebar_picker_switches_language_and_the_url(runs):
    at = open_page("pages/2_Explore.py")
    assert at.title[0].value == TITLES["en"]
    at.selectbox(key="nnviz_lang_pick").set_value("zh-Hant").run()
    assert at.title[0].value == TITLES["zh-Hant"]
    assert at.query_params["lang"] == "zh-Hant"
    at.selectbox(key="nnviz_lang_pick").set_value("en").run()
    assert at.title[0].value == TITLES["en"]
    assert "lang" not in at.query_params


def test_share_links_and_page_links_keep_the_language(runs):
    at = open_page("pages/1_Train.py", "zh-Hans")
    links = [c.value for c in at.code]
    assert len(links) == 2 and all("lang=zh-Hans" in link for link in links), links
    assert all("lang=zh-Hans" in p.proto.query_string for p in at.get("page_link")), \
        [p.proto.query_string for p in at.get("page_link")]
    at = open_page("pages/2_Explore.py", "zh-Hant")
    assert not at.code  # "Share this view" draws its links once opened
    at.session_state["explore_share"] = True
    at.run()
    assert len(at.code) == 2 and all("lang=zh-Hant" in c.value for c in at.code)
    at = open_page("pages/1_Train.py", "en")
    assert not any("lang=" in c.value for c in at.code)  # English is the default: left out


def test_the_epoch_player_gets_its_words_in_the_language(runs):
    at = open_page("pages/2_Explore.py", "zh-Hans")
    args = player_args(at)
    assert args["labels"]["play"] == "播放" and args["labels"]["pause"] == "暂停"
    assert "{k}" in args["labels"]["of"] and "{n}" in args["labels"]["of"]


# --------------------------------------------------------------------------- work in Chinese


def test_training_a_run_in_chinese(runs):
    """Train: the form, the job's progress and result, the queue table, all in zh-Hans."""
    at = open_page("pages/1_Train.py", "zh-Hans")
    with i18n.language("zh-Hans"):  # AppTest formats the translated options in this thread
        at.sidebar.selectbox(key="train_model").set_value("mlp").run()
        for key, value in (("train_n_samples", 200), ("train_epochs", 1), ("train_width", 8),
                           ("train_depth", 2), ("train_seed", 23)):
            at.sidebar.number_input(key=key).set_value(value).run()
        assert at.query_params["lang"] == "zh-Hans"  # the form's URL keeps the language
        at.button(key="train_start").click().run()
        assert not at.exception, [e.value for e in at.exception]
        _until(at, lambda at: bool(at.success))
        assert any("已完成" in s.value for s in at.success), [s.value for s in at.success]
        table = at.dataframe[0].value
        assert {"状态", "模型", "种子"} <= set(table.columns), list(table.columns)
        assert_no_english(at, "Train after a run in zh-Hans")


def test_a_tuning_step_and_the_lr_test_in_chinese(runs, monkeypatch):
    from nnviz.analysis import tuning

    monkeypatch.setenv(tuning.TINY_ENV, "1")
    at = open_page("pages/5_Tuning_guide.py", "zh-Hans")
    with i18n.language("zh-Hans"):  # AppTest formats the translated options in this thread
        at.button(key="tune_try_1").click().run()
        assert not at.exception, [e.value for e in at.exception]
        _until(at, lambda at: any("这组扫描说明了什么" in m.value for m in at.markdown))
        assert any("这组扫描说明了什么" in m.value for m in at.markdown)
        assert_no_english(at, "Tuning step 1 results in zh-Hans")
        at.button(key="tune_lr_run").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("建议学习率" in m.value or "没有建议值" in m.value for m in at.markdown)
        assert_no_english(at, "LR range test in zh-Hans")


def test_deleting_a_run_asks_in_chinese(runs):
    at = open_page("pages/4_Runs.py", "zh-Hant")
    at.session_state["nnviz_admin"] = True
    at.run()
    at.button(key="runs_delete").click().run()
    assert any("無法恢復" in w.value for w in at.warning), [w.value for w in at.warning]
    assert_no_english(at, "Runs delete confirmation in zh-Hant")
    at.button(key="runs_delete_no").click().run()
