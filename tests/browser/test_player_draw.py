"""The epoch player's drawing, in Chromium: a move redraws only what changes (Plotly.update of
the changed keys), and what it draws is exactly what a fresh plot of that snapshot draws: the
same texts (titles, ticks, legend), data and axis ranges, on Explore and on Compare (both runs,
their shared y axes). A zoom survives the moves; the charts on screen are drawn first.
"""

from __future__ import annotations

import re

import pytest

from nnviz.config import RunConfig
from nnviz.engine.training import train
from nnviz.presets import preset
from nnviz.store.runs import RunStore
from tests.browser.harness import (
    PLAYER_IFRAME,
    SHOWN,
    chart_titles,
    player,
    run_app,
    wait_for_app_idle,
    wait_for_frame,
    wait_for_holding,
)

# Every chart of the payload shown (but those in ``skip``) against a fresh Plotly.newPlot of its
# frame in a scratch div of the same width: the mismatches, as text.
SAME_AS_FRESH = """async (skip) => {
  const pick = (gd) => {
    const arr = (v) => (v && typeof v !== 'string' && v.length !== undefined)
      ? Array.from(v, arr) : v;
    return JSON.stringify({
      texts: [...gd.querySelectorAll('.main-svg text')].map((t) => t.textContent),
      data: gd._fullData.map((t) => ['type', 'x', 'y', 'z', 'text', 'name', 'visible']
        .map((key) => arr(t[key]))),
      marker: gd._fullData.map((t) => t.marker && arr(t.marker.color)),
      ranges: Object.keys(gd._fullLayout).filter((k) => /^[xy]axis\\d*$/.test(k))
        .map((k) => gd._fullLayout[k].range),
      title: gd._fullLayout.title.text,
    });
  };
  const bad = [];
  for (const [i, c] of state.entry.charts.entries()) {
    if (skip.includes(i)) continue;
    const fig = frameFigure(c.chart, c.drawn);
    const scratch = document.createElement('div');
    scratch.style.cssText = `position:absolute;left:-5000px;top:0;width:${c.div.clientWidth}px`;
    document.body.appendChild(scratch);
    await Plotly.newPlot(scratch, fig.data, fig.layout, chartConfig(fig));
    const [got, want] = [pick(c.div), pick(scratch)];
    if (got !== want) bad.push(`chart ${i} at frame ${c.drawn}: ${got} != ${want}`);
    Plotly.purge(scratch);
    scratch.remove();
  }
  return bad;
}"""

# The tick labels a chart shows with its axes' "ticklabeloverflow" as the player sets it
# ("allow": nothing measured) and with plotly's default ("hide past div"): the charts whose
# visible texts differ.
LABELS_AS_DEFAULT = """async () => {
  const shown = (gd) => [...gd.querySelectorAll('.main-svg text')]
    .filter((t) => t.getAttribute('display') !== 'none' && getComputedStyle(t).display !== 'none')
    .map((t) => t.textContent).join('|');
  const bad = [];
  for (const [i, c] of state.entry.charts.entries()) {
    const fig = frameFigure(c.chart, c.drawn);
    const scratch = document.createElement('div');
    scratch.style.cssText = `position:absolute;left:-5000px;top:0;width:${c.div.clientWidth}px`;
    document.body.appendChild(scratch);
    await Plotly.newPlot(scratch, fig.data, fig.layout, chartConfig(fig));
    const allow = shown(scratch);
    for (const ax of Object.values(fig.layout)) if (ax && ax.ticklabeloverflow === 'allow') {
      delete ax.ticklabeloverflow;
    }
    await Plotly.react(scratch, fig.data, fig.layout, chartConfig(fig));
    if (shown(scratch) !== allow) bad.push(`chart ${i}: ${allow} != ${shown(scratch)}`);
    Plotly.purge(scratch);
    scratch.remove();
  }
  return bad;
}"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A small SimpleCNN and its Xavier twin (same seed), 4 snapshots each, and the exploding
    lesson (NaN at the end, each snapshot on its own bins, the health timeline's outline)."""
    root = tmp_path_factory.mktemp("draw-runs")
    store = RunStore(root)
    base = dict(model="simple_cnn", dataset="shapes32", n_samples=320, epochs=3, batch_size=32,
                probe_size=32, seed=5)
    a = train(RunConfig(**base, init="default"), store).run_id
    b = train(RunConfig(**base, init="xavier_uniform"), store).run_id
    train(preset("exploding").config(), store)
    return root, a, b


@pytest.fixture(scope="module")
def server(two_runs, tmp_path_factory):
    root, _, _ = two_runs
    with run_app(root, tmp_path_factory.mktemp("draw-logs") / "streamlit.log") as app:
        yield app


def _scrub_and_check(page, frame) -> None:
    """Moves in both directions and jumps; after each, every chart is what a fresh plot of that
    snapshot is, and the moves after the first draw were Plotly.update, not Plotly.react."""
    wait_for_frame(frame, 3)
    on_screen = "window.nnvizPlayer.reacts - window.nnvizPlayer.parkedReacts"
    reacts = frame.evaluate(on_screen)  # predraw may draw the other view's payload meanwhile
    slider = frame.locator("#slider")
    slider.focus()
    for key, want in (("ArrowLeft", 2), ("Home", 0), ("ArrowRight", 1), ("End", 3),
                      ("ArrowLeft", 2)):
        slider.press(key)
        wait_for_frame(frame, want)
        assert frame.evaluate(SAME_AS_FRESH, []) == []
    assert frame.evaluate(LABELS_AS_DEFAULT) == []
    assert frame.evaluate(on_screen) == reacts
    assert frame.evaluate("window.nnvizPlayer.updates") > 0


def test_explore_moves_draw_what_a_fresh_plot_draws(server, two_runs, browser):
    _, run_a, _ = two_runs
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{server.url}/Explore?run={run_a}&layer=conv1")
    _scrub_and_check(page, player(page, timeout_ms=120_000))
    page.goto(f"{server.url}/Explore?run={run_a}&layer=fc")  # neuron tiles, 10 classes
    _scrub_and_check(page, player(page, timeout_ms=120_000))
    page.context.close()


def test_a_diverging_run_moves_draw_what_a_fresh_plot_draws(server, two_runs, browser):
    root, run_a, run_b = two_runs
    run = next(r["run_id"] for r in RunStore(root).list_runs()[0] if r["run_id"] not in
               (run_a, run_b))
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{server.url}/Explore?run={run}&layer=linear")
    frame = player(page, timeout_ms=120_000)
    n = int(frame.evaluate("document.getElementById('slider').max")) + 1
    assert n > 10
    wait_for_frame(frame, n - 1)
    for k in (0, n // 3, n - 1, n - 2, 1, n // 2):  # jumps, as a drag makes them
        frame.locator("#slider").evaluate(
            "(el, k) => { el.value = String(k); el.dispatchEvent(new Event('input')); }", k)
        wait_for_frame(frame, k)
        assert frame.evaluate(SAME_AS_FRESH, []) == []
    assert frame.evaluate("window.nnvizPlayer.updates") > 0
    page.context.close()


@pytest.mark.parametrize("width", [1400, 390])
def test_compare_moves_draw_both_runs_as_a_fresh_plot_does(server, two_runs, browser, width):
    _, run_a, run_b = two_runs
    page = browser.new_context(viewport={"width": width, "height": 1000}).new_page()
    page.goto(f"{server.url}/Compare?run={run_a}&run_b={run_b}&layer=conv1")
    frame = player(page, timeout_ms=120_000)
    _scrub_and_check(page, frame)
    # the histograms of A and B (each chart title says its run) share one y axis, every frame
    for k in (0, 3):
        frame.locator("#slider").press("Home" if k == 0 else "End")
        wait_for_frame(frame, k)
        pairs = frame.evaluate("""() => state.entry.charts.map((c) => [
            c.div._fullLayout.title.text, c.div._fullLayout.yaxis.range])""")
        hist = [r for t, r in pairs if "weight ·" in t and "W_t" not in t]
        assert len(hist) == 2 and hist[0] == hist[1], pairs
    page.context.close()


def test_a_zoom_survives_the_moves_and_the_screen_is_drawn_first(server, two_runs, browser):
    _, run_a, run_b = two_runs
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{server.url}/Compare?run={run_a}&run_b={run_b}&layer=conv1")
    frame = player(page, timeout_ms=120_000)
    wait_for_frame(frame, 3)
    page.locator(PLAYER_IFRAME).evaluate("f => f.scrollIntoView({block: 'start'})")
    # the reader drag-zooms run A's weight histogram along x (the middle third of it)
    box = frame.locator(".payload:not([hidden]) .chart").first.locator(".nsewdrag").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, y, steps=4)
    page.mouse.move(box["x"] + 2 * box["width"] / 3, y, steps=4)
    page.mouse.up()
    zoomed = frame.evaluate("state.entry.charts[0].div._fullLayout.xaxis.range")
    full = frame.evaluate("state.entry.charts[1].div._fullLayout.xaxis.range")
    assert zoomed[1] - zoomed[0] < (full[1] - full[0]) / 2  # the zoom took
    # a move stamps "frame" when every chart on screen shows it: check at that very moment
    frame.evaluate("""() => { window.__atStamp = null;
      const check = () => {
        if (window.nnvizPlayer.frame !== 2) { requestAnimationFrame(check); return; }
        window.__atStamp = state.entry.charts.map((c) => [onScreen(c.div), c.drawn]); };
      requestAnimationFrame(check); }""")
    frame.locator("#slider").focus()
    frame.locator("#slider").press("ArrowLeft")
    wait_for_frame(frame, 2)
    at_stamp = frame.evaluate("window.__atStamp")
    assert at_stamp and any(shown for shown, _ in at_stamp)
    assert all(drawn == 2 for shown, drawn in at_stamp if shown), at_stamp
    assert not all(shown for shown, _ in at_stamp)  # some charts are below the window
    assert frame.evaluate("state.entry.charts[0].div._fullLayout.xaxis.range") == zoomed
    assert frame.evaluate(SAME_AS_FRESH, [0]) == []  # the others: as a fresh plot
    page.context.close()



def _open_at_epoch_2(server, two_runs, browser, width: int):
    """Explore on the first run's conv1 at epoch 2, drawn: (page, player frame, the sizes of
    the websocket messages the server sends from now on)."""
    page = browser.new_context(viewport={"width": width, "height": 1000}).new_page()
    sent = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda d: sent.append(len(d or ""))))
    page.goto(f"{server.url}/Explore?run={two_runs[1]}&layer=conv1&epoch=2")
    frame = player(page, timeout_ms=120_000)
    wait_for_frame(frame, 2)
    return page, frame, sent


# The frame holds the payloads Python named ahead (the other layers' This epoch) and has
# predrawn them at the snapshot shown.
HOLDS_AHEAD = """() => state.views && state.views.ahead.length > 0 && !state.aheadPending
  && state.views.ahead.every((o) => state.cache.has(o.key) && state.cache.get(o.key).drawn >= 0)
  && !state.predrawing"""

# The frame holds every chart view's payload (This epoch and the one it asked for ahead).
HOLDS_BOTH = """() => state.views && state.cache.size >= 2
  && state.views.options.every((o) => !o.key || state.cache.has(o.key))"""


@pytest.mark.parametrize("width", [1400, 390])
def test_a_view_switch_is_made_in_the_frame_before_the_server_answers(server, two_runs,
                                                                       browser, width):
    """Explore's view control is the player frame's: a switch between This epoch and All
    epochs (a click, or the arrow keys) shows the other payload's charts, each as a fresh plot
    of its frame at the same snapshot, painted before any message of the rerun it starts; the
    rerun then sends no payload and redraws nothing. Health is drawn by Python below the
    frame, which keeps only its control; coming back shows the charts at once."""
    page, frame, sent = _open_at_epoch_2(server, two_runs, browser, width)
    wait_for_holding(frame, HOLDS_BOTH)  # All epochs came ahead of a switch
    frame.wait_for_function("() => window.nnvizPlayer.predraws > 0", timeout=60_000)
    wait_for_app_idle(page)
    radios = frame.get_by_role("radio")
    assert radios.all_inner_texts() == ["This epoch", "All epochs", "Health", "Tables"]
    tops = {round(b["y"]) for b in (r.bounding_box() for r in radios.all())}
    right = max(b["x"] + b["width"] for b in (r.bounding_box() for r in radios.all()))
    assert len(tops) == 1 and right <= width  # one row, inside a phone's width too
    frame.locator("#views-help-button").click()  # the control's help, as Streamlit's "?"
    assert "All epochs draws every snapshot" in frame.locator("#views-help").inner_text()
    assert frame.locator("#views-help-button").get_attribute("aria-expanded") == "true"
    all_bytes = frame.evaluate("JSON.stringify(state.cache.get(state.views.options[1].key)"
                               ".payload).length")
    # each view once, so the frame holds what it asks for ahead in both (the other layer's
    # payloads of the view, HOLDS_AHEAD): the switches below then bring nothing
    for view in ("All epochs", "This epoch"):
        frame.get_by_role("radio", name=view).click()
        frame.wait_for_function("(v) => window.nnvizPlayer.answeredView === v", arg=view,
                                timeout=60_000)
        wait_for_holding(frame, HOLDS_AHEAD)
        wait_for_app_idle(page)

    def switch(press, view: str) -> dict:
        before = frame.evaluate("window.nnvizPlayer")
        del sent[:]
        press()
        frame.wait_for_function("(v) => window.nnvizPlayer.answeredView === v", arg=view,
                                timeout=60_000)  # the rerun's answer came ...
        page.wait_for_timeout(300)
        wait_for_app_idle(page)  # ... and the rerun ended
        after = frame.evaluate("window.nnvizPlayer")
        assert after["shownEpoch"] < after["answeredEpoch"]  # painted before that answer
        assert sum(sent) < all_bytes / 4, (sum(sent), all_bytes)  # no payload resent
        assert (after["builds"], after["reacts"]) == (before["builds"], before["reacts"])
        return after

    p = switch(lambda: frame.get_by_role("radio", name="All epochs").click(), "All epochs")
    assert p["key"].startswith("all|") and p["visible"] and p["view"] == "All epochs"
    assert p["frame"] == 2  # All epochs carries every snapshot: the same one
    assert any("every snapshot, fixed bins" in t for t in chart_titles(frame))
    assert frame.evaluate(SAME_AS_FRESH, []) == []
    assert frame.get_by_role("radio", name="All epochs").get_attribute("aria-checked") == "true"
    p = switch(lambda: frame.get_by_role("radio", name="All epochs").press("ArrowLeft"),
               "This epoch")
    assert p["key"].startswith("player|") and p["view"] == "This epoch"
    assert "conv1.weight · epoch 2" in chart_titles(frame)
    assert frame.evaluate(SAME_AS_FRESH, []) == []
    assert frame.evaluate("document.activeElement.textContent") == "This epoch"

    frame.get_by_role("radio", name="This epoch").press("End")  # Tables, drawn by Python
    frame.wait_for_function("() => window.nnvizPlayer.answeredView === 'Tables' "
                            "&& !window.nnvizPlayer.visible", timeout=60_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    assert page.locator(PLAYER_IFRAME).bounding_box()["height"] < 200  # its control only
    builds = frame.evaluate("window.nnvizPlayer.builds")
    p = switch(lambda: frame.get_by_role("radio", name="This epoch").click(), "This epoch")
    assert p["visible"] and p["key"].startswith("player|") and p["builds"] == builds
    assert "conv1.weight · epoch 2" in chart_titles(frame)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.context.close()




# In the player's frame (its message listener calls the global onRender): the first two render
# messages that bring a payload asked for ahead (``extra``) are dropped,
# as answers lost on the way (a rerun stopped by the next).
DROP_FIRST_AHEAD = """() => {
  window.__dropped = [];
  const real = window.onRender;
  window.onRender = (msg) => {
    const extra = (msg.args || {}).extra;
    if (extra && Object.keys(extra).length && window.__dropped.length < 1) {
      window.__dropped.push(...Object.keys(extra));
      return undefined;
    }
    return real(msg);
  };
}"""


def _frame_at_once(page):
    """The player's frame as soon as its script has run (before its first charts are drawn)."""
    page.wait_for_selector(PLAYER_IFRAME, timeout=120_000)
    while True:
        frame = next((f for f in page.frames if "epoch_player" in f.url), None)
        if frame is not None:
            frame.wait_for_function("() => typeof window.onRender === 'function'",
                                    timeout=60_000, polling="raf")
            return frame
        page.wait_for_timeout(10)


def _pick_fc_held_ahead(page, frame, sent: list[int]) -> tuple[str, dict]:
    """Once the frame holds the payloads asked for ahead (predrawn), a pick of fc in the page's
    Layer selectbox: it is shown from the selectbox's value, painted before the rerun's answer
    names it, at the same snapshot (2), with no payload resent and nothing built. Returns fc's
    payload key and the player's figures after the pick."""
    wait_for_holding(frame, HOLDS_AHEAD)
    wait_for_app_idle(page)
    (fc,) = frame.evaluate("state.views.ahead.map((o) => o.key)")
    fc_bytes = frame.evaluate("(k) => state.cache.get(k).bytes", fc)
    before = frame.evaluate("window.nnvizPlayer")
    del sent[:]
    page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]',
                 has_text="Layer").first.click()
    page.get_by_role("option", name=re.compile(r"^fc\b")).click()
    frame.wait_for_function("(k) => window.nnvizPlayer.key === k && window.nnvizPlayer.visible",
                            arg=fc, timeout=60_000)
    wait_for_frame(frame, 2)
    wait_for_app_idle(page)
    after = frame.evaluate("window.nnvizPlayer")
    assert after["earlyPicks"] == before["earlyPicks"] + 1
    assert after["earlyEpoch"] < after["answeredKeyEpoch"] and after["answeredKey"] == fc
    assert sum(sent) < fc_bytes / 4, (sum(sent), fc_bytes)  # no payload resent
    assert after["builds"] == before["builds"]  # its charts were built (and drawn) ahead
    assert after["frame"] == 2
    return fc, after


@pytest.mark.parametrize("width", [1400, 390])
def test_a_layer_pick_shows_the_layer_asked_for_ahead(server, two_runs, browser, width):
    """Once its charts are drawn, the frame asks for the other layer's payload and predraws it;
    a pick in Streamlit's Layer selectbox then sends no payload and builds nothing: the new
    layer's charts (its own titles and number of charts) show at the same snapshot, each as a
    fresh plot of that frame; scrubbing then moves the new layer, and the link follows."""
    page, frame, sent = _open_at_epoch_2(server, two_runs, browser, width)
    conv1_titles = chart_titles(frame)
    fc, after = _pick_fc_held_ahead(page, frame, sent)
    assert "|fc|" in fc
    titles = chart_titles(frame)
    assert "fc.weight · epoch 2" in titles
    # every chart shown is the new layer's (as many as its payload has), none of conv1's left
    assert frame.locator(SHOWN).count() == frame.evaluate("state.entry.charts.length")
    assert any(t.startswith("Filters (16 filters") for t in conv1_titles)  # conv1's tiles ...
    assert any(t.startswith("First 10 of 10 neurons") for t in titles)  # ... became fc's
    assert not any("conv1" in t or t.startswith("Filters") for t in titles), titles
    assert frame.evaluate(SAME_AS_FRESH, []) == []
    slider = frame.locator("#slider")
    slider.focus()
    slider.press("ArrowLeft")
    wait_for_frame(frame, 1)
    assert "fc.weight · epoch 1" in chart_titles(frame)
    assert frame.evaluate(SAME_AS_FRESH, []) == []
    page.wait_for_function("() => location.search.includes('epoch=1') "
                           "&& location.search.includes('layer=fc')", timeout=30_000)
    # back to conv1 by the keyboard (the selectbox's own), at the epoch shown
    wait_for_holding(frame, HOLDS_AHEAD)
    wait_for_app_idle(page)
    combo = page.get_by_role("combobox", name="Layer")
    combo.focus()
    combo.press("ArrowDown")
    page.get_by_role("option", name=re.compile(r"^conv1\b")).wait_for()
    combo.press("ArrowUp")
    combo.press("Enter")
    frame.wait_for_function("() => (window.nnvizPlayer.key || '').includes('|conv1|') "
                            "&& window.nnvizPlayer.frame === 1", timeout=60_000)
    assert frame.evaluate("window.nnvizPlayer.earlyPicks") == after["earlyPicks"] + 1
    wait_for_app_idle(page)  # a render of the rerun under way (still naming fc) changed nothing
    assert "conv1.weight · epoch 1" in chart_titles(frame)
    page.wait_for_function("() => location.search.includes('layer=conv1')", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.context.close()


def test_a_compare_layer_pick_shows_both_runs_of_the_layer_asked_for_ahead(server, two_runs,
                                                                         browser):
    """Compare asks ahead like Explore: once both runs' conv1 is drawn, the frame holds their
    fc payload, predrawn; a pick of fc in the page's Layer selectbox sends no payload and builds
    nothing, shows A's and B's fc at the same snapshot (each as a fresh plot), and the link
    follows. The frame draws no view control of its own (the page's is above it). The first
    answer that brings a payload asked for ahead is lost here (as when a move's report stops
    the rerun that answers), and so is the one Python sends again: the frame asks again and
    gets it."""
    _, run_a, run_b = two_runs
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    sent = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda d: sent.append(len(d or ""))))
    page.goto(f"{server.url}/Compare?run={run_a}&run_b={run_b}&layer=conv1&epoch=2")
    _frame_at_once(page).evaluate(DROP_FIRST_AHEAD)  # it asks ahead once its charts are drawn
    frame = player(page, timeout_ms=120_000)
    wait_for_frame(frame, 2)
    assert frame.locator("#views").count() == 0
    # a move while the answer is lost: its report's rerun renders the frame without it
    frame.wait_for_function("() => window.__dropped.length === 1", timeout=60_000)
    frame.locator("#slider").focus()
    frame.locator("#slider").press("ArrowLeft")
    wait_for_frame(frame, 1)
    page.wait_for_function("() => location.search.includes('epoch=1')", timeout=30_000)
    frame.locator("#slider").press("ArrowRight")
    wait_for_frame(frame, 2)
    fc, after = _pick_fc_held_ahead(page, frame, sent)
    assert fc.startswith("compare|") and fc.endswith("|fc")
    assert frame.evaluate("window.__dropped") == [fc]  # lost once, then asked for again
    titles = chart_titles(frame)
    assert any(t.startswith("Run A · fc.weight") for t in titles), titles
    assert any(t.startswith("Run B · fc.weight") for t in titles), titles
    assert not any("conv1" in t for t in titles), titles
    assert frame.evaluate(SAME_AS_FRESH, []) == []
    page.wait_for_function("() => location.search.includes('layer=fc')", timeout=30_000)
    # Health hides the frame (no height: no control of its own) and keeps what it holds
    mode = page.locator('[data-testid="stMain"] button[data-variant="segmented_control"]')
    mode.filter(has_text="Health").click()
    frame.wait_for_function("() => !window.nnvizPlayer.visible", timeout=60_000)
    wait_for_app_idle(page)
    assert page.locator(PLAYER_IFRAME).bounding_box()["height"] < 5
    mode.filter(has_text="Side by side").click()
    frame.wait_for_function("(k) => window.nnvizPlayer.key === k && window.nnvizPlayer.visible",
                            arg=fc, timeout=60_000)
    assert frame.evaluate("window.nnvizPlayer.builds") == after["builds"]
    assert page.locator('[data-testid="stException"]').count() == 0
    page.context.close()


# In the player's frame: the first render message that brings a payload asked for ahead comes
# late (1.5 s, after the frame stopped waiting for its answer) and without it, as when a slow
# rerun's render is merged into a later one.
LATE_WITHOUT_FIRST_AHEAD = """() => {
  window.__late = [];
  const real = window.onRender;
  window.onRender = (msg) => {
    const extra = (msg.args || {}).extra;
    if (extra && Object.keys(extra).length && window.__late.length < 1) {
      window.__late.push(...Object.keys(extra));
      const args = Object.assign({}, msg.args, { extra: {} });
      setTimeout(() => { window.__lateAt = performance.now();
                         real(Object.assign({}, msg, { args })); }, 1500);
      return undefined;
    }
    return real(msg);
  };
}"""


def test_an_answer_that_comes_late_without_its_payload_is_asked_for_again(server, two_runs,
                                                                           browser):
    """The render answering an ask ahead comes after the frame stopped waiting for it, and
    without the payload: that render alone (no move, no pick, nothing else rerun) makes the
    frame ask again, at once rather than after STALL_MS, and the payload comes."""
    _, run_a, run_b = two_runs
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{server.url}/Compare?run={run_a}&run_b={run_b}&layer=conv1&epoch=2")
    _frame_at_once(page).evaluate(LATE_WITHOUT_FIRST_AHEAD)
    frame = player(page, timeout_ms=120_000)
    wait_for_frame(frame, 2)
    frame.wait_for_function("() => window.__lateAt !== undefined", timeout=60_000)
    wait_for_holding(frame, HOLDS_AHEAD, timeout_ms=30_000)
    (fc,) = frame.evaluate("state.views.ahead.map((o) => o.key)")
    assert frame.evaluate("window.__late") == [fc]
    came_after = frame.evaluate("""() => performance.getEntriesByName('nnviz:parsed')
        .map((m) => m.startTime).pop() - window.__lateAt""")
    assert 0 < came_after < 6000, came_after  # asked again on that render, not on a stall
    assert frame.evaluate(SAME_AS_FRESH, []) == []
    page.context.close()
