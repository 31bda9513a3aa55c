"""End to end in headless Chromium: a lesson trains, Explore scrubs, Compare opens, pages load.

The app runs on 127.0.0.1 (free port) over a fresh runs folder; screenshots go to
artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnviz.analysis import views
from nnviz.store.runs import RunStore
from tests.browser.harness import (
    HOLDS_NAMED,
    chart_data,
    chart_titles,
    player,
    wait_for_app_idle,
    wait_for_frame,
    wait_for_holding,
)

TRAIN_TIMEOUT_MS = 240_000


def no_exception(page) -> None:
    """No Streamlit exception box and no traceback text on the page."""
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.inner_text("body")


def expected_counts(app, run_id: str, param: str, index: int) -> list[int]:
    """numpy's counts of a stored snapshot on the run's fixed bins (the reference)."""
    run = RunStore(app.runs_dir).load(run_id)
    return [int(c) for c in views.param_track([run], param).hist(run_id, index).counts]


def test_lesson_trains_then_explore_scrubs_epochs(app, page, shots):
    page.goto(app.url)
    wait_for_app_idle(page)
    no_exception(page)
    page.get_by_role("button", name="Train and explore").first.click()
    page.wait_for_url(re.compile(r".*/Explore.*"), timeout=60_000)
    # the run trains in a worker process; finished epochs appear while later ones train
    page.get_by_text(re.compile(r"completed \(3/3 epochs\)")).wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_for_app_idle(page)
    no_exception(page)
    assert "run=" in page.url  # the URL carries the view: a copied link opens the same run
    run_id = re.search(r"run=([^&]+)", page.url).group(1)
    frame = player(page)
    wait_for_frame(frame, 3)
    page.screenshot(path=str(shots / "e2e-explore-epoch3.png"), full_page=True)
    assert "conv1.weight · epoch 3" in chart_titles(frame)
    assert chart_data(frame, 1, "y") == expected_counts(app, run_id, "conv1.weight", 3)

    slider = frame.locator("#slider")
    slider.focus()
    slider.press("ArrowLeft")  # redrawn in the browser ...
    wait_for_frame(frame, 2)
    assert "conv1.weight · epoch 2" in chart_titles(frame)
    assert chart_data(frame, 1, "y") == expected_counts(app, run_id, "conv1.weight", 2)
    # ... and reported to the server, which puts the epoch in the URL
    page.wait_for_function("() => location.search.includes('epoch=2')", timeout=30_000)
    slider.press("Home")
    wait_for_frame(frame, 0)
    assert any(re.search(r"conv1.weight · (init|epoch 0)", t) for t in chart_titles(frame))
    page.wait_for_function("() => location.search.includes('epoch=0')", timeout=30_000)
    wait_for_app_idle(page)
    no_exception(page)
    page.screenshot(path=str(shots / "e2e-explore-init.png"), full_page=True)

    # a copied link opens the same view in a fresh browser context
    link = page.evaluate("location.href")
    other = page.context.browser.new_context(viewport={"width": 390, "height": 844})
    phone = other.new_page()
    phone.goto(link)
    wait_for_app_idle(phone)
    no_exception(phone)
    wait_for_frame(player(phone), 0)
    assert any(re.search(r"conv1.weight · (init|epoch 0)", t) for t in chart_titles(player(phone)))
    phone.screenshot(path=str(shots / "e2e-explore-phone.png"))
    other.close()


def test_compare_twin_run_side_by_side(app, page, shots):
    page.goto(f"{app.url}/Explore?preset=tutorial_cnn")
    page.get_by_text(re.compile(r"completed \(3/3 epochs\)")).wait_for(timeout=TRAIN_TIMEOUT_MS)
    run_id = re.search(r"run=([^&]+)", page.url).group(1)
    page.goto(f"{app.url}/Compare?run={run_id}")
    wait_for_app_idle(page)
    no_exception(page)
    page.get_by_role("button", name=re.compile("twin")).click()
    # both runs side by side in the player's frame, their loss curves last
    frame = player(page, timeout_ms=TRAIN_TIMEOUT_MS)
    frame.wait_for_function("() => [...document.querySelectorAll('.gtitle')].some((t) => "
                            "t.textContent === 'Training loss')", timeout=TRAIN_TIMEOUT_MS)
    # B is the twin: same seed, another initializer, so its initial weights differ from A's
    page.get_by_text(re.compile(r"Initial-weight digests.*different")).first.wait_for(
        timeout=TRAIN_TIMEOUT_MS)
    wait_for_app_idle(page, timeout_ms=TRAIN_TIMEOUT_MS)
    no_exception(page)
    page.screenshot(path=str(shots / "e2e-compare.png"), full_page=True)


def test_train_page_trains_a_url_config(app, page, shots):
    page.goto(f"{app.url}/Train?model=mlp&dataset=moons&n_samples=200&epochs=2&depth=2"
              "&width=8&seed=5")
    wait_for_app_idle(page)
    no_exception(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(re.compile("Open in Explore")).first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    no_exception(page)
    page.screenshot(path=str(shots / "e2e-train.png"), full_page=True)


@pytest.mark.parametrize("path", ["", "Train", "Explore", "Compare", "Runs", "Tuning_guide"])
def test_every_page_loads_without_error(app, page, path):
    page.goto(f"{app.url}/{path}")
    wait_for_app_idle(page)
    no_exception(page)


def test_bad_url_values_get_a_message_not_a_traceback(app, page):
    page.goto(f"{app.url}/Explore?model=resnet&lr=fast&seed=-3&epoch=999&run=..%2Fetc")
    wait_for_app_idle(page)
    # the warnings are drawn with the page's first run; on a busy server that can follow
    # the idle check by a moment
    page.get_by_text(re.compile(r"resnet|not a valid|ignored|instead")).first.wait_for(
        timeout=60_000)
    no_exception(page)


def test_player_redraws_every_chart_and_plays(app, page, shots):
    """The player's buttons redraw every chart with that snapshot's stored numbers (histogram
    counts, filter tiles, biases), and Play runs to the last snapshot."""
    page.goto(f"{app.url}/Explore?preset=tutorial_cnn&layer=conv1")
    page.get_by_text(re.compile(r"completed \(3/3 epochs\)")).wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_for_app_idle(page)
    run_id = re.search(r"run=([^&]+)", page.evaluate("location.href")).group(1)
    run = RunStore(app.runs_dir).load(run_id)
    frame = player(page)
    wait_for_frame(frame, 3)
    for k in (2, 1, 0):
        frame.get_by_role("button", name="Previous snapshot").click()
        wait_for_frame(frame, k)
    no_exception(page)
    w = run.snapshot(0).values("conv1.weight").reshape(run.record.params["conv1.weight"].shape)
    # charts: 0 timeline, 1 weight histogram, 2 filter tiles, 3 bias histogram, 4 bias bars
    assert chart_data(frame, 1, "y") == expected_counts(app, run_id, "conv1.weight", 0)
    tiles = np.asarray(chart_data(frame, 2, "z"), dtype=np.float64)
    assert np.isin(w.astype(np.float32).ravel(), tiles).all()  # every weight is a tile cell
    np.testing.assert_allclose(chart_data(frame, 4, "y"), run.snapshot(0).values("conv1.bias"),
                               rtol=1e-6)
    frame.get_by_role("button", name=re.compile("Play")).click()
    wait_for_frame(frame, 3, timeout_ms=15_000)
    frame.get_by_role("button", name=re.compile("Play")).wait_for(timeout=5_000)  # stopped
    assert chart_data(frame, 1, "y") == expected_counts(app, run_id, "conv1.weight", 3)
    page.screenshot(path=str(shots / "e2e-explore-played.png"), full_page=True)


def test_layers_and_views_switch_without_resending_or_rebuilding(app, page):
    """A layer seen before comes back from the player's own cache (no payload sent, no charts
    rebuilt), All epochs is another payload of the same frame, and the player survives a trip
    to a view Python draws (same frame, same snapshot)."""
    page.goto(f"{app.url}/Explore?preset=tutorial_cnn&layer=conv1")
    page.get_by_text(re.compile(r"completed \(3/3 epochs\)")).wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_for_app_idle(page)
    frame = player(page)
    wait_for_frame(frame, 3)
    frame.locator("#slider").focus()
    frame.locator("#slider").press("ArrowLeft")
    wait_for_frame(frame, 2)
    page.wait_for_function("() => location.search.includes('epoch=2')", timeout=30_000)
    wait_for_app_idle(page)
    layer_box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]',
                             has_text="Layer").first

    def pick(layer: str) -> None:
        layer_box.click()
        page.get_by_role("option", name=re.compile(rf"^{layer}\b")).click()
        wait_for_holding(frame, "(l) => (window.nnvizPlayer.key || '').includes(`|${l}|`)",
                         arg=layer)
        wait_for_app_idle(page)

    # conv1's All epochs and fc's This epoch come ahead of a switch (and are built then)
    wait_for_holding(frame, HOLDS_NAMED)
    pick("fc")
    assert any(t.startswith("fc.weight · epoch 2") for t in chart_titles(frame))
    wait_for_holding(frame, HOLDS_NAMED)  # and so does fc's All epochs
    assert frame.evaluate("state.cache.size") == 4
    wait_for_app_idle(page)
    builds = frame.evaluate("window.nnvizPlayer.builds")
    for layer in ("conv1", "fc", "conv1"):
        pick(layer)
        assert any(t.startswith(f"{layer}.weight · epoch 2") for t in chart_titles(frame))
    assert frame.evaluate("window.nnvizPlayer.builds") == builds  # nothing rebuilt
    no_exception(page)

    frame.evaluate("window.__same = true")  # gone if the frame is recreated

    def view(name: str, key: str | None) -> None:
        frame.get_by_role("radio", name=name).click()  # the frame's own view control
        if key is None:  # a view Python draws: the player waits out of sight
            frame.wait_for_function("() => !window.nnvizPlayer.visible", timeout=60_000)
        else:
            frame.wait_for_function(f"""() => window.nnvizPlayer.visible
                && (window.nnvizPlayer.key || '').startsWith('{key}|')""", timeout=60_000)
        wait_for_app_idle(page)

    view("All epochs", "all")  # another payload of the same frame, at the same snapshot
    assert any("every snapshot, fixed bins" in t for t in chart_titles(frame))
    assert frame.evaluate("window.nnvizPlayer.frame") == 2
    view("Health", None)
    view("This epoch", "player")
    view("All epochs", "all")
    view("This epoch", "player")
    assert frame.evaluate("window.__same") is True
    assert frame.evaluate("window.nnvizPlayer.builds") == builds  # All epochs came built
    assert any(t.startswith("conv1.weight · epoch 2") for t in chart_titles(frame))
    no_exception(page)
