"""The layout holds: the library knows nothing of the app, and nothing outside the app imports it.

``nnviz/`` is the library (engine, store, analysis, figures, cli); ``app.py``, ``pages/`` and
``ui/`` are the app. The checks read the real import statements of every file (ast), and
import every library module in a fresh interpreter to see what it drags in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = ("ui", "pages", "app")
LIBRARY = ROOT / "nnviz"


def _imported_modules(path: Path) -> set[str]:
    """Top-level names of every module an import statement in the file names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def test_importing_every_library_module_loads_neither_streamlit_nor_the_app():
    code = (
        "import importlib, pkgutil, sys, nnviz\n"
        "for m in pkgutil.walk_packages(nnviz.__path__, 'nnviz.'):\n"
        "    if m.name != 'nnviz.__main__':\n"
        "        try:\n"
        "            importlib.import_module(m.name)\n"
        "        except ImportError as exc:\n"
        "            if 'optional' not in str(exc): raise\n"  # an extra that is not installed
        f"banned = {('streamlit',) + APP_PACKAGES!r}\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in banned)\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the library imported app modules: {out.stdout.strip()}"


def test_no_library_file_imports_streamlit_or_the_app():
    offenders = {}
    for path in LIBRARY.rglob("*.py"):
        bad = {m for m in _imported_modules(path) if _top(m) in ("streamlit",) + APP_PACKAGES}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, offenders


def test_nothing_outside_the_app_imports_the_app():
    """The library and its benchmarks never reach into the app (the app's own benchmarks,
    which drive the server or its job manager, are the exception by name)."""
    app_benchmarks = ("bench_load", "bench_load_browser", "bench_browser", "stclient")
    outside = [p for p in ROOT.rglob("*.py")
               if p.relative_to(ROOT).parts[0] == "nnviz"
               or (p.relative_to(ROOT).parts[0] == "benchmarks" and p.stem not in app_benchmarks)]
    offenders = {}
    for path in outside:
        bad = {m for m in _imported_modules(path) if _top(m) in APP_PACKAGES}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, offenders


def test_app_services_need_no_streamlit():
    """The job manager and the URL state are app services, testable without Streamlit."""
    services = ROOT / "ui" / "services"
    for path in services.glob("*.py"):
        assert not {m for m in _imported_modules(path) if _top(m) == "streamlit"}, path.name


def test_library_folders_say_their_job():
    """Every module of the library opens with a docstring: the layout tells the design."""
    missing = []
    for path in LIBRARY.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not ast.get_docstring(tree):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, missing
