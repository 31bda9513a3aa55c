"""End to end in headless Chromium: a lesson trains, Explore scrubs, Compare opens, pages load.

The app runs on 127.0.0.1 (free port) over a fresh runs folder; screenshots go to
artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.harness import wait_for_app_idle

TRAIN_TIMEOUT_MS = 240_000


def no_exception(page) -> None:
    """No Streamlit exception box and no traceback text on the page."""
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.inner_text("body")


def chart_titles(page) -> list[str]:
    return page.eval_on_selector_all('[data-testid="stPlotlyChart"] .gtitle',
                                     "els => els.map(e => e.textContent)")


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
    page.screenshot(path=str(shots / "e2e-explore-epoch3.png"), full_page=True)
    assert any("conv1.weight · epoch 3" in t for t in chart_titles(page))

    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("ArrowLeft")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .gtitle')]
                 .some(t => t.textContent.includes('conv1.weight · epoch 2'))""",
        timeout=60_000)
    wait_for_app_idle(page)
    assert "epoch=2" in page.url
    slider.press("Home")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .gtitle')]
                 .some(t => /conv1.weight · (init|epoch 0)/.test(t.textContent))""",
        timeout=60_000)
    wait_for_app_idle(page)
    no_exception(page)
    page.screenshot(path=str(shots / "e2e-explore-init.png"), full_page=True)

    # a copied link opens the same view in a fresh browser context
    link = page.url
    other = page.context.browser.new_context(viewport={"width": 390, "height": 844})
    phone = other.new_page()
    phone.goto(link)
    wait_for_app_idle(phone)
    no_exception(phone)
    assert any(re.search(r"conv1.weight · (init|epoch 0)", t) for t in chart_titles(phone))
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
    page.wait_for_function(
        """() => document.querySelectorAll('[data-testid="stPlotlyChart"]').length >= 2""",
        timeout=TRAIN_TIMEOUT_MS)
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
    no_exception(page)
    text = page.inner_text("body")
    assert re.search(r"resnet|lr|not a valid|ignored|instead", text)


def test_scrub_in_browser_switches_every_panel_without_the_server(app, page, shots):
    page.goto(f"{app.url}/Explore?preset=tutorial_cnn&layer=conv1")
    page.get_by_text(re.compile(r"completed \(3/3 epochs\)")).wait_for(timeout=TRAIN_TIMEOUT_MS)
    page.get_by_text("Scrub in browser", exact=True).click()
    gd = "[...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout && g.layout.sliders)"
    page.wait_for_function(f"() => !!({gd})", timeout=60_000)
    wait_for_app_idle(page)
    no_exception(page)
    assert page.evaluate(f"() => ({gd}).layout.sliders[0].active") == 3
    labels = page.locator(".slider-group .slider-label")  # [current value, init, 1, 2, 3]
    rail = page.locator(".slider-group .slider-rail-touch-rect").bounding_box()
    box = labels.nth(1).bounding_box()  # init
    page.mouse.click(box["x"] + box["width"] / 2, rail["y"] + rail["height"] / 2)
    page.wait_for_function(f"""() => {{
        const g = ({gd});
        const want = Array.from(g._transitionData._frameHash['0'].data[0].y);
        return g.layout.sliders[0].active === 0
          && JSON.stringify(Array.from(g.data[0].y)) === JSON.stringify(want); }}""",
                           timeout=10_000)
    # every panel now shows the init snapshot: histogram, filter tiles and biases
    frame0 = page.evaluate(f"""() => {{ const g = ({gd});
        const f = g._transitionData._frameHash['0'].data;
        return f.map((t, i) => JSON.stringify(Array.from(g.data[i].z || g.data[i].y).flat())
                               === JSON.stringify(Array.from(t.z || t.y).flat())); }}""")
    assert frame0 == [True, True, True]
    page.screenshot(path=str(shots / "e2e-explore-scrub.png"))
