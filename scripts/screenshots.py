"""Screenshots of every page, desktop (1400 px) and phone (390 px) width.

    python scripts/screenshots.py [--runs-dir DIR] [--pages Home,Train,...] [--out DIR]
                                  [--port N] [--lang zh-Hans]
    python scripts/screenshots.py --lessons all --runs-dir DIR [--out DIR] [--lang zh-Hans]

A name ``Explore@Health`` opens the Explore page and then picks its "Health" view.
``--lang`` opens every page in that language (``?lang=``) and adds it to the file names.
``--lessons`` (``all`` or names of nnviz.presets) trains each lesson into the runs folder (once:
a finished run of the same config is reused) and shoots its key view, the chart and epoch its
"what to look at" paragraph names (``LESSON_VIEWS``), as ``lesson-NAME-desktop.png``.

Starts the app on a free loopback port over a runs folder (trains the tutorial preset into a
fresh one if none is given) and drives Debian's Chromium headless.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import (  # noqa: E402
    chromium_path,
    launch_browser,
    pick_view,
    player,
    run_app,
    wait_for_app_idle,
)

# lesson -> (layer, snapshot index (-1: the last), Explore view): where the lesson is visible
LESSON_VIEWS = {
    "tutorial_cnn": ("conv1", 0, "This epoch"),
    "symmetry": ("fc2", -1, "This epoch"),
    "vanishing": ("fc1", 1, "Health"),
    "exploding": ("linear", 8, "This epoch"),  # epoch 0.4: 20 snapshots per epoch
    "xavier_deep_relu": ("fc1", 0, "Health"),
    "kaiming_deep_relu": ("fc1", 0, "Health"),
    "filters": ("conv1", -1, "This epoch"),
    "healthy": ("conv1", -1, "All epochs"),
}

PAGES = {"Home": "", "Train": "Train", "Explore": "Explore", "Explore-fc": "Explore?layer=fc",
         "Explore@All epochs": "Explore", "Explore@Health": "Explore",
         "Explore@Tables": "Explore", "Compare": "Compare", "Runs": "Runs",
         "Tuning_guide": "Tuning_guide", "Overview": "Overview"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs-dir", default=None)
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--query", default="", help="query string added to every page URL")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "screenshots"))
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--lang", default=None, help="a language of nnviz.i18n.LANGUAGES")
    parser.add_argument("--lessons", default="",
                        help="'all' or lesson names: shoot each lesson's key view instead")
    args = parser.parse_args()
    from nnviz.i18n import language, normalize, t

    lang = normalize(args.lang) if args.lang else None
    if args.lang and lang is None:
        parser.error(f"--lang {args.lang!r} is not a language of nnviz")
    query = "&".join(q for q in (args.query, f"lang={lang}" if lang else "") if q)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="nnviz-shots-"))
    pages = dict(PAGES)
    if args.lessons:
        names = list(LESSON_VIEWS) if args.lessons == "all" else args.lessons.split(",")
        pages = lesson_pages(runs, names)
        args.pages = ",".join(pages)
    elif not args.runs_dir:
        subprocess.run([sys.executable, "-m", "nnviz", "--runs-dir", str(runs), "train",
                        "--preset", "tutorial_cnn", "--quiet"], cwd=ROOT, check=True)
    from playwright.sync_api import sync_playwright

    with run_app(runs, out / "streamlit.log", port=args.port) as app, sync_playwright() as p:
        browser = launch_browser(p, chromium_path())
        for width, height, tag in ((1400, 3200, "desktop"), (390, 5200, "phone")):
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            for name in args.pages.split(","):
                sep = "&" if "?" in pages[name] else "?"
                url = f"{app.url}/{pages[name]}" + (f"{sep}{query}" if query else "")
                page.goto(url)
                wait_for_app_idle(page)
                if "@" in name and not name.endswith("@This epoch"):  # click the view's button
                    with language(lang or "en"):  # the button's label in the page's language
                        view = t(name.split("@", 1)[1])
                    frame = pick_view(page, view)  # the control is the player frame's
                    if name.endswith("@All epochs"):
                        frame.wait_for_function("() => window.nnvizPlayer.allFrame >= 0",
                                                timeout=60_000)
                    page.wait_for_timeout(1000)
                elif name.startswith(("Explore", "Compare", "lesson-")):
                    # the epoch player's charts are drawn, those below the window too
                    player(page).wait_for_function("() => window.nnvizPlayer.allFrame >= 0",
                                                   timeout=60_000)
                page.wait_for_timeout(1000)
                shot = name.split("@")[0] if name.startswith("lesson-") else name
                stem = shot.replace("@", "-").replace(" ", "_") + (f"-{lang}" if lang else "")
                path = out / f"{stem}-{tag}.png"
                page.screenshot(path=str(path), full_page=True)
                print(path)
            context.close()
        browser.close()


def lesson_pages(runs: Path, names: list[str]) -> dict[str, str]:
    """Train (or reuse) each lesson's run in ``runs``: {"lesson-NAME@View": "Explore?run=..."}."""
    from nnviz.cli.warm import FINISHED
    from nnviz.config import config_hash
    from nnviz.engine.training import train
    from nnviz.presets import preset
    from nnviz.store.runs import RunStore

    store = RunStore(runs)
    out = {}
    for name in names:
        cfg = preset(name).config()
        row = store.find_by_hash(config_hash(cfg), FINISHED)
        run_id = row["run_id"] if row else train(cfg, store).run_id
        layer, index, view = LESSON_VIEWS[name]
        n = store.load(run_id).n_snapshots
        epoch = n - 1 if index < 0 else min(index, n - 1)
        out[f"lesson-{name}@{view}"] = f"Explore?run={run_id}&epoch={epoch}&layer={layer}"
    return out


if __name__ == "__main__":
    main()
