"""Shared fixtures, the Hypothesis profiles, and the CI rule: with NNVIZ_REQUIRE_BROWSER=1 only
GPU tests may skip.

Hypothesis profiles: ``ci`` (chosen when ``CI=true``) runs a fixed, bounded number of examples
with no deadline and no too-slow health check, derandomized so that a failure reproduces; ``dev``
(everywhere else) keeps Hypothesis's random search but also drops the deadline and the too-slow
check, which only measure how busy the machine is. ``HYPOTHESIS_PROFILE=name`` picks one.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_LOAD_INDEPENDENT = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                         database=None)  # database=None: no .hypothesis/ folder in the checkout
settings.register_profile("ci", max_examples=50, derandomize=True, print_blob=True,
                          **_LOAD_INDEPENDENT)
settings.register_profile("dev", max_examples=100, **_LOAD_INDEPENDENT)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev"))

# every run.json a test writes is checked by the format's reader before it is saved, the
# trainer's too (it skips the check outside the tests: nnviz.store.runs.check_writes)
os.environ.setdefault("NNVIZ_CHECK_WRITES", "1")

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


def pytest_collectreport(report):
    """A module that skips itself while collected (``pytest.importorskip`` at module level, as
    the Ray tests do without the extra) counts as a skip too."""
    if report.skipped and os.environ.get("NNVIZ_REQUIRE_BROWSER") == "1":
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
