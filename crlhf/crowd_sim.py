"""``crlhf crowd``: Algorithm 1 without the model. A noisy crowd of 30 simulated annotators
is calibrated on gold programs and labels random programs; the crowd model
(:class:`crlhf.crowd.CrowdModel`, each reliability rule) turns the labels into posteriors,
scores and reliabilities p_i, compared with majority vote and Dawid-Skene on line accuracy and
score error, and with the annotators' true accuracies (Spearman). Writes
``crowd_simulation.json`` and a p_i plot (``reliabilities.png``/``.json``) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DESCRIPTION", "QUICK_PROGRAMS", "spearman", "crowd_simulation", "build_parser", "run"]

DESCRIPTION = ("Algorithm 1 without the model: a noisy crowd of 30 is calibrated on gold programs and labels "
               "random programs; the crowd model turns the labels into posteriors, scores and reliabilities p_i, "
               "compared with majority vote and Dawid-Skene. Writes crowd_simulation.json and a p_i plot to --out.")
QUICK_PROGRAMS = 300
"""At most this many programs with ``--quick``."""


def spearman(x, y) -> float | None:
    """Spearman's rank correlation of two equally long sequences (average ranks for ties); None
    when either is constant (or shorter than 2), where it is undefined."""
    a, b = pd.Series(np.asarray(x, dtype=float)), pd.Series(np.asarray(y, dtype=float))
    if len(a) != len(b):
        raise ValueError(f"x and y differ in length: {len(a)} and {len(b)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("x and y must be finite")
    ra, rb = a.rank().to_numpy(), b.rank().to_numpy()
    if len(a) < 2 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def crowd_simulation(out: Path, seed: int = 0, n_programs: int = 2000, n_lines: int = 8,
                     per_program: int = 10, n_gold: int = 5) -> dict:
    """Algorithm 1 without the model: a noisy crowd of 30 is calibrated on gold programs, labels
    ``n_programs`` programs (``per_program`` annotators each), and the crowd model turns the
    labels into posteriors, scores and reliabilities. Writes a table, a p_i plot and JSON."""
    from .aggregators import dawid_skene, majority_vote
    from .crowd import RELIABILITY_METHODS, CrowdModel
    from .plots import plot_reliabilities, save
    from .reward import program_scores
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

    def shares(frame, column) -> np.ndarray:  # s = c/k of per-line +1/-1 verdicts, by crlhf.reward, by program
        lines = pd.DataFrame({"program_id": frame["program_id"].to_numpy(), "line": frame["line"].to_numpy(),
                              "posterior": (frame[column].to_numpy() > 0).astype(np.float64), "counted": True})
        return program_scores(lines).sort_values("program_id", kind="stable")["score"].to_numpy()

    true_s = shares(truth, "truth")
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
        rows.append({"aggregator": name, "line accuracy": line_accuracy(frame, "label"),
                     "score MAE": float(np.abs(shares(frame, "label") - true_s).mean())})
    table = pd.DataFrame(rows)

    people = crowd.summary()[["kind", "accuracy"]].rename(columns={"accuracy": "true accuracy"})
    for method in RELIABILITY_METHODS:
        people[f"p_i ({method})"] = models[method].reliabilities
    known = people["true accuracy"].notna()
    rho = {m: spearman(people.loc[known, "true accuracy"], people.loc[known, f"p_i ({m})"])
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
        print("\nSpearman(true accuracy, p_i): "
              + ", ".join(f"{m} {'n/a' if r is None else f'{r:.3f}'}" for m, r in rho.items())
              + " (lazy annotator left out: it has no single accuracy)\n")
        print(table.to_string(index=False))
    print(f"\nwrote {png} and {out / 'crowd_simulation.json'}")
    return summary


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``crlhf crowd`` (added to ``parser`` if given, e.g. a subparser)."""
    p = parser or argparse.ArgumentParser(prog="crlhf crowd")
    p.description = DESCRIPTION
    p.add_argument("--out", type=Path, default=Path("runs") / "crowd", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the crowd and the programs (default: %(default)s)")
    p.add_argument("--programs", type=int, default=2000, help="programs to label (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help=f"at most {QUICK_PROGRAMS} programs")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``crlhf crowd`` from options parsed by :func:`build_parser`; returns the exit status."""
    from .cli import CommandError

    if args.programs < 1:
        raise CommandError(f"--programs: expected an integer >= 1, got {args.programs}")
    crowd_simulation(args.out, seed=args.seed,
                     n_programs=min(args.programs, QUICK_PROGRAMS) if args.quick else args.programs)
    return 0
