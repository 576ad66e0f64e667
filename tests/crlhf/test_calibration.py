"""Does the crowd model learn who is reliable? CrowdModel (crlhf.crowd) on simulated crowds
(crlhf.simulate) whose true accuracies are known.

Every property is checked on 20 seeds and must hold on at least 18 of them. Why 18/20: on
1,000 seeds (eq 8 ranking), 1,000 seeds (Beta on gold) and 300 seeds (the rest), each property
held on >= 99 % of seeds, so a correct model passes 18/20 with probability >= 0.999
(binomial, p = 0.99). Conversely, if a property held on only 70 % of seeds, 18/20 would
pass with probability 0.035, so passing is evidence (one-sided, ~4 % level) that it holds
for most seeds, not for one lucky seed. The seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from crlhf.bayes import logit
from crlhf.crowd import CrowdModel
from crlhf.simulate import Crowd, biased, code_crowd, harsh, lazy, make_crowd, random_truths, reliable

SEEDS = range(20)
MIN_PASSES = 18

# gold calibration: 12 annotators evenly spread over [0.55, 0.95]
GOLD_ACCURACIES = np.linspace(0.55, 0.95, 12)
NU, GOLD_CERTAINTY, P_MIN, P_MAX = 0.7, 0.99, 0.01, 0.99
LINES_PER_GOLD = 8

# ordinary programs: 10 reliable annotators over [0.6, 0.9], 3 spammers, 1 adversary (0.3)
RELIABLE = np.linspace(0.6, 0.9, 10)
N_PROGRAMS, N_LINES, CORRECT_RATE = 300, 8, 0.7


def unsaturated_lam(n_lines: int, nu: float = NU, gold_certainty: float = GOLD_CERTAINTY,
                    p_min: float = P_MIN, p_max: float = P_MAX, margin: float = 0.95) -> float:
    """The eq (8) step ``lam`` for which ``n_lines`` gold updates of ``lam * logit(gold_certainty)``,
    all in one direction, still end strictly inside ``[logit(p_min), logit(p_max)]`` from ``nu``."""
    room = min(logit(p_max) - logit(nu), logit(nu) - logit(p_min))
    return float(margin * room / (n_lines * logit(gold_certainty)))


def gold_run(seed: int, n_gold_lines: int, **model_kwargs):
    """Calibrate a fresh CrowdModel on gold programs; return (crowd, model, log, gold)."""
    crowd = make_crowd(GOLD_ACCURACIES, seed=seed)
    log, gold = crowd.gold_log(n_gold=n_gold_lines // LINES_PER_GOLD, lines=LINES_PER_GOLD)
    model = CrowdModel(nu=NU, gold_certainty=GOLD_CERTAINTY, p_min=P_MIN, p_max=P_MAX, **model_kwargs)
    model.replay(log, gold=gold)
    return crowd, model, log, gold


def test_unsaturated_lam_is_the_largest_safe_step():
    lam = unsaturated_lam(200)
    assert 0.0038 < lam < 0.0039  # 0.95 * (logit .99 - logit .7) / (200 * logit .99)
    assert logit(NU) + 200 * lam * logit(GOLD_CERTAINTY) < logit(P_MAX)
    assert logit(NU) - 200 * lam * logit(GOLD_CERTAINTY) > logit(P_MIN)
    assert logit(NU) + 200 * lam / 0.95 * logit(GOLD_CERTAINTY) == pytest.approx(logit(P_MAX))


def test_eq8_on_200_gold_lines_ranks_annotators():
    """Eq (8) with an unsaturated ``lam``: Spearman(p_i, true accuracy) >= 0.9 after 200 gold lines."""
    lam = unsaturated_lam(200)
    rhos = []
    for seed in SEEDS:
        crowd, model, log, gold = gold_run(seed, 200, lam=lam, reliability="eq8")
        p = model.reliabilities.loc[crowd.names].to_numpy()
        # no annotator reached a clip bound, so p_i is exactly eq (8) summed over its gold lines:
        # logit(p_i) = logit(nu) + lam * logit(gold_certainty) * (agreements - disagreements)
        assert ((p > P_MIN) & (p < P_MAX)).all()
        truth = log.program_id.map(gold).to_numpy()
        agree = np.array([t[line] for t, line in zip(truth, log.line, strict=True)]) == log.label.to_numpy()
        margin = pd.Series(np.where(agree, 1, -1)).groupby(log.annotator.to_numpy()).sum()
        expected = logit(NU) + lam * logit(GOLD_CERTAINTY) * margin.loc[crowd.names].to_numpy()
        np.testing.assert_allclose(logit(p), expected, atol=1e-9)
        rhos.append(spearmanr(p, GOLD_ACCURACIES).statistic)
    passes = int(np.sum(np.asarray(rhos) >= 0.9))
    assert passes >= MIN_PASSES, f"Spearman >= 0.9 on {passes}/20 seeds: {np.round(rhos, 3)}"


def test_beta_on_1000_gold_lines_estimates_accuracy():
    """``reliability="beta"`` lands within 0.05 of every true accuracy after 1,000 gold lines.

    (Its limit is ``1/2 + (a - 1/2) * (2 * gold_certainty - 1)``, 0.009 below 0.95 at most here.)
    """
    errors = []
    for seed in SEEDS:
        crowd, model, _, _ = gold_run(seed, 1000, reliability="beta")
        p = model.reliabilities.loc[crowd.names].to_numpy()
        assert np.isfinite(p).all()
        errors.append(np.abs(p - GOLD_ACCURACIES).max())
    passes = int(np.sum(np.asarray(errors) <= 0.05))
    assert passes >= MIN_PASSES, f"max |p - a| <= 0.05 on {passes}/20 seeds: {np.round(errors, 3)}"


# ------------------------------------------------------------------ ordinary programs, no gold
@cache
def ordinary(seed: int, k: int | None):
    """A crowd (10 reliable, 3 spammers, 1 adversary), the line truth of N_PROGRAMS programs, and
    the labels of ``k`` annotators per program (all 14 when ``None``)."""
    crowd = make_crowd(RELIABLE, spammers=3, adversaries=1, seed=seed)
    truth = random_truths(N_PROGRAMS, N_LINES, CORRECT_RATE, seed=crowd.rng)
    return crowd, truth, crowd.label_programs(truth, k=k)


def replayed(seed: int, k: int | None, **model_kwargs):
    crowd, truth, log = ordinary(seed, k)
    model = CrowdModel(**model_kwargs).add_annotators(crowd.names)
    result = model.replay(log)
    return crowd, truth, log, model, result


def line_accuracy(program_id, line, decision, truth) -> float:
    """Share of lines decided right; a tie (decision 0) counts 1/2, as a coin toss would."""
    t = truth[np.asarray(program_id, dtype=np.int64), np.asarray(line, dtype=np.int64)]
    d = np.asarray(decision)
    return float(np.mean(np.where(d == 0, 0.5, (d == t).astype(float))))


def majority_vote_accuracy(log: pd.DataFrame, truth: np.ndarray) -> float:
    votes = log.groupby(["program_id", "line"]).label.sum()
    return line_accuracy(votes.index.get_level_values("program_id"),
                         votes.index.get_level_values("line"), np.sign(votes.to_numpy()), truth)


def test_beta_without_gold_ranks_spammers_and_flags_the_adversary():
    ok_rank = ok_adversary = 0
    for seed in SEEDS:
        crowd, _, _, model, _ = replayed(seed, None, reliability="beta")
        p = model.reliabilities.loc[crowd.names]
        kind = crowd.summary().kind
        assert np.isfinite(p).all()
        ok_rank += bool(p[kind == "spammer"].max() < p[kind == "reliable"].min())
        ok_adversary += bool(p[kind == "adversary"].max() < 0.5)
    assert ok_rank >= MIN_PASSES, f"spammers below every reliable annotator on {ok_rank}/20 seeds"
    assert ok_adversary >= MIN_PASSES, f"adversary below 0.5 on {ok_adversary}/20 seeds"


@pytest.mark.parametrize("k", [None, 5], ids=["all-14-label", "5-of-14-label"])
@pytest.mark.parametrize("reliability", ["eq8", "beta", "two_coin"])
def test_online_consensus_at_least_as_accurate_as_majority_vote(reliability, k):
    wins, gaps = 0, []
    for seed in SEEDS:
        _, truth, log, _, result = replayed(seed, k, reliability=reliability)
        lines = result.lines
        bayes = line_accuracy(lines.program_id, lines.line, lines.consensus, truth)
        majority = majority_vote_accuracy(log, truth)
        assert len(lines) == N_PROGRAMS * N_LINES
        wins += bayes >= majority
        gaps.append(bayes - majority)
    assert wins >= MIN_PASSES, f"Bayes >= majority vote on {wins}/20 seeds; gaps {np.round(gaps, 3)}"


@pytest.mark.parametrize("leave_one_out", [True, False])
def test_beta_estimates_accuracy_under_sparse_labels(leave_one_out):
    """With 5 of 14 annotators per program and no gold, the Beta estimate (credit: the full
    posterior that the label is right, the E-step of EM) recovers the true accuracies;
    ``leave_one_out`` concerns eq (8) only and must not change that."""
    ok = 0
    for seed in SEEDS:
        crowd, _, _, model, _ = replayed(seed, 5, reliability="beta", leave_one_out=leave_one_out)
        err = np.abs(model.reliabilities.loc[crowd.names].to_numpy() - crowd.accuracies.to_numpy())
        ok += err.mean() <= 0.035 and err.max() <= 0.1
    assert ok >= MIN_PASSES, f"accuracy recovered on {ok}/20 seeds"


def test_gold_first_keeps_a_beta_crowd_from_flipping():
    """Seed 40 flipped a weak Beta prior (``beta_strength = 2``) without gold: one unlucky first
    program drove every p_i below 1/2, the consensus inverted and stayed inverted (line
    accuracy 0.025). Five gold programs first, as in Algorithm 1, keep it right."""
    crowd, truth, log = ordinary(40, None)
    gold_log, gold = crowd.gold_log(n_gold=5, lines=8, seed=1)
    model = CrowdModel(reliability="beta", beta_strength=2).add_annotators(crowd.names)
    model.replay(gold_log, gold=gold)
    result = model.replay(log)
    lines = result.lines
    assert line_accuracy(lines.program_id, lines.line, lines.consensus, truth) > 0.95
    p = model.reliabilities.loc[crowd.names]
    kind = crowd.summary().kind
    assert p[kind == "adversary"].max() < 0.5 < p[kind == "reliable"].min()


# ------------------------------------------------------------------ two coins (reliability="two_coin")
TWO_COIN = dict(reliability="two_coin", nu=NU, gold_certainty=GOLD_CERTAINTY, p_min=P_MIN, p_max=P_MAX)


def asymmetric_crowd(seed: int) -> Crowd:
    """Six annotators whose two coins differ: reliable ones, a lazy one (1, 0), a harsh one
    (0.7, 0.95) and a lenient class-biased one (0.95, 0.7)."""
    return Crowd([reliable("r90", 0.9), reliable("r85", 0.85), reliable("r80", 0.8), lazy("lazy"),
                  harsh("harsh", 0.7, 0.95), biased("lenient", 0.95, 0.7)], seed=seed)


def test_two_coin_on_1000_gold_lines_estimates_both_coins():
    """Every annotator's ``a_i`` and ``b_i`` land within 0.05 of the truth after 1,000 gold lines
    (half of them wrong, so each coin sees about 500), each coin on >= 18 of 20 seeds.

    Why per coin: 500 lines give a binomial sd of 0.02 at a coin of 0.7, so 0.05 is 2.4 sd and
    each coin misses on about 1.5 % of seeds (18/20 then passes with probability > 0.99); all
    twelve coins at once held on 93 % of 300 seeds (20 of these 20)."""
    hits = {}
    for seed in SEEDS:
        crowd = asymmetric_crowd(seed)
        log, gold = crowd.gold_log(n_gold=1000 // LINES_PER_GOLD, lines=LINES_PER_GOLD, wrong_rate=0.5)
        model = CrowdModel(**TWO_COIN)
        model.replay(log, gold=gold)
        true = crowd.summary()
        for coin, got in (("sensitivity", model.sensitivities), ("specificity", model.specificities)):
            err = np.abs(got.loc[crowd.names].to_numpy() - true[coin].to_numpy())
            assert np.isfinite(err).all()
            for name, e in zip(crowd.names, err, strict=True):
                hits.setdefault((name, coin), []).append(e <= 0.05)
    short = {k: sum(v) for k, v in hits.items() if sum(v) < MIN_PASSES}
    assert not short, f"coins within 0.05 on fewer than 18/20 seeds: {short}"


def test_two_coin_on_200_gold_lines_ranks_by_balanced_accuracy():
    """Spearman(reliability, true balanced accuracy) >= 0.9 after 200 gold lines, for twelve
    annotators with balanced accuracies spread over [0.55, 0.95] and skewed coins (+-0.08)."""
    balanced = np.linspace(0.55, 0.95, 12)
    skew = np.tile([-0.08, 0.0, 0.08], 4)
    rhos = []
    for seed in SEEDS:
        anns = [biased(f"b{i}", s, p) if s != p else reliable(f"b{i}", s)
                for i, (s, p) in enumerate(zip(np.clip(balanced + skew, 0, 1), np.clip(balanced - skew, 0, 1),
                                               strict=True))]
        crowd = Crowd(anns, seed=seed)
        log, gold = crowd.gold_log(n_gold=200 // LINES_PER_GOLD, lines=LINES_PER_GOLD, wrong_rate=0.5)
        model = CrowdModel(**TWO_COIN)
        model.replay(log, gold=gold)
        rhos.append(spearmanr(model.reliabilities.loc[crowd.names], crowd.summary().accuracy).statistic)
    passes = int(np.sum(np.asarray(rhos) >= 0.9))
    assert passes >= MIN_PASSES, f"Spearman >= 0.9 on {passes}/20 seeds: {np.round(rhos, 3)}"


def test_two_coin_on_code_crowds_beats_majority_vote_and_one_coin():
    """``code_crowd`` (12 reliable, 6 lazy, 3 harsh, 9 lenient of 30), 85 % of lines correct, 5
    annotators per program, no gold: the online two-coin consensus is at least as accurate as
    majority vote and as the one-coin Beta estimate, and it finds the lazy annotators out: the
    likelihood ratio of their +1 is within 0.2 of 1 after the ~50 programs each labels (it
    tends to 1 as the Beta prior of b_i washes out; one coin gives it p_max / (1 - p_max) = 19) and
    below everyone else's (>= 1.3 on these seeds)."""
    wins_mv = wins_beta = lazy_found = 0
    for seed in SEEDS:
        crowd = code_crowd(30, seed=seed)
        truth = random_truths(N_PROGRAMS, N_LINES, 0.85, seed=crowd.rng)
        log = crowd.label_programs(truth, k=5)
        acc = {}
        for rel in ("beta", "two_coin"):
            model = CrowdModel(reliability=rel).add_annotators(crowd.names)
            lines = model.replay(log).lines
            acc[rel] = line_accuracy(lines.program_id, lines.line, lines.consensus, truth)
        wins_mv += acc["two_coin"] >= majority_vote_accuracy(log, truth)
        wins_beta += acc["two_coin"] >= acc["beta"]
        is_lazy = (crowd.summary().kind == "lazy").to_numpy()
        plus = np.exp(model.log_likelihood_ratios.loc[crowd.names, "plus"].to_numpy())
        lazy_found += bool(np.abs(plus[is_lazy] - 1).max() < 0.2 and plus[is_lazy].max() < plus[~is_lazy].min())
    assert wins_mv >= MIN_PASSES and wins_beta >= MIN_PASSES, (wins_mv, wins_beta)
    assert lazy_found >= MIN_PASSES, f"lazy +1 likelihood ratios within 0.2 of 1 on {lazy_found}/20 seeds"
