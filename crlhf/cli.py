"""The ``crlhf`` command (its help texts are plain text: :data:`DESCRIPTION` and each option's ``help``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def crowd_simulation(out: Path, seed: int = 0, n_programs: int = 2000, n_lines: int = 8,
                     per_program: int = 10, n_gold: int = 5) -> dict:
    """Algorithm 1 without the model: a noisy crowd of 30 is calibrated on gold programs, labels
    ``n_programs`` programs (``per_program`` annotators each), and the crowd model turns the
    labels into posteriors, scores and reliabilities. Writes a table, a p_i plot and JSON."""
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    from .aggregators import dawid_skene, majority_vote
    from .crowd import RELIABILITY_METHODS, CrowdModel
    from .plots import plot_reliabilities, save
    from .simulate import noisy_crowd, random_truths

    crowd = noisy_crowd(30, seed=seed)
    gold_log, gold = crowd.gold_log(n_gold=n_gold, lines=n_lines)
    truths = random_truths(n_programs, n_lines, seed=seed + 1)
    labels = crowd.label_programs(truths, k=per_program)
    log = pd.concat([gold_log, labels], ignore_index=True)
    truth = pd.DataFrame({"program_id": np.repeat(np.arange(n_programs), n_lines),
                          "line": np.tile(np.arange(n_lines), n_programs),
                          "truth": truths.ravel()})

    def line_accuracy(frame, column):
        merged = truth.merge(frame, on=["program_id", "line"])
        return float((merged[column] == merged["truth"]).mean())

    true_s = (truths > 0).mean(axis=1)
    rows, models = [], {}
    for method in RELIABILITY_METHODS:
        model = CrowdModel(reliability=method)
        result = model.replay(log, gold=gold)
        models[method] = model
        ordinary = result.lines[~result.lines.program_id.astype(str).str.startswith("gold-")]
        ordinary = ordinary.astype({"program_id": np.int64})
        scores = result.scores[~result.scores.gold].astype({"program_id": np.int64})
        mae = float(np.abs(scores.sort_values("program_id").score.to_numpy() - true_s).mean())
        rows.append({"aggregator": f"crlhf online Bayes ({method})",
                     "line accuracy": line_accuracy(ordinary, "consensus"), "score MAE": mae})
    for name, frame in (("majority vote", majority_vote(labels)), ("Dawid-Skene", dawid_skene(labels))):
        s = frame.assign(ok=frame.label > 0).groupby("program_id").ok.mean().sort_index()
        rows.append({"aggregator": name, "line accuracy": line_accuracy(frame, "label"),
                     "score MAE": float(np.abs(s.to_numpy() - true_s).mean())})
    table = pd.DataFrame(rows)

    people = crowd.summary()[["kind", "accuracy"]].rename(columns={"accuracy": "true accuracy"})
    for method in RELIABILITY_METHODS:
        people[f"p_i ({method})"] = models[method].reliabilities
    known = people["true accuracy"].notna()
    rho = {m: float(spearmanr(people.loc[known, "true accuracy"], people.loc[known, f"p_i ({m})"]).statistic)
           for m in RELIABILITY_METHODS}

    out.mkdir(parents=True, exist_ok=True)
    history = models["eq8"].history
    fig = plot_reliabilities(history, truth=people["true accuracy"].dropna(), kinds=people["kind"],
                             calibration_end=history.loc[history.program_id.isin(list(gold)), "step"].max(),
                             p_max=models["eq8"].p_max, title="p_i by eq (8), gold calibration then ordinary programs")
    png, _ = save(fig, out / "reliabilities", models["eq8"].history)
    summary = {
        "seed": seed, "programs": n_programs, "lines": n_lines, "labels": int(len(labels)),
        "aggregators": table.to_dict(orient="records"),
        "annotators": people.reset_index().to_dict(orient="records"),
        "spearman_true_accuracy_vs_p": rho,
    }
    (out / "crowd_simulation.json").write_text(json.dumps(summary, indent=1, default=str))

    with pd.option_context("display.width", 120, "display.max_rows", 60,
                           "display.float_format", "{:.3f}".format):
        print(f"{crowd!r}: {n_gold} gold programs each, then {n_programs} programs of "
              f"{n_lines} lines, {per_program} annotators each ({len(labels):,} labels)\n")
        print(people.sort_values("true accuracy", na_position="first").to_string())
        print("\nSpearman(true accuracy, p_i): " + ", ".join(f"{m} {r:.3f}" for m, r in rho.items())
              + " (lazy annotator left out: it has no single accuracy)\n")
        print(table.to_string(index=False))
    print(f"\nwrote {png} and {out / 'crowd_simulation.json'}")
    return summary


DESCRIPTION = ("crlhf: crowd-sourced RLHF for code generation. A code model writes programs, a crowd "
               "labels each line correct or wrong, Bayesian inference with learned annotator reliabilities "
               "p_i turns the labels into a score per program, and PPO trains on the scores. "
               "Run 'crlhf COMMAND --help' for a command's options.")

DEMO_DESCRIPTION = ("Evaluate the packaged tiny coder on held-out minicode tasks (pass@1 and pass@10 at T = "
                    "0.2, 0.6, 0.8), run cRLHF with a simulated noisy crowd of 30 annotators, evaluate the "
                    "trained policy on the same tasks, and write report.md (pass@k with 95% intervals, "
                    "baseline against w/cRLHF, the gain, per-round metrics), results.json and PNG plots "
                    "(pass@k, reward and KL per round, p_i of the crowd) to --out. With --seeds, one run "
                    "per seed in --out/seed-N and the mean and standard deviation over seeds in --out.")


def add_demo_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``crlhf demo``."""
    from .reward import CREDITS, SHAPES, SOURCES

    p.add_argument("--out", type=Path, default=Path("runs") / "demo", metavar="DIR",
                   help="folder for report.md, results.json, the plots and the run (default: %(default)s)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0,
                       help="seed of the crowd, the prompts' order, PPO and sampling (default: %(default)s)")
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                       help="several seeds, e.g. --seeds 0 1 2: one run each, and mean +/- std over seeds "
                            "(default: one seed, --seed)")
    p.add_argument("--reward", default="bayes", choices=list(SOURCES),
                   help="where each program's score comes from: the crowd through the Bayesian model (bayes), "
                        "a majority vote, a single annotator, Dawid-Skene, the true line labels (oracle) or the "
                        "unit tests (tests) (default: %(default)s)")
    p.add_argument("--reward-shape", default="all_correct", choices=list(SHAPES),
                   help="all_correct: 1 if every generated line is judged correct (the reward benchmark's choice); "
                        "share: the paper's s = c/k, the share of lines judged correct; product: P(all lines "
                        "correct) (default: %(default)s)")
    p.add_argument("--credit", default="sequence", choices=list(CREDITS),
                   help="how the score reaches the tokens: all of it at the last token (sequence), a share at "
                        "each line's last token (line_end), or at the last token with penalties put on the lines "
                        "judged wrong (blame) (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of a few seconds (6 tasks, 2 rounds) instead of the full one "
                        "(200 tasks, 30 rounds, about 10 minutes on 2 CPU cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crlhf", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = add_demo_arguments(sub.add_parser(
        "demo", help="the main job: evaluate the tiny coder, run cRLHF with a simulated crowd, evaluate again, "
                     "write a report", description=DEMO_DESCRIPTION))
    p = sub.add_parser("crowd", help="simulate a crowd: calibration, labels, posteriors, p_i",
                       description="Algorithm 1 without the model: a noisy crowd of 30 is calibrated on gold "
                                   "programs and labels random programs; the crowd model turns the labels into "
                                   "posteriors, scores and reliabilities p_i, compared with majority vote and "
                                   "Dawid-Skene. Writes crowd_simulation.json and a p_i plot to --out.")
    p.add_argument("--out", type=Path, default=Path("runs") / "crowd", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the crowd and the programs (default: %(default)s)")
    p.add_argument("--programs", type=int, default=2000, help="programs to label (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="at most 300 programs")
    from . import classroom, eval_run, round_cmd, sft, tiny, train_cmd

    eval_run.build_parser(sub.add_parser("eval", help="pass@k of a model on HumanEval/MBPP (Table I), resumable"))
    round_cmd.build_parser(sub.add_parser("round", help="put a round of sampled programs (and gold) into a "
                                                        "class's label store, for crlhf classroom"))
    sft.add_arguments(sub.add_parser("sft", help="fine-tune a causal LM on text-to-code pairs"))
    train_cmd.build_parser(sub.add_parser("train", help="the paper's experiment from a TOML config: SFT, baseline, "
                                                        "cRLHF rounds, evaluation after, report (resumable)"))
    classroom.build_parser(sub.add_parser("classroom", help="serve the annotation app to a class (Voila)"))
    tiny_sub = sub.add_parser("tiny", help="the embedded tiny coder").add_subparsers(dest="tiny_command",
                                                                                   required=True)
    tiny.add_train_arguments(tiny_sub.add_parser("train", help="train the tiny coder from scratch"))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.command == "eval":
        return eval_run.main(argv[argv.index("eval") + 1:])
    if args.command == "round":
        return round_cmd.main(argv[argv.index("round") + 1:])
    if args.command == "sft":
        return sft.main(argv[argv.index("sft") + 1:])
    if args.command == "train":
        return train_cmd.main(argv[argv.index("train") + 1:])
    if args.command == "classroom":
        return classroom.serve(args)
    if args.command == "tiny":
        tiny.train_from_args(args)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        option, seeds = ("--seeds", args.seeds) if args.seeds is not None else ("--seed", [args.seed])
        if len(set(seeds)) != len(seeds) or min(seeds) < 0:
            demo.error(f"{option}: seeds are distinct non-negative integers, got {' '.join(map(str, seeds))}")
        run_demo(args.out, quick=args.quick, seed=seeds if len(seeds) > 1 else seeds[0], reward=args.reward,
                 reward_shape=args.reward_shape, credit=args.credit)
    if args.command == "crowd":
        crowd_simulation(args.out, seed=args.seed,
                         n_programs=min(args.programs, 300) if args.quick else args.programs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
