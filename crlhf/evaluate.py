"""pass@k of a sampler on a task list, at several temperatures, in the paper's Table-I view.

A sampler is any callable ``(prompts, n, temperature) -> completions`` returning, for each
prompt, a list of ``n`` completion strings (``crlhf.policy`` adapts a model). Completions are
cut at the task's stop sequences and run only inside ``crlhf.sandbox``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .passk import bootstrap_interval, pass_at_k

__all__ = ["EvalResult", "evaluate", "summarize"]

Sampler = Callable[[list[str], int, float], Sequence[Sequence[str]]]


@dataclass
class EvalResult:
    """Everything one evaluation measured.

    ``samples``: one row per completion (``task_id, temperature, sample, completion, passed,
    status``); ``per_task``: ``task_id, temperature, n, c``; ``passk``: ``temperature, k,
    pass_at_k, lo, hi`` (the mean of the unbiased estimator over tasks, and its 95% bootstrap
    interval over tasks, :func:`crlhf.passk.bootstrap_interval`).
    """

    samples: pd.DataFrame
    per_task: pd.DataFrame
    passk: pd.DataFrame

    def table(self) -> pd.DataFrame:
        """Table I of the paper: for each k, the best temperature and its pass@k."""
        best = self.passk.loc[self.passk.groupby("k").pass_at_k.idxmax()]
        return best.set_index("k")[["pass_at_k", "temperature"]]

    def to_dict(self) -> dict:
        """``{"pass@k": {"T": value}}`` for every k and temperature, ``"interval"``: the same keys
        holding ``[lo, hi]`` (95% bootstrap over tasks), plus the best temperature per k."""
        out: dict = {}
        for row in self.passk.itertuples():
            out.setdefault(f"pass@{row.k}", {})[f"{row.temperature:g}"] = float(row.pass_at_k)
            out.setdefault("interval", {}).setdefault(f"pass@{row.k}", {})[f"{row.temperature:g}"] = [
                float(row.lo), float(row.hi)]
        best = self.passk.loc[self.passk.groupby("k").pass_at_k.idxmax()]
        out["best"] = {f"pass@{r.k}": {"pass_at_k": float(r.pass_at_k), "temperature": float(r.temperature),
                                       "interval": [float(r.lo), float(r.hi)]} for r in best.itertuples()}
        out["n"] = int(self.per_task.n.max()) if len(self.per_task) else 0
        out["tasks"] = int(self.per_task.task_id.nunique())
        return out

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path


def evaluate(sampler: Sampler, tasks, ks: Sequence[int] = (1, 10, 100),
             temperatures: Sequence[float] = (0.2, 0.6, 0.8), n: int | None = None,
             timeout: float = 3.0, workers: int | None = None, progress: bool = True) -> EvalResult:
    """Sample ``n`` completions per task at each temperature, check them in the sandbox, and
    estimate pass@k (``1 - C(n-c, k) / C(n, k)``, averaged over tasks) for each k <= n.

    ``n`` defaults to ``max(ks)``; k larger than ``n`` is dropped with a warning.
    """
    from tqdm.auto import tqdm

    from .sandbox import check_many

    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks is empty")
    untestable = [t.task_id for t in tasks if t.test_style == "none"]
    if untestable:
        raise ValueError(f"tasks without tests cannot be evaluated: {untestable[:3]}")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n = max(ks) if n is None else int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    dropped = [k for k in ks if k > n]
    if dropped:
        warnings.warn(f"pass@k needs k <= n = {n}: dropping k = {dropped}", stacklevel=2)
        ks = [k for k in ks if k <= n]
    if not ks:
        raise ValueError(f"no k <= n = {n}")
    temperatures = [float(t) for t in temperatures]

    prompts = [t.prompt for t in tasks]
    rows = []
    for temp in tqdm(temperatures, desc="temperatures", disable=not progress):
        completions = sampler(prompts, n, temp)
        if len(completions) != len(tasks) or any(len(c) != n for c in completions):
            raise ValueError(f"the sampler must return {n} completions for each of the "
                             f"{len(tasks)} prompts")
        for task, comps in zip(tasks, completions, strict=True):
            for j, comp in enumerate(comps):
                if not isinstance(comp, str):
                    raise TypeError(f"completion {j} of task {task.task_id} is "
                                    f"{type(comp).__name__}, not str")
                rows.append((task, temp, j, task.truncate(comp)))
    results = check_many([task.check_item(comp) for task, _, _, comp in rows], timeout=timeout,
                         workers=workers, progress=progress)
    samples = pd.DataFrame({
        "task_id": [r[0].task_id for r in rows], "temperature": [r[1] for r in rows],
        "sample": [r[2] for r in rows], "completion": [r[3] for r in rows],
        "passed": [res.passed for res in results], "status": [res.status for res in results],
    })
    return summarize(samples, ks)


def summarize(samples: pd.DataFrame, ks: Sequence[int]) -> EvalResult:
    """pass@k from a frame of checked samples (``task_id, temperature, passed``, one row per
    sample): ``c`` and ``n`` per task and temperature, then the unbiased estimator
    ``1 - C(n-c, k) / C(n, k)`` averaged over tasks, for each k (every k must be <= each n),
    with its 95% bootstrap interval over tasks."""
    missing = {"task_id", "temperature", "passed"} - set(samples.columns)
    if missing:
        raise ValueError(f"samples lacks column(s) {sorted(missing)}")
    ks = sorted({int(k) for k in ks})
    per_task = (samples.groupby(["task_id", "temperature"], sort=False)
                .passed.agg(n="size", c="sum").reset_index())
    per_task["c"] = per_task["c"].astype(np.int64)
    rows = []
    for temp, g in per_task.groupby("temperature", sort=False):
        for k in ks:
            per = np.atleast_1d(pass_at_k(g.n.to_numpy(), g.c.to_numpy(), k))
            lo, hi = bootstrap_interval(per)
            rows.append({"temperature": temp, "k": k, "pass_at_k": float(per.mean()), "lo": lo, "hi": hi})
    passk = pd.DataFrame(rows, columns=["temperature", "k", "pass_at_k", "lo", "hi"])
    return EvalResult(samples, per_task, passk)
