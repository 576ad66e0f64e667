"""pass@k against exact rational values."""

from fractions import Fraction
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlhf.passk import pass_at_k


def exact(n, c, k):
    return Fraction(1) - Fraction(comb(n - c, k), comb(n, k))


def close(got, want):
    return abs(got - float(want)) <= 1e-12 + 1e-10 * float(want)


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 5), (10, 3, 8),
                                   (10, 3, 10), (20, 0, 10), (20, 20, 10), (200, 1, 100),
                                   (200, 13, 10), (200, 199, 100), (1000, 7, 100)])
def test_scalar_matches_exact_value(n, c, k):
    got = pass_at_k(n, c, k)
    assert isinstance(got, float)
    assert close(got, exact(n, c, k))


def test_vectorised_over_problems_matches_exact_values():
    n = np.array([200, 200, 50, 10, 10, 37])
    c = np.array([0, 3, 50, 9, 1, 12])
    got = pass_at_k(n, c, 10)
    assert got.shape == (6,)
    for g, ni, ci in zip(got, n, c, strict=True):
        assert close(g, exact(int(ni), int(ci), 10))


def test_scalar_n_broadcasts_over_problems():
    got = pass_at_k(20, [0, 5, 20], 3)
    assert np.allclose(got, [float(exact(20, c, 3)) for c in (0, 5, 20)])


def test_fewer_failures_than_k_is_certain_success():
    assert pass_at_k(10, 8, 3) == 1.0  # n - c = 2 < k: every k-subset holds a pass
    assert exact(10, 8, 3) == 1


def test_no_correct_samples_gives_zero():
    assert pass_at_k(100, 0, 1) == 0.0
    assert np.all(pass_at_k([5, 50, 500], 0, 5) == 0.0)


def test_pass_at_1_is_the_fraction_correct():
    assert close(pass_at_k(40, 13, 1), Fraction(13, 40))


def test_k_larger_than_n_is_a_clear_error():
    with pytest.raises(ValueError, match="k=5 exceeds the number of samples"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k([10, 3], [1, 1], 5)


@pytest.mark.parametrize("n,c,k,err", [(5, 6, 1, ValueError), (5, -1, 1, ValueError),
                                       (5, 1, 0, ValueError), (5, 1, 1.5, TypeError),
                                       (5, 1, True, TypeError), (5.5, 1, 1, TypeError),
                                       ([5, 5], ["a", "b"], 1, TypeError)])
def test_bad_input_is_rejected(n, c, k, err):
    with pytest.raises(err):
        pass_at_k(n, c, k)


def test_whole_floats_are_accepted():
    assert close(pass_at_k(10.0, np.float64(3), 2), exact(10, 3, 2))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 400).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_exact_formula_for_any_counts(nck):
    n, c, k = nck
    assert close(pass_at_k(n, c, k), exact(n, c, k))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=30), st.integers(1, 60))
def test_vector_equals_elementwise(cs, k):
    n = 60
    got = pass_at_k(n, cs, k)
    assert got.shape == (len(cs),)
    assert np.all((got >= 0) & (got <= 1))
    for g, c in zip(got, cs, strict=True):
        assert g == pass_at_k(n, c, k)
        assert close(g, exact(n, c, k))


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_tasks():
    from crlhf.passk import bootstrap_interval

    rng = np.random.default_rng(0)
    few = rng.random(20) < 0.4
    many = rng.random(2000) < 0.4
    lo, hi = bootstrap_interval(few.astype(float))
    assert lo <= few.mean() <= hi and 0.0 <= lo < hi <= 1.0
    lo2, hi2 = bootstrap_interval(many.astype(float))
    assert lo2 <= many.mean() <= hi2
    assert (hi2 - lo2) < (hi - lo) / 4  # width ~ 1/sqrt(tasks)
    assert bootstrap_interval(few.astype(float), seed=3) == bootstrap_interval(few.astype(float), seed=3)
    assert bootstrap_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_bootstrap_interval_of_pass_fail_tasks_is_the_binomial_quantiles():
    """An independent reference: with one pass (1) or fail (0) per task, a resample's mean is
    Binomial(n, c/n) / n exactly, so the percentile interval is that law's quantiles (computed
    here with exact binomial sums), up to one step 1/n of sampling and interpolation noise.
    At n = 400 the 90% and 95% quantiles lie 3 steps apart, so a wrong level is caught."""
    from crlhf.passk import bootstrap_interval

    n, c = 400, 140
    pmf = [Fraction(comb(n, k) * c**k * (n - c) ** (n - k), n**n) for k in range(n + 1)]

    def quantile(q):  # the smallest k with P(K <= k) >= q
        total = Fraction(0)
        for k, p in enumerate(pmf):
            total += p
            if total >= q:
                return k / n
        return 1.0

    values = np.array([1.0] * c + [0.0] * (n - c))
    lo, hi = bootstrap_interval(values, level=0.95, n_boot=20000, seed=1)
    assert abs(lo - quantile(Fraction(25, 1000))) <= 1 / n and abs(hi - quantile(Fraction(975, 1000))) <= 1 / n
    lo90, hi90 = bootstrap_interval(values, level=0.90, n_boot=20000, seed=1)
    assert abs(lo90 - quantile(Fraction(5, 100))) <= 1 / n and abs(hi90 - quantile(Fraction(95, 100))) <= 1 / n
    assert lo90 - lo >= 2 / n and hi - hi90 >= 2 / n


@pytest.mark.parametrize("bad, field", [([], "empty"), ([0.1, np.nan], "NaN"), ([0.1, np.inf], "NaN")])
def test_bootstrap_interval_rejects_bad_values(bad, field):
    from crlhf.passk import bootstrap_interval

    with pytest.raises(ValueError, match=field):
        bootstrap_interval(bad)
