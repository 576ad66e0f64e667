"""How CrowdModel's parameters fare on simulated crowds: the measurement behind its defaults.

Crowds of 30 (``crlhf.simulate``): ``paper_crowd`` and ``noisy_crowd`` (symmetric annotators,
70% of lines correct), and two code-shaped crowds whose annotators are not symmetric, with
85% of lines correct: ``code_crowd`` (12 reliable, 6 lazy, 3 harsh, 9 lenient class-biased)
and ``lazy_harsh`` (``make_crowd``: 20 reliable in [0.6, 0.95], 5 lazy, 5 harsh at 0.6/0.95).

1. Sweep: for each setting, every annotator answers 5 gold programs, then 1,000 programs of 8
   lines are labelled by k = 5 or 10 annotators each; the online consensus (decided when each
   program arrives) is scored against the line truth, and each program's score s against its
   true share of correct lines. Baseline in the same run: majority vote on the same labels.
2. Targets: the protocol of ``benchmarks/aggregation.py`` on the same crowds: the first 0 / 5 /
   10% of the 1,000 programs are gold (their truth given, labelled by their k annotators like
   the rest); every row is scored on the last 90% of the programs, the same lines for all.
   Batch baselines on all labels: majority vote, Dawid-Skene (two coins), and Dawid-Skene
   given the same 10% gold. Targets: each rule with 10% gold >= Dawid-Skene, without gold >=
   majority vote.

Real crowd data: ``benchmarks/aggregation.py`` (and its ``--sweep``).

    python benchmarks/crowd_defaults.py [--seeds 3] [--json PATH] [--no-sweep]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

from crlhf.aggregators import dawid_skene, majority_vote
from crlhf.crowd import CrowdModel
from crlhf.simulate import code_crowd, make_crowd, noisy_crowd, paper_crowd, random_truths

GRID = (
    [{"reliability": "eq8", "lam": lam, "nu": nu, "leave_one_out": loo}
     for lam in (0.001, 0.002, 0.005, 0.02, 0.05) for nu in (0.55, 0.6, 0.7) for loo in (True, False)]
    + [{"reliability": "beta", "nu": nu, "beta_strength": bs} for nu in (0.6, 0.7) for bs in (2, 10, 30)]
    + [{"reliability": "eq8", "lam": 0.002, "nu": 0.6, "gold_certainty": gc} for gc in (0.9, 0.999)]
    + [{"reliability": "two_coin", "nu": nu, "beta_strength": bs, "prior_strength": ps}
       for nu in (0.6, 0.7) for bs in (2, 10) for ps in (10, 100)]
    + [{"reliability": "two_coin", "prior_floor": pf} for pf in (0.05, 0.2)]
)
RULES = ("eq8", "beta", "two_coin")
GOLD_PERCENT = (0, 5, 10)


def lazy_harsh(n: int = 30, seed=0):
    """20 reliable annotators (accuracy uniform in [0.6, 0.95]), 5 lazy, 5 harsh (0.6 / 0.95)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    return make_crowd(rng.uniform(0.6, 0.95, n - 10).tolist(), lazy_annotators=5, harsh_annotators=5, seed=seed)


CROWDS = ((paper_crowd, 0.7), (noisy_crowd, 0.7), (code_crowd, 0.85), (lazy_harsh, 0.85))


def datasets(seeds: int, n_programs: int = 1000, n_lines: int = 8):
    for make, correct_rate in CROWDS:
        for seed in range(seeds):
            for k in (5, 10):
                crowd = make(30, seed=seed)
                gold_log, gold = crowd.gold_log(n_gold=5, lines=n_lines, seed=seed + 100)
                truths = random_truths(n_programs, n_lines, correct_rate, seed=seed + 200)
                yield make.__name__, k, gold_log, gold, truths, crowd.label_programs(truths, k=k)


def evaluate(params: dict, data) -> dict:
    out = {}
    for name, k, gold_log, gold, truths, labels in data:
        model = CrowdModel(**params)
        model.replay(gold_log, gold=gold)
        result = model.replay(labels)
        consensus = result.lines.consensus.to_numpy().reshape(truths.shape)
        mae = np.abs(result.scores.score.to_numpy() - (truths > 0).mean(axis=1)).mean()
        out.setdefault((name, k), []).append(((consensus == truths).mean(), mae))
    return {key: np.mean(v, axis=0) for key, v in out.items()}


def run_sweep(data, seeds: int) -> list:
    cells = sorted({(d[0], d[1]) for d in data})
    baseline = {}
    for name, k, _, _, truths, labels in data:
        mv = majority_vote(labels).label.to_numpy().reshape(truths.shape)
        baseline.setdefault((name, k), []).append((mv == truths).mean())
    rows = [["majority vote (baseline)", *[np.mean(baseline[c]) for c in cells],
             np.mean([np.mean(v) for v in baseline.values()]), None]]
    records = [{"setting": "majority vote", **{f"{n} k={k}": np.mean(baseline[(n, k)])
                                               for n, k in cells}}]
    for params in GRID + [{}]:
        res = evaluate(params, data)
        acc = [res[c][0] for c in cells]
        label = ", ".join(f"{k}={v}" for k, v in params.items()) or "CrowdModel() defaults"
        rows.append([label, *acc, float(np.mean(acc)), float(np.mean([res[c][1] for c in cells]))])
        records.append({"setting": params, **{f"{n} k={k}": a for (n, k), a in zip(cells, acc, strict=True)},
                        "mean accuracy": float(np.mean(acc)),
                        "mean score MAE": float(np.mean([res[c][1] for c in cells]))})
    header = ["setting", *[f"{n} k={k}" for n, k in cells], "mean acc", "score MAE"]
    rows = [rows[0]] + sorted(rows[1:], key=lambda r: -r[-2])
    print_table(f"Online consensus line accuracy, simulated crowds of 30, {seeds} seeds "
                "(5 gold programs each, then 1,000 programs of 8 lines)", header, rows)
    return records


def run_targets(data, params: dict) -> dict:
    """The aggregation.py protocol on simulated crowds: gold 0/5/10% of the programs first."""
    per = {}
    for name, k, _, _, truths, labels in data:
        n_prog = truths.shape[0]
        n_eval_from = int(round(n_prog * max(GOLD_PERCENT) / 100))
        ev = slice(n_eval_from, None)

        def acc(pred):
            return float((pred.reshape(truths.shape)[ev] == truths[ev]).mean())  # noqa: B023 (used in this pass)

        cell = per.setdefault((name, k), {})
        cell.setdefault("majority", []).append(acc(majority_vote(labels).label.to_numpy()))
        cell.setdefault("dawid_skene", []).append(acc(dawid_skene(labels).label.to_numpy()))
        n_gold = int(round(n_prog * 10 / 100))
        gold_frame = pd.DataFrame({"program_id": np.repeat(np.arange(n_gold), truths.shape[1]),
                                   "line": np.tile(np.arange(truths.shape[1]), n_gold),
                                   "label": truths[:n_gold].ravel()})
        cell.setdefault("dawid_skene_gold10", []).append(acc(dawid_skene(labels, gold=gold_frame).label.to_numpy()))
        for rule in RULES:
            for percent in GOLD_PERCENT:
                n_gold = int(round(n_prog * percent / 100))
                gold = {j: truths[j] for j in range(n_gold)}
                model = CrowdModel(**{**params, "reliability": rule}).add_annotators(pd.unique(labels.annotator))
                lines = model.replay(labels, gold=gold or None).lines
                cell.setdefault(f"bayes_{rule}_gold{percent}", []).append(acc(lines.consensus.to_numpy()))
    cells = sorted(per)
    keys = ["majority", "dawid_skene", "dawid_skene_gold10"] + [f"bayes_{r}_gold{p}" for r in RULES
                                                                 for p in GOLD_PERCENT]
    rows = [[key, *[float(np.mean(per[c][key])) for c in cells]] for key in keys]
    print_table("Targets on simulated crowds: online line accuracy on the last 90% of 1,000 programs "
                f"(gold = the first 0/5/10%; mean of {len(per[cells[0]]['majority'])} seeds)",
                ["method", *[f"{n} k={k}" for n, k in cells]], rows)
    out = {f"{n} k={k}": {key: float(np.mean(per[(n, k)][key])) for key in keys} for n, k in cells}
    for rule in RULES:
        met_ds = [c for c, v in out.items() if v[f"bayes_{rule}_gold10"] >= v["dawid_skene"]]
        met_mv = [c for c, v in out.items() if v[f"bayes_{rule}_gold0"] >= v["majority"]]
        print(f"{rule}: 10% gold >= Dawid-Skene on {len(met_ds)}/{len(out)} cells; "
              f"no gold >= majority vote on {len(met_mv)}/{len(out)} cells"
              + ("" if len(met_ds) == len(out) else
                 f" (DS missed on {sorted(set(out) - set(met_ds))})")
              + ("" if len(met_mv) == len(out) else f" (MV missed on {sorted(set(out) - set(met_mv))})"))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-sweep", action="store_true", help="only the targets table")
    args = parser.parse_args(argv)
    data = list(datasets(args.seeds))
    result = {}
    if not args.no_sweep:
        result["results"] = pd.DataFrame(run_sweep(data, args.seeds)).to_dict(orient="records")
    result["targets"] = run_targets(data, {})
    default = CrowdModel()
    print(f"\ncurrent defaults: reliability={default.reliability!r}, nu={default.nu}, "
          f"lam={default.lam}, beta_strength={default.beta_strength}, prior_strength={default.prior_strength}, "
          f"prior_floor={default.prior_floor}, gold_certainty={default.gold_certainty}, "
          f"p_min={default.p_min}, p_max={default.p_max}, leave_one_out={default.leave_one_out}")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
