"""The demo's default reward cites the reward benchmark: its numbers must be the committed runs'."""

import json
from pathlib import Path

import pytest

from crlhf.demo import BENCHMARKED, SIZES, _benchmark_note

CELLS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "reward_sources"


def _pass_at_1(source: str, shape: str, labels: int, seed: int, credit: str = "sequence") -> float:
    name = (f"source={source}_shape={shape}_credit={credit}_labels={labels}_reliability=two_coin_seed={seed}.json")
    return json.loads((CELLS / "cells" / name).read_text())["pass@1"]


def test_the_cited_numbers_are_the_committed_runs():
    b = BENCHMARKED
    assert json.loads((CELLS / "baseline.json").read_text())["pass@1"] == pytest.approx(b["sft_pass@1"], abs=5e-4)
    chosen = (b["reward"], b["reward_shape"], b["labels_per_program"])
    assert _pass_at_1(*chosen, b["untuned_seed"]) == pytest.approx(b["pass@1"], abs=5e-4)
    assert _pass_at_1("tests", "share", 5, b["untuned_seed"]) == pytest.approx(b["tests_pass@1"], abs=5e-4)
    tuned = [_pass_at_1(*chosen, s) for s in b["chosen_on_seeds"]]
    assert sum(tuned) / len(tuned) - b["sft_pass@1"] >= 0.05  # the headline the choice rests on
    assert b["untuned_seed"] not in b["chosen_on_seeds"]


def test_the_report_cites_them_only_for_the_full_run_with_the_default_reward():
    full, quick = SIZES[False], SIZES[True]
    args = (BENCHMARKED["reward"], BENCHMARKED["reward_shape"], BENCHMARKED["credit"])
    note = " ".join(_benchmark_note(*args, full, quick=False))
    assert f"{BENCHMARKED['pass@1']:.3f}" in note and "+6.2 points" in note and "seed 3" in note
    assert _benchmark_note(*args, quick, quick=True) == []
    assert _benchmark_note(BENCHMARKED["reward"], "share", BENCHMARKED["credit"], full, quick=False) == []
