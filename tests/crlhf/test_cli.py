import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crlhf import cli
from crlhf.cli import main

REPO = Path(__file__).resolve().parents[2]


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


def test_crowd_runs_without_scipy(tmp_path):
    """scipy is not a base dependency: ``crlhf crowd`` must not need it."""
    code = ("import sys; sys.modules['scipy'] = None; from crlhf.cli import main; "
            f"sys.exit(main(['crowd', '--programs', '40', '--out', {str(tmp_path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "crowd_simulation.json").read_text())["programs"] == 40


def test_spearman_agrees_with_scipy_and_is_none_when_undefined():
    from scipy.stats import spearmanr

    from crlhf.crowd_sim import spearman

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 30), rng.normal(size=30)  # ties in x
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError, match="length"):
        spearman([1, 2], [1, 2, 3])


def test_crowd_refuses_no_programs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["crowd", "--programs", "0", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "crlhf crowd: error: --programs: expected an integer >= 1" in capsys.readouterr().err


def test_sft_refuses_missing_data_with_exit_code_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sft", "--model", str(tmp_path), "--data", str(tmp_path / "missing.jsonl")])
    assert exc.value.code == 2
    assert "missing.jsonl" in capsys.readouterr().err


CELL = re.compile(r"^([+-]?\d+\.\d) \[([+-]?\d+\.\d), ([+-]?\d+\.\d)\](?: at T=([\d.]+))?$")


def report_table(report: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header and the rows (label -> cells) of a report's pass@k table."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    header = lines[start].strip("| ").split(" | ")[1:]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = line.strip("| ").split(" | ")
        rows[cells[0]] = cells[1:]
    return header, rows


def test_demo_quick_trains_the_policy_and_reports_the_results_numbers(tmp_path, capfd):
    from safetensors.torch import load_file
    from transformers.utils import logging as hf_logging

    from crlhf import tiny

    hf_logging.warning_once.cache_clear()  # transformers' one-time warnings fire again in this run
    assert main(["demo", "--quick", "--out", str(tmp_path), "--reward-shape", "product"]) == 0
    out, err = capfd.readouterr()
    assert "Writing model shards" not in err and "Loading weights" not in err  # per-checkpoint bars
    assert "attention_mask" not in out + err and "Warning" not in out + err
    assert "pass@1 at T=0.2 (%)" in out and "wrote " in out  # the summary
    assert json.loads((tmp_path / "run" / "config.json").read_text())["reward_shape"] == "product"

    # PPO changed the policy: round 2 samples away from the reference (round 1 samples the reference itself,
    # KL 0; the estimate, a mean log-ratio over a few programs, may fall below 0), and the last checkpoint
    # holds other weights than the tiny coder's
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["round"].tolist() == [1, 2] and metrics.kl.iloc[0] == 0, metrics.kl.tolist()
    assert metrics.kl.iloc[-1] != 0.0, metrics.kl.tolist()
    (last,) = sorted((tmp_path / "run" / "checkpoints").glob("round-*"))
    assert last.name == "round-002"
    trained, start = load_file(last / "model.safetensors"), tiny.load(device="cpu").model.state_dict()
    shared = [k for k in trained if k in start and trained[k].shape == start[k].shape]
    assert len(shared) >= len(start) // 2
    changed = [k for k in shared if not np.array_equal(trained[k].numpy(), start[k].numpy())]
    assert len(changed) > len(shared) // 2, changed

    # every number of the report's pass@k table is results.json's, to the printed 0.1 points
    report = (tmp_path / "report.md").read_text()
    header, rows = report_table(report)
    assert header == ["pass@1 at T=0.2 (%)", "pass@1 at T=0.6 (%)", "pass@1 at T=0.8 (%)", "pass@10 at T=0.2 (%)",
                      "pass@10 at T=0.6 (%)", "pass@10 at T=0.8 (%)", "best pass@1 (%)", "best pass@10 (%)"]
    assert set(rows) == {"baseline", "w/cRLHF", "gain (points)"}
    results = json.loads((tmp_path / "results.json").read_text())
    for label, key in (("baseline", "baseline"), ("w/cRLHF", "crlhf"), ("gain (points)", "gain")):
        numbers = results[key]
        for column, text in zip(header, rows[label], strict=True):
            value, lo, hi, temperature = CELL.match(text).groups()
            k = column.split()[1 if column.startswith("best") else 0][5:]
            if column.startswith("best"):
                best = numbers["best"][f"pass@{k}"]
                want = (best["gain" if key == "gain" else "pass_at_k"], *best["interval"])
                assert (temperature is None) == (key == "gain")
                if temperature is not None:
                    assert float(temperature) == best["temperature"]
            else:
                t = column.split("T=")[1].split()[0]
                want = (numbers[f"pass@{k}"][t], *numbers["interval"][f"pass@{k}"][t])
            assert [float(value), float(lo), float(hi)] == pytest.approx([100 * w for w in want], abs=0.051), \
                (label, column, text, want)
            assert float(lo) <= float(value) <= float(hi)
    for k in ("pass@1", "pass@10"):
        for temp in ("0.2", "0.6", "0.8"):
            assert results["gain"][k][temp] == pytest.approx(results["crlhf"][k][temp] - results["baseline"][k][temp])
    assert "mean reward (0 to 1)" in report and "KL to reference (nats per program)" in report
    for name in ("passk", "rounds", "reliabilities"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
        assert json.loads((tmp_path / f"{name}.json").read_text())


def scripted_result(passes, tasks=4):
    """An EvalResult of ``tasks`` tasks x 10 samples at T 0.2/0.6/0.8 where sample j of task i
    passes when ``j < passes[i]`` (``passes``: an int for every task, or one per task)."""
    from crlhf.evaluate import summarize

    passes = [passes] * tasks if isinstance(passes, int) else passes
    return summarize(pd.DataFrame([{"task_id": f"t{i}", "temperature": t, "passed": j < c}
                                   for i, c in enumerate(passes) for t in (0.2, 0.6, 0.8) for j in range(10)]),
                     ks=(1, 10))


def fake_seed_run(out, quick, seed, progress, reward, reward_shape, credit, **overrides):
    """What one seed of the demo returns, from scripted evaluations: 4 tasks, n = 10; the baseline
    passes 4 + 2 * seed of 10 samples on every task, w/cRLHF one more."""
    from crlhf.demo import SIZES
    from crlhf.report import passk_summary

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
    _, rows = report_table(report)
    # pass@1: 0.4 and 0.6 over the two seeds (std 0.141 with ddof 1); w/cRLHF 0.1 higher on each
    assert rows["baseline, mean ± std"][0] == "50.0 ± 14.1"
    assert rows["w/cRLHF, mean ± std"][0] == "60.0 ± 14.1"
    assert rows["gain (points), mean ± std"][0] == "+10.0 ± 0.0"
    assert rows["baseline, seed 0"][0].startswith("40.0 [") and rows["baseline, seed 1"][0].startswith("60.0 [")
    assert rows["gain (points), seed 1"][0] == "+10.0 [+10.0, +10.0]"  # every task gains one sample in ten
    assert rows["w/cRLHF, mean ± std"][6] == "60.0 ± 14.1 at T=0.2"  # best pass@1: one temperature for all seeds
    assert len(rows) == 9 and all(len(r) == 8 for r in rows.values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["seeds"] == [0, 1] and set(results["per_seed"]) == {"0", "1"}
    cell = results["summary"]["baseline"]["pass@1 at T=0.2 (%)"]
    assert cell["mean"] == pytest.approx(0.5) and cell["std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    header, _ = report_table(report)
    for label, key in (("baseline", "baseline"), ("w/cRLHF", "crlhf"), ("gain (points)", "gain")):
        for column, text in zip(header, rows[f"{label}, mean ± std"],
                                strict=True):  # the table shows results.json's numbers
            mean, std = (float(x) for x in re.match(r"^([+-]?\d+\.\d) ± (\d+\.\d)", text).groups())
            want = results["summary"][key][column]
            assert (mean, std) == pytest.approx((100 * want["mean"], 100 * want["std"]), abs=0.051)
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


COMMANDS = [[], ["demo"], ["crowd"], ["eval"], ["round"], ["sft"], ["train"], ["classroom"], ["tiny"],
            ["tiny", "train"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "crlhf")
def test_help_is_plain_text_and_documents_every_option(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: crlhf")
    for markup in ("``", ":func:", ":class:", ":mod:", ":data:", ":meth:", ":attr:"):
        assert markup not in text, (command, markup)
    flat = " ".join(text.split())
    if not command:
        assert all(name in text for name in cli.COMMANDS)
        return
    parser = cli.build_parser()
    for word in command:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[word]
    assert parser.description and " ".join(parser.description.split()[:6]) in flat, command
    options = [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    for action in options:
        assert action.help, (command, action.dest)
        assert (action.option_strings[0] if action.option_strings else action.metavar) in flat, (command, action.dest)


def test_every_command_is_a_build_parser_and_a_run():
    import inspect

    for name, command in cli.commands().items():
        assert list(inspect.signature(command.build_parser).parameters) == ["parser"], name
        assert list(inspect.signature(command.run).parameters) == ["args"], name
        assert inspect.signature(command.run).return_annotation in (int, "int"), name


def test_demo_help_documents_every_option_with_its_default(capsys):
    from crlhf.demo import build_parser

    parser = build_parser(argparse.ArgumentParser())
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
    import inspect

    from crlhf.demo import BENCHMARKED, SIZES, build_parser, run_demo
    from crlhf.loop import LoopConfig

    # the library keeps the paper's s = c/k; the demo (CLI and function) runs what the benchmark chose
    assert (LoopConfig().reward, LoopConfig().reward_shape, LoopConfig().credit) == ("bayes", "share", "sequence")
    defaults = {k: v.default for k, v in inspect.signature(run_demo).parameters.items()}
    chosen = (BENCHMARKED["reward"], BENCHMARKED["reward_shape"], BENCHMARKED["credit"])
    assert (defaults["reward"], defaults["reward_shape"], defaults["credit"]) == chosen
    assert SIZES[False]["labels_per_program"] == BENCHMARKED["labels_per_program"]
    args = build_parser(argparse.ArgumentParser()).parse_args([])
    assert (args.reward, args.reward_shape, args.credit) == chosen
    with pytest.raises(SystemExit):
        main(["demo", "--reward-shape", "mean"])
    assert "invalid choice: 'mean'" in capsys.readouterr().err
