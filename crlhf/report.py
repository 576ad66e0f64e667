"""The pass@k table of a report, shared by ``crlhf demo`` and ``crlhf train``: baseline,
w/cRLHF and the gain, one run with 95% intervals or several seeds with mean ± std.

A *run* is a pass@k frame (``temperature, k, pass_at_k, lo, hi``, as
:attr:`crlhf.evaluate.EvalResult.passk`): the mean over tasks of the unbiased estimator and its
95% bootstrap interval over tasks (:func:`crlhf.passk.bootstrap_interval`). A *summary*
(:func:`passk_summary`) holds one seed's baseline and w/cRLHF evaluations on the same tasks and
the gain with a paired interval. :func:`table_cells` turns the summaries of one or several
seeds into the table's numbers, :func:`passk_table` into markdown (the cells of
:func:`format_passk`), :func:`table_records` into JSON; :func:`table_note` says what the
cells hold. One seed is reported with its intervals, several with the mean ± standard
deviation over seeds followed by each seed's rows. The plot that goes with the table is
:func:`crlhf.plots.plot_passk_before_after` (its frames from :func:`combine_seeds`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["PASSK_COLUMNS", "MODEL_ROWS", "passk_frame", "passk_summary", "combine_seeds", "passk_records",
           "passk_columns", "format_passk", "table_cells", "passk_table", "table_records", "table_note"]

PASSK_COLUMNS = ("temperature", "k", "pass_at_k", "lo", "hi")

MODEL_ROWS = {"baseline": "baseline", "crlhf": "w/cRLHF", "gain": "gain (points)"}
"""The rows of a table (keys of a :func:`passk_summary`) and their labels."""


def _check(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = set(PASSK_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{what} lacks column(s) {sorted(missing)}: pass EvalResult.passk frames")
    values = frame[["pass_at_k", "lo", "hi"]].to_numpy(float)
    if not np.isfinite(values).all():
        raise ValueError(f"{what} holds NaN or inf")
    return frame


def passk_frame(numbers: Mapping) -> pd.DataFrame:
    """The pass@k frame (``temperature, k, pass_at_k, lo, hi``) of a dict in the layout of
    :meth:`crlhf.evaluate.EvalResult.to_dict` (``{"pass@k": {"T": x}, "interval": {...}}``): an
    evaluation's ``results.json`` entry, or a :func:`passk_summary`'s ``"gain"``."""
    rows = []
    for key, per_t in numbers.items():
        if not key.startswith("pass@"):
            continue
        for temp, value in per_t.items():
            lo, hi = numbers.get("interval", {}).get(key, {}).get(temp, (math.nan, math.nan))
            rows.append({"temperature": float(temp), "k": int(key[5:]), "pass_at_k": float(value), "lo": float(lo),
                         "hi": float(hi)})
    return pd.DataFrame(rows, columns=list(PASSK_COLUMNS))


def _per_task(result, k: int, temperature: float) -> pd.Series:
    """Each task's unbiased pass@k at one temperature (index ``task_id``)."""
    from .passk import pass_at_k

    g = result.per_task[result.per_task.temperature == temperature]
    return pd.Series(np.atleast_1d(pass_at_k(g.n.to_numpy(), g.c.to_numpy(), k)), index=g.task_id.to_numpy())


def _value(numbers: Mapping, k: int, temperature: float) -> float:
    """pass@k (or its gain) at ``temperature``; NaN where it was not measured (k > n)."""
    return numbers.get(f"pass@{k}", {}).get(f"{temperature:g}", math.nan)


def passk_summary(before, after) -> dict:
    """One seed's pass@k numbers from two :class:`crlhf.evaluate.EvalResult` on the same tasks:
    for ``"baseline"`` and ``"crlhf"`` their ``to_dict()`` (pass@k per k and temperature, 95%
    bootstrap intervals over tasks, the best temperature per k); for ``"gain"`` (w/cRLHF minus
    baseline, per k and temperature, and ``"best"``: each model at its own best temperature) the
    difference with a paired 95% bootstrap interval over the same tasks
    (:func:`crlhf.passk.bootstrap_interval` of per-task differences)."""
    from .passk import bootstrap_interval

    out = {"baseline": before.to_dict(), "crlhf": after.to_dict()}
    ks = sorted({int(k) for k in before.passk.k})
    temps = sorted({float(t) for t in before.passk.temperature})

    def paired(k, t_before, t_after):
        a, b = _per_task(after, k, t_after), _per_task(before, k, t_before)
        if set(a.index) != set(b.index):
            raise ValueError("the baseline and w/cRLHF evaluations hold different tasks: a gain needs the same ones")
        diff = a - b.reindex(a.index)
        return float(diff.mean()), list(bootstrap_interval(diff.to_numpy()))

    gain: dict = {f"pass@{k}": {} for k in ks}
    gain["interval"] = {f"pass@{k}": {} for k in ks}
    for k in ks:
        for t in temps:
            if math.isfinite(_value(out["baseline"], k, t)) and math.isfinite(_value(out["crlhf"], k, t)):
                gain[f"pass@{k}"][f"{t:g}"], gain["interval"][f"pass@{k}"][f"{t:g}"] = paired(k, t, t)
    best_b, best_a = out["baseline"]["best"], out["crlhf"]["best"]
    gain["best"] = {}
    for k in ks:
        key = f"pass@{k}"
        if key in best_b and key in best_a:
            g, iv = paired(k, best_b[key]["temperature"], best_a[key]["temperature"])
            gain["best"][key] = {"gain": g, "interval": iv}
    out["gain"] = gain
    return out


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


def passk_records(runs: Sequence[pd.DataFrame]) -> list[dict]:
    """:func:`combine_seeds` as JSON-ready records (``temperature, k, pass_at_k, lo, hi, std, seeds``)."""
    return [{k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in r.items()}
            for r in combine_seeds(runs).to_dict(orient="records")]


def passk_columns(ks: Sequence[int], temperatures: Sequence[float]) -> list[str]:
    """Column names of a pass@k table, e.g. ``"pass@1 at T=0.2 (%)"``, then ``"best pass@1 (%)"``
    per k."""
    return [f"pass@{k} at T={t:g} (%)" for k in ks for t in temperatures] + [f"best pass@{k} (%)" for k in ks]


def _pct(x: float, sign: bool = False) -> str:
    v = round(100 * x, 1) + 0.0  # no "-0.0"
    return f"{v:+.1f}" if sign else f"{v:.1f}"


def format_passk(value: float, lo: float, hi: float, std: float | None = None, seeds: int = 1,
                 sign: bool = False) -> str:
    """A cell in percent: ``12.5 [8.1, 17.0]`` (one run, 95% interval), ``12.5 ± 1.3`` (mean ±
    std over seeds) or ``n/a``; ``sign`` writes a gain in points, ``+2.5 [-1.0, +6.0]``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if seeds > 1:
        return f"{_pct(value, sign)} ± {_pct(std or 0.0)}"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return _pct(value, sign)
    return f"{_pct(value, sign)} [{_pct(lo, sign)}, {_pct(hi, sign)}]"


def _grid(summary: Mapping) -> tuple[list[int], list[float]]:
    """The ks and temperatures of a summary (its baseline's)."""
    base = passk_frame(summary["baseline"])
    return sorted({int(k) for k in base.k}), sorted({float(t) for t in base.temperature})


CELL_FIELDS = ["model", "column", "k", "temperature", "best", "value", "lo", "hi", "std", "seeds"]


def _one_seed_cells(summary: Mapping, ks, temps) -> list[dict]:
    rows = []
    for model in MODEL_ROWS:
        d = summary[model]
        for k in ks:
            for t in temps:
                lo, hi = d.get("interval", {}).get(f"pass@{k}", {}).get(f"{t:g}", (math.nan, math.nan))
                rows.append(dict(model=model, column=f"pass@{k} at T={t:g} (%)", k=k, temperature=t, best=False,
                                 value=_value(d, k, t), lo=lo, hi=hi, std=0.0, seeds=1))
        for k in ks:
            b = d["best"].get(f"pass@{k}")
            lo, hi = b["interval"] if b else (math.nan, math.nan)
            rows.append(dict(model=model, column=f"best pass@{k} (%)", k=k, best=True, lo=lo, hi=hi, std=0.0, seeds=1,
                             value=math.nan if b is None else b["gain" if model == "gain" else "pass_at_k"],
                             temperature=math.nan if b is None or model == "gain" else b["temperature"]))
    return rows


def table_cells(summaries: Sequence[Mapping]) -> pd.DataFrame:
    """The numbers of a pass@k table from the :func:`passk_summary` of each seed: one row per
    model (``baseline``, ``crlhf``, ``gain``) and column of :func:`passk_columns`, with
    ``value, lo, hi, std, seeds`` and, in a ``best`` column, the ``temperature`` chosen.

    One seed: the value and its 95% interval (paired for the gain). Several: the mean over seeds,
    the standard deviation (ddof 1) and ``lo``/``hi`` = mean ∓ std; the best temperature is the
    one with the highest mean, and the best gain is, seed by seed, w/cRLHF at its best
    temperature minus the baseline at its own."""
    summaries = list(summaries)
    if not summaries:
        raise ValueError("summaries is empty: a table needs at least one seed's passk_summary")
    ks, temps = _grid(summaries[0])
    for i, s in enumerate(summaries[1:], 1):
        if _grid(s) != (ks, temps):
            raise ValueError(f"summaries[{i}] has other ks or temperatures than summaries[0]: every seed must be "
                             "evaluated alike")
    if len(summaries) == 1:
        return pd.DataFrame(_one_seed_cells(summaries[0], ks, temps), columns=CELL_FIELDS)
    per = pd.DataFrame([r for s in summaries for r in _one_seed_cells(s, ks, temps)], columns=CELL_FIELDS)
    per["seed"] = np.repeat(np.arange(len(summaries)), len(per) // len(summaries))
    grid = per[~per.best]
    wide = grid.pivot(index=["model", "k", "temperature"], columns="seed", values="value")
    rows = []
    for (model, k, t), values in wide.iterrows():
        rows.append(dict(model=model, column=f"pass@{k} at T={t:g} (%)", k=k, temperature=t, best=False,
                         **_spread(values.to_numpy(float), model)))
    mean = {key: r["value"] for r in rows for key in [(r["model"], r["k"], r["temperature"])]}
    for k in ks:
        chosen = {}
        for model in ("baseline", "crlhf"):
            t = max(temps, key=lambda t: -math.inf if math.isnan(mean[(model, k, t)]) else mean[(model, k, t)])
            chosen[model] = t
            rows.append(dict(model=model, column=f"best pass@{k} (%)", k=k, temperature=t, best=True,
                             **_spread(wide.loc[(model, k, t)].to_numpy(float), model)))
        gains = wide.loc[("crlhf", k, chosen["crlhf"])].to_numpy(float) - \
            wide.loc[("baseline", k, chosen["baseline"])].to_numpy(float)
        rows.append(dict(model="gain", column=f"best pass@{k} (%)", k=k, temperature=math.nan, best=True,
                         **_spread(gains, "gain")))
    order = {c: i for i, c in enumerate(passk_columns(ks, temps))}
    out = pd.DataFrame(rows, columns=CELL_FIELDS)
    out = out.sort_values(["model", "column"], key=lambda s: s.map(list(MODEL_ROWS).index) if s.name == "model"
                          else s.map(order), kind="stable")
    return out.reset_index(drop=True)


def _spread(values: np.ndarray, model: str) -> dict:
    """Mean, std (ddof 1) and mean ∓ std (clipped to the range of pass@k, or of a gain) over seeds."""
    if not np.isfinite(values).all():
        return dict(value=math.nan, lo=math.nan, hi=math.nan, std=math.nan, seeds=len(values))
    m, sd = float(values.mean()), float(values.std(ddof=1))
    low = -1.0 if model == "gain" else 0.0
    return dict(value=m, lo=max(low, m - sd), hi=min(1.0, m + sd), std=sd, seeds=len(values))


def _cell_text(row) -> str:
    text = format_passk(row.value, row.lo, row.hi, row.std, int(row.seeds), sign=row.model == "gain")
    if row.best and row.model != "gain" and text != "n/a":
        text += f" at T={row.temperature:g}"
    return text


def _rows(cells: pd.DataFrame, suffix: str = "") -> list[list[str]]:
    return [[MODEL_ROWS[model] + suffix] + [_cell_text(r) for r in g.itertuples()]
            for model, g in cells.groupby("model", sort=False)]


def passk_table(summaries: Sequence[Mapping], seeds: Sequence[int] | None = None) -> str:
    """The markdown table of :func:`table_cells`: a column per k and temperature and a best
    column per k (:func:`passk_columns`), rows baseline, w/cRLHF and gain (points). Several
    seeds: the three rows as ``mean ± std``, then each seed's rows with its intervals
    (``seeds``: their names, default 0, 1, ...)."""
    summaries = list(summaries)
    cells = table_cells(summaries)
    head = ["model"] + list(dict.fromkeys(cells.column))
    if len(summaries) == 1:
        rows = _rows(cells)
    else:
        seeds = list(range(len(summaries))) if seeds is None else list(seeds)
        if len(seeds) != len(summaries):
            raise ValueError(f"{len(seeds)} seed names for {len(summaries)} summaries")
        rows = _rows(cells, ", mean ± std")
        for s, summary in zip(seeds, summaries, strict=True):
            rows += _rows(table_cells([summary]), f", seed {s}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def table_records(summaries: Sequence[Mapping]) -> dict:
    """:func:`table_cells` as JSON: ``{model: {column: {"mean", "std", "lo", "hi", "seeds"}}}``
    (``"mean"``: the value itself for one seed; a best column also names its ``"temperature"``);
    cells not measured are left out."""
    out: dict = {model: {} for model in MODEL_ROWS}
    for r in table_cells(summaries).itertuples():
        if not math.isfinite(r.value):
            continue
        cell = {"mean": float(r.value), "std": float(r.std), "lo": float(r.lo), "hi": float(r.hi),
                "seeds": int(r.seeds)}
        if r.best and r.model != "gain":
            cell["temperature"] = float(r.temperature)
        out[r.model][r.column] = cell
    return out


def table_note(seeds: int, tasks: int | None = None, n: int | None = None) -> str:
    """The sentences that say what a :func:`passk_table`'s cells hold."""
    size = "" if tasks is None else f" on {tasks} tasks" + ("" if n is None else f" (n = {n} samples per task and "
                                                                                 "temperature)")
    if seeds > 1:
        what = (f"the mean ± standard deviation over {seeds} seeds (ddof 1), then each seed with its 95% bootstrap "
                "interval over tasks in brackets")
    else:
        what = "the estimate and its 95% bootstrap interval over tasks in brackets (2,000 resamples)"
    return (f"pass@k in %{size}: {what}. The gain is w/cRLHF minus baseline in percentage points, its interval a "
            "paired bootstrap over the same tasks. Best: the temperature with the highest pass@k for each k"
            + (" (on the mean over seeds)" if seeds > 1 else "") + "; the best gain compares each model at its "
            "own best temperature.")
