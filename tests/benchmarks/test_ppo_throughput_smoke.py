"""benchmarks/ppo_throughput.py runs on CPU at smoke sizes and writes its JSON (TRL skipped: its import is slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ppo_throughput_smoke(tmp_path):
    out = tmp_path / "ppo.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ppo_throughput.py"), "--smoke", "--device", "cpu",
                           "--skip-trl", "--json", str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["device_type"] == "cpu" and data["completions_per_round"] == 8
    runs = {r["run"]: r for r in data["rows"]}
    assert set(runs) == {"ours, ppo_epochs=1", "ours, ppo_epochs=4"}
    for row in runs.values():
        assert row["completions_per_s"] > 0 and row["tokens_per_s"] > 0 and row["seconds_per_round"] > 0
    assert data["ratio_ours_over_trl"] is None
    assert "ours, ppo_epochs=1" in proc.stdout
