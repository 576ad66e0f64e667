import json
import math
import time

import pytest

from crlhf.cli import main


def test_crowd_quick_runs_the_crowd_simulation_end_to_end(tmp_path, capsys):
    assert main(["crowd", "--quick", "--out", str(tmp_path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "Spearman(true accuracy, p_i)" in out and "majority vote" in out
    summary = json.loads((tmp_path / "crowd_simulation.json").read_text())
    assert (tmp_path / "reliabilities.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "reliabilities.json").read_text())  # the plot's numbers
    assert len(summary["annotators"]) == 30 and summary["programs"] == 300
    acc = {row["aggregator"]: row["line accuracy"] for row in summary["aggregators"]}
    # the Bayesian aggregator discounts the crowd's spammers and turns its adversary around
    assert acc["crlhf online Bayes (beta)"] > acc["majority vote"]
    assert acc["crlhf online Bayes (eq8)"] > acc["majority vote"]
    assert summary["spearman_true_accuracy_vs_p"]["beta"] > 0.8
    assert acc["crlhf online Bayes (two_coin)"] > acc["majority vote"]
    assert summary["spearman_true_accuracy_vs_p"]["two_coin"] > 0.8


def test_sft_refuses_missing_data_with_exit_code_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sft", "--model", str(tmp_path), "--data", str(tmp_path / "missing.jsonl")])
    assert exc.value.code == 2
    assert "missing.jsonl" in capsys.readouterr().err


def test_demo_quick_evaluates_trains_and_reports(tmp_path):
    start = time.perf_counter()
    assert main(["demo", "--quick", "--out", str(tmp_path), "--reward-shape", "product"]) == 0
    assert time.perf_counter() - start < 120
    assert json.loads((tmp_path / "run" / "config.json").read_text())["reward_shape"] == "product"
    report = (tmp_path / "report.md").read_text()
    assert "baseline" in report and "w/cRLHF" in report and "reward_mean" in report
    results = json.loads((tmp_path / "results.json").read_text())
    for model in ("baseline", "crlhf"):
        for k in ("pass@1", "pass@10"):
            for temp in ("0.2", "0.6", "0.8"):
                x = results[model][k][temp]
                assert isinstance(x, float) and math.isfinite(x) and 0.0 <= x <= 1.0, (model, k, temp, x)
    for name in ("passk", "rounds", "reliabilities"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
        assert json.loads((tmp_path / f"{name}.json").read_text())
    assert (tmp_path / "run" / "metrics.csv").is_file()


def test_demo_reward_defaults_and_choices(capsys):
    from crlhf.loop import LoopConfig

    assert (LoopConfig().reward, LoopConfig().reward_shape, LoopConfig().credit) == ("bayes", "share", "sequence")
    with pytest.raises(SystemExit):
        main(["demo", "--reward-shape", "mean"])
    assert "invalid choice: 'mean'" in capsys.readouterr().err
