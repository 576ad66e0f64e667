import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlhf.bayes import EPS, expit, log_odds, logit, posterior, score, update_reliability

probs = st.floats(0.0, 1.0, allow_nan=False)
inner_probs = st.floats(0.01, 0.99, allow_nan=False)
labels_st = st.sampled_from([1, -1, 0])


def enumerate_bayes(labels, reliabilities, prior):
    """P(L0 = 1 | labels) by explicit enumeration of L0 in {0, 1} (Bayes' theorem)."""
    joint = {}
    for truth in (1, 0):
        like = prior if truth else 1 - prior
        for eps, p in zip(labels, reliabilities, strict=True):
            if eps == 0:
                continue
            says_correct = eps == 1
            like *= p if says_correct == bool(truth) else 1 - p
        joint[truth] = like
    return joint[1] / (joint[1] + joint[0])


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.lists(labels_st, min_size=n, max_size=n),
    st.lists(inner_probs, min_size=n, max_size=n))), inner_probs)
def test_eq7_equals_bayes_by_enumeration(case, prior):
    labels, rel = case
    got = posterior(np.array([labels]), np.array(rel), prior=prior)[0]
    assert got == pytest.approx(enumerate_bayes(labels, rel, prior), abs=1e-12, rel=1e-9)


def test_eq2_one_annotator_by_hand():
    # p1 = 0.8 says "correct": expit(0 + logit(0.8)) = 0.8; "wrong": 0.2
    assert posterior([[1], [-1]], [0.8]) == pytest.approx([0.8, 0.2])
    # two annotators 0.8 and 0.6 agreeing: 0.8*0.6 / (0.8*0.6 + 0.2*0.4) = 0.857142...
    assert posterior([[1, 1]], [0.8, 0.6])[0] == pytest.approx(0.48 / 0.56)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(labels_st, inner_probs), min_size=1, max_size=6), inner_probs)
def test_sequential_updating_eq6_equals_batch_eq7(pairs, prior):
    labels = np.array([[eps for eps, _ in pairs]])
    rel = np.array([p for _, p in pairs])
    running = prior
    for eps, p in pairs:
        running = posterior(np.array([[eps]]), np.array([p]), prior=running)[0]
    assert running == pytest.approx(posterior(labels, rel, prior=prior)[0], abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.lists(st.lists(labels_st, min_size=n, max_size=n), min_size=1, max_size=5),
    st.lists(probs, min_size=n, max_size=n))))
def test_flipping_every_label_gives_one_minus_p(case):
    labels, rel = np.array(case[0]), np.array(case[1])
    assert posterior(-labels, rel) == pytest.approx(1 - posterior(labels, rel), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(labels_st, probs), min_size=1, max_size=5), probs)
def test_missing_labels_change_nothing(pairs, extra_p):
    labels = np.array([[eps for eps, _ in pairs]])
    rel = np.array([p for _, p in pairs])
    with_blank = np.hstack([labels, [[0]]])
    assert posterior(with_blank, np.append(rel, extra_p)) == pytest.approx(posterior(labels, rel))


def test_unreliable_annotator_counts_against_its_label():
    assert posterior([[1]], [0.2])[0] == pytest.approx(0.2)
    assert posterior([[1]], [0.5])[0] == pytest.approx(0.5)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6).flatmap(lambda n: st.tuples(
    st.lists(st.lists(labels_st, min_size=n, max_size=n), min_size=0, max_size=4),
    st.lists(probs, min_size=n, max_size=n))), probs)
def test_never_nan_or_inf_for_any_probability(case, prior):
    rows, rel = case
    labels = np.array(rows, dtype=int).reshape(len(rows), len(rel))
    post = posterior(labels, np.array(rel), prior=prior)
    assert np.isfinite(post).all() and ((post >= 0) & (post <= 1)).all()
    assert np.isfinite(log_odds(labels, np.array(rel), prior=prior)).all()


@settings(max_examples=300, deadline=None)
@given(probs, st.sampled_from([1, -1]), probs, st.floats(0, 10))
def test_update_reliability_is_finite_for_any_input(p, mu, pbar, lam):
    q = update_reliability(p, mu, pbar, lam)
    assert np.isfinite(q) and 0 <= q <= 1


def test_update_reliability_eq8_by_hand():
    # in odds: logit(p) + lam * mu * logit(pbar) multiplies the odds 7/3 by 9 ** (mu * 0.1)
    up, down = 7 / 3 * 9**0.1, 7 / 3 * 9**-0.1
    assert update_reliability(0.7, 1, 0.9, 0.1) == pytest.approx(up / (1 + up))  # 0.7440...
    assert update_reliability(0.7, -1, 0.9, 0.1) == pytest.approx(down / (1 + down))  # 0.6519...
    assert update_reliability(0.7, 1, 0.5, 0.1) == pytest.approx(0.7)  # pbar = 1/2 teaches nothing
    # pbar = 1 is legal: clipped to 1 - EPS, the odds 1 times ((1 - EPS) / EPS) ** 0.1 ~ 7.94
    odds = ((1 - EPS) / EPS) ** 0.1
    assert update_reliability(0.5, 1, 1.0, 0.1) == pytest.approx(odds / (1 + odds))
    got = update_reliability([0.6, 0.6], [1, -1], [0.8, 0.8], 0.5)
    assert got[0] > 0.6 > got[1]


def test_logit_and_expit_are_inverse_and_stable():
    x = np.array([-800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0])
    y = expit(x)
    assert np.isfinite(y).all() and y[0] == 0.0 and y[-1] == 1.0 and y[3] == 0.5
    inner = np.array([-15.0, -1.0, 0.0, 2.5, 15.0])  # within logit(1 - EPS) ~ 20.7
    assert logit(expit(inner)) == pytest.approx(inner, rel=1e-6)
    assert np.isfinite(logit([0.0, 1.0])).all()
    assert logit(1.0) == pytest.approx(-logit(0.0))
    assert expit(-40.0) == pytest.approx(np.exp(-40.0), rel=1e-12)  # relative precision kept in the tail
    # known values, not only the round trip: logit(0.8) = ln(0.8 / 0.2) = ln 4, expit(ln 3) = 3 / (1 + 3)
    assert logit(0.8) == pytest.approx(np.log(4.0)) and expit(np.log(3.0)) == pytest.approx(0.75)


def test_score_is_c_over_k():
    assert score([0.9, 0.2, 0.51, 0.5]) == 0.5  # strictly above tau
    assert score([0.9, 0.2, 0.51, 0.5], tau=0.1) == 1.0
    assert score([]) == 0.0
    assert score(np.zeros(0), tau=0.7) == 0.0


@pytest.mark.parametrize("labels, rel, match", [
    ([[2, 1]], [0.6, 0.6], r"labels\[0, 0\] = 2"),
    ([1, 1], [0.6, 0.6], "2 dimensions"),
    ([[1, 1]], [0.6], r"shape \(2,\)"),
    ([[1, 1]], [0.6, 1.5], r"\[0, 1\]"),
    ([[1, 1]], [0.6, np.nan], "NaN"),
    ([["a", "b"]], [0.6, 0.6], "integer array"),
])
def test_bad_input_names_the_field(labels, rel, match):
    with pytest.raises((ValueError, TypeError), match=match):
        posterior(labels, rel)


def test_bad_update_inputs():
    with pytest.raises(ValueError, match="mu"):
        update_reliability(0.6, 0, 0.9, 0.1)
    with pytest.raises(ValueError, match="lam"):
        update_reliability(0.6, 1, 0.9, -1)
    with pytest.raises(ValueError, match="pbar|p must"):
        update_reliability(0.6, 1, 1.2, 0.1)
    with pytest.raises(ValueError, match="tau"):
        score([0.5], tau=2)


def test_dense_posterior_matches_enumeration_on_all_patterns_of_three():
    rel = np.array([0.9, 0.65, 0.3])
    rows = np.array(list(itertools.product([1, -1, 0], repeat=3)))
    expect = [enumerate_bayes(r, rel, 0.5) for r in rows]
    assert posterior(rows, rel) == pytest.approx(expect)


# ------------------------------------------------------------------ two coins
def test_two_coin_with_equal_coins_and_prior_half_is_eq7():
    from crlhf.bayes import two_coin_log_odds, two_coin_posterior

    rng = np.random.default_rng(0)
    labels = rng.choice([1, -1, 0], size=(50, 7))
    p = rng.uniform(0.01, 0.99, 7)
    np.testing.assert_allclose(two_coin_log_odds(labels, p, p), log_odds(labels, p), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(two_coin_posterior(labels, p, p, prior=0.5), posterior(labels, p), rtol=1e-12)


def test_two_coin_posterior_by_enumeration():
    """P(correct | labels) = pi prod P(eps_i | correct) / sum over both truths, written out."""
    from crlhf.bayes import two_coin_posterior

    a, b, pi = np.array([0.9, 0.6, 0.99]), np.array([0.7, 0.95, 0.2]), 0.8
    labels = np.array([[1, 1, 1], [-1, 1, 0], [0, -1, -1], [0, 0, 0], [-1, -1, 1]])
    for row, got in zip(labels, two_coin_posterior(labels, a, b, prior=pi), strict=True):
        like_c = np.prod([a[i] if e > 0 else 1 - a[i] for i, e in enumerate(row) if e])
        like_w = np.prod([1 - b[i] if e > 0 else b[i] for i, e in enumerate(row) if e])
        assert got == pytest.approx(pi * like_c / (pi * like_c + (1 - pi) * like_w), rel=1e-12)


def test_two_coin_lazy_annotator_adds_nothing_and_extremes_stay_finite():
    from crlhf.bayes import two_coin_log_odds, two_coin_weights

    w_pos, w_neg = two_coin_weights([1.0, 0.7, 0.0, 1.0], [0.0, 0.3, 1.0, 1.0])
    assert w_pos[:2] == pytest.approx([0.0, 0.0], abs=1e-6) and w_neg[:2] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert np.isfinite(w_pos).all() and np.isfinite(w_neg).all()
    out = two_coin_log_odds(np.array([[1, -1, 1, -1]]), [1.0, 0.7, 0.0, 1.0], [0.0, 0.3, 1.0, 1.0], prior=1.0)
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="sensitivities"):
        two_coin_log_odds(np.ones((2, 3), int), [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="specificities"):
        two_coin_weights([0.5], [1.5])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.sampled_from([1, -1, 0]), min_size=n, max_size=n), min_size=0, max_size=8),
    st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n),
    st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n),
    st.floats(0.0, 1.0))))
def test_two_coin_posterior_is_never_nan_or_inf(case):
    from crlhf.bayes import two_coin_log_odds, two_coin_posterior

    rows, a, b, prior = case
    labels = np.array(rows, dtype=int).reshape(len(rows), len(a))
    assert np.isfinite(two_coin_log_odds(labels, a, b, prior)).all()
    post = two_coin_posterior(labels, a, b, prior)
    assert np.isfinite(post).all() and ((post >= 0) & (post <= 1)).all()
