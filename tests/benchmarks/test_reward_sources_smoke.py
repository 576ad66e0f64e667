"""benchmarks/reward_sources.py at smoke sizes: a slice runs (one JSON per cell and seed, the
baseline once) and trains (PPO moved every cell's policy away from the reference; each pass@1 is
a whole number of passing samples over the evaluated ones), a second run of the same slice skips
what is done, and ``collect`` builds the table and its JSON (axes, per-cell numbers, paired
product - share) from the folder alone."""

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
    base_file = json.loads((out / "baseline.json").read_text())
    sizes = base_file["sizes"]
    samples = sizes["eval_tasks"] * sizes["eval_n"]  # pass@1 at n samples is the share of passing samples

    def whole_passes(p):
        return 0.0 <= p <= 1.0 and math.isclose(p * samples, round(p * samples), abs_tol=1e-9)

    assert whole_passes(base_file["pass@1"]), base_file
    for name in names:
        raw = json.loads((out / "cells" / name).read_text())
        assert name == "_".join(f"{a}={raw['cell'][a]}" for a in raw["cell"]) + f"_seed={raw['seed']}.json"
        assert whole_passes(raw["pass@1"]), (name, raw["pass@1"])
        assert {k: raw["sizes"][k] for k in ("eval_tasks", "eval_n", "eval_tokens")} == \
            {k: sizes[k] for k in ("eval_tasks", "eval_n", "eval_tokens")}
        # PPO changed the policy of the crowd-labelled cells: the last round's sampled log-ratio to the reference
        # (a KL estimate: below 0 on a few samples, 1e-7 after a tiny step) is exactly 0 only while the policy is
        # the reference. Not asserted for `tests`: at smoke sizes a prompt's 2 samples pass or fail together,
        # so the per-prompt baseline leaves PPO no signal.
        if raw["cell"]["source"] == "bayes":
            assert raw["kl_last"] != 0.0, (name, raw["kl_last"])
        assert 0.0 <= raw["pass_rate_first"] <= 1.0 and 0.0 <= raw["pass_rate_last"] <= 1.0
        assert math.isfinite(raw["reward_error"]) and raw["reward_error"] >= 0
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
