"""User and file text is shown literally: a run name, a status detail or a URL value written
as Markdown image / link syntax never becomes an image or a link (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore
from ui.text import literal, unescape

APP = "../app.py"
TIMEOUT = 60
IMAGE = "![x](http://h/p.png)"
LINK = "[a](http://h)"
# Unescaped Markdown that would fetch or link: "![", "](", an autolink or raw HTML.
ACTIVE = re.compile(r"(?<!\\)!(?<!\\)\[|(?<!\\)\]\(|<http|(?<!\\)<img|(?<!\\)<a ")


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_literal_shows_exactly_the_characters(text):
    shown = literal(text)
    assert unescape(shown) == " ".join(text.split())
    assert not ACTIVE.search(shown)
    assert "\n" not in shown


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A runs folder with one run named as Markdown image and link syntax."""
    root = tmp_path_factory.mktemp("hostile-runs")
    cfg = RunConfig(model="mlp", dataset="moons", depth=2, width=8, n_samples=200, epochs=1,
                    batch_size=32, probe_size=32, seed=4, name=f"{IMAGE} {LINK}")
    run_id = train(cfg, RunStore(root)).run_id
    mp = pytest.MonkeyPatch()
    mp.setenv("NNVIZ_RUNS_DIR", str(root))
    yield root, run_id
    mp.undo()
    from ui.state import _manager

    _manager.clear()


def sources(at: AppTest) -> list[str]:
    """The Markdown source of every element that Streamlit renders as Markdown."""
    out = [e.value for kind in ("markdown", "caption", "warning", "error", "info", "success",
                                "title", "header", "subheader") for e in at.get(kind)]
    return out + [p.proto.label for p in at.get("page_link")]


def open_page(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("page, query, wanted", [
    ("pages/0_Home.py", {}, [IMAGE, LINK]),
    ("pages/2_Explore.py", {"layer": LINK}, [IMAGE, LINK, f"layer='{LINK}'"]),
    ("pages/3_Compare.py", {}, [IMAGE, LINK]),
    ("pages/1_Train.py", {"lr": f"[Log in again]({LINK[4:-1]})"}, ["[Log in again](http://h)"]),
])
def test_user_text_is_literal_on_every_page(hostile, page, query, wanted):
    root, run_id = hostile
    if page != "pages/1_Train.py":
        query = {"run": run_id, **query}
    at = open_page(page, **query)
    texts = sources(at)
    assert not [t for t in texts if ACTIVE.search(t)], "Markdown that renders as image/link"
    seen = " ".join(unescape(t) for t in texts)
    for text in wanted:  # ... and the reader still sees every character
        assert text in seen, (text, seen[:2000])


def test_pages_send_the_projector_caption_style(hostile):
    """Captions at 16 px, opaque (Streamlit's are 14 px at opacity 0.6): one style per page."""
    from ui import player
    from ui.shell import CAPTION_CSS

    root, run_id = hostile
    for page in ("pages/0_Home.py", "pages/2_Explore.py"):
        at = open_page(page, run=run_id)
        bodies = [h.proto.body for h in at.get("html")]
        assert sum(b.count(CAPTION_CSS) for b in bodies) == 1, (page, bodies)
        assert "opacity: 1" in CAPTION_CSS and "font-size: 1rem" in CAPTION_CSS
        # the player's element is never faded by a rerun of its own asks: it names the players'
        # element keys (Streamlit's class st-key-<key>)
        assert any(player.STEADY_CSS in b for b in bodies), page
    pages = Path(__file__).resolve().parents[1] / "pages"
    for page, prefix in (("2_Explore.py", "explore"), ("3_Compare.py", "compare")):
        assert f'P = "{prefix}"' in (pages / page).read_text()  # play_views' key: P + "_player"
        assert f".st-key-{prefix}_player" in player.STEADY_CSS
