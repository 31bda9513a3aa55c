"""How fast the app answers, in headless Chromium, as ratios to a minimal Streamlit app.

The floor is ``benchmarks/floor_app.py`` (one ``select_slider``, one plotly chart), served
beside nnviz in the same run; every figure is measured on both alternately (floor, nnviz,
floor, nnviz ...), so a machine that gets busier slows both. Targets (issue 16, "App"):

  * cold server -> Home usable (its title and lesson buttons)  <= 1.5 x the floor's start
  * open Explore by link -> first chart drawn                   <= 1 s
  * layer switch, view switch -> charts redrawn                 <= 1.5 x the floor's rerun
  * Explore / Compare scrubbing -> the charts on screen redrawn  <= 150 ms per move
  * a lesson click -> first snapshot drawn                      <= 1 s on a warm server

"Redrawn" is an in-page signal, never a sleep: the epoch player stamps
``nnvizPlayer.drawnEpoch`` (performance.timeOrigin + now) once every chart on screen shows the
new snapshot and the browser has painted (``allDrawnEpoch`` once every chart of the layer does,
those below the window drawn just after; ``benchmarks/bench_player_draw.py`` prints both);
Streamlit's own charts are watched on every animation frame until the new figure (the floor's
title) or the new view's charts are on the page with nothing stale left, and timed at the next
frame (after the paint that shows them). An action is stamped in the page by a capturing
pointerdown / keydown listener, so the figures are page-side times (the automation's round trip
is not in them), except the page-open and start-up figures, which are Playwright's wall clock
from navigation (start-up: from the server process's spawn).

Beside the times, figures that load hardly changes: the bytes the server sent over the websocket
for each action (the frame's payload or just its key, the deltas), and where a page opened by
link spends its time, from the player's performance marks (``nnviz:plotly`` plotly.js parsed and
run, ``nnviz:drawn`` the first charts drawn) and the moment the player's frame was created.

    python3 benchmarks/bench_app_latency.py [--reps 7] [--cold 3]
    python3 benchmarks/bench_app_latency.py --only open,lessons,cold [--baseline DIR]

It trains two small runs first (tutorial_cnn and its Xavier twin, about 30 s on 2 cores).
``--only layer`` measures the layer switches of Explore, then of Compare (each once the player's
frame has settled: nothing left to ask for ahead or predraw, as a reader who looks at the charts
before picking) beside the floor's rerun, ``--only views`` the view switches; otherwise
``--only`` measures just the page-open figures named (cold start, open by link, lesson clicks,
the lesson that trains clicked ``--reps`` times: its run is deleted after each click);
``--baseline DIR``, another checkout of nnviz (``git archive main | tar -x -C DIR``), is served
beside this tree over the same runs and measured in turn with it, so "before" and "after"
share the machine's load. Each open also says how long the player's plotly.js took to load
(fetched, compiled and run: ``ui/prewarm.py`` has it compiled before the player asks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import (  # noqa: E402
    chromium_path,
    launch_browser,
    player,
    run_app,
    wait_for_app_idle,
)

FLOOR = ROOT / "benchmarks" / "floor_app.py"
NOW = "performance.timeOrigin + performance.now()"
# The first pointerdown / keydown after arming, stamped in the page (capture: before the app).
ARM = f"""() => {{ window.__act = null;
  const stamp = () => {{ if (window.__act === null) window.__act = {NOW}; }};
  document.addEventListener('pointerdown', stamp, {{capture: true, once: true}});
  document.addEventListener('keydown', stamp, {{capture: true, once: true}}); }}"""
IDLE = """!document.querySelector('[data-testid="stStatusWidget"]')
          && !document.querySelector('[data-stale="true"]')"""
CHARTS_DRAWN = """[...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                  .every(c => c.querySelector('.main-svg'))"""
N_CHARTS = "document.querySelectorAll('[data-testid=\"stPlotlyChart\"]').length"
PLAYER_VIEWS = {"This epoch": "player", "All epochs": "all"}  # view -> its payloads' key prefix
# The player's frame has nothing left to ask for ahead or to predraw (every payload it holds
# drawn at the snapshot shown): a reader who looks at the charts before picking a layer.
SETTLED = """!state.aheadPending && !state.predrawing && !state.drawing && !state.restTimer
  && (!state.views || !state.views.prefetch || (state.views.ahead || []).every(
      (o) => state.cache.has(o.key) || state.came.has(o.key)
        || (state.asks.get(o.key) || 0) >= ASKS))
  && state.entry && [...state.cache.values()].every((e) => !e.root
      || e.drawn === nearestFrame(e, state.entry.payload.snapshots[state.pos]))"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def until(frame, cond: str, timeout_ms: int = 120_000) -> float:
    """Poll ``cond`` on every animation frame; the page-side time (ms) of the frame after the
    one where it first held, i.e. after the paint that shows it, as the player stamps its
    draws (it once read the time before that paint for the floor and after it for nnviz)."""
    frame.wait_for_function(f"""() => {{ if (!({cond})) return false; window.__painted = 0;
        requestAnimationFrame(() => {{ window.__painted = {NOW}; }}); return true; }}""",
                            timeout=timeout_ms, polling="raf")
    return float(frame.wait_for_function("() => window.__painted", timeout=timeout_ms,
                                         polling="raf").json_value())


def acted(frame) -> float:
    return float(frame.evaluate("window.__act"))


def train(runs: Path, *extra: str) -> str:
    out = subprocess.run([sys.executable, "-m", "nnviz", "--runs-dir", str(runs), "train",
                          "--preset", "tutorial_cnn", "--json", "--quiet", *extra], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return re.search(r'"run_id": "([^"]+)"', out).group(1)


class Floor:
    """The floor app's page: a slider move and its chart redrawn."""

    def __init__(self, page, url: str) -> None:
        self.page, self.url, self.at = page, url, 0

    def open(self) -> float:
        t0 = time.perf_counter()
        self.page.goto(self.url)
        self.page.wait_for_function(f"() => document.querySelector('.main-svg') && {IDLE}",
                                    polling="raf", timeout=120_000)
        self.at = 0
        return (time.perf_counter() - t0) * 1000

    def rerun(self) -> float:
        step = 1 if self.at < 9 else -1
        self.at += step
        thumb = self.page.locator('[data-testid="stSlider"] input[type="range"]')
        thumb.focus()
        self.page.evaluate(ARM)
        thumb.press("ArrowRight" if step > 0 else "ArrowLeft")
        done = until(self.page, f"""[...document.querySelectorAll('.gtitle')].some(
            t => t.textContent === 'floor · epoch {self.at}') && {IDLE}""")
        return done - acted(self.page)


# A page's start, page-side (ms from navigation): its player frame created, then the frame's marks.
FRAME_SEEN = """(() => { if (window.top !== window) return;
  new MutationObserver((_, obs) => {
    if (document.querySelector('iframe[title*="epoch_player"]')) {
      window.__frameSeen = performance.now(); obs.disconnect(); }
  }).observe(document, {subtree: true, childList: true}); })();"""
MARKS = """() => { const m = {}; for (const e of performance.getEntriesByType('mark'))
  if (!(e.name in m)) m[e.name] = performance.timeOrigin + e.startTime;
  for (const e of performance.getEntriesByType('resource'))
    if (/plotly[^/]*[.]js/.test(e.name) && !('plotly fetch' in m))
      m['plotly fetch'] = performance.timeOrigin + e.startTime;
  return m; }"""


class Explore:
    """nnviz's Explore (or Compare) page on one run; ``sent`` counts the websocket bytes the
    server sent since the last action began."""

    def __init__(self, page, url: str) -> None:
        self.page, self.url, self.sent = page, url, 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._count))

    def _count(self, data) -> None:
        self.sent += len(data) if data else 0

    def open(self) -> float:
        self.page.context.add_init_script(FRAME_SEEN)
        self.sent = 0
        t0 = time.perf_counter()
        self.page.goto(self.url)
        frame = player(self.page, timeout_ms=120_000)
        ms = (time.perf_counter() - t0) * 1000
        origin = self.page.evaluate("performance.timeOrigin")
        marks = frame.evaluate(MARKS)  # {} from a player without marks: those read 0
        self.start = {"frame created": self.page.evaluate("window.__frameSeen || 0"),
                      "plotly.js ready": marks.get("nnviz:plotly", origin) - origin,
                      "first charts drawn": marks.get("nnviz:drawn", origin) - origin,
                      "plotly.js load": plotly_load(marks)}
        return ms

    def frame(self):
        return player(self.page)

    def layer(self, name: str) -> float:
        """A pick in the Layer selectbox -> the layer's charts shown (page-side ms), once the
        frame has settled (``last["settled"]``: ms waited for that); its rerun waited out."""
        frame = self.frame()
        t0 = time.perf_counter()
        frame.wait_for_function(f"() => {SETTLED}", timeout=120_000, polling="raf")
        until(self.page, IDLE)
        settled = (time.perf_counter() - t0) * 1000
        box = self.page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]',
                                has_text="Layer").first
        box.click()
        option = self.page.get_by_role("option", name=re.compile(rf"^{re.escape(name)}\b"))
        option.wait_for()
        self.page.evaluate(ARM)
        self.sent = 0
        option.click()
        act = acted(self.page)
        until(frame, f"((window.nnvizPlayer.key || '').includes('|{name}|') || "  # Explore
                     f"(window.nnvizPlayer.key || '').endsWith('|{name}')) && "  # Compare
                     f"window.nnvizPlayer.drawnEpoch >= {act} && window.nnvizPlayer.visible")
        idle = until(self.page, IDLE)  # and the rerun it started has ended
        p = frame.evaluate("window.nnvizPlayer")
        self.last = {"render": p["renderEpoch"] - act, "drawn": p["drawnEpoch"] - act,
                     "idle": idle - act, "settled": settled}
        return p["drawnEpoch"] - act

    def view(self, name: str) -> float:
        """A click on the view control -> the view's charts shown (page-side ms); the rerun it
        starts is waited out too (``last["rerun"]``). The control is the player frame's own
        (its switch between the chart views needs no round trip); a page whose control is a
        Streamlit segmented control (before issue 16's view switch) is driven as such."""
        frame = self.frame()
        own = frame.locator("#views [role=radio]", has_text=re.compile(rf"^{re.escape(name)}$"))
        here = frame if own.count() else self.page
        button = own.first if own.count() else self.page.locator(
            'button[data-variant="segmented_control"]',
            has_text=re.compile(rf"^{re.escape(name)}$")).first
        here.evaluate(ARM)
        self.sent = 0
        renders = frame.evaluate("window.nnvizPlayer.renderEpoch || 0")
        button.click()
        act = acted(here)
        if name in PLAYER_VIEWS:  # drawn in the player's frame: its payload for the view shown
            until(frame, f"(window.nnvizPlayer.key || '').startsWith('{PLAYER_VIEWS[name]}|') "
                         f"&& window.nnvizPlayer.visible && window.nnvizPlayer.shownEpoch >= {act}")
            shown = float(frame.evaluate("window.nnvizPlayer.shownEpoch"))
            # the rerun the switch starts: its render message reaches the frame (the frame's
            # control: the first to name the view), then it ends
            answered = (f"window.nnvizPlayer.answeredView === '{name}'" if here is frame else
                        f"(window.nnvizPlayer.renderEpoch || 0) > {renders}")
            frame.wait_for_function(f"() => {answered}", timeout=120_000, polling="raf")
            done = until(self.page, f"{N_CHARTS} === 0 && {IDLE}")
            self.last = {"shown": shown - act, "rerun": max(done, shown) - act}
            return shown - act if here is frame else max(done, shown) - act
        return until(self.page, f"{N_CHARTS} >= 2 && {CHARTS_DRAWN} && {IDLE}") - act

    def scrub(self) -> float:
        frame = self.frame()
        n = int(frame.evaluate("document.getElementById('slider').max")) + 1
        at = int(frame.evaluate("window.nnvizPlayer.frame"))
        want = at + 1 if at < n - 1 else at - 1
        slider = frame.locator("#slider")
        slider.focus()
        frame.evaluate(ARM)
        self.sent = 0
        slider.press("ArrowRight" if want > at else "ArrowLeft")
        until(frame, f"window.nnvizPlayer.frame === {want}")
        ms = float(frame.evaluate("window.nnvizPlayer.drawnEpoch")) - acted(frame)
        # the move is reported to Python a moment later (the URL's epoch): wait for that rerun
        # to end, so that it does not delay the next figure
        until(self.page, f"new URLSearchParams(location.search).get('epoch') === '{want}' "
                         f"&& {IDLE}")
        return ms


def plotly_load(marks: dict[str, float]) -> float:
    """ms from the player's plotly.js request to plotly.js run (a player without the
    "nnviz:plotly-loaded" mark: to its first render after it)."""
    end = marks.get("nnviz:plotly-loaded", marks.get("nnviz:plotly"))
    return end - marks["plotly fetch"] if end and "plotly fetch" in marks else 0.0


def lesson_click(page, url: str, index: int, loads: list[float] | None = None) -> float:
    """Home's ``index``-th lesson button -> the Explore player's first drawn frame (wall ms);
    closes the page's context. ``loads`` gets the player's plotly.js load (ms)."""
    page.goto(url)
    wait_for_app_idle(page)
    button = page.get_by_role("button", name="Train and explore").nth(index)
    t0 = time.perf_counter()
    button.click()
    page.wait_for_url(re.compile(r".*/Explore.*"), timeout=120_000)
    frame = player(page, timeout_ms=240_000)
    ms = (time.perf_counter() - t0) * 1000
    if loads is not None:
        loads.append(plotly_load(frame.evaluate(MARKS)))
    page.context.close()
    return ms


def forget_lesson_runs(runs: Path, keep: set[str], timeout: float = 30.0) -> None:
    """Delete the runs trained since ``keep`` was listed (once they finished), so the same
    lesson clicked again trains again."""
    deadline = time.time() + timeout
    for folder in [f for f in runs.iterdir() if f.is_dir() and f.name not in keep]:
        while time.time() < deadline and run_status(folder) == "running":
            time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)


def run_status(folder: Path) -> str | None:
    try:
        return json.loads((folder / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_names(runs: Path) -> set[str]:
    return {f.name for f in runs.iterdir()}


def page_opens(args, runs: Path, run_a: str) -> None:
    """--only: the page-open figures named, this tree and --baseline's measured in turn."""
    from playwright.sync_api import sync_playwright

    only = set(args.only.split(",")) if args.only else {"cold", "open", "lessons"}
    trees = {"": ROOT} | ({"main ": args.baseline.resolve()} if args.baseline else {})
    table, starts = Table(), {tag: [] for tag in trees}
    with sync_playwright() as p, contextlib.ExitStack() as stack:
        browser = launch_browser(p, chromium_path())
        if "cold" in only:
            floor_cold, home_cold = [], {tag: [] for tag in trees}
            for _ in range(args.cold):
                floor_cold.append(cold_start(browser, runs, FLOOR, floor_ready))
                for tag, tree in trees.items():
                    home_cold[tag].append(cold_start(browser, runs, tree / "app.py", home_ready))
            for tag in trees:
                table.add(f"{tag}cold server -> Home usable (wall)", floor_cold, home_cold[tag],
                          "<= 1.5x")
        log_dir = Path(tempfile.mkdtemp(prefix="nnviz-latency-logs-"))
        fl = stack.enter_context(run_app(runs, log_dir / "floor.log", script=FLOOR))
        apps = {tag: stack.enter_context(run_app(runs, log_dir / f"nnviz{k}.log",
                                                 script=tree / "app.py"))
                for k, (tag, tree) in enumerate(trees.items())}

        def ctx():
            return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()

        floor_open = []
        links = {tag: f"{app.url}/Explore?run={run_a}&layer=conv1" for tag, app in apps.items()}
        for url in links.values():  # each server's first Explore (and the workers warm up)
            page = ctx()
            Explore(page, url).open()
            page.context.close()
        if "open" in only or "lessons" in only:
            link_open = {tag: [] for tag in trees}
            for _ in range(args.reps):
                page = ctx()
                floor_open.append(Floor(page, fl.url).open())
                page.context.close()
                for tag, url in links.items():
                    if "open" not in only:
                        continue
                    page = ctx()
                    opened = Explore(page, url)
                    link_open[tag].append(opened.open())
                    starts[tag].append(opened.start)
                    page.context.close()
            for tag in trees:
                if "open" in only:
                    table.add(f"{tag}open Explore by link -> first chart (wall)", floor_open,
                              link_open[tag], "<= 1000 ms")
        loads: dict[str, list[float]] = {}
        if "lessons" in only:
            pre, fresh = {tag: [] for tag in trees}, {tag: [] for tag in trees}
            for _ in range(args.reps):  # tutorial_cnn is trained: it opens at once
                for tag, app in apps.items():
                    pre[tag].append(lesson_click(ctx(), app.url, 0,
                                                 loads.setdefault(f"{tag}lesson, pre-trained",
                                                                  [])))
            keep = run_names(runs)
            for _ in range(args.reps):  # symmetry trains: its init snapshot first
                for tag, app in apps.items():
                    fresh[tag].append(lesson_click(ctx(), app.url, 1,
                                                   loads.setdefault(f"{tag}lesson, trains", [])))
                    forget_lesson_runs(runs, keep)
            for tag in trees:
                table.add(f"{tag}lesson click (pre-trained) -> first snapshot", floor_open,
                          pre[tag], "<= 1000 ms (wall)")
                table.add(f"{tag}lesson click (trains) -> first snapshot", floor_open,
                          fresh[tag], "<= 1000 ms (wall)")
        browser.close()
    print()
    table.print()
    for tag, rows in starts.items():
        if rows:
            print(f"\n{tag}where a page opened by link spends its time (median ms from "
                  "navigation):")
            for name in rows[0]:
                print(f"  {name:<24} {statistics.median(s[name] for s in rows):8.0f}")
    if loads:
        print("\nthe player's plotly.js load after a lesson click (median ms):")
        for name, values in loads.items():
            print(f"  {name:<36} {statistics.median(values):8.0f}")


def cold_start(browser, runs: Path, script: Path | None, ready: Callable) -> float:
    """Spawn a server, open its first page: ms until ``ready(page)`` returns."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    t0 = time.perf_counter()
    with run_app(runs, log, script=script, poll_s=0.05) as app:
        page.goto(app.url)
        ready(page)
        ms = (time.perf_counter() - t0) * 1000
    page.context.close()
    log.unlink()
    return ms


def home_ready(page) -> None:
    page.get_by_role("heading", name=re.compile("see what initialization")).wait_for(
        timeout=120_000)
    page.get_by_role("button", name="Train and explore").first.wait_for(timeout=120_000)


def floor_ready(page) -> None:
    page.wait_for_function("() => document.querySelector('.main-svg')", polling="raf",
                           timeout=120_000)


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, list[float], list[float], str]] = []

    def add(self, name: str, floor: list[float], ours: list[float], target: str) -> None:
        self.rows.append((name, floor, ours, target))

    def print(self) -> None:
        print(f"{'figure':<49} {'floor med/p90 ms':>17} {'nnviz med/p90 ms':>17} "
              f"{'ratio':>6}  target")
        for name, floor, ours, target in self.rows:
            f = f"{statistics.median(floor):.0f}/{pct(floor, 0.9):.0f}" if floor else "-"
            o = f"{statistics.median(ours):.0f}/{pct(ours, 0.9):.0f}"
            r = f"{statistics.median(ours) / statistics.median(floor):.2f}" if floor else "-"
            print(f"{name:<49} {f:>17} {o:>17} {r:>6}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="moves / switches per figure")
    parser.add_argument("--cold", type=int, default=3, help="cold starts of each server")
    parser.add_argument("--only", help="just these figures: views (the floor's rerun and the "
                        "view switches, one run), layer (the floor's rerun, the layer "
                        "switches and a move after each), or any of open,lessons,cold")
    parser.add_argument("--baseline", type=Path,
                        help="a checkout to measure in turn with this (open,lessons,cold)")
    args = parser.parse_args()
    print("load before:", uptime())
    runs = Path(tempfile.mkdtemp(prefix="nnviz-latency-"))
    run_a = train(runs)
    if args.only in ("views", "layer"):
        run_b = train(runs, "--init", "xavier_uniform") if args.only == "layer" else None
        switches_only(runs, run_a, args.reps, args.only, run_b)
        return
    if args.only or args.baseline:
        page_opens(args, runs, run_a)
        shutil.rmtree(runs, ignore_errors=True)
        print("load after:", uptime())
        return
    run_b = train(runs, "--init", "xavier_uniform")
    from playwright.sync_api import sync_playwright

    table = Table()
    with sync_playwright() as p:
        browser = launch_browser(p, chromium_path())
        floor_cold, home_cold = [], []
        for _ in range(args.cold):
            floor_cold.append(cold_start(browser, runs, FLOOR, floor_ready))
            home_cold.append(cold_start(browser, runs, None, home_ready))
        table.add("cold server -> Home usable (wall)", floor_cold, home_cold, "<= 1.5x")

        with both_apps(browser, runs) as (fl, app, ctx):
            floor = Floor(ctx(), fl.url)
            explore_url = f"{app.url}/Explore?run={run_a}&layer=conv1"
            floor_open, link_open, starts = [], [], []
            sent: dict[str, list[int]] = {}
            page = ctx()
            first_link = Explore(page, explore_url).open()  # the server's first Explore
            page.context.close()
            for _ in range(args.reps):
                page = ctx()
                floor_open.append(Floor(page, fl.url).open())
                page.context.close()
                page = ctx()
                opened = Explore(page, explore_url)
                link_open.append(opened.open())
                starts.append(opened.start)
                sent.setdefault("open Explore by link", []).append(opened.sent)
                page.context.close()
            table.add("open Explore by link -> first chart (wall)", floor_open, link_open,
                      f"<= 1000 ms (server's first: {first_link:.0f} ms)")

            floor.open()
            ex = Explore(ctx(), explore_url)
            ex.open()
            floor_rerun = layer_switches(floor, ex, args.reps, table, sent)

            view_switches(floor, ex, args.reps, table, sent)

            cmp = Explore(ctx(), f"{app.url}/Compare?run={run_a}&run_b={run_b}&layer=conv1")
            cmp.open()
            cmp_moves = []
            for _ in range(args.reps):
                floor.rerun()
                cmp_moves.append(cmp.scrub())
            table.add("Compare move -> both runs redrawn", floor_rerun, cmp_moves, "<= 150 ms")
            layer_switches(floor, cmp, args.reps, table, sent, page="Compare")

            # lessons: tutorial_cnn is trained (an identical finished run opens at once)
            pre = [lesson_click(ctx(), app.url, 0) for _ in range(args.reps)]
            table.add("lesson click (pre-trained) -> first snapshot", floor_open, pre,
                      "<= 1000 ms (wall)")
            fresh = [lesson_click(ctx(), app.url, 1)]  # trains symmetry: init snapshot
            table.add("lesson click (trains) -> first snapshot", floor_open, fresh,
                      "<= 1000 ms (wall)")
        browser.close()
    shutil.rmtree(runs, ignore_errors=True)
    print()
    table.print()
    report_extra(starts, sent)


@contextlib.contextmanager
def both_apps(browser, runs: Path) -> Iterator[tuple[Any, Any, Callable[[], Any]]]:
    """The floor app and nnviz served side by side, and a maker of 1400 px pages."""
    log_dir = Path(tempfile.mkdtemp(prefix="nnviz-latency-logs-"))
    with run_app(runs, log_dir / "floor.log", script=FLOOR) as fl, \
            run_app(runs, log_dir / "nnviz.log") as app:
        yield fl, app, lambda: browser.new_context(
            viewport={"width": 1400, "height": 1000}).new_page()


def view_switches(floor: Floor, ex: Explore, reps: int, table: Table,
                  sent: dict[str, list[int]]) -> None:
    """The view switch figures, interleaved with the floor's rerun."""
    to_all, to_epoch, floor_views, reruns = [], [], [], []
    for _ in range(reps):
        floor_views.append(floor.rerun())
        to_all.append(ex.view("All epochs"))
        reruns.append(ex.last["rerun"])
        sent.setdefault("view switch -> All epochs", []).append(ex.sent)
        floor_views.append(floor.rerun())
        to_epoch.append(ex.view("This epoch"))
        reruns.append(ex.last["rerun"])
        sent.setdefault("view switch -> This epoch", []).append(ex.sent)
    table.add("view switch -> All epochs drawn", floor_views, to_all, "<= 1.5x")
    table.add("view switch -> back to This epoch", floor_views, to_epoch, "<= 1.5x")
    table.add("view switch -> its rerun ended too", floor_views, reruns, "(both ways)")


def layer_switches(floor: Floor, ex: Explore, reps: int, table: Table,
                   sent: dict[str, list[int]], page: str = "Explore") -> list[float]:
    """The layer switch figures of ``page``'s player (fc <-> conv1, the first two are each
    layer's first) and a player move after each, interleaved with the floor's rerun; returns
    the floor's reruns."""
    floor_rerun, layer_first, layer_again, layer_idle, moves = [], [], [], [], []
    settles = []
    tag = "" if page == "Explore" else f"{page} "
    for k in range(reps + 1):
        floor_rerun.append(floor.rerun())
        ms = ex.layer("fc" if k % 2 == 0 else "conv1")
        (layer_first if k < 2 else layer_again).append(ms)
        settles.append(ex.last["settled"])
        if k >= 2:
            layer_idle.append(ex.last["idle"])
        sent.setdefault(f"{tag}layer switch" + (", first time" if k < 2 else ""),
                        []).append(ex.sent)
        floor_rerun.append(floor.rerun())
        moves.append(ex.scrub())
        sent.setdefault(f"{tag}player move (its report to Python)", []).append(ex.sent)
    if not tag:
        table.add("slider move -> chart redrawn (floor rerun)", floor_rerun, floor_rerun,
                  "the floor")
    table.add(f"{tag}layer switch, first time per layer", floor_rerun, layer_first,
              "(asked for ahead)")
    table.add(f"{tag}layer switch -> charts redrawn", floor_rerun, layer_again, "<= 1.5x")
    table.add(f"{tag}layer switch -> its rerun ended too", floor_rerun, layer_idle,
              "(as the view switches)")
    table.add(f"{page} player move -> charts redrawn", floor_rerun, moves, "<= 150 ms")
    table.add("(wall ms the frame took to settle, pre-pick)", floor_rerun, settles, "-")
    return floor_rerun


def switches_only(runs: Path, run_id: str, reps: int, kind: str,
                  run_b: str | None = None) -> None:
    """``--only views`` / ``--only layer``: the floor's rerun and Explore's view or layer
    switches, interleaved (``run_b``: then Compare's layer switches, ``run_id`` beside it)."""
    from playwright.sync_api import sync_playwright

    table, sent = Table(), {}
    with sync_playwright() as p:
        browser = launch_browser(p, chromium_path())
        with both_apps(browser, runs) as (fl, app, ctx):
            floor = Floor(ctx(), fl.url)
            floor.open()
            ex = Explore(ctx(), f"{app.url}/Explore?run={run_id}&layer=conv1")
            ex.open()
            if kind == "layer":
                layer_switches(floor, ex, reps, table, sent)
                if run_b is not None:
                    cmp = Explore(ctx(), f"{app.url}/Compare?run={run_id}&run_b={run_b}"
                                         "&layer=conv1")
                    cmp.open()
                    layer_switches(floor, cmp, reps, table, sent, page="Compare")
            else:
                ex.view("All epochs")  # each view once (the server's first), not timed
                ex.view("This epoch")
                floor_rerun = [floor.rerun() for _ in range(reps)]
                table.add("slider move -> chart redrawn (floor rerun)", floor_rerun,
                          floor_rerun, "the floor")
                view_switches(floor, ex, reps, table, sent)
        browser.close()
    shutil.rmtree(runs, ignore_errors=True)
    print()
    table.print()
    report_extra([], sent)


def report_extra(starts: list[dict[str, float]], sent: dict[str, list[int]]) -> None:
    if starts:
        print("\nwhere a page opened by link spends its time (median ms from navigation):")
    for name in ("frame created", "plotly.js ready", "first charts drawn") if starts else ():
        print(f"  {name:<24} {statistics.median(s[name] for s in starts):8.0f}")
    print("websocket bytes the server sent per action (median):")
    for name, counts in sent.items():
        print(f"  {name:<40} {statistics.median(counts):10.0f}")
    print("load after:", uptime())


if __name__ == "__main__":
    main()
