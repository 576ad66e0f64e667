"""Report building blocks shared by the kit's commands: pass@k with its uncertainty, as a
markdown table and as numbers.

A *run* is a pass@k frame (``temperature, k, pass_at_k, lo, hi``, as
:attr:`crlhf.evaluate.EvalResult.passk`): the mean over tasks of the unbiased estimator and its
95% bootstrap interval over tasks (:func:`crlhf.passk.bootstrap_interval`). A row of a report
is one or several runs of the same model (several seeds): one run is reported with its
interval, several as the mean ± standard deviation over them (:func:`combine_seeds`). The plot
that goes with the table is :func:`crlhf.plots.plot_passk_before_after`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

PASSK_COLUMNS = ("temperature", "k", "pass_at_k", "lo", "hi")


def _check(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = set(PASSK_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{what} lacks column(s) {sorted(missing)}: pass EvalResult.passk frames")
    values = frame[["pass_at_k", "lo", "hi"]].to_numpy(float)
    if not np.isfinite(values).all():
        raise ValueError(f"{what} holds NaN or inf")
    return frame


def combine_seeds(runs: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One pass@k frame from the runs of several seeds: per (temperature, k) the mean over
    seeds (``pass_at_k``), the sample standard deviation (``std``, ddof 1; 0 for one seed), the
    number of seeds (``seeds``), and ``lo``/``hi``: the run's 95% bootstrap interval for one
    seed, ``mean ∓ std`` (clipped to [0, 1]) for several."""
    runs = [_check(r, f"runs[{i}]") for i, r in enumerate(runs)]
    if not runs:
        raise ValueError("runs is empty: a row needs at least one pass@k frame")
    if len(runs) == 1:
        out = runs[0][list(PASSK_COLUMNS)].copy()
        return out.assign(std=0.0, seeds=1).reset_index(drop=True)
    allk = pd.concat([r[list(PASSK_COLUMNS)].assign(run=i) for i, r in enumerate(runs)], ignore_index=True)
    counts = allk.groupby(["temperature", "k"]).run.nunique()
    if (counts != len(runs)).any():
        t, k = counts[counts != len(runs)].index[0]
        raise ValueError(f"pass@{k} at T={t:g} is missing from some runs: every seed must be evaluated alike")
    g = allk.groupby(["temperature", "k"], sort=True).pass_at_k
    out = pd.DataFrame({"pass_at_k": g.mean(), "std": g.std(ddof=1)}).reset_index()
    out["lo"] = (out.pass_at_k - out["std"]).clip(0.0, 1.0)
    out["hi"] = (out.pass_at_k + out["std"]).clip(0.0, 1.0)
    out["seeds"] = len(runs)
    return out[list(PASSK_COLUMNS) + ["std", "seeds"]]


def format_passk(value: float, lo: float, hi: float, std: float | None = None, seeds: int = 1) -> str:
    """A cell in percent: ``12.5 [8.1, 17.0]`` (one run, 95% interval) or ``12.5 ± 1.3`` (seeds)."""
    if any(not math.isfinite(x) for x in (value, lo, hi)):
        return "n/a"
    if seeds > 1:
        return f"{100 * value:.1f} ± {100 * (std or 0.0):.1f}"
    return f"{100 * value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def passk_table(rows: Mapping[str, Sequence[pd.DataFrame] | pd.DataFrame], ks: Sequence[int] | None = None,
                temperatures: Sequence[float] | None = None, best: bool = True) -> str:
    """A markdown table of pass@k in percent, one row per entry of ``rows`` (label -> the pass@k
    frames of its seeds, or one frame): a column per k and temperature (``pass@1, T=0.2 (%)``),
    and with ``best`` a column per k with the best temperature (chosen on the mean). Cells hold
    the 95% bootstrap interval over tasks for one run, mean ± std over seeds for several; the
    header line under the table says which (:func:`table_note`)."""
    combined = {label: combine_seeds([runs] if isinstance(runs, pd.DataFrame) else list(runs))
                for label, runs in rows.items()}
    if not combined:
        raise ValueError("rows is empty")
    first = next(iter(combined.values()))
    ks = sorted({int(k) for k in (ks if ks is not None else first.k)})
    temps = sorted({float(t) for t in (temperatures if temperatures is not None else first.temperature)})
    head = ["model"] + [f"pass@{k}, T={t:g} (%)" for k in ks for t in temps]
    if best:
        head += [f"best pass@{k} (%)" for k in ks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, frame in combined.items():
        cells = [label]
        index = frame.set_index(["k", "temperature"])
        for k in ks:
            for t in temps:
                if (k, t) in index.index:
                    r = index.loc[(k, t)]
                    cells.append(format_passk(r.pass_at_k, r.lo, r.hi, r["std"], int(r.seeds)))
                else:
                    cells.append("n/a")
        if best:
            for k in ks:
                sub = frame[frame.k == k]
                if not len(sub):
                    cells.append("n/a")
                    continue
                r = sub.loc[sub.pass_at_k.idxmax()]
                cells.append(f"{format_passk(r.pass_at_k, r.lo, r.hi, r['std'], int(r.seeds))} "
                             f"(T={r.temperature:g})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_note(seeds: int, tasks: int | None = None, n: int | None = None) -> str:
    """The sentence that says what a :func:`passk_table`'s cells hold."""
    what = (f"mean ± standard deviation over {seeds} seeds" if seeds > 1 else
            "the estimate and its 95% bootstrap interval over tasks (2,000 resamples)")
    size = "" if tasks is None else f" {tasks} tasks" + ("" if n is None else f", n = {n} samples per task and "
                                                                               "temperature") + ";"
    return f"pass@k in percent;{size} cells: {what}."


def passk_records(runs: Sequence[pd.DataFrame]) -> list[dict]:
    """:func:`combine_seeds` as JSON-ready records (``temperature, k, pass_at_k, lo, hi, std, seeds``)."""
    return [{k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in r.items()}
            for r in combine_seeds(runs).to_dict(orient="records")]
