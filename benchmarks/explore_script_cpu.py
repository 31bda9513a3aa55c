"""Explore's server side per action, in AppTest: CPU of the script run and bytes of what it draws.

Two figures that the machine's load hardly changes, beside bench_app_latency.py's wall times:
the script thread's CPU seconds (``time.thread_time``, so other processes do not count) and the
bytes of the elements the run drew (their protobufs: what the server sends, before Streamlit's
cache of repeated messages). Each action is one AppTest run of the whole page (the browser
reruns only the view's fragment, a few ms less); "rerun, nothing changed" is the page's floor.

    python3 benchmarks/explore_script_cpu.py [--runs-dir DIR] [--reps 3] [--profile ACTION]

It trains tutorial_cnn into a temporary runs folder unless --runs-dir holds a run.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def element_bytes(node) -> int:
    """Bytes of every element's protobuf under an AppTest tree node."""
    proto = getattr(node, "proto", None)
    own = proto.ByteSize() if proto is not None and hasattr(proto, "ByteSize") else 0
    children = getattr(node, "children", {}) or {}
    return own + sum(element_bytes(c) for c in children.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default=None)
    parser.add_argument("--reps", type=int, default=3, help="fresh sessions per figure")
    parser.add_argument("--profile", default="", help="an action's name: print its cProfile")
    args = parser.parse_args()
    runs = Path(args.runs_dir or tempfile.mkdtemp(prefix="nnviz-script-cpu-"))
    run_id = next((p.name for p in sorted(runs.iterdir()) if (p / "run.json").exists()), None)
    if run_id is None:
        out = subprocess.run([sys.executable, "-m", "nnviz", "--runs-dir", str(runs), "train",
                              "--preset", "tutorial_cnn", "--json", "--quiet"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        run_id = re.search(r'"run_id": "([^"]+)"', out).group(1)
    os.environ["NNVIZ_RUNS_DIR"] = str(runs)
    os.chdir(ROOT)
    from streamlit.runtime.scriptrunner import script_runner as sr
    from streamlit.testing.v1 import AppTest

    last: dict[str, object] = {}
    original = sr.ScriptRunner._run_script

    def timed(self, rerun_data):  # type: ignore[no-untyped-def]
        profile = cProfile.Profile(time.thread_time) if last.get("want") else None
        start = time.thread_time()
        if profile:
            profile.enable()
        try:
            return original(self, rerun_data)
        finally:
            if profile:
                profile.disable()
            last["cpu"], last["profile"] = time.thread_time() - start, profile

    sr.ScriptRunner._run_script = timed
    figures: dict[str, list[tuple[float, int]]] = {}

    def act(at: AppTest, name: str, change: Callable[[], object]) -> None:
        last["want"] = name == args.profile
        change()
        at.run()
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].message}")
        figures.setdefault(name, []).append((float(last["cpu"]), element_bytes(at._tree)))
        if last["want"]:
            pstats.Stats(last["profile"]).sort_stats("cumulative").print_stats(30)

    def mode(at: AppTest, view: str) -> Callable[[], object]:
        def pick() -> None:  # the frame's report of a click on its view control
            ss = at.session_state
            last = ss["explore_player"] if "explore_player" in ss else None
            ss["explore_player"] = {**(last or {}), "view": view, "seq": time.monotonic_ns(),
                                    "need": None}
        return pick

    def layer(at: AppTest, name: str) -> Callable[[], object]:
        return lambda: at.selectbox(key="explore_layer").set_value(name)

    for k in range(args.reps + 1):  # the first session warms the server's caches
        at = AppTest.from_file(str(ROOT / "pages" / "2_Explore.py"), default_timeout=300)
        at.query_params.update({"run": run_id, "layer": "conv1"})
        act(at, "open by link" + (" (server's first)" if k == 0 else ""), lambda: None)
        act(at, "rerun, nothing changed", lambda: None)
        act(at, "layer switch" + (", first time" if k == 0 else ""), layer(at, "fc"))
        act(at, "layer switch", layer(at, "conv1"))
        act(at, "view -> All epochs" + (", first time" if k == 0 else ""),
            mode(at, "All epochs"))
        act(at, "view -> This epoch", mode(at, "This epoch"))
        act(at, "view -> All epochs", mode(at, "All epochs"))
        act(at, "view -> Health" + (", first time" if k == 0 else ""), mode(at, "Health"))
    print(f"{'action (AppTest, whole page)':<38} {'script CPU ms':>14} {'element bytes':>14}")
    for name, values in figures.items():
        cpu = statistics.median(v[0] for v in values) * 1000
        size = statistics.median(v[1] for v in values)
        print(f"{name:<38} {cpu:>14.0f} {size:>14.0f}")


if __name__ == "__main__":
    main()
