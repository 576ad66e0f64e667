"""benchmarks/reward_sources.py at smoke sizes: a slice runs (one JSON per cell and seed, the
baseline once), a second run of the same slice skips what is done, and ``collect`` builds the
table and its JSON (axes, per-cell numbers, paired product - share) from the folder alone."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "reward_sources.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def bench(*args):
    proc = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_a_slice_runs_skips_what_is_done_and_collects(tmp_path):
    out = tmp_path / "rs"
    only = "source=bayes/tests,shape=share/product,labels=3"
    log = bench("run", "--quick", "--only", only, "--seeds", 0, "--out", out, "--workers", 2)
    assert "4 job(s) to run, 0 cell(s) already done" in log  # baseline + bayes x 2 shapes + tests (share only)
    names = sorted(p.name for p in (out / "cells").glob("*.json"))
    assert names == ["source=bayes_shape=product_credit=sequence_labels=3_reliability=two_coin_seed=0.json",
                     "source=bayes_shape=share_credit=sequence_labels=3_reliability=two_coin_seed=0.json",
                     "source=tests_shape=share_credit=sequence_labels=3_reliability=two_coin_seed=0.json"]
    again = bench("run", "--quick", "--only", only, "--seeds", 0, "--out", out)
    assert "0 job(s) to run, 3 cell(s) already done" in again
    # line-level credit is one more axis: blame on bayes x product
    blame = bench("run", "--quick", "--only", "source=bayes,shape=product,credit=blame,labels=3", "--seeds", 0,
                  "--out", out)
    assert "1 job(s) to run, 0 cell(s) already done" in blame

    table = bench("collect", "--out", out, "--json", out / "table.json")
    data = json.loads((out / "table.json").read_text())
    assert data["axes"] == {"source": ["bayes", "tests"], "shape": ["product", "share"],
                            "credit": ["blame", "sequence"], "labels": [3], "reliability": ["two_coin"]}
    base = json.loads((out / "baseline.json").read_text())["pass@1"]
    assert data["baseline"]["pass@1"] == base
    assert [c["credit"] for c in data["cells"] if c["source"] == "bayes" and c["shape"] == "product"] == \
        ["blame", "sequence"]
    cells = {(c["source"], c["shape"]): c for c in data["cells"] if c["credit"] == "sequence"}
    assert set(cells) == {("bayes", "share"), ("bayes", "product"), ("tests", "share")}
    for (src, shape), c in cells.items():
        raw = json.loads((out / "cells" / f"source={src}_shape={shape}_credit=sequence_labels=3_"
                                          f"reliability=two_coin_seed=0.json").read_text())
        assert c["pass@1"] == [raw["pass@1"]] and c["mean"] == raw["pass@1"]
        assert math.isclose(c["gain"], c["mean"] - base) and c["std"] is None  # one seed: no spread
        assert f"{c['mean']:.4f}" in table  # the printed table shows the JSON's numbers
    (pair,) = data["paired"]  # product - share where both exist: credit sequence only
    assert pair["source"] == "bayes" and pair["seeds"] == [0] and (pair["a"], pair["b"]) == ("product", "share")
    assert math.isclose(pair["diff"][0], cells["bayes", "product"]["mean"] - cells["bayes", "share"]["mean"])
    assert "Paired by seed: product - share" in table

    listing = bench("list", "--out", out, "--only", "source=bayes,labels=3", "--seeds", 0)
    assert "2 of 3 done" in listing and "todo  source=bayes_shape=all_correct" in listing
