"""Shared fixtures, and the CI rule: with NNVIZ_REQUIRE_BROWSER=1 only GPU tests may skip."""

from __future__ import annotations

import os

import pytest

ALLOWED_SKIP_MARKERS = ("gpu",)  # CUDA tests skip on machines without a GPU (CI has none)
_bad_skips: list[str] = []


@pytest.fixture()
def runs_dir(tmp_path, monkeypatch):
    """An empty runs folder, also set as $NNVIZ_RUNS_DIR."""
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv("NNVIZ_RUNS_DIR", str(folder))
    return folder


@pytest.fixture()
def store(runs_dir):
    from nnviz.store.runs import RunStore

    return RunStore(runs_dir)


def pytest_runtest_logreport(report):
    if report.skipped and os.environ.get("NNVIZ_REQUIRE_BROWSER") == "1":
        keywords = report.keywords
        if not any(m in keywords for m in ALLOWED_SKIP_MARKERS):
            _bad_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _bad_skips and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _bad_skips:
        terminalreporter.write_line(
            "FAILED: these tests were skipped but must run in CI "
            "(NNVIZ_REQUIRE_BROWSER=1):", red=True)
        for nodeid in _bad_skips:
            terminalreporter.write_line(f"  {nodeid}", red=True)
