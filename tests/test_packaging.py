"""The installable package: pyproject.toml's pins agree with the requirements files, and the
console script points at the CLI."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements(name: str) -> set[str]:
    """The requirement lines of a requirements file (comments and ``-r`` includes left out)."""
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return {re.sub(r"\s+", "", line.split("#", 1)[0]) for line in lines
            if line.split("#", 1)[0].strip() and not line.startswith("-")}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_dependencies_are_the_pins_of_requirements_txt():
    assert set(_project()["dependencies"]) == _requirements("requirements.txt")


def test_the_test_extra_is_requirements_dev_txt():
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in dev
    assert set(_project()["optional-dependencies"]["test"]) == _requirements(
        "requirements-dev.txt")


def test_every_dependency_is_pinned_exactly():
    for req in _project()["dependencies"] + _project()["optional-dependencies"]["test"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+]*", req), req


def test_the_console_script_is_the_cli_main():
    import importlib

    module, _, attr = _project()["scripts"]["nnviz"].partition(":")
    main = getattr(importlib.import_module(module), attr)
    assert main(["models", "--json"]) == 0


def test_the_own_model_and_bench_extras_are_their_requirements_files():
    extras = _project()["optional-dependencies"]
    assert set(extras["lightning"]) | set(extras["huggingface"]) == _requirements(
        "requirements-extras.txt")
    assert set(extras["bench"]) == _requirements("requirements-bench.txt")


def test_the_ray_extra_is_requirements_ray_txt_and_ci_installs_it():
    assert set(_project()["optional-dependencies"]["ray"]) == _requirements("requirements-ray.txt")
    for req in _project()["optional-dependencies"]["ray"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+]*", req), req
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements-ray.txt" in dev.splitlines()  # so the Ray tests run in CI
