"""Run ``streamlit run app.py ...`` with every script run profiled: where the server's CPU goes.

Each script run (a whole page, or one fragment's rerun) is timed with ``time.thread_time`` (the
CPU of its script thread alone) under a key "page [fragment]", and profiled with cProfile. When the
server exits (``bench_load.py --profile`` stops it with SIGTERM) it writes to ``$NNVIZ_PROFILE``:

- ``runs.json``: per key, the number of runs and their CPU seconds; and the server process's
  total CPU seconds, so what is left over is Streamlit's own event loop, the job listener and
  the garbage collector;
- ``scripts.pstats``: the merged cProfile of every script run (read it with ``pstats``);
- ``main.pstats``: the main thread's, where Streamlit's event loop sends every message.

Only the server process is profiled; the training workers are other processes.

    NNVIZ_PROFILE=/tmp/prof python benchmarks/profile_server.py --server.port=8530
"""

from __future__ import annotations

import atexit
import cProfile
import json
import os
import pstats
import sys
import threading
import time
from pathlib import Path

OUT = Path(os.environ.get("NNVIZ_PROFILE") or "nnviz-profile")
APP_DIR = Path(__file__).resolve().parent.parent

_lock = threading.Lock()
_cpu: dict[str, list[float]] = {}   # key -> [runs, CPU seconds]
_stats: list[pstats.Stats | None] = [None]


def _key(rerun_data: object) -> str:
    page = getattr(rerun_data, "page_script_hash", "") or ""
    name = _PAGES.get(page, page[:8] or "entry")
    if getattr(rerun_data, "fragment_id_queue", None):
        auto = " auto" if getattr(rerun_data, "is_auto_rerun", False) else ""
        return f"{name} [fragment{auto}]"
    return name


_PAGES: dict[str, str] = {}
_MAIN = cProfile.Profile(time.thread_time)  # the main thread: Streamlit's event loop


def _patch() -> None:
    from streamlit.runtime.scriptrunner import script_runner as sr

    original = sr.ScriptRunner._run_script

    def run_one(self, rerun_data):  # type: ignore[no-untyped-def]
        try:
            from streamlit.runtime.pages_manager import PagesManager  # noqa: F401

            pages = self._pages_manager.get_pages()
            _PAGES.update({h: Path(p.get("script_path", "")).stem or h[:8]
                           for h, p in pages.items()})
        except Exception:  # noqa: BLE001 - names are a nicety
            pass
        key = _key(rerun_data)
        profile = cProfile.Profile(time.thread_time)  # CPU, not waits for the GIL
        start = time.thread_time()
        profile.enable()
        try:
            return original(self, rerun_data)
        finally:
            profile.disable()
            spent = time.thread_time() - start
            with _lock:
                entry = _cpu.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += spent
                if _stats[0] is None:
                    _stats[0] = pstats.Stats(profile)
                else:
                    _stats[0].add(profile)

    sr.ScriptRunner._run_script = run_one


def _dump() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with _lock:
        total = time.process_time()
        (OUT / "runs.json").write_text(json.dumps(
            {"process_cpu_s": total, "scripts": {k: {"runs": v[0], "cpu_s": v[1]}
                                                 for k, v in sorted(_cpu.items())}}, indent=1))
        if _stats[0] is not None:
            _stats[0].dump_stats(str(OUT / "scripts.pstats"))
        _MAIN.disable()
        _MAIN.dump_stats(str(OUT / "main.pstats"))


def main() -> None:
    os.chdir(APP_DIR)
    sys.path.insert(0, str(APP_DIR))
    _patch()
    atexit.register(_dump)  # Streamlit stops cleanly on SIGTERM, so exit hooks run
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    _MAIN.enable()
    cli.main()


if __name__ == "__main__":
    main()
