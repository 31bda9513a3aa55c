"""A fresh server opened by a deep link, and user text that must stay text, in Chromium.

The app runs on 127.0.0.1 (free port) over a runs folder holding one small run whose name is
Markdown image and link syntax: no page may turn it into an <img> or a link to http://h.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.store.runs import RunStore
from tests.browser.harness import pick_view, player, run_app, wait_for_app_idle, wait_for_frame

HOSTILE = "![x](http://h/p.png) [a](http://h)"
TITLES = ["Home", "Train", "Explore", "Compare", "Runs", "Tuning guide"]


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (the job manager's workers of the server)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _no_injected_elements(page) -> None:
    """No <img> or link to the hostile host anywhere, frames included."""
    for frame in page.frames:
        assert frame.locator('img[src*="//h/"]').count() == 0
        assert frame.locator('a[href^="http://h"]').count() == 0


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("shell-runs")
    cfg = RunConfig(model="mlp", dataset="moons", depth=2, width=8, n_samples=200, epochs=4,
                    batch_size=32, probe_size=32, seed=3, name=HOSTILE)
    return root, train(cfg, RunStore(root)).run_id


def test_a_deep_link_on_a_fresh_server_opens_its_page(hostile_run, browser, tmp_path, shots):
    """The first visit to a fresh server is a shared link to Explore (not Home): the right
    page, the app's own sidebar, the training workers started, user text shown as text."""
    root, run_id = hostile_run
    with run_app(root, tmp_path / "streamlit.log") as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{server.url}/Explore?run={run_id}&epoch=abc&layer=%5Ba%5D(http://h)")
        wait_for_app_idle(page)
        page.get_by_role("heading", name="Explore a run").wait_for(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        sidebar = page.locator('[data-testid="stSidebar"]')
        assert sidebar.locator('[data-testid="stSidebarNav"]').count() == 0  # Streamlit's own
        links = [t.strip() for t in sidebar.locator('[data-testid="stPageLink"]').all_inner_texts()]
        assert all(any(title in link for link in links) for title in TITLES), links
        assert not any(re.fullmatch(r"\W*app", link) for link in links)
        # epoch=abc: the warning says the first snapshot, and the first snapshot is shown (the
        # title is drawn before the run is read, so the idle check can come before the rest)
        page.get_by_text(re.compile("showing the first snapshot")).first.wait_for(
            timeout=60_000)
        wait_for_frame(player(page), 0)
        body = page.inner_text("body")
        assert "epoch='abc'" in body and "showing the first snapshot" in body
        assert "epoch=0" in page.url or "epoch=" not in page.url
        # the name and the URL value are literal text, never an image or a link
        assert HOSTILE in body and "layer='[a](http://h)'" in body
        _no_injected_elements(page)
        page.screenshot(path=str(shots / "shell-deep-link.png"), full_page=True)
        # the training workers were started by the page itself (no visit to Home)
        assert _children(server.process.pid), "no worker process under the server"
        page.goto(server.url)  # Home lists the run by its name, as text
        wait_for_app_idle(page)
        page.get_by_role("heading", name="Recent runs").wait_for(timeout=30_000)
        assert HOSTILE in page.inner_text("body")
        _no_injected_elements(page)
        context.close()


def test_play_in_a_server_drawn_view_runs_to_the_last_snapshot(hostile_run, browser, tmp_path):
    """Play in "Health" (drawn by Python, one rerun per frame) reaches the last of the 5
    snapshots, and the URL's epoch agrees with the slider (it once stopped at epoch 2 of 5)."""
    root, run_id = hostile_run
    with run_app(root, tmp_path / "streamlit.log") as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{server.url}/Explore?run={run_id}&epoch=0")
        wait_for_app_idle(page)
        pick_view(page, "Health")
        page.get_by_role("button", name=re.compile("Play")).click()
        page.get_by_role("button", name=re.compile("Pause")).wait_for(timeout=30_000)
        page.wait_for_function("() => location.search.includes('epoch=4')", timeout=90_000)
        page.get_by_role("button", name=re.compile("Play")).wait_for(timeout=30_000)  # stopped
        wait_for_app_idle(page)
        assert "epoch 4" in page.locator('[data-testid="stSlider"]').inner_text()
        assert "epoch=4" in page.url
        assert page.locator('[data-testid="stException"]').count() == 0
        context.close()
