import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlhf.bayes import posterior
from crlhf.crowd import CrowdModel, counted_lines, latest_labels
from crlhf.replay import labels_frame

PROGRAM = "def f(xs):\n    total = 0\n\n    # add them up\n    for x in xs:\n        total += x\n    return total\n"


def frame(rows, program_id="p"):
    return pd.DataFrame(rows, columns=["line", "annotator", "label"]).assign(program_id=program_id)


def test_posteriors_use_reliabilities_as_they_stood():
    m = CrowdModel(nu=0.7, lam=0.5).add_annotators(["a", "b", "c"])
    res = m.ingest({"a": [1, 1], "b": [1, -1], "c": [-1, -1]})
    # eq (7) at p_i = 0.7 (w = logit 0.7): line 0 is +w +w -w = w -> 0.7, line 1 is +w -w -w = -w -> 0.3
    assert res.posteriors == pytest.approx([0.7, 0.3])
    assert list(res.consensus) == [1, -1]
    assert res.score == 0.5
    assert m.reliabilities.index.tolist() == ["a", "b", "c"]


def test_eq8_batch_update_by_hand_with_and_without_leave_one_out():
    """Eq (8) summed over a program's lines, worked out by hand. All start at p = 0.7 (w = logit 0.7
    = ln 7/3), lam = 0.5. Line 0 has labels a+ b+ c-, log-odds S0 = w; line 1 has a+ b- c-, S1 = -w.
    Each line steps annotator i by clip(label_i * S, +-logit p_max); with leave_one_out S is replaced
    by S - label_i * w, the others' consensus."""
    labels = {"a": [1, 1], "b": [1, -1], "c": [-1, -1]}
    sqrt3 = np.sqrt(3.0)
    cases = {
        # without leave-one-out: a steps w - w = 0; b steps w + w -> expit(w + 0.5 * 2w) = expit(2w)
        # = (7/3)^2 / (1 + (7/3)^2) = .49 / (.49 + .09); c steps -w + w = 0
        (False, 0.99): {"a": 0.7, "b": 0.49 / 0.58, "c": 0.7},
        # leave-one-out: a is judged on w - w = 0 and -w - w = -2w -> expit(w + 0.5 * -2w) = 1/2;
        # b on 0 and 0; c on -w - w = -2w and w - w = 0
        (True, 0.99): {"a": 0.5, "b": 0.7, "c": 0.5},
        # p_max = 0.75 (logit = ln 3 < 2w): b's 2w ends above the cap and stops at 0.75
        (False, 0.75): {"a": 0.7, "b": 0.75, "c": 0.7},
        # ... and a's -2w on line 1 is clipped to -ln 3: odds (7/3) / sqrt(3) -> p = 7 / (7 + 3 sqrt 3)
        (True, 0.75): {"a": 7 / (7 + 3 * sqrt3), "b": 0.7, "c": 7 / (7 + 3 * sqrt3)},
    }
    for (loo, p_max), want in cases.items():
        m = CrowdModel(nu=0.7, lam=0.5, leave_one_out=loo, p_max=p_max, reliability="eq8").add_annotators(list("abc"))
        m.ingest(labels)
        assert m.reliabilities.to_dict() == pytest.approx(want), (loo, p_max)


def test_order_of_labels_inside_a_program_does_not_matter():
    rng = np.random.default_rng(3)
    lab = rng.choice([1, -1], size=(8, 5))
    f = labels_frame(lab, list("abcde"))
    warm_up = labels_frame(rng.choice([1, -1], size=(3, 5)), list("abcde"))
    results = []
    for seed in range(4):
        m = CrowdModel().add_annotators(list("abcde"))
        m.ingest(warm_up)  # unequal p_i
        shuffled = f.sample(frac=1.0, random_state=seed) if seed else f
        res = m.ingest(shuffled, n_lines=8)
        results.append((res.posteriors, m.reliabilities.to_numpy()))
    for post, rel in results[1:]:
        assert post == pytest.approx(results[0][0]) and rel == pytest.approx(results[0][1])


def test_dict_and_frame_inputs_agree_and_the_last_label_wins():
    a = CrowdModel().add_annotators(["x", "y"])
    b = CrowdModel().add_annotators(["x", "y"])
    ra = a.ingest({"x": [1, 0, -1], "y": [1, 1, 1]})
    rb = b.ingest(frame([(0, "x", -1), (0, "x", 1), (2, "x", -1), (0, "y", 1), (1, "y", 1),
                         (2, "y", 1)]), n_lines=3)
    assert ra.posteriors == pytest.approx(rb.posteriors)
    assert a.reliabilities.to_numpy() == pytest.approx(b.reliabilities.to_numpy())


def test_calibration_on_gold_moves_each_annotator_by_its_agreements():
    m = CrowdModel(nu=0.6, lam=0.1, gold_certainty=0.9, p_min=0.01, p_max=0.99, reliability="eq8")
    m.add_annotators(["good", "bad", "idle"])
    truth = [1, -1, 1, 1]
    res = m.calibrate({"good": [1, -1, 1, 0], "bad": [-1, 1, 1, -1], "idle": [0, 0, 0, 0]}, truth)
    # eq (8) on gold, in odds: each agreement multiplies the odds 0.6/0.4 by 9 ** 0.1 (logit 0.9 = ln 9),
    # each disagreement divides them; good: 3 agree (its 0 adds nothing), bad: 1 agrees, 3 disagree
    good, bad = 1.5 * 9**0.3, 1.5 * 9**-0.2
    assert m.reliability_of("good") == pytest.approx(good / (1 + good))  # 0.7436...
    assert m.reliability_of("bad") == pytest.approx(bad / (1 + bad))  # 0.4915...
    assert m.reliability_of("idle") == pytest.approx(0.6)
    assert res.gold


def test_reliabilities_stay_inside_p_min_p_max():
    m = CrowdModel(nu=0.7, lam=5.0, p_min=0.1, p_max=0.9, reliability="eq8").add_annotators(["a", "b"])
    for _ in range(20):
        m.calibrate({"a": [1] * 5, "b": [-1] * 5}, [1] * 5)
    assert m.reliability_of("a") == pytest.approx(0.9)
    assert m.reliability_of("b") == pytest.approx(0.1)


def test_leave_one_out_single_labeller_learns_nothing():
    m = CrowdModel(leave_one_out=True, reliability="eq8").add_annotators(["solo"])
    m.ingest({"solo": [1, -1, 1]})
    assert m.reliability_of("solo") == pytest.approx(m.nu)
    m2 = CrowdModel(leave_one_out=False, reliability="eq8").add_annotators(["solo"])
    m2.ingest({"solo": [1, -1, 1]})
    assert m2.reliability_of("solo") > m2.nu  # self-agreement reinforces without leave-one-out


def test_counted_lines_and_score_of_a_real_program():
    counted = counted_lines(PROGRAM)
    assert counted.tolist() == [True, True, False, False, True, True, True]
    assert counted_lines(PROGRAM, count_blank=True).all()
    m = CrowdModel().add_annotators(["a"])
    res = m.ingest({"a": [1, 1, -1, -1, 1, -1, 0]}, program=PROGRAM)
    # counted lines 0, 1, 4, 5, 6: posteriors > 0.5 at 0, 1, 4 -> 3 / 5
    assert res.score == pytest.approx(3 / 5)
    empty = CrowdModel().add_annotators(["a"]).ingest({}, program="")
    assert empty.score == 0.0 and len(empty.posteriors) == 0


def test_beta_reliability_estimates_accuracy_on_gold():
    rng = np.random.default_rng(0)
    m = CrowdModel(reliability="beta").add_annotators(["a", "b"])
    for _ in range(100):
        truth = rng.choice([1, -1], size=10)
        a = np.where(rng.random(10) < 0.8, truth, -truth)
        b = np.where(rng.random(10) < 0.6, truth, -truth)
        m.calibrate({"a": a, "b": b}, truth)
    assert m.reliability_of("a") == pytest.approx(0.8, abs=0.05)
    assert m.reliability_of("b") == pytest.approx(0.6, abs=0.05)


def test_history_is_tidy_and_complete():
    m = CrowdModel(nu=0.65, reliability="eq8").add_annotators(["a", "b"])
    m.ingest({"a": [1, 1], "b": [1, -1]}, program_id="p1")
    m.add_annotators(["c"])
    m.ingest({"a": [1], "c": [-1]}, program_id="p2")
    h = m.history
    assert list(h.columns) == ["step", "program_id", "annotator", "reliability", "sensitivity", "specificity"]
    assert (h.sensitivity == h.reliability).all() and (h.specificity == h.reliability).all()  # one coin
    assert h[h.step == 0].reliability.tolist() == [0.65, 0.65]
    assert set(h[h.program_id == "p1"].annotator) == {"a", "b"}
    assert h[h.annotator == "c"].step.tolist() == [1, 2]  # registered after step 1
    last = h.groupby("annotator").reliability.last()
    assert last.to_dict() == pytest.approx(m.reliabilities.to_dict())


def test_replay_equals_ingesting_program_by_program():
    rng = np.random.default_rng(1)
    names = [f"w{i}" for i in range(6)]
    truths = {f"g{j}": rng.choice([1, -1], size=4) for j in range(2)}
    parts = []
    online = CrowdModel(reliability="eq8", lam=0.2).add_annotators(names)
    for pid, truth in truths.items():
        lab = np.where(rng.random((4, 6)) < 0.8, truth[:, None], -truth[:, None])
        f = labels_frame(lab, names, pid)
        parts.append(f)
        online.calibrate(f, truth, program_id=pid)
    expect = []
    for j in range(30):
        lab = rng.choice([1, -1, 0], size=(5, 6))
        lab[:, 0] = 1  # every program has all its lines
        f = labels_frame(lab, names, f"p{j}")
        parts.append(f)
        expect.append(online.ingest(f, n_lines=5, program_id=f"p{j}").score)
    log = pd.concat(parts, ignore_index=True)
    replayed = CrowdModel(reliability="eq8", lam=0.2)
    out = replayed.replay(log, gold=truths)
    assert replayed.reliabilities.to_numpy() == pytest.approx(online.reliabilities.to_numpy())
    got = out.scores.set_index("program_id").score
    assert [got[f"p{j}"] for j in range(30)] == pytest.approx(expect)
    assert out.scores.gold.sum() == 2
    assert len(out.lines) == 2 * 4 + 30 * 5
    assert replayed.history.reliability.to_numpy() == pytest.approx(
        online.history.reliability.to_numpy())


def test_replay_sorts_by_order_and_keeps_the_latest_label():
    log = pd.DataFrame({"program_id": ["p", "p", "p"], "line": [0, 0, 0],
                        "annotator": ["a", "b", "a"], "label": [-1, 1, 1], "order": [2, 1, 0]})
    m = CrowdModel(nu=0.7)
    out = m.replay(log)
    # after sorting by order the last row of annotator a says -1: a and b disagree
    assert out.lines.posterior.iloc[0] == pytest.approx(0.5)


def test_latest_labels_keeps_each_annotators_last_label_per_line_and_every_column():
    log = pd.DataFrame({"program_id": ["p", "p", "p", "q", "p"], "line": [0, 0, 1, 0, 0],
                        "annotator": ["a", "b", "a", "a", "a"], "label": [1, 1, -1, 1, -1],
                        "order": [0, 1, 2, 3, 4], "round": [1, 1, 1, 1, 2]})
    out = latest_labels(log.iloc[::-1])  # given out of order: "order" decides
    assert out["order"].tolist() == [1, 2, 3, 4]  # a's first label of p line 0 (order 0) was replaced
    assert out.loc[out.order == 4, "round"].item() == 2 and list(out.columns) == list(log.columns)
    no_order = log.drop(columns="order")
    assert latest_labels(no_order).index.tolist() == [1, 2, 3, 4]  # as given: the last row wins
    one_program = log[log.program_id == "p"].drop(columns="program_id")  # as CrowdModel.ingest takes it
    assert latest_labels(one_program)["order"].tolist() == [1, 2, 4]
    with pytest.raises(ValueError, match=r"lack column\(s\) \['annotator'\]"):
        latest_labels(log.drop(columns="annotator"))


def test_replay_with_program_texts_counts_lines():
    log = frame([(0, "a", 1), (4, "a", -1), (6, "a", 1)], program_id="q")
    out = CrowdModel().replay(log, programs={"q": PROGRAM})
    assert out.scores.k.tolist() == [5] and len(out.lines) == 7
    assert out.lines.counted.tolist() == counted_lines(PROGRAM).tolist()


labels_st = st.sampled_from([1, -1, 0])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(labels_st, min_size=3, max_size=3), min_size=0, max_size=6),
    st.floats(0.0, 1.0), st.floats(0.0, 50.0), st.floats(0.5, 1.0, exclude_min=True,
                                                         exclude_max=True),
    st.booleans(), st.sampled_from(["eq8", "beta", "two_coin"]), st.booleans(),
    st.floats(0.0, 0.49), st.floats(0.01, 1e6),
)
def test_never_nan_or_inf(rows, nu, lam, gc, loo, rel, gold, floor, strength):
    m = CrowdModel(nu=min(max(nu, 0.05), 0.95), lam=lam, gold_certainty=gc, leave_one_out=loo,
                   reliability=rel, prior_floor=floor, beta_strength=strength).add_annotators(["a", "b", "c"])
    lab = np.array(rows, dtype=int).reshape(len(rows), 3)
    for _ in range(3):
        labels = {n: lab[:, j] for j, n in enumerate("abc")}
        res = (m.calibrate(labels, np.ones(len(rows), int)) if gold and len(rows)
               else m.ingest(labels))
        assert np.isfinite(res.posteriors).all() and np.isfinite(res.score)
        assert np.isfinite(m.reliabilities.to_numpy()).all()
        assert np.isfinite(m.log_likelihood_ratios.to_numpy()).all() and np.isfinite(m.line_prior)
        assert np.isfinite(m.history[["reliability", "sensitivity", "specificity"]].to_numpy()).all()


@pytest.mark.parametrize("call, match", [
    (lambda m: m.ingest({"zed": [1]}), "annotator 'zed' is not registered"),
    (lambda m: m.ingest({"a": [1, 2]}), "annotator 'a' must be"),
    (lambda m: m.ingest(frame([(0, "a", 3)])), "label 3"),
    (lambda m: m.ingest(frame([(5, "a", 1)]), n_lines=2), "line 5 is out of range"),
    (lambda m: m.ingest(frame([(-1, "a", 1)]), n_lines=2), "line -1 is out of range"),
    (lambda m: m.ingest(frame([(0.5, "a", 1)])), "line must be an integer"),
    (lambda m: m.ingest({"a": [1, 1], "b": [1]}), "different numbers of lines"),
    (lambda m: m.ingest({"a": [1, 1]}, program="x = 1\n"), "the program has 1"),
    (lambda m: m.ingest(pd.DataFrame({"line": [0], "label": [1]})), r"\['annotator'\]"),
    (lambda m: m.ingest([1, -1]), "labels must be a DataFrame"),
    (lambda m: m.calibrate({"a": [1, 1]}, [1, 0]), "truth"),
    (lambda m: m.replay(pd.DataFrame({"program_id": [1], "line": [0], "annotator": ["a"]})),
     r"\['label'\]"),
    (lambda m: m.replay(pd.DataFrame({"program_id": [1, 1], "line": [0, 0],
                                      "annotator": ["a", "b"], "label": [1, 0]})),
     "log row 1: label 0"),
    (lambda m: m.replay(pd.DataFrame({"program_id": ["q"], "line": [9], "annotator": ["a"],
                                      "label": [1]}), programs={"q": "x = 1"}), "line 9"),
])
def test_bad_input_raises_a_clear_error(call, match):
    m = CrowdModel().add_annotators(["a", "b"])
    with pytest.raises((ValueError, TypeError), match=match):
        call(m)


@pytest.mark.parametrize("kwargs, match", [
    ({"nu": 1.2}, "nu"), ({"lam": -1}, "lam"), ({"tau": 2}, "tau"),
    ({"gold_certainty": 1.0}, "gold_certainty"), ({"p_min": 0.6, "p_max": 0.5}, "p_min"),
    ({"reliability": "mle"}, "reliability"), ({"prior": 0.0}, "prior"),
    ({"nu": 0.995}, "nu"), ({"reliability": "two-coin"}, r"reliability must be one of \('eq8', 'beta', 'two_coin'\)"),
    ({"reliability": None}, "reliability"), ({"prior_floor": 0.5}, "prior_floor"),
    ({"prior_floor": -0.1}, "prior_floor"), ({"beta_strength": 0}, "beta_strength"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrowdModel(**kwargs)


# ------------------------------------------------------------------ two coins
def brute_force_posterior(labels: dict, a: pd.Series, b: pd.Series, pi: float) -> np.ndarray:
    """P(line correct | labels) by enumerating both truths of each line and multiplying out."""
    n = len(next(iter(labels.values())))
    out = []
    for j in range(n):
        like = {True: pi, False: 1 - pi}
        for name, seq in labels.items():
            e = seq[j]
            if e == 0:
                continue
            like[True] *= a[name] if e > 0 else 1 - a[name]
            like[False] *= 1 - b[name] if e > 0 else b[name]
        out.append(like[True] / (like[True] + like[False]))
    return np.array(out)


def test_two_coin_first_program_is_eq7_exactly():
    """With a_i = b_i = nu (a fresh crowd) and the prior at 1/2, two coins give eq (7) to the bit."""
    labels = {"a": [1, 1, -1, 0], "b": [1, -1, -1, 1], "c": [-1, -1, 1, 1]}
    one = CrowdModel(nu=0.8, reliability="beta").add_annotators(list("abc")).assess(labels)
    two = CrowdModel(nu=0.8, reliability="two_coin").add_annotators(list("abc")).assess(labels)
    assert np.array_equal(one.posteriors, two.posteriors)
    expect = posterior(np.array([labels[n] for n in "abc"]).T, [0.8, 0.8, 0.8])
    assert np.array_equal(two.posteriors, expect)


def test_two_coin_posterior_equals_enumeration_after_learning():
    rng = np.random.default_rng(5)
    m = CrowdModel(reliability="two_coin", p_min=0.01, p_max=0.99).add_annotators(list("abcd"))
    for _ in range(20):  # learn unequal coins and a prior away from 1/2
        truth = np.where(rng.random(6) < 0.8, 1, -1)
        labels = {"a": truth, "b": np.ones(6, int), "c": -np.ones(6, int),
                  "d": np.where(rng.random(6) < 0.7, truth, -truth)}
        m.ingest(labels)
    a, b, pi = m.sensitivities, m.specificities, m.line_prior
    assert not np.allclose(a, b) and pi != 0.5
    for labels in ({"a": [1, -1, 1, 0], "b": [1, 1, 0, 0], "c": [-1, -1, -1, 0], "d": [0, -1, 1, 0]},
                   {"a": [0], "b": [1], "c": [0], "d": [0]}):
        got = m.assess(labels).posteriors
        np.testing.assert_allclose(got, brute_force_posterior(labels, a, b, pi), rtol=1e-10)
    w = m.log_likelihood_ratios
    np.testing.assert_allclose(w.plus, np.log(a / (1 - b)), rtol=1e-12)
    np.testing.assert_allclose(w.minus, np.log((1 - a) / b), rtol=1e-12)


def test_two_coin_update_by_hand():
    """One ordinary program: each label adds q = P(correct | labels) to its coin counts, the
    labelled lines add q to the prior's; a gold program uses gold_certainty for q."""
    m = CrowdModel(nu=0.7, beta_strength=10, reliability="two_coin", p_min=0.001, p_max=0.999)
    m.add_annotators(["a", "b"])
    labels = {"a": [1, 1, -1], "b": [1, -1, 0]}
    q = m.assess(labels).posteriors
    # a fresh crowd is eq (7) at 0.7 with prior 1/2: (+,+) -> .49 / (.49 + .09), (+,-) -> 1/2, (-, none) -> .3
    assert q == pytest.approx([0.49 / 0.58, 0.5, 0.3])
    m.ingest(labels)
    # a: +1 on lines 0, 1 and -1 on line 2; b: +1 on line 0, -1 on line 1
    sens_a = (7 + q[0] + q[1]) / (10 + q[0] + q[1] + q[2])
    spec_a = (7 + (1 - q[2])) / (10 + 3 - q.sum())
    sens_b = (7 + q[0]) / (10 + q[0] + q[1])
    spec_b = (7 + (1 - q[1])) / (10 + 2 - q[0] - q[1])
    assert m.sensitivities.to_dict() == pytest.approx({"a": sens_a, "b": sens_b})
    assert m.specificities.to_dict() == pytest.approx({"a": spec_a, "b": spec_b})
    assert m.line_prior == pytest.approx((50 + q.sum()) / 103)  # prior_strength 100
    assert m.reliabilities.to_dict() == pytest.approx({"a": (sens_a + spec_a) / 2, "b": (sens_b + spec_b) / 2})
    m.calibrate({"a": [1, 1], "b": [-1, 1]}, [1, -1])
    assert m.line_prior == pytest.approx((50 + q.sum() + 0.99 + 0.01) / 105)
    assert m.sensitivities["b"] == pytest.approx((7 + q[0] + 0.01) / (10 + q[0] + q[1] + 0.99 + 0.01))
    h = m.history
    assert h[h.step == 2].set_index("annotator").sensitivity.to_dict() == pytest.approx(m.sensitivities.to_dict())


def test_two_coin_prior_floor_keeps_the_crowd_from_all_correct():
    priors = {}
    for floor in (0.0, 0.1):
        m = CrowdModel(reliability="two_coin", prior_floor=floor, prior_strength=1).add_annotators(["a", "b"])
        for _ in range(200):  # a crowd that calls every line correct
            m.ingest({"a": np.ones(10, int), "b": np.ones(10, int)})
        priors[floor] = m.line_prior
        if floor:  # with the floor the wrong lines keep some weight: both are seen to be lazy
            assert np.abs(m.log_likelihood_ratios.to_numpy()).max() < 1e-9
    assert priors[0.0] > 0.95 and priors[0.1] == pytest.approx(0.9)


def test_lazy_annotator_likelihood_ratio_goes_to_one():
    """On code-shaped data (85% of lines correct) a lazy annotator earns a high p_i under one coin,
    while under two coins both of its likelihood ratios go to 1: it tells nothing."""
    from crlhf.simulate import Crowd, lazy, random_truths, reliable

    crowd = Crowd([reliable(f"r{i}", a) for i, a in enumerate([0.65, 0.7, 0.75, 0.8, 0.85])]
                  + [lazy("z1"), lazy("z2")], seed=0)
    truth = random_truths(300, 8, correct_rate=0.85, seed=1)
    log = crowd.label_programs(truth)
    beta = CrowdModel(reliability="beta").add_annotators(crowd.names)
    beta.replay(log)
    assert beta.reliability_of("z1") > beta.reliabilities[[f"r{i}" for i in range(5)]].max()
    two = CrowdModel(reliability="two_coin").add_annotators(crowd.names)
    two.replay(log)
    ratios = np.exp(two.log_likelihood_ratios)
    # a lazy annotator only ever says +1: that label's ratio is ~1 (a_i at p_max, b_i near 0)
    assert ratios.loc[["z1", "z2"], "plus"].to_numpy() == pytest.approx([1, 1], abs=0.05)
    assert np.exp(beta.log_likelihood_ratios.loc["z1", "plus"]) > 15  # one coin: logit(0.95)
    assert two.reliabilities[["z1", "z2"]].to_numpy() == pytest.approx([0.5, 0.5], abs=0.05)
    honest = [f"r{i}" for i in range(5)]
    assert (ratios.loc[honest, "plus"] > 1.5).all() and (two.reliabilities[honest] > 0.6).all()
    assert abs(two.line_prior - 0.85) < 0.1
