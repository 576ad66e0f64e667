"""benchmarks/reward_sources.py runs at smoke sizes (two sources, one seed, two tiny rounds) and
writes the JSON layout issue 5 asks for."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_reward_sources_quick(tmp_path):
    out = tmp_path / "rs.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "reward_sources.py"), "--quick",
                           "--sources", "bayes", "tests", "--workers", "2", "--json", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    base = data["baseline"]["pass@1"]
    assert 0.0 <= base <= 1.0
    assert set(data["sources"]) == {"bayes", "tests"}
    for src in ("bayes", "tests"):
        row = data["sources"][src]
        assert len(row["pass@1"]) == 1 and 0.0 <= row["pass@1"][0] <= 1.0
        assert row["mean"] == row["pass@1"][0] and math.isclose(row["gain"], row["mean"] - base)
        assert row["std"] is None  # one seed: no spread to report, not a made-up 0
    assert "target (>= +5 points" in proc.stdout and "bayes" in proc.stdout
