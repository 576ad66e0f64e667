"""Tests of crlhf.simulate: seeded simulated annotators and crowds."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlhf.crowd import CrowdModel
from crlhf.simulate import (
    KINDS,
    RELIABLE_RANGE,
    WEAK_RANGE,
    Crowd,
    SimulatedAnnotator,
    adversary,
    lazy,
    make_crowd,
    noisy_crowd,
    paper_crowd,
    random_truths,
    reliable,
    spammer,
    synthetic_log,
)

COLUMNS = ["program_id", "line", "annotator", "label"]


def within_binomial(successes: int, n: int, p: float, z: float = 5.0) -> bool:
    """``successes / n`` lies within ``z`` binomial standard errors of ``p``.

    z = 5 gives a two-sided false alarm of ~6e-7 per check for a correct generator (the
    draws here are seeded, so each check is deterministic anyway).
    """
    se = math.sqrt(max(p * (1 - p), 1e-12) / n)
    return abs(successes / n - p) <= z * se + 1e-12


def with_truth(log: pd.DataFrame, truths: np.ndarray) -> pd.DataFrame:
    """Attach the line truth of a 2-D truth array (program ids 0..n-1) to a label frame."""
    t = truths[log["program_id"].to_numpy(np.int64), log["line"].to_numpy(np.int64)]
    return log.assign(truth=t)


# ------------------------------------------------------------------ annotators
def test_constructors_and_kind_defaults():
    r = reliable("r", 0.8)
    assert (r.kind, r.accuracy, r.sensitivity, r.specificity, r.coverage) == ("reliable", 0.8, 0.8, 0.8, 1.0)
    s = spammer("s")
    assert (s.kind, s.accuracy, s.sensitivity, s.specificity) == ("spammer", 0.5, 0.5, 0.5)
    a = adversary("a")
    assert (a.kind, a.accuracy, a.sensitivity, a.specificity) == ("adversary", 0.3, 0.3, 0.3)
    assert adversary("a2", 0.1).accuracy == 0.1
    z = lazy("z", coverage=0.5)
    assert (z.kind, z.sensitivity, z.specificity, z.accuracy, z.coverage) == ("lazy", 1.0, 0.0, 0.5, 0.5)
    asym = SimulatedAnnotator("x", sensitivity=0.9, specificity=0.6)
    assert asym.accuracy == pytest.approx(0.75)
    assert asym.p_plus([1, -1]).tolist() == pytest.approx([0.9, 0.4])
    assert set(KINDS) == {"reliable", "spammer", "adversary", "lazy", "harsh", "biased"}


def test_annotator_is_immutable():
    r = reliable("r", 0.8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.accuracy = 0.9


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "a", "accuracy": 1.2}, "accuracy"),
    ({"name": "a", "accuracy": -0.1}, "accuracy"),
    ({"name": "a", "accuracy": float("nan")}, "accuracy"),
    ({"name": "a", "kind": "sloppy", "accuracy": 0.8}, "kind"),
    ({"name": "a", "accuracy": 0.5}, "accuracy"),  # a reliable annotator must beat chance
    ({"name": "a", "kind": "spammer", "accuracy": 0.7}, "spammer"),
    ({"name": "a", "kind": "adversary", "accuracy": 0.6}, "adversary"),
    ({"name": "a", "kind": "lazy", "accuracy": 0.8}, "lazy"),
    ({"name": "a"}, "accuracy"),
    ({"name": "a", "sensitivity": 0.9}, "specificity"),
    ({"name": "a", "sensitivity": 0.9, "specificity": 1.5}, "specificity"),
    ({"name": "a", "accuracy": 0.8, "sensitivity": 0.9, "specificity": 0.9}, "accuracy"),
    ({"name": "a", "accuracy": 0.8, "coverage": 0.0}, "coverage"),
    ({"name": "a", "accuracy": 0.8, "coverage": 1.5}, "coverage"),
])
def test_bad_annotator_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SimulatedAnnotator(**kwargs)


def test_bad_annotator_types():
    with pytest.raises(TypeError, match="accuracy"):
        SimulatedAnnotator("a", accuracy="high")
    with pytest.raises(TypeError, match="name"):
        SimulatedAnnotator(None, accuracy=0.8)
    with pytest.raises(TypeError, match="annotators"):
        Crowd(["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        Crowd([reliable("a", 0.8), spammer("a")])
    with pytest.raises(ValueError, match="annotators"):
        Crowd([])


# ------------------------------------------------------------------ empirical skill
def test_empirical_accuracy_of_each_kind():
    crowd = Crowd([reliable("r9", 0.9), reliable("r6", 0.6), spammer("s"), adversary("adv", 0.3),
                   SimulatedAnnotator("asym", sensitivity=0.95, specificity=0.55), lazy("z")], seed=1)
    truths = random_truths(4000, 10, correct_rate=0.7, seed=2)  # 40,000 lines each
    log = with_truth(crowd.label_programs(truths), truths)
    assert len(log) == 40_000 * len(crowd)
    for name, g in log.groupby("annotator"):
        a = crowd[name]
        pos, neg = g[g.truth == 1], g[g.truth == -1]
        sens_hits = int((pos.label == 1).sum())
        spec_hits = int((neg.label == -1).sum())
        assert within_binomial(sens_hits, len(pos), a.sensitivity), (name, sens_hits / len(pos))
        assert within_binomial(spec_hits, len(neg), a.specificity), (name, spec_hits / len(neg))
        if a.kind != "lazy" and a.sensitivity == a.specificity:
            hits = int((g.label == g.truth).sum())
            assert within_binomial(hits, len(g), a.accuracy), (name, hits / len(g))
    adv = log[log.annotator == "adv"]
    assert (adv.label != adv.truth).mean() > 0.5  # an adversary flips more than half
    assert (log.loc[log.annotator == "z", "label"] == 1).all()


def test_lazy_always_labels_correct():
    crowd = Crowd([lazy("z"), reliable("r", 0.7)], seed=3)
    truth = np.array([-1] * 50 + [1] * 50)
    for _ in range(5):
        labels = crowd.label_program(truth)
        assert (labels.loc[labels.annotator == "z", "label"] == 1).all()
        assert len(labels) == 200


def test_spammer_is_a_fair_coin_on_both_truths():
    crowd = Crowd([spammer("s")], seed=4)
    truths = np.where(np.arange(100_000) % 2 == 0, 1, -1).reshape(1000, 100)
    log = with_truth(crowd.label_programs(truths), truths)
    for t in (1, -1):
        right = int((log.loc[log.truth == t, "label"] == t).sum())
        assert within_binomial(right, 50_000, 0.5)


def test_coverage_labels_a_share_of_lines():
    crowd = Crowd([reliable("half", 0.8, coverage=0.5), reliable("full", 0.8)], seed=5)
    log = crowd.label_programs(random_truths(2000, 10, seed=6))
    n_half = int((log.annotator == "half").sum())
    assert within_binomial(n_half, 20_000, 0.5)
    assert (log.annotator == "full").sum() == 20_000
    assert not log.duplicated(["program_id", "line", "annotator"]).any()


# ------------------------------------------------------------------ frames, k-of-n
def test_label_program_frame():
    crowd = make_crowd([0.9, 0.8, 0.7], seed=0)
    labels = crowd.label_program([1, -1, 1, 1], program_id="p1")
    assert list(labels.columns) == COLUMNS
    assert len(labels) == 12
    assert (labels.program_id == "p1").all()
    assert labels.line.tolist() == [0, 1, 2, 3] * 3
    assert labels.annotator.tolist() == ["a00"] * 4 + ["a01"] * 4 + ["a02"] * 4
    assert set(labels.label.unique()) <= {1, -1}
    assert labels.label.dtype == np.int64 and labels.line.dtype == np.int64
    only = crowd.label_program([1, -1], annotators=["a02", "a00"])
    assert set(only.annotator) == {"a00", "a02"} and len(only) == 4
    empty = crowd.label_program([])
    assert list(empty.columns) == COLUMNS and len(empty) == 0


def test_k_of_n_sampling():
    crowd = paper_crowd(n=10, seed=0)
    k = 3
    log = crowd.label_programs(random_truths(3000, 4, seed=1), k=k)
    per_program = log.groupby("program_id").annotator.nunique()
    assert (per_program == k).all() and len(per_program) == 3000
    # every chosen annotator labels every line of the program
    assert (log.groupby(["program_id", "annotator"]).size() == 4).all()
    # each annotator is drawn for a program with probability k / n
    chosen = log.drop_duplicates(["program_id", "annotator"]).annotator.value_counts()
    assert len(chosen) == 10
    for name, count in chosen.items():
        assert within_binomial(int(count), 3000, k / 10), (name, count)
    # k of a named subset
    sub = crowd.label_program([1, 1, -1], annotators=["a01", "a03", "a05", "a07"], k=2)
    assert sub.annotator.nunique() == 2 and set(sub.annotator) <= {"a01", "a03", "a05", "a07"}
    # k equal to the crowd is everyone
    assert crowd.label_program([1], k=10).annotator.nunique() == 10


def test_label_programs_inputs():
    crowd = make_crowd([0.9, 0.6], seed=0)
    truths = {"x": [1, -1, 1], "y": [], "z": [-1]}
    log = crowd.label_programs(truths)
    assert len(log) == 2 * 4
    assert log.groupby("program_id").size().to_dict() == {"x": 6, "z": 2}
    assert log.loc[log.program_id == "z", "line"].tolist() == [0, 0]
    as_list = crowd.reset().label_programs([[1, -1, 1], [-1]])
    assert sorted(as_list.program_id.unique().tolist()) == [0, 1]
    arr = random_truths(5, 3, seed=0)
    assert len(crowd.label_programs(arr)) == 30


def test_label_frame_replays_in_crowd_model():
    crowd = noisy_crowd(n=12, seed=2)
    truths = random_truths(20, 6, seed=3)
    log = crowd.label_programs(truths, k=4)
    model = CrowdModel()
    result = model.replay(log)
    assert len(result.scores) == 20 and set(model.annotators) <= set(crowd.names)
    assert np.isfinite(result.lines.posterior).all()


# ------------------------------------------------------------------ reproducibility
def test_same_seed_same_labels():
    truths = random_truths(50, 7, seed=9)
    a, b = noisy_crowd(seed=11), noisy_crowd(seed=11)
    assert a.summary().equals(b.summary())
    for _ in range(2):  # call after call, the streams stay in step
        pd.testing.assert_frame_equal(a.label_programs(truths, k=5), b.label_programs(truths, k=5))
        pd.testing.assert_frame_equal(a.label_program(truths[0]), b.label_program(truths[0]))
    la, ga = a.gold_log(seed=1)
    lb, gb = b.gold_log(seed=1)
    pd.testing.assert_frame_equal(la, lb)
    assert ga.keys() == gb.keys() and all((ga[k] == gb[k]).all() for k in ga)
    first = a.reset().label_programs(truths)
    pd.testing.assert_frame_equal(first, a.reset().label_programs(truths))
    other = noisy_crowd(seed=12)
    assert not other.summary().equals(a.summary())
    assert not a.reset(12).label_programs(truths).label.equals(
        noisy_crowd(seed=11).label_programs(truths).label)


def test_rng_argument_leaves_the_crowd_stream_alone():
    truths = random_truths(10, 5, seed=0)
    a, b = paper_crowd(seed=3), paper_crowd(seed=3)
    x = a.label_programs(truths, rng=np.random.default_rng(7))
    y = b.label_programs(truths, rng=7)
    pd.testing.assert_frame_equal(x, y)
    pd.testing.assert_frame_equal(a.label_programs(truths), paper_crowd(seed=3).label_programs(truths))


def test_synthetic_log_is_reproducible():
    a = synthetic_log(100, 5, 12, 4, seed=5)
    b = synthetic_log(100, 5, 12, 4, seed=5)
    c = synthetic_log(100, 5, 12, 4, seed=6)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    assert not a[0].equals(c[0])


# ------------------------------------------------------------------ crowd mixes
def test_paper_crowd_mix():
    crowd = paper_crowd()
    s = crowd.summary()
    assert len(crowd) == 30 and (s.kind == "reliable").all() and (s.coverage == 1).all()
    weak = s.accuracy.between(*WEAK_RANGE)
    strong = s.accuracy.between(*RELIABLE_RANGE)
    assert weak.sum() == 3 and strong.sum() == 27
    assert list(s.index) == [f"a{i:02d}" for i in range(30)]
    assert paper_crowd(n=7).summary().accuracy.between(*WEAK_RANGE).sum() == 1
    assert "30 reliable" in repr(crowd)


def test_noisy_crowd_mix():
    s = noisy_crowd().summary()
    counts = s.kind.value_counts().to_dict()
    assert counts == {"reliable": 24, "spammer": 4, "adversary": 1, "lazy": 1}
    rel = s[s.kind == "reliable"].accuracy
    assert rel.between(*WEAK_RANGE).sum() == 4 and rel.between(*RELIABLE_RANGE).sum() == 20
    assert s.loc[s.kind == "adversary", "accuracy"].tolist() == [0.3]
    small = noisy_crowd(n=6).summary().kind.value_counts().to_dict()  # 2 noisy: 1 spammer, 1 weak
    assert small == {"reliable": 5, "spammer": 1}
    assert (noisy_crowd(n=9, weak_fraction=0).summary().kind == "reliable").all()


def test_make_crowd_mix():
    crowd = make_crowd([0.9, 0.5, 0.2], spammers=1, adversaries=2, lazy_annotators=1,
                       adversary_accuracy=0.1, coverage=0.8, names=list("abcdefg"))
    s = crowd.summary()
    assert s.kind.tolist() == ["reliable", "spammer", "adversary", "spammer", "adversary",
                               "adversary", "lazy"]
    assert s.accuracy.tolist() == [0.9, 0.5, 0.2, 0.5, 0.1, 0.1, 0.5]
    assert (s.coverage == 0.8).all() and list(s.index) == list("abcdefg")
    assert crowd.accuracies["a"] == 0.9


# ------------------------------------------------------------------ gold and benchmark data
def test_gold_log_shape():
    crowd = make_crowd([0.9, 0.7], spammers=1, coverage=0.3, seed=0)  # coverage does not apply
    log, gold = crowd.gold_log(n_gold=5, lines=[3, 4, 5, 6, 7], wrong_rate=0.4)
    assert list(log.columns) == COLUMNS
    assert list(gold) == [f"gold-{j}" for j in range(5)]
    assert [len(t) for t in gold.values()] == [3, 4, 5, 6, 7]
    assert all(set(np.unique(t)) <= {1, -1} for t in gold.values())
    assert len(log) == 3 * 25
    assert (log.groupby("annotator").size() == 25).all()
    for (pid, _), g in log.groupby(["program_id", "annotator"]):
        assert g.line.tolist() == list(range(len(gold[pid])))  # every gold line, once
    default_log, default_gold = crowd.gold_log()
    assert len(default_gold) == 5 and len(default_log) == 3 * 5 * 8
    all_right, g1 = crowd.gold_log(n_gold=2, lines=4, wrong_rate=0.0)
    assert all((t == 1).all() for t in g1.values())
    _, g2 = crowd.gold_log(n_gold=2, lines=4, wrong_rate=1.0)
    assert all((t == -1).all() for t in g2.values())
    model = CrowdModel()
    result = model.replay(log, gold=gold)
    assert result.scores.gold.all() and len(model.annotators) == 3


def test_synthetic_log_shape_and_skill():
    log, truth = synthetic_log(2000, 6, 8, 3, accuracies=[0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.3],
                               correct_rate=0.6, seed=1)
    assert list(log.columns) == COLUMNS and list(truth.columns) == ["program_id", "line", "label"]
    assert len(log) == 2000 * 6 * 3 and len(truth) == 2000 * 6
    assert (log.groupby(["program_id", "line"]).size() == 3).all()
    assert within_binomial(int((truth.label == 1).sum()), len(truth), 0.6)
    merged = log.merge(truth, on=["program_id", "line"], suffixes=("", "_truth"))
    acc = (merged.label == merged.label_truth).groupby(merged.annotator).agg(["sum", "size"])
    for name, true_acc in zip(acc.index, [0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.3], strict=True):
        assert within_binomial(int(acc.loc[name, "sum"]), int(acc.loc[name, "size"]), true_acc), name
    everyone, _ = synthetic_log(10, 2, 4, 4)
    assert len(everyone) == 80


@pytest.mark.perf
def test_synthetic_log_million_labels_is_fast():
    synthetic_log(100, 10, 30, 4)  # warm up
    best = math.inf
    for seed in range(2):
        t0 = time.perf_counter()
        log, truth = synthetic_log(25_000, 10, 30, 4, seed=seed)
        best = min(best, time.perf_counter() - t0)
    assert len(log) == 1_000_000 and len(truth) == 250_000
    assert best < 1.0, f"1M labels took {best:.2f} s"


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("truth", [[1, 0, -1], [2], [1, -1, float("nan")], ["x", "y"],
                                   [[1, -1], [1, 1]], [True, False]])
def test_bad_truth_raises(truth):
    crowd = make_crowd([0.8])
    with pytest.raises(ValueError, match="truth"):
        crowd.label_program(truth)


def test_bad_arguments_raise_naming_the_field():
    crowd = make_crowd([0.9, 0.8, 0.7], seed=0)
    with pytest.raises(ValueError, match="k = 4"):
        crowd.label_program([1, -1], k=4)
    with pytest.raises(ValueError, match="k = 3"):
        crowd.label_program([1, -1], annotators=["a00", "a01"], k=3)
    with pytest.raises(ValueError, match="k"):
        crowd.label_programs([[1]], k=0)
    with pytest.raises(TypeError, match="k"):
        crowd.label_programs([[1]], k=1.5)
    with pytest.raises(ValueError, match="annotators: 'nobody'"):
        crowd.label_program([1], annotators=["nobody"])
    with pytest.raises(ValueError, match="annotators"):
        crowd.label_program([1], annotators=["a00", "a00"])
    with pytest.raises(KeyError, match="nobody"):
        crowd["nobody"]
    with pytest.raises(ValueError, match=r"truths\['p'\]"):
        crowd.label_programs({"p": [1, 3]})
    with pytest.raises(TypeError, match="truths"):
        crowd.label_programs(5)
    with pytest.raises(ValueError, match="accuracies"):
        make_crowd([0.8, 1.3])
    with pytest.raises(ValueError, match="names"):
        make_crowd([0.8, 0.9], names=["x"])
    with pytest.raises(ValueError, match="spammers"):
        make_crowd([0.8], spammers=-1)
    with pytest.raises(ValueError, match="accuracies"):
        make_crowd([])
    with pytest.raises(ValueError, match="n_gold"):
        crowd.gold_log(n_gold=0)
    with pytest.raises(ValueError, match="wrong_rate"):
        crowd.gold_log(wrong_rate=1.5)
    with pytest.raises(ValueError, match="lines"):
        crowd.gold_log(n_gold=2, lines=[3])
    with pytest.raises(ValueError, match="weak_fraction"):
        noisy_crowd(weak_fraction=2)
    with pytest.raises(ValueError, match="per_program"):
        synthetic_log(10, 5, 3, 4)
    with pytest.raises(ValueError, match="accuracies"):
        synthetic_log(10, 5, 3, 2, accuracies=[0.8, 0.9])
    with pytest.raises(ValueError, match="correct_rate"):
        random_truths(3, 3, correct_rate=-0.1)


# ------------------------------------------------------------------ properties
@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(0, 12), min_size=0, max_size=8),
       k=st.one_of(st.none(), st.integers(1, 5)), seed=st.integers(0, 2**32 - 1))
def test_label_frame_properties(lengths, k, seed):
    crowd = Crowd([reliable("r", 0.8), spammer("s"), adversary("a"), lazy("z"),
                   reliable("w", 0.55)], seed=seed)
    gen = np.random.default_rng(seed)
    truths = {f"p{j}": np.where(gen.random(n) < 0.5, 1, -1) for j, n in enumerate(lengths)}
    log = crowd.label_programs(truths, k=k)
    per = 5 if k is None else k
    assert len(log) == per * sum(lengths)
    assert set(log.label.unique()) <= {1, -1}
    assert (log.loc[log.annotator == "z", "label"] == 1).all()
    for pid, g in log.groupby("program_id"):
        assert g.line.max() < len(truths[pid]) and g.annotator.nunique() == per
    assert not log.duplicated(["program_id", "line", "annotator"]).any()


# ------------------------------------------------------------------ harsh, class-biased, code crowds
def test_harsh_and_biased_kinds():
    from crlhf.simulate import HARSH_RATES, biased, harsh

    h = harsh("h")
    assert (h.kind, h.sensitivity, h.specificity) == ("harsh", *HARSH_RATES)
    assert h.accuracy == pytest.approx(sum(HARSH_RATES) / 2)
    b = biased("b", 0.97, 0.4, coverage=0.5)
    assert (b.kind, b.sensitivity, b.specificity, b.accuracy, b.coverage) == ("biased", 0.97, 0.4, 0.685, 0.5)
    assert {"harsh", "biased"} <= set(KINDS)
    for kwargs, match in [({"kind": "harsh", "sensitivity": 0.9, "specificity": 0.5}, "below"),
                          ({"kind": "harsh", "accuracy": 0.7}, "harsh"),
                          ({"kind": "biased", "accuracy": 0.7}, "sensitivity and specificity"),
                          ({"kind": "biased", "sensitivity": 0.7, "specificity": 0.7}, "!=")]:
        with pytest.raises(ValueError, match=match):
            SimulatedAnnotator("x", **kwargs)
    with pytest.raises(TypeError, match="sensitivity"):
        biased("x", "high", 0.2)


def test_harsh_and_biased_label_at_their_rates():
    from crlhf.simulate import biased, harsh

    crowd = Crowd([harsh("h"), biased("b", 0.97, 0.4)], seed=4)
    truths = random_truths(3000, 10, correct_rate=0.5, seed=5)
    log = with_truth(crowd.label_programs(truths), truths)
    for name, g in log.groupby("annotator"):
        a = crowd[name]
        pos, neg = g[g.truth == 1], g[g.truth == -1]
        assert within_binomial(int((pos.label == 1).sum()), len(pos), a.sensitivity), name
        assert within_binomial(int((neg.label == -1).sum()), len(neg), a.specificity), name


def test_code_crowd_mix_and_seeds():
    from crlhf.simulate import (HARSH_SENSITIVITY, HARSH_SPECIFICITY, LENIENT_SENSITIVITY,
                                LENIENT_SPECIFICITY, RELIABLE_RANGE, code_crowd)

    crowd = code_crowd()
    s = crowd.summary()
    assert s.kind.value_counts().to_dict() == {"reliable": 12, "biased": 9, "lazy": 6, "harsh": 3}
    assert s[s.kind == "reliable"].accuracy.between(*RELIABLE_RANGE).all()
    harsh_ = s[s.kind == "harsh"]
    assert harsh_.sensitivity.between(*HARSH_SENSITIVITY).all() and harsh_.specificity.between(*HARSH_SPECIFICITY).all()
    lenient = s[s.kind == "biased"]
    assert lenient.sensitivity.between(*LENIENT_SENSITIVITY).all()
    assert lenient.specificity.between(*LENIENT_SPECIFICITY).all()
    pd.testing.assert_frame_equal(code_crowd(seed=3).summary(), code_crowd(seed=3).summary())
    assert not code_crowd(seed=3).summary().equals(s)
    assert code_crowd(10, lazy_fraction=0, harsh_fraction=0, lenient_fraction=0).summary().kind.eq("reliable").all()
    assert code_crowd(4, lazy_fraction=0.5, harsh_fraction=0.5,
                      lenient_fraction=0).summary().kind.value_counts().to_dict() == {"lazy": 2, "harsh": 2}
    with pytest.raises(ValueError, match="<= 1"):
        code_crowd(lazy_fraction=0.6, harsh_fraction=0.6)
    with pytest.raises(ValueError, match="lazy_fraction"):
        code_crowd(lazy_fraction=1.5)


def test_make_crowd_harsh_annotators():
    crowd = make_crowd([0.8], lazy_annotators=1, harsh_annotators=2)
    assert crowd.summary().kind.tolist() == ["reliable", "lazy", "harsh", "harsh"]
    with pytest.raises(TypeError, match="harsh_annotators"):
        make_crowd([0.8], harsh_annotators=1.5)
