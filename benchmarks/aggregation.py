"""Label aggregation: accuracy on real crowd data, speed on a synthetic crowd, and a parameter sweep.

    python benchmarks/aggregation.py [--data FILE]... [--json PATH] [--quick] [--model JSON] [--no-speed]
    python benchmarks/aggregation.py --sweep [--jobs N] [--data FILE]... [--json PATH]

``--model '{"reliability": "beta"}'`` runs the ``bayes_*`` rows with other CrowdModel settings
(the ``bayes_eq8_*``, ``bayes_beta_*`` and ``bayes_two_coin_*`` rows run the same settings under
each reliability rule);
``--sweep`` (about 8 min on one core) ranks some 240 settings by the same protocol.

Accuracy protocol (each item of a crowd TSV is a program with one line):
- 5 random item orders (seeds 0-4). In each, the first 5% / 10% of the order are the gold items
  of the 5% / 10% runs; the evaluation items are the other 90% of that order, the same items for
  every row of the table, so gold items (whose truth a method is given) never count.
- ``bayes_goldG``: ``CrowdModel(**model).replay`` over the items in that order, the gold items
  first (Algorithm 1 calibrates annotators on gold before ordinary programs; here an annotator is
  calibrated only on the gold items it happened to label). Each item is scored with its
  consensus at ingestion time, i.e. with the reliabilities learnt from the items before it.
  ``bayes_goldG_twopass`` re-scores every item with the final reliabilities after the replay
  (``CrowdModel.assess_log``: eq 7, or its two-coin form with the learnt prior).
- Batch baselines see all labels at once: ``majority`` (ties -> wrong), ``dawid_skene`` (two
  coins), ``dawid_skene_one_coin`` (one coin, prior fixed at 1/2: eq 7 with p_i fitted in
  batch), ``dawid_skene_gold10`` (given the same 10% gold as ``bayes_gold10``), a random
  ``single_annotator``, and crowd-kit's ``MajorityVote`` (ties go to the label it lists first)
  and ``DawidSkene``. ``*_all`` keys: accuracy on all items (comparable to published numbers).
An exact tie of the online posterior (1/2) counts as "wrong", like ``s = c/k`` with tau = 0.5.

Speed: a seeded synthetic crowd of 100k programs x 10 lines, each program labelled by 10 of 30
annotators (10M labels); ``--quick`` divides every size by 10.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from _common import SHARED_DATA, best_of, print_table, write_json
from crlhf.aggregators import dawid_skene, majority_vote, read_crowd_tsv, single_annotator
from crlhf.bayes import expit, logit, posterior
from crlhf.crowd import CrowdModel

DEFAULT_DATA = [SHARED_DATA / "crowd" / "rte.tsv", SHARED_DATA / "crowd" / "temp.tsv"]
GOLD_PERCENT = (0, 5, 10)
PUBLISHED_DS = {"rte": 0.928, "temp": 0.942}  # crowd-kit 1.4.2 DawidSkene, all items (data/README.md)


def _crowdkit():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from crowdkit.aggregation import DawidSkene, MajorityVote
    except ImportError:
        return None
    return MajorityVote, DawidSkene


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():  # crowd-kit 1.4.2 warns on every pandas 3 call
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------- real crowd data
@dataclass
class Crowd:
    name: str
    labels: pd.DataFrame  # program_id, line, annotator, label; one row per (item, annotator)
    items: pd.Index  # program ids
    truth: np.ndarray  # +1/-1 per item
    item: np.ndarray  # item index of each label
    ann: np.ndarray  # annotator index of each label
    annotators: pd.Index
    lab: np.ndarray  # +1/-1 per label
    orders: list  # one item permutation per seed

    def n_gold(self, percent: int) -> int:
        return int(round(len(self.items) * percent / 100))

    def eval_mask(self, order) -> np.ndarray:
        mask = np.ones(len(self.items), dtype=bool)
        mask[order[:self.n_gold(max(GOLD_PERCENT))]] = False
        return mask

    def predictions(self, frame: pd.DataFrame) -> np.ndarray:
        """+1/-1 per item from an aggregator's output frame."""
        pred = np.full(len(self.items), -1)
        pred[self.items.get_indexer(frame["program_id"])] = frame["label"].to_numpy()
        return pred


def load_crowd(path: Path, seeds) -> Crowd:
    labels, gold = read_crowd_tsv(path)
    labels = labels.drop_duplicates(["program_id", "line", "annotator"], keep="last")
    labels = labels.reset_index(drop=True)
    items = pd.Index(gold["program_id"])
    ann, annotators = pd.factorize(labels["annotator"])
    orders = [np.random.default_rng(seed).permutation(len(items)) for seed in seeds]
    return Crowd(path.stem, labels, items, gold["label"].to_numpy(), items.get_indexer(labels["program_id"]),
                 ann, pd.Index(annotators), labels["label"].to_numpy(), orders)


def replay(crowd: Crowd, params: dict, order: np.ndarray, percent: int):
    """Online predictions (+1/-1 per item, at ingestion) and two-pass ones (final reliabilities)."""
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    log = crowd.labels.assign(order=rank[crowd.item])
    gold = {crowd.items[i]: crowd.truth[i:i + 1] for i in order[:crowd.n_gold(percent)]}
    model = CrowdModel(**params)
    lines = model.replay(log, gold=gold).lines
    online = np.full(len(crowd.items), -1)
    online[crowd.items.get_indexer(lines["program_id"])] = np.where(lines["consensus"] > 0, 1, -1)
    final = model.assess_log(log)
    twopass = np.full(len(crowd.items), -1)
    twopass[crowd.items.get_indexer(final["program_id"])] = np.where(final["consensus"] > 0, 1, -1)
    return online, twopass


def evaluate_model(crowd: Crowd, params: dict, prefix: str = "bayes") -> dict:
    """Per gold percentage: online and two-pass accuracy on the evaluation items, per seed."""
    out = {}
    for percent in GOLD_PERCENT:
        online, twopass = [], []
        for order in crowd.orders:
            mask = crowd.eval_mask(order)
            on, two = replay(crowd, params, order, percent)
            online.append(np.mean(on[mask] == crowd.truth[mask]))
            twopass.append(np.mean(two[mask] == crowd.truth[mask]))
        out[f"{prefix}_gold{percent}"] = np.array(online)
        out[f"{prefix}_gold{percent}_twopass"] = np.array(twopass)
    return out


def accuracy_rows(crowd: Crowd, params: dict, crowdkit) -> tuple[dict, dict]:
    """Per-seed accuracies on the evaluation items, and accuracies on all items."""
    per_seed = evaluate_model(crowd, params)
    rule = {**_DEFAULTS, **params}["reliability"]
    for other in RULES:  # one row set per rule, whatever the default (the default's = the bayes_* rows)
        if other == rule:
            per_seed.update({f"bayes_{other}" + k[len("bayes"):]: v for k, v in list(per_seed.items())})
        else:
            per_seed.update(evaluate_model(crowd, {**params, "reliability": other}, f"bayes_{other}"))
    fixed = {  # batch methods whose output does not depend on the item order
        "majority": majority_vote(crowd.labels),
        "dawid_skene": dawid_skene(crowd.labels),
        "dawid_skene_one_coin": dawid_skene(crowd.labels, coins="one", prior=0.5),
    }
    preds = {k: crowd.predictions(v) for k, v in fixed.items()}
    if crowdkit is not None:
        MajorityVote, DawidSkene = crowdkit
        data = crowd.labels.rename(columns={"program_id": "task", "annotator": "worker"})
        data = data[["task", "worker", "label"]]
        for key, model in (("crowdkit_majority", MajorityVote()),
                           ("crowdkit_dawid_skene", DawidSkene(n_iter=100))):
            series = _quiet(model.fit_predict, data)
            preds[key] = crowd.predictions(pd.DataFrame({"program_id": series.index,
                                                         "label": series.to_numpy()}))
    all_items = {f"{k}_all": float(np.mean(p == crowd.truth)) for k, p in preds.items()}
    for key, pred in preds.items():
        per_seed[key] = np.array([np.mean(pred[m] == crowd.truth[m])
                                  for m in map(crowd.eval_mask, crowd.orders)])
    single, ds_gold = [], []
    for seed, order in enumerate(crowd.orders):
        mask = crowd.eval_mask(order)
        single.append(np.mean(crowd.predictions(single_annotator(crowd.labels, seed=seed))[mask]
                              == crowd.truth[mask]))
        g = order[:crowd.n_gold(10)]
        gold = pd.DataFrame({"program_id": crowd.items[g], "line": 0, "label": crowd.truth[g]})
        ds_gold.append(np.mean(crowd.predictions(dawid_skene(crowd.labels, gold=gold))[mask]
                               == crowd.truth[mask]))
    per_seed["dawid_skene_gold10"] = np.array(ds_gold)
    per_seed["single_annotator"] = np.array(single)
    return per_seed, all_items


RULES = ("eq8", "beta", "two_coin")

ROW_NOTES = {
    "bayes_gold0": "online CrowdModel, no gold",
    "bayes_gold5": "online CrowdModel, 5% gold first",
    "bayes_gold10": "online CrowdModel, 10% gold first",
    "bayes_gold0_twopass": "  same, re-scored with final p_i",
    "bayes_gold5_twopass": "  same, re-scored with final p_i",
    "bayes_gold10_twopass": "  same, re-scored with final p_i",
    "bayes_beta_gold0": "same model, reliability='beta', no gold",
    "bayes_beta_gold5": "same model, reliability='beta', 5% gold",
    "bayes_beta_gold10": "same model, reliability='beta', 10% gold",
    "bayes_beta_gold0_twopass": "  same, re-scored with final p_i",
    "bayes_beta_gold5_twopass": "  same, re-scored with final p_i",
    "bayes_beta_gold10_twopass": "  same, re-scored with final p_i",
    "bayes_two_coin_gold0": "same model, reliability='two_coin', no gold",
    "bayes_two_coin_gold5": "same model, reliability='two_coin', 5% gold",
    "bayes_two_coin_gold10": "same model, reliability='two_coin', 10% gold",
    "bayes_two_coin_gold0_twopass": "  same, re-scored with final coins",
    "bayes_two_coin_gold5_twopass": "  same, re-scored with final coins",
    "bayes_two_coin_gold10_twopass": "  same, re-scored with final coins",
    "bayes_eq8_gold0": "same model, reliability='eq8', no gold",
    "bayes_eq8_gold5": "same model, reliability='eq8', 5% gold",
    "bayes_eq8_gold10": "same model, reliability='eq8', 10% gold",
    "bayes_eq8_gold0_twopass": "  same, re-scored with final p_i",
    "bayes_eq8_gold5_twopass": "  same, re-scored with final p_i",
    "bayes_eq8_gold10_twopass": "  same, re-scored with final p_i",
    "majority": "crlhf majority_vote (tie -> -1)",
    "dawid_skene": "crlhf dawid_skene (two coins)",
    "dawid_skene_one_coin": "crlhf dawid_skene one coin, prior 1/2",
    "dawid_skene_gold10": "crlhf dawid_skene, 10% gold clamped",
    "single_annotator": "crlhf single_annotator (random)",
    "crowdkit_majority": "crowd-kit MajorityVote",
    "crowdkit_dawid_skene": "crowd-kit DawidSkene",
}


def run_accuracy(crowds, params, crowdkit) -> dict:
    results = {c.name: accuracy_rows(c, params, crowdkit) for c in crowds}
    keys = [k for k in ROW_NOTES if k in results[crowds[0].name][0]]
    header = ["method", "what"]
    for c in crowds:
        header += [f"{c.name} eval", "sd", f"{c.name} all"]
    rows = []
    for key in keys:
        row = [key, ROW_NOTES[key]]
        for c in crowds:
            per_seed, all_items = results[c.name]
            row += [float(per_seed[key].mean()), float(per_seed[key].std()), all_items.get(f"{key}_all")]
        rows.append(row)
    n_eval = ", ".join(f"{c.name} {int(c.eval_mask(c.orders[0]).sum())}/{len(c.items)}" for c in crowds)
    print_table(f"Accuracy against gold (eval = the non-gold 90% of each of {len(crowds[0].orders)} "
                f"item orders, same items for every row: {n_eval}; sd over orders; all = every item)",
                header, rows)
    print(f"CrowdModel parameters: {params or 'defaults'} (rule {({**_DEFAULTS, **params})['reliability']!r})")
    out = {}
    for c in crowds:
        per_seed, all_items = results[c.name]
        entry = {k: float(v.mean()) for k, v in per_seed.items()}
        entry.update({f"{k}_sd": float(v.std()) for k, v in per_seed.items()})
        entry.update(all_items)
        entry["n_eval_items"] = int(c.eval_mask(c.orders[0]).sum())
        entry["n_items"] = len(c.items)
        out[c.name] = entry
        print(f"\n{c.name}: targets")
        for prefix, name in (("bayes", "online Bayes"), ("bayes_eq8", "online Bayes (eq8)"),
                             ("bayes_beta", "online Bayes (beta)"), ("bayes_two_coin", "online Bayes (two_coin)")):
            if f"{prefix}_gold0" not in entry:
                continue
            _target(f"{name} without gold >= crlhf majority vote", entry[f"{prefix}_gold0"],
                    entry["majority"])
            _target(f"{name} with 10% gold >= crlhf Dawid-Skene (two coins, same items)",
                    entry[f"{prefix}_gold10"], entry["dawid_skene"])
            if "crowdkit_majority" in entry:
                _target(f"{name} without gold >= crowd-kit majority vote",
                        entry[f"{prefix}_gold0"], entry["crowdkit_majority"])
                _target(f"{name} with 10% gold >= crowd-kit Dawid-Skene (same items)",
                        entry[f"{prefix}_gold10"], entry["crowdkit_dawid_skene"])
            if c.name in PUBLISHED_DS:
                _target(f"{name} with 10% gold >= published Dawid-Skene (all items)",
                        entry[f"{prefix}_gold10"], PUBLISHED_DS[c.name])
    return out


def _target(text, ours, theirs):
    verdict = "met" if ours >= theirs else "NOT met"
    print(f"  {text}: {ours:.4f} vs {theirs:.4f} -> {verdict}")


# ---------------------------------------------------------------------------- sweep
def sweep_configs():
    """Stage 1: reliability rule x leave_one_out x nu x step (lam for eq8, beta_strength for beta)."""
    for rel, loo, nu in itertools.product(("eq8", "beta"), (True, False), (0.6, 0.7, 0.8, 0.9)):
        steps = ((0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5) if rel == "eq8"
                 else (0.5, 1, 2, 5, 10, 20, 50, 100))
        for step in steps:
            key = "lam" if rel == "eq8" else "beta_strength"
            yield {"reliability": rel, "leave_one_out": loo, "nu": nu, key: step}


BOUNDS = ((0.01, 0.99), (0.001, 0.999), (0.05, 0.95), (0.1, 0.9), (0.2, 0.8))
CERTAINTIES = (0.9, 0.95, 0.99, 0.999)


def _describe(params: dict) -> list:
    d = {**_DEFAULTS, **params}
    step = d["lam"] if d["reliability"] == "eq8" else d["beta_strength"]
    return [d["reliability"], "yes" if d["leave_one_out"] else "no", d["nu"],
            ("lam=" if d["reliability"] == "eq8" else "m=") + f"{step:g}",
            d["gold_certainty"], f"{d['p_min']:g}-{d['p_max']:g}"]


_DEFAULTS = {k: v.default for k, v in inspect.signature(CrowdModel).parameters.items()}


_SWEEP_CROWDS: list = []


def _evaluate_setting(params: dict) -> dict:
    per = {c.name: evaluate_model(c, params) for c in _SWEEP_CROWDS}
    online = {(n, p): per[n][f"bayes_gold{p}"] for n in per for p in GOLD_PERCENT}
    twopass = {(n, p): per[n][f"bayes_gold{p}_twopass"] for n in per for p in GOLD_PERCENT}
    return {"params": params, "online": online, "twopass": twopass,
            "mean": float(np.mean([v.mean() for v in online.values()])),
            "mean_twopass": float(np.mean([v.mean() for v in twopass.values()]))}


def run_sweep(crowds, jobs: int = 1) -> dict:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency of crlhf; this only guards odd environments
        def tqdm(x, **_):
            return x

    _SWEEP_CROWDS[:] = crowds
    pool = None
    if jobs > 1:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(jobs)

    def evaluate_all(settings, desc):
        it = pool.imap(_evaluate_setting, settings) if pool else map(_evaluate_setting, settings)
        return list(tqdm(it, total=len(settings), desc=desc, file=sys.stderr))

    results = [_evaluate_setting({})]
    stage1 = list(sweep_configs())
    results += evaluate_all(stage1, "sweep stage 1")
    top = sorted(results[1:], key=lambda r: -r["mean"])[:6]
    stage2 = []
    for r in top:
        for gc, (lo, hi) in itertools.product(CERTAINTIES, BOUNDS):
            params = {**r["params"], "gold_certainty": gc, "p_min": lo, "p_max": hi}
            if lo <= params["nu"] <= hi and (gc, lo, hi) != (0.99, 0.01, 0.99):
                stage2.append(params)
    results += evaluate_all(stage2, "sweep stage 2")
    if pool:
        pool.close()

    names = [c.name for c in crowds]
    header = ["rank", "rule", "loo", "nu", "step", "gold_cert", "p bounds"]
    header += [f"{n} g{p}" for n in names for p in GOLD_PERCENT] + ["mean", "2-pass mean"]

    def row(rank, r):
        return [rank, *_describe(r["params"])] + [float(r["online"][(n, p)].mean())
                                                  for n in names for p in GOLD_PERCENT] + [
            r["mean"], r["mean_twopass"]]

    ranked = sorted(results, key=lambda r: -r["mean"])
    default_rank = next(i for i, r in enumerate(ranked, 1) if r["params"] == {})
    print_table(f"Sweep: online accuracy on eval items, mean of {len(crowds[0].orders)} orders "
                f"({len(results)} settings; rank by the mean over files and gold levels; "
                "step = lam for eq8, Beta prior strength m for beta)",
                header, [row(i, r) for i, r in enumerate(ranked[:15], 1)]
                + [row(default_rank, ranked[default_rank - 1])])
    print(f"(last row: the current CrowdModel defaults, rank {default_rank} of {len(ranked)})")

    by_twopass = sorted(results, key=lambda r: -r["mean_twopass"])
    print_table("Sweep: the same, ranked by the two-pass accuracy (re-scored with the final p_i)",
                header, [row(i, r) for i, r in enumerate(by_twopass[:5], 1)])

    # robustness: marginals over stage 1, transfer across files, spread over orders
    stage1_res = results[1:1 + len(stage1)]
    mrows = []
    for field in ("reliability", "leave_one_out", "nu", "lam", "beta_strength"):
        values = sorted({r["params"][field] for r in stage1_res if field in r["params"]}, key=str)
        for v in values:
            means = [r["mean"] for r in stage1_res if r["params"].get(field) == v]
            mrows.append([field, str(v), len(means), max(means), float(np.median(means)), min(means)])
    print_table("Sweep stage 1 marginals: mean online accuracy of the settings with each value",
                ["parameter", "value", "settings", "best", "median", "worst"], mrows)

    best = ranked[0]
    trows = []
    for n in names:
        own = max(results, key=lambda r: np.mean([r["online"][(n, p)].mean() for p in GOLD_PERCENT]))
        for other in names:
            acc = np.mean([own["online"][(other, p)].mean() for p in GOLD_PERCENT])
            rank = 1 + sum(np.mean([r["online"][(other, p)].mean() for p in GOLD_PERCENT]) > acc
                           for r in results)
            trows.append([f"best on {n}", " ".join(map(str, _describe(own["params"]))), other,
                          float(acc), rank])
    print_table("Transfer: the best setting for one file, scored on each file (mean over gold levels)",
                ["chosen", "setting", "scored on", "accuracy", "rank there"], trows)
    near = [r for r in ranked if r["mean"] >= best["mean"] - 0.005]
    rules = pd.Series([r["params"].get("reliability", _DEFAULTS["reliability"]) for r in near])
    print(f"\n{len(near)} settings within 0.005 of the best mean ({best['mean']:.4f}); "
          f"by rule: {rules.value_counts().to_dict()}")
    sd = {f"{n} g{p}": float(best["online"][(n, p)].std()) for n in names for p in GOLD_PERCENT}
    print(f"best setting: {best['params']}; sd over orders: "
          + ", ".join(f"{k} {v:.4f}" for k, v in sd.items()))
    return {"settings": [{"params": r["params"], "mean": r["mean"], "mean_twopass": r["mean_twopass"],
                          **{f"{n}_gold{p}": float(r["online"][(n, p)].mean())
                             for n in names for p in GOLD_PERCENT},
                          **{f"{n}_gold{p}_twopass": float(r["twopass"][(n, p)].mean())
                             for n in names for p in GOLD_PERCENT}} for r in ranked],
            "best": best["params"], "default_rank": default_rank}


# ---------------------------------------------------------------------------- speed
def synthetic_crowd(n_programs: int, n_lines: int = 10, per_program: int = 10,
                    n_annotators: int = 30, seed: int = 0):
    """Seeded crowd: each program labelled on every line by ``per_program`` distinct annotators
    of accuracy U(0.55, 0.95); 70% of lines correct. Label arrays are sorted by line."""
    rng = np.random.default_rng(seed)
    accuracy = rng.uniform(0.55, 0.95, n_annotators)
    truth = np.where(rng.random(n_programs * n_lines) < 0.7, 1, -1).astype(np.int8)
    who = np.argpartition(rng.random((n_programs, n_annotators)), per_program - 1, axis=1)
    who = who[:, :per_program]
    ann = np.broadcast_to(who[:, None, :], (n_programs, n_lines, per_program)).reshape(-1)
    line = np.repeat(np.arange(n_programs * n_lines), per_program)
    right = rng.random(len(line)) < accuracy[ann]
    lab = np.where(right, truth[line], -truth[line]).astype(np.int8)
    return line, ann.astype(np.intp), lab, truth, accuracy


def bayes_scores(line, ann, lab, reliabilities, n_lines: int, program, n_programs: int,
                 k, prior: float = 0.5, tau: float = 0.5):
    """Eq (7) per line in long form (one bincount over all labels), then ``s = c/k`` per program
    (:func:`crlhf.reward.shape_scores`, every line scored; ``k`` is the lines per program)."""
    from crlhf.reward import shape_scores

    w = logit(reliabilities)
    post = expit(float(logit(prior)) + np.bincount(line, weights=lab * w[ann], minlength=n_lines))
    s = shape_scores(post, np.ones(n_lines, dtype=bool), program, n_programs, "share", tau)
    assert len(s) == len(k)
    return post, s


def run_speed(quick: bool, params: dict, crowdkit) -> dict:
    scale = 10 if quick else 1
    n_programs, n_lines = 100_000 // scale, 10
    t0 = time.perf_counter()
    line, ann, lab, truth, accuracy = synthetic_crowd(n_programs)
    n_total = n_programs * n_lines
    program = np.arange(n_total) // n_lines
    k = np.full(n_programs, n_lines)
    n_labels = len(line)
    print(f"\nsynthetic crowd: {n_programs:,} programs x {n_lines} lines x 10 of 30 annotators = "
          f"{n_labels:,} labels (generated in {time.perf_counter() - t0:.1f} s)", flush=True)
    out = {"labels": n_labels}
    rows = []

    t_long, (post, s) = best_of(lambda: bayes_scores(line, ann, lab, accuracy, n_total, program,
                                                     n_programs, k))
    out["bayes_long_s"] = t_long
    out["bayes_long_accuracy_vs_truth"] = float(np.mean((post > 0.5) == (truth > 0)))
    rows.append(["crlhf eq (7) + s, long form (bincount)", n_labels, t_long, None])

    dense = np.zeros((n_total, len(accuracy)), dtype=np.int8)
    dense[line, ann] = lab
    t_dense, post_dense = best_of(lambda: posterior(dense, accuracy))
    dense = None  # frees memory for the runs below
    if not np.allclose(post_dense, post):
        raise RuntimeError("dense and long-form posteriors disagree")
    out["bayes_dense_posterior_s"] = t_dense
    rows.append(["crlhf bayes.posterior, dense lines x annotators", n_labels, t_dense, None])

    frame = pd.DataFrame({"program_id": program[line], "line": line % n_lines,
                          "annotator": ann, "label": lab.astype(np.int64)})
    t_mv, _ = best_of(lambda: majority_vote(frame), 1)
    t_ds, _ = best_of(lambda: dawid_skene(frame), 1)
    out["crlhf_majority_s"], out["crlhf_dawid_skene_s"] = t_mv, t_ds
    rows += [["crlhf majority_vote (from a label frame)", n_labels, t_mv, None],
             ["crlhf dawid_skene (from a label frame)", n_labels, t_ds, None]]
    frame = None

    if crowdkit is not None:
        MajorityVote, DawidSkene = crowdkit
        data = pd.DataFrame({"task": line, "worker": ann, "label": lab})
        t_ckmv, _ = best_of(lambda: _quiet(MajorityVote().fit_predict, data), 1)
        t_ckds, _ = best_of(lambda: _quiet(DawidSkene(n_iter=100).fit_predict, data), 1)
        data = None
        out["crowdkit_majority_s"], out["crowdkit_dawid_skene_s"] = t_ckmv, t_ckds
        out["ratio_crowdkit_majority_vs_bayes"] = t_ckmv / t_long
        out["ratio_crowdkit_dawid_skene_vs_bayes"] = t_ckds / t_long
        out["ratio_crowdkit_majority_vs_crlhf_majority"] = t_ckmv / t_mv
        out["ratio_crowdkit_dawid_skene_vs_crlhf_dawid_skene"] = t_ckds / t_ds
        rows += [["crowd-kit MajorityVote", n_labels, t_ckmv, t_ckmv / t_long],
                 ["crowd-kit DawidSkene", n_labels, t_ckds, t_ckds / t_long]]

    # the online replay: a tenth of the programs, with every reliability update
    n_small = n_programs // 10
    m = n_small * n_lines * 10
    log = pd.DataFrame({"program_id": program[line[:m]], "line": line[:m] % n_lines,
                        "annotator": ann[:m], "label": lab[:m].astype(np.int64)})
    t_replay, res = best_of(lambda: CrowdModel(**params).replay(log))
    out["replay_s"], out["replay_labels"] = t_replay, m
    out["replay_accuracy_vs_truth"] = float(np.mean(
        np.where(res.lines["consensus"].to_numpy() > 0, 1, -1) == truth[:n_small * n_lines]))
    rule = {**_DEFAULTS, **params}["reliability"]
    rows.append([f"crlhf CrowdModel.replay (online, {rule} updates)", m, t_replay, None])
    for other in RULES:
        if other != rule:
            t_other, _ = best_of(lambda other=other: CrowdModel(**{**params, "reliability": other}).replay(log))
            out[f"replay_{other}_s"] = t_other
            rows.append([f"crlhf CrowdModel.replay (online, {other} updates)", m, t_other, None])
    if crowdkit is not None:
        data = pd.DataFrame({"task": line[:m], "worker": ann[:m], "label": lab[:m]})
        t_ckmv1, _ = best_of(lambda: _quiet(MajorityVote().fit_predict, data))
        t_ckds1, _ = best_of(lambda: _quiet(DawidSkene(n_iter=100).fit_predict, data), 1)
        out["crowdkit_majority_replay_set_s"], out["crowdkit_dawid_skene_replay_set_s"] = t_ckmv1, t_ckds1
        out["ratio_crowdkit_majority_vs_replay"] = t_ckmv1 / t_replay
        out["ratio_crowdkit_dawid_skene_vs_replay"] = t_ckds1 / t_replay
        rows += [["crowd-kit MajorityVote (replay's labels)", m, t_ckmv1, t_ckmv1 / t_replay],
                 ["crowd-kit DawidSkene (replay's labels)", m, t_ckds1, t_ckds1 / t_replay]]

    table = [[what, n, t, n / t, ratio] for what, n, t, ratio in rows]
    print_table("Speed on one core (seconds: best of 3, single runs for crlhf majority_vote/"
                "dawid_skene, crowd-kit DawidSkene and crowd-kit on 10M labels; ratio = crowd-kit "
                "time / crlhf time on the same labels: the eq (7) long form above, the replay below)",
                ["what", "labels", "seconds", "labels/s", "ratio"], table, digits=3)
    print(f"targets: eq (7) + s on {n_labels:,} labels {t_long:.3f} s (target <= 0.5 s at 10M); "
          f"replay of {m:,} labels {max([t_replay] + [out[f'replay_{r}_s'] for r in RULES if r != rule]):.3f} s "
          "or less under every rule (target <= 2 s at 1M)"
          + (f"; crowd-kit / crlhf "
             f"{min(out['ratio_crowdkit_majority_vs_bayes'], out['ratio_crowdkit_dawid_skene_vs_bayes']):.0f}x "
             "or more (target >= 20x)" if crowdkit is not None else ""))
    if crowdkit is not None:
        print(f"batch aggregators from a label frame: crowd-kit / crlhf "
              f"{out['ratio_crowdkit_majority_vs_crlhf_majority']:.1f}x (majority vote), "
              f"{out['ratio_crowdkit_dawid_skene_vs_crlhf_dawid_skene']:.1f}x (Dawid-Skene)")
    print(f"sanity: posterior accuracy vs synthetic truth {out['bayes_long_accuracy_vs_truth']:.4f} "
          f"(true p_i); online replay {out['replay_accuracy_vs_truth']:.4f}")
    return out


# ---------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", type=Path,
                        help="crowd TSV (repeatable); default: ../shared/data/crowd/{rte,temp}.tsv")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--quick", action="store_true", help="2 item orders, 1/10 of the speed sizes")
    parser.add_argument("--sweep", action="store_true", help="sweep CrowdModel parameters on the data")
    parser.add_argument("--jobs", type=int, default=1, help="processes for --sweep (default 1)")
    parser.add_argument("--model", default="{}", help="CrowdModel keyword arguments as JSON")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed part")
    args = parser.parse_args(argv)
    try:
        params = json.loads(args.model)
        CrowdModel(**params)
    except (ValueError, TypeError) as exc:
        parser.error(f"--model: {exc}")
    paths = args.data or DEFAULT_DATA
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        parser.error(f"crowd data not found: {', '.join(missing)}")
    seeds = range(2 if args.quick else 5)
    crowds = [load_crowd(p, seeds) for p in paths]
    crowdkit = _crowdkit()
    if crowdkit is None:
        print("crowd-kit is not installed: its rows are left out (pip install crowd-kit)")
    start = time.perf_counter()
    if args.sweep:
        result = {"sweep": run_sweep(crowds, max(1, args.jobs))}
    else:
        result = {"accuracy": run_accuracy(crowds, params, crowdkit), "model": params}
        if not args.no_speed:
            result["speed"] = run_speed(args.quick, params, crowdkit)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
