"""Fixtures of the headless widget tests: small label stores (SQLite files)."""

import pytest

from crlhf.store import LabelStore

GOLD = "def g(a, b):\n    c = a + b\n    return c - 1\n"  # 3 lines, the last one wrong
PROGRAMS = {
    "p0": "def f(xs):\n    total = 0\n\n    # add them\n    for x in xs:\n        total += x\n    return total\n",
    "p1": "x = 1\ny = 2\n",
    "p2": "def h():\n    return 42\n",
}


@pytest.fixture
def store(tmp_path):
    s = LabelStore(tmp_path / "labels.db")
    s.add_gold(GOLD, [1, 1, -1], program_id="g0")
    s.add_programs([{"program_id": pid, "program": text} for pid, text in PROGRAMS.items()])
    yield s
    s.close()
