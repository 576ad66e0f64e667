"""The unbiased pass@k estimator (Chen et al. 2021), vectorised over problems."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["pass_at_k", "bootstrap_interval"]


def _counts(name, value):
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == object
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be integer counts, got dtype {arr.dtype}")
    if arr.dtype == object or np.issubdtype(arr.dtype, np.floating):
        flat = arr.ravel()
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                   and float(v).is_integer() for v in flat):
            raise TypeError(f"{name} must hold whole numbers")
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {arr.min()}")
    return arr.astype(np.int64)


def pass_at_k(n, c, k: int):
    """pass@k = 1 - C(n - c, k) / C(n, k) for ``n`` samples of which ``c`` passed.

    ``n`` and ``c`` are counts per problem (scalars or arrays; they broadcast). Computed in the
    stable product form ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (no huge binomials), as one pass of
    cumulative ``log1p`` sums shared by all problems; 1.0 wherever ``n - c < k``. Returns a float
    for scalar input, else an array of the broadcast shape. ``k > n`` raises ``ValueError``.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n_arr, c_arr = np.broadcast_arrays(_counts("n", n), _counts("c", c))
    if (c_arr > n_arr).any():
        i = np.flatnonzero(c_arr > n_arr)[0]
        raise ValueError(f"c must not exceed n (c={c_arr.flat[i]}, n={n_arr.flat[i]})")
    if (k > n_arr).any():
        raise ValueError(f"k={k} exceeds the number of samples n={n_arr.min()}: "
                         "pass@k needs n >= k")
    top = int(n_arr.max()) if n_arr.size else 0
    # logs[m] = sum_{i=k+1}^{m} log(1 - k/i); the product over (n-c, n] is exp(logs[n] - logs[n-c]).
    i = np.arange(k + 1, top + 1, dtype=np.float64)
    logs = np.concatenate([np.zeros(k + 1), np.cumsum(np.log1p(-k / i))])
    fail = n_arr - c_arr
    ratio = np.exp(logs[n_arr] - logs[np.maximum(fail, k)])
    out = np.where(fail < k, 1.0, 1.0 - ratio)
    return float(out) if out.ndim == 0 else out


def bootstrap_interval(per_task, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean over tasks: resample the tasks with replacement
    ``n_boot`` times (Efron & Tibshirani 1993, ch. 13) and take the ``(1 - level)/2`` and
    ``(1 + level)/2`` quantiles of the resampled means. ``per_task`` holds one value per task
    (e.g. each task's pass@k from :func:`pass_at_k`); the interval says how much the mean would
    move with another draw of tasks of the same kind, the uncertainty a benchmark of a few
    hundred tasks carries. Seeded, so a report prints the same interval twice."""
    values = np.asarray(per_task, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("per_task is empty: an interval needs at least one task")
    if not np.isfinite(values).all():
        raise ValueError("per_task holds NaN or inf")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(int(n_boot), values.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)
