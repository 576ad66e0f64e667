"""Shared fixtures for the task tests: the reference MBPP file (skipped with a reason if absent)."""

from pathlib import Path

import pytest

MBPP_PATH = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "mbpp.jsonl"


@pytest.fixture(scope="session")
def mbpp_path() -> Path:
    """``../shared/data/mbpp.jsonl`` relative to the project root."""
    if not MBPP_PATH.exists():
        reason = f"MBPP reference file {MBPP_PATH} is absent"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return MBPP_PATH
