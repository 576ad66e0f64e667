"""The code stays clean under the project's linter and type checker (settings in pyproject.toml):
``ruff check`` over the code, tests, benchmarks, notebooks and the docs config, and ``mypy`` over
the library and the widgets. Without ruff or mypy installed the test skips, unless ``CI`` is set (CI must run it)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(tool: str, *args: str) -> None:
    if importlib.util.find_spec(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {tool} is not installed (pip install -e '.[test]')")
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", tool, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{tool} {' '.join(args)} failed:\n{proc.stdout[-20000:]}\n{proc.stderr[-4000:]}"


def test_ruff_finds_nothing():
    _run("ruff", "check", "crlhf", "widgets", "tests", "benchmarks", "notebooks", "docs/conf.py")


def test_mypy_finds_nothing():
    _run("mypy", "crlhf", "widgets")
