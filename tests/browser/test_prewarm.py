"""The hidden plotly.js prewarm frame (ui/prewarm.py) in Chromium: on every page, out of the
layout, loading the player's own plotly.js URL when the page is idle, and never while a player
on the page is still loading it; Explore's share box drawn once opened."""

from __future__ import annotations

import re

import pytest

from nnviz.engine.training import train
from nnviz.presets import PRESETS
from nnviz.store.runs import RunStore
from tests.browser.harness import player, run_app, wait_for_app_idle
from ui.player import PLOTLY_SRC, component_name
from ui.prewarm import KEY

PREWARM = 'iframe[title*="plotly_prewarm"]'
PLAYER_PLOTLY = f"/component/{component_name()}/{PLOTLY_SRC}"
# epoch ms of the first mark of each name, and the URL of every plotly.js this frame loaded
MARKS = """() => { const m = {}; for (const e of performance.getEntriesByType('mark'))
  if (!(e.name in m)) m[e.name] = performance.timeOrigin + e.startTime; return m; }"""
PLOTLY_URLS = """() => performance.getEntriesByType('resource').map(e => e.name)
  .filter(n => /plotly[^/]*[.]js/.test(n)).map(n => new URL(n).pathname)"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium):
    """A server over a runs folder holding the symmetry lesson, trained (it opens at once)."""
    root = tmp_path_factory.mktemp("prewarm-runs")
    run_id = train(PRESETS["symmetry"].config(), RunStore(root)).run_id
    with run_app(root, tmp_path_factory.mktemp("logs") / "streamlit.log") as app:
        yield app, run_id


def prewarm_frame(page):
    page.wait_for_selector(PREWARM, state="attached", timeout=60_000)
    return next(f for f in page.frames if "plotly_prewarm" in f.url)


@pytest.mark.parametrize("width", [1400, 390])
def test_home_loads_the_players_plotly_out_of_sight_and_a_lesson_click_uses_it(
        server, browser, width):
    app, _ = server
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    try:
        page.goto(app.url)
        wait_for_app_idle(page)
        frame = prewarm_frame(page)
        # out of the layout: no box, no gap, nothing to see or reach
        box = page.locator(f".st-key-{KEY}")
        assert box.evaluate("e => getComputedStyle(e).display") == "none"
        assert box.bounding_box() is None
        frame.wait_for_function("() => window.nnvizPrewarmed === true", timeout=60_000)
        assert frame.evaluate(PLOTLY_URLS) == [PLAYER_PLOTLY]  # the player's own URL
        page.locator(".st-key-home_preset_symmetry button").click()
        page.wait_for_url(re.compile(r".*/Explore.*"), timeout=60_000)
        shown = player(page, timeout_ms=120_000)
        assert PLAYER_PLOTLY in shown.evaluate(PLOTLY_URLS)  # the same script, compiled before
    finally:
        page.context.close()


def test_a_linked_player_loads_plotly_first_and_the_prewarm_only_after_it(server, browser):
    """On a page opened by link the player's load is never shared with the prewarm's: the
    prewarm starts once the player's plotly.js has run."""
    app, run_id = server
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    try:
        page.goto(f"{app.url}/Explore?run={run_id}")
        shown = player(page, timeout_ms=120_000)
        frame = prewarm_frame(page)
        frame.wait_for_function("() => window.nnvizPrewarmed === true", timeout=60_000)
        assert frame.evaluate(MARKS)["nnviz:prewarm"] >= \
            shown.evaluate(MARKS)["nnviz:plotly-loaded"]
        # "Share this view" draws its links once opened (no code box in the page before)
        assert page.locator('[data-testid="stCode"]').count() == 0
        page.get_by_text("Share this view").click()
        page.locator('[data-testid="stCode"]').first.wait_for(timeout=60_000)
        assert run_id in page.locator('[data-testid="stCode"]').first.inner_text()
    finally:
        page.context.close()
