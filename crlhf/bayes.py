"""Bayesian aggregation of line labels: equations (1)-(8) of the cRLHF paper, vectorised.

Notation: a line has an unknown truth ``L0`` (1 = correct); annotator ``i`` gives a label
``eps_i`` in {+1 (correct), -1 (wrong)} and is right with probability ``p_i`` (its reliability).

- eq (2)-(5), one annotator:  ``P(L0=1 | eps) = expit(logit(p0) + eps * logit(p1))``
- eq (6)-(7), n independent annotators:
  ``P(L0=1 | eps_1..n) = expit(logit(p0) + sum_i eps_i * logit(p_i))``
- eq (8), reliability update: ``p_i <- expit(logit(p_i) + lam * mu * logit(pbar))``
- reward: ``s = c / k``, ``c`` = lines whose posterior exceeds ``tau``, ``k`` = lines counted.
- two coins (Dawid & Skene 1979; Raykar et al. 2010): annotator ``i`` has a sensitivity
  ``a_i = P(eps=+1 | L0=1)`` and a specificity ``b_i = P(eps=-1 | L0=0)``; eq (7) becomes
  ``logit(p0) + sum_i [eps_i=+1] log(a_i/(1-b_i)) + [eps_i=-1] log((1-a_i)/b_i)``, which is
  eq (7) exactly when ``a_i = b_i = p_i``.

Probabilities are clipped into ``[EPS, 1 - EPS]`` before a logit so that ``p = 0``, ``p = 1``
and ``pbar = 1`` give finite results; tighter bounds are the crowd model's policy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EPS", "logit", "expit", "log_odds", "posterior", "two_coin_weights", "two_coin_log_odds",
           "two_coin_posterior", "update_reliability", "score"]

EPS = 1e-9
"""Smallest distance from 0 or 1 a probability keeps before a logit (logit(1 - EPS) ~ 20.7)."""


def _as_float(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {type(x).__name__}") from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _as_probability(p, name: str) -> np.ndarray:
    arr = _as_float(p, name)
    if ((arr < 0) | (arr > 1)).any():
        bad = arr[(arr < 0) | (arr > 1)].flat[0]
        raise ValueError(f"{name} must lie in [0, 1], got {bad!r}")
    return arr


def logit(p):
    """``log(p / (1 - p))`` (eq 3), with ``p`` clipped into ``[EPS, 1 - EPS]`` so it is finite."""
    q = np.clip(_as_probability(p, "p"), EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


def expit(x):
    """The logistic function ``1 / (1 + exp(-x))``, inverse of eq (3), stable for any ``x``."""
    x = _as_float(x, "x")
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _check_labels(labels, ndim: int | None = None, name: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        or arr.dtype == bool
    ):
        raise TypeError(f"{name} must be an integer array of +1, -1 or 0, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    bad = (arr != 1) & (arr != -1) & (arr != 0)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}{list(idx)} = {arr[idx].item()!r}: labels must be +1, -1 or 0 (not labelled)"
        )
    return arr


def log_odds(labels, reliabilities, prior=0.5) -> np.ndarray:
    """The posterior log-odds of each line, ``logit(p0) + sum_i eps_i logit(p_i)`` (eq 7).

    ``labels``: shape ``(n_lines, n_annotators)`` of +1/-1, 0 where an annotator did not label.
    """
    labels = _check_labels(labels, ndim=2)
    w = logit(reliabilities)
    if w.ndim != 1 or w.shape[0] != labels.shape[1]:
        raise ValueError(
            f"reliabilities must have shape ({labels.shape[1]},) to match labels {labels.shape}, "
            f"got {w.shape}"
        )
    prior = _as_probability(prior, "prior")
    if prior.ndim:
        raise ValueError(f"prior must be a scalar probability, got shape {prior.shape}")
    if labels.shape[0] == 0:
        return np.zeros(0)
    return float(logit(prior)) + labels.astype(np.float64) @ w


def posterior(labels, reliabilities, prior=0.5) -> np.ndarray:
    """``P(line correct | labels)`` per line: eq (7), ``expit(logit(p0) + sum_i eps_i logit(p_i))``.

    An annotator with ``p_i < 0.5`` counts against its own labels; a 0 (not labelled) adds 0.
    """
    return expit(log_odds(labels, reliabilities, prior))


def two_coin_weights(sensitivities, specificities):
    """Per annotator, the log-likelihood ratios of a ``+1`` and of a ``-1`` label under two coins:
    ``log(a_i / (1 - b_i))`` and ``log((1 - a_i) / b_i)``; both are 0 for a lazy annotator
    (``a_i = 1 - b_i``) and they are ``±logit(p_i)`` when ``a_i = b_i = p_i``.
    Probabilities are clipped into ``[EPS, 1 - EPS]`` so the ratios are finite."""
    a = np.clip(_as_probability(sensitivities, "sensitivities"), EPS, 1.0 - EPS)
    b = np.clip(_as_probability(specificities, "specificities"), EPS, 1.0 - EPS)
    if a.shape != b.shape:
        raise ValueError(f"sensitivities {a.shape} and specificities {b.shape} must have the same shape")
    return np.log(a) - np.log1p(-b), np.log1p(-a) - np.log(b)


def two_coin_log_odds(labels, sensitivities, specificities, prior=0.5) -> np.ndarray:
    """Posterior log-odds of each line under two coins (the generalised eq 7):
    ``logit(p0) + sum_i [eps_i=+1] log(a_i/(1-b_i)) + [eps_i=-1] log((1-a_i)/b_i)``.

    ``labels``: shape ``(n_lines, n_annotators)`` of +1/-1, 0 where an annotator did not label.
    """
    labels = _check_labels(labels, ndim=2)
    w_pos, w_neg = two_coin_weights(sensitivities, specificities)
    if w_pos.ndim != 1 or w_pos.shape[0] != labels.shape[1]:
        raise ValueError(
            f"sensitivities/specificities must have shape ({labels.shape[1]},) to match labels "
            f"{labels.shape}, got {w_pos.shape}")
    prior = _as_probability(prior, "prior")
    if prior.ndim:
        raise ValueError(f"prior must be a scalar probability, got shape {prior.shape}")
    if labels.shape[0] == 0:
        return np.zeros(0)
    return float(logit(prior)) + (labels > 0).astype(np.float64) @ w_pos + (labels < 0).astype(np.float64) @ w_neg


def two_coin_posterior(labels, sensitivities, specificities, prior=0.5) -> np.ndarray:
    """``P(line correct | labels)`` per line under two coins: ``expit`` of :func:`two_coin_log_odds`."""
    return expit(two_coin_log_odds(labels, sensitivities, specificities, prior))


def update_reliability(p, mu, pbar, lam):
    """Eq (8), element-wise: ``expit(logit(p) + lam * mu * logit(pbar))``.

    ``mu`` is +1 where the annotator agreed with the reference answer, -1 where not; ``pbar`` is
    the probability that the reference answer is right (``gold_certainty`` on gold lines).
    """
    mu = np.asarray(mu)
    if ((mu != 1) & (mu != -1)).any():
        raise ValueError("mu must be +1 (agreed) or -1 (disagreed)")
    lam = _as_float(lam, "lam")
    if (lam < 0).any() or not np.isfinite(lam).all():
        raise ValueError("lam must be finite and >= 0")
    return expit(logit(p) + lam * mu * logit(pbar))


def score(posteriors, tau=0.5) -> float:
    """The reward ``s = c / k``: the share of the given lines whose posterior exceeds ``tau``.

    Pass only the lines that count (see ``crlhf.crowd.counted_lines``); no lines give 0.0.
    """
    from .reward import score as reward_score  # the one definition (crlhf/reward.py, shape "share")

    post = _as_probability(posteriors, "posteriors").ravel()
    tau = float(_as_probability(tau, "tau"))
    return reward_score(post, np.ones(post.size, dtype=bool), "share", tau)
