"""How CrowdModel's parameters fare on simulated crowds: the measurement behind its defaults.

For each setting, a crowd (``paper_crowd`` or ``noisy_crowd``, 30 annotators) answers 5 gold
programs each, then labels 1,000 programs of 8 lines with k = 5 or 10 annotators per program;
the online consensus (decided when each program arrives) is scored against the line truth,
and each program's score s against its true share of correct lines. Baseline in the same run:
majority vote on the same labels. Real crowd data: ``benchmarks/aggregation.py --sweep``.

    python benchmarks/crowd_defaults.py [--seeds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json  # noqa: E402

from crlhf.aggregators import majority_vote  # noqa: E402
from crlhf.crowd import CrowdModel  # noqa: E402
from crlhf.simulate import noisy_crowd, paper_crowd, random_truths  # noqa: E402

GRID = (
    [{"reliability": "eq8", "lam": lam, "nu": nu, "leave_one_out": loo}
     for lam in (0.001, 0.002, 0.005, 0.02, 0.05) for nu in (0.55, 0.6, 0.7) for loo in (True, False)]
    + [{"reliability": "beta", "nu": nu, "beta_strength": bs} for nu in (0.6, 0.7) for bs in (2, 10, 30)]
    + [{"reliability": "eq8", "lam": 0.002, "nu": 0.6, "gold_certainty": gc} for gc in (0.9, 0.999)]
)


def datasets(seeds: int, n_programs: int = 1000, n_lines: int = 8):
    for make in (paper_crowd, noisy_crowd):
        for seed in range(seeds):
            for k in (5, 10):
                crowd = make(30, seed=seed)
                gold_log, gold = crowd.gold_log(n_gold=5, lines=n_lines, seed=seed + 100)
                truths = random_truths(n_programs, n_lines, seed=seed + 200)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    data = list(datasets(args.seeds))
    cells = sorted({(d[0], d[1]) for d in data})

    baseline = {}
    for name, k, _, _, truths, labels in data:
        mv = majority_vote(labels).label.to_numpy().reshape(truths.shape)
        baseline.setdefault((name, k), []).append((mv == truths).mean())
    rows = [["majority vote (baseline)", *[np.mean(baseline[c]) for c in cells],
             np.mean([np.mean(v) for v in baseline.values()]), None]]
    records = [{"setting": "majority vote", **{f"{n} k={k}": np.mean(baseline[(n, k)])
                                               for n, k in cells}}]
    for params in GRID:
        res = evaluate(params, data)
        acc = [res[c][0] for c in cells]
        label = ", ".join(f"{k}={v}" for k, v in params.items())
        rows.append([label, *acc, float(np.mean(acc)), float(np.mean([res[c][1] for c in cells]))])
        records.append({"setting": params, **{f"{n} k={k}": a for (n, k), a in zip(cells, acc)},
                        "mean accuracy": float(np.mean(acc)),
                        "mean score MAE": float(np.mean([res[c][1] for c in cells]))})
    header = ["setting", *[f"{n} k={k}" for n, k in cells], "mean acc", "score MAE"]
    rows = [rows[0]] + sorted(rows[1:], key=lambda r: -r[-2])
    print_table(f"Online consensus line accuracy, simulated crowds of 30, {args.seeds} seeds "
                "(5 gold programs each, then 1,000 programs of 8 lines)", header, rows)
    default = CrowdModel()
    print(f"\ncurrent defaults: reliability={default.reliability!r}, nu={default.nu}, "
          f"lam={default.lam}, gold_certainty={default.gold_certainty}, "
          f"p_min={default.p_min}, p_max={default.p_max}, leave_one_out={default.leave_one_out}")
    if args.json:
        write_json(args.json, {"results": pd.DataFrame(records).to_dict(orient="records")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
