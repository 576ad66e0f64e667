import json
import math
import re

import numpy as np
import pandas as pd
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


def test_demo_quick_evaluates_trains_and_reports_quietly(tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    hf_logging.warning_once.cache_clear()  # transformers' one-time warnings fire again in this run
    assert main(["demo", "--quick", "--out", str(tmp_path), "--reward-shape", "product"]) == 0
    out, err = capfd.readouterr()
    assert "Writing model shards" not in err and "Loading weights" not in err  # per-checkpoint bars
    assert "attention_mask" not in out + err and "Warning" not in out + err
    assert "pass@1 at T=0.2 (%)" in out and "wrote " in out  # the summary
    assert json.loads((tmp_path / "run" / "config.json").read_text())["reward_shape"] == "product"
    report = (tmp_path / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| model |"))
    assert header == ("| model | pass@1 at T=0.2 (%) | pass@1 at T=0.6 (%) | pass@1 at T=0.8 (%) | pass@10 at T=0.2 (%) "
                      "| pass@10 at T=0.6 (%) | pass@10 at T=0.8 (%) | best pass@1 (%) | best pass@10 (%) |")
    rows = {line.split(" | ")[0][2:]: line.strip("| ").split(" | ")[1:] for line in report.splitlines()
            if line.startswith(("| baseline", "| w/cRLHF", "| gain"))}
    assert set(rows) == {"baseline", "w/cRLHF", "gain (points)"}
    cell = re.compile(r"^(\d+\.\d) \[(\d+\.\d), (\d+\.\d)\]")  # value [95% interval]
    for name in ("baseline", "w/cRLHF"):
        for text in rows[name]:
            value, lo, hi = map(float, cell.match(text).groups())
            assert 0 <= lo <= value <= hi <= 100, (name, text)
    assert all(re.match(r"^[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]$", text) for text in rows["gain (points)"])
    assert "mean reward (0 to 1)" in report and "KL to reference (nats per program)" in report
    results = json.loads((tmp_path / "results.json").read_text())
    for model in ("baseline", "crlhf"):
        for k in ("pass@1", "pass@10"):
            for temp in ("0.2", "0.6", "0.8"):
                x = results[model][k][temp]
                assert isinstance(x, float) and math.isfinite(x) and 0.0 <= x <= 1.0, (model, k, temp, x)
                lo, hi = results[model]["interval"][k][temp]
                assert lo <= x <= hi
    for k in ("pass@1", "pass@10"):
        for temp in ("0.2", "0.6", "0.8"):
            gain = results["gain"][k][temp]
            assert gain == pytest.approx(results["crlhf"][k][temp] - results["baseline"][k][temp])
            lo, hi = results["gain"]["interval"][k][temp]
            assert lo - 1e-12 <= gain <= hi + 1e-12
    for name in ("passk", "rounds", "reliabilities"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
        assert json.loads((tmp_path / f"{name}.json").read_text())
    assert (tmp_path / "run" / "metrics.csv").is_file()


def scripted_result(passes, tasks=4):
    """An EvalResult of ``tasks`` tasks x 10 samples at T 0.2/0.6/0.8 where sample j of task i
    passes when ``j < passes[i]`` (``passes``: an int for every task, or one per task)."""
    from crlhf.evaluate import summarize

    passes = [passes] * tasks if isinstance(passes, int) else passes
    return summarize(pd.DataFrame([{"task_id": f"t{i}", "temperature": t, "passed": j < c}
                                   for i, c in enumerate(passes) for t in (0.2, 0.6, 0.8) for j in range(10)]),
                     ks=(1, 10))


def test_demo_gain_is_paired_over_tasks():
    from crlhf.demo import passk_summary

    # tasks of very different difficulty, each one sample in ten better after: the gain is certain
    summary = passk_summary(scripted_result([0, 2, 8, 9]), scripted_result([1, 3, 9, 10]))
    assert summary["gain"]["pass@1"]["0.6"] == pytest.approx(0.1)
    assert summary["gain"]["interval"]["pass@1"]["0.6"] == pytest.approx([0.1, 0.1])
    lo, hi = summary["baseline"]["interval"]["pass@1"]["0.6"]
    assert hi - lo > 0.3  # while each model's own interval over these tasks is wide
    assert summary["gain"]["best"]["pass@1"]["gain"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="different tasks"):
        passk_summary(scripted_result(3), scripted_result(3, tasks=5))


def fake_seed_run(out, quick, seed, progress, reward, reward_shape, credit, **overrides):
    """What one seed of the demo returns, from scripted evaluations: 4 tasks, n = 10; the baseline
    passes 4 + 2 * seed of 10 samples on every task, w/cRLHF one more."""
    from crlhf.demo import SIZES, passk_summary

    out.mkdir(parents=True)
    return {**passk_summary(scripted_result(4 + 2 * seed), scripted_result(5 + 2 * seed)),
            "rounds": [{"round": 1, "reward_mean": 0.5 + seed / 10, "kl": 0.1, "beta": 0.2, "pass_rate": 0.25,
                        "mean_p": 0.7, "s_true_mean": 0.6, "time": 1.0}],
            "sizes": SIZES[True], "seed": seed, "quick": True, "eval_tasks": 4, "train_tasks": 8,
            "reward": {"source": reward, "shape": reward_shape, "credit": credit}}


def test_demo_over_several_seeds_reports_mean_and_std_and_each_seed(tmp_path, monkeypatch, capsys):
    from crlhf import demo

    monkeypatch.setattr(demo, "_run_one", fake_seed_run)
    assert main(["demo", "--quick", "--seeds", "0", "1", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    rows = {line.strip("| ").split(" | ")[0]: line.strip("| ").split(" | ")[1:] for line in report.splitlines()
            if line.startswith(("| baseline", "| w/cRLHF", "| gain"))}
    # pass@1: 0.4 and 0.6 over the two seeds (std 0.141 with ddof 1); w/cRLHF 0.1 higher on each
    assert rows["baseline, mean ± std"][0] == "50.0 ± 14.1"
    assert rows["w/cRLHF, mean ± std"][0] == "60.0 ± 14.1"
    assert rows["gain (points), mean ± std"][0] == "+10.0 ± 0.0"
    assert rows["baseline, seed 0"][0].startswith("40.0 [") and rows["baseline, seed 1"][0].startswith("60.0 [")
    assert rows["gain (points), seed 1"][0] == "+10.0 [+10.0, +10.0]"  # every task gains one sample in ten
    assert len(rows) == 9 and all(len(r) == 8 for r in rows.values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["seeds"] == [0, 1] and set(results["per_seed"]) == {"0", "1"}
    cell = results["summary"]["baseline"]["pass@1 at T=0.2 (%)"]
    assert cell["mean"] == pytest.approx(0.5) and cell["std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert results["per_seed"]["1"]["baseline"]["interval"]["pass@1"]["0.2"] == pytest.approx([0.6, 0.6])
    for name in ("passk", "rounds"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
    assert (tmp_path / "seed-0").is_dir() and (tmp_path / "seed-1").is_dir()
    assert "50.0 ± 14.1" in capsys.readouterr().out


def test_demo_seed_options_are_checked(capsys):
    for argv, message in ((["--seeds", "1", "1"], "--seeds: seeds are distinct"),
                          (["--seed", "-2"], "--seed: seeds are distinct non-negative"),
                          (["--seed", "1", "--seeds", "2", "3"], "not allowed with argument")):
        with pytest.raises(SystemExit) as exc:
            main(["demo", "--quick", *argv])
        assert exc.value.code == 2 and message in capsys.readouterr().err


COMMANDS = [[], ["demo"], ["crowd"], ["eval"], ["round"], ["sft"], ["classroom"], ["tiny"], ["tiny", "train"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "crlhf")
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: crlhf")
    for markup in ("``", ":func:", ":class:", ":mod:", ":data:", ":meth:", ":attr:"):
        assert markup not in text, (command, markup)


def test_demo_help_documents_every_option_with_its_default(capsys):
    import argparse

    from crlhf.cli import add_demo_arguments

    parser = add_demo_arguments(argparse.ArgumentParser())
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert {a.option_strings[0] for a in options} == {"--out", "--seed", "--seeds", "--reward", "--reward-shape",
                                                      "--credit", "--quick"}
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(a.help for a in options)
    for default in ("(default: runs/demo)", "(default: 0)", "(default: bayes)", "(default: all_correct)",
                    "(default: sequence)", "(default: one seed, --seed)"):
        assert default in text
    assert "report.md" in text and "--seeds" in text


def test_demo_reward_defaults_and_choices(capsys):
    from crlhf.loop import LoopConfig

    import inspect

    from crlhf.demo import BENCHMARKED, SIZES, run_demo

    # the library keeps the paper's s = c/k; the demo (CLI and function) runs what the benchmark chose
    assert (LoopConfig().reward, LoopConfig().reward_shape, LoopConfig().credit) == ("bayes", "share", "sequence")
    defaults = {k: v.default for k, v in inspect.signature(run_demo).parameters.items()}
    chosen = (BENCHMARKED["reward"], BENCHMARKED["reward_shape"], BENCHMARKED["credit"])
    assert (defaults["reward"], defaults["reward_shape"], defaults["credit"]) == chosen
    assert SIZES[False]["labels_per_program"] == BENCHMARKED["labels_per_program"]
    import argparse

    from crlhf.cli import add_demo_arguments

    args = add_demo_arguments(argparse.ArgumentParser()).parse_args([])
    assert (args.reward, args.reward_shape, args.credit) == chosen
    with pytest.raises(SystemExit):
        main(["demo", "--reward-shape", "mean"])
    assert "invalid choice: 'mean'" in capsys.readouterr().err
