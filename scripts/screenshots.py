"""Screenshots of every page, desktop (1400 px) and phone (390 px) width.

    python scripts/screenshots.py [--runs-dir DIR] [--pages Home,Train,...] [--out DIR]
                                  [--port N] [--lang zh-Hans]

A name ``Explore@Health`` opens the Explore page and then picks its "Health" view.
``--lang`` opens every page in that language (``?lang=``) and adds it to the file names.

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
    player,
    run_app,
    wait_for_app_idle,
)

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
    args = parser.parse_args()
    from nnviz.i18n import language, normalize, t

    lang = normalize(args.lang) if args.lang else None
    if args.lang and lang is None:
        parser.error(f"--lang {args.lang!r} is not a language of nnviz")
    query = "&".join(q for q in (args.query, f"lang={lang}" if lang else "") if q)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="nnviz-shots-"))
    if not args.runs_dir:
        subprocess.run([sys.executable, "-m", "nnviz", "--runs-dir", str(runs), "train",
                        "--preset", "tutorial_cnn", "--quiet"], cwd=ROOT, check=True)
    from playwright.sync_api import sync_playwright

    with run_app(runs, out / "streamlit.log", port=args.port) as app, sync_playwright() as p:
        browser = launch_browser(p, chromium_path())
        for width, height, tag in ((1400, 3200, "desktop"), (390, 5200, "phone")):
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            for name in args.pages.split(","):
                sep = "&" if "?" in PAGES[name] else "?"
                url = f"{app.url}/{PAGES[name]}" + (f"{sep}{query}" if query else "")
                page.goto(url)
                wait_for_app_idle(page)
                if "@" in name:  # a view of the page: click its segmented-control button
                    with language(lang or "en"):  # the button's label in the page's language
                        view = t(name.split("@", 1)[1])
                    page.get_by_text(view, exact=True).first.click()
                    page.wait_for_timeout(1500)
                    wait_for_app_idle(page)
                elif name.startswith(("Explore", "Compare")):
                    player(page)  # the epoch player's charts are drawn
                page.wait_for_timeout(1000)
                stem = name.replace("@", "-").replace(" ", "_") + (f"-{lang}" if lang else "")
                path = out / f"{stem}-{tag}.png"
                page.screenshot(path=str(path), full_page=True)
                print(path)
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
