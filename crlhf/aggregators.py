"""Baseline aggregators on the crowd model's label frame: majority vote, a single annotator,
the oracle, and binary Dawid-Skene by EM.

Input: a label frame with columns ``program_id, line, annotator, label`` (label +1 correct,
-1 wrong; the last row for the same ``(program_id, line, annotator)`` wins, as in
:meth:`crlhf.crowd.CrowdModel.replay`). Output: one row per labelled line, columns
``program_id, line, posterior, label`` (``posterior`` = estimated P(line correct), ``label`` the
+1/-1 consensus), sorted by ``program_id, line``. An empty label frame gives an empty output.

Ties (a posterior of exactly 1/2) take the label ``tie`` in {+1, -1, 0}; the default -1 matches
the reward ``s = c/k``, which counts a line only when its posterior exceeds ``tau = 0.5``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from .bayes import expit, logit

__all__ = ["RESULT_COLUMNS", "majority_vote", "single_annotator", "oracle", "dawid_skene", "read_crowd_tsv"]

LABEL_COLUMNS = ("program_id", "line", "annotator", "label")
RESULT_COLUMNS = ("program_id", "line", "posterior", "label")
TRUTH_COLUMNS = ("program_id", "line", "label")
CROWD_TSV_COLUMNS = ("!amt_annotation_ids", "!amt_worker_ids", "orig_id", "response", "gold")
TIES = (1, -1, 0)
COINS = ("one", "two")

_CLIP = 1e-9  # Dawid-Skene probabilities stay in [_CLIP, 1 - _CLIP]: log-odds within +-20.7


# ---------------------------------------------------------------------------- input checks
@dataclass(frozen=True)
class _Parsed:
    """A validated, de-duplicated label frame as integer codes (one row per label)."""

    item: np.ndarray  # item (line) index of each label, items sorted by program_id, line
    ann: np.ndarray  # annotator index of each label
    lab: np.ndarray  # +1 / -1 (int8)
    program_id: np.ndarray  # per item, in the input's dtype
    line: np.ndarray  # per item, int64
    annotators: pd.Index  # annotator ids, in order of first appearance

    @property
    def n_items(self) -> int:
        return len(self.line)


def _check_frame(frame, columns, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame with columns {list(columns)}, "
                        f"got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; expected columns {list(columns)}")


def _show(value):
    """A cell for an error message: numpy scalars shown as plain Python values."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _int_values(col: pd.Series, name: str, field: str) -> np.ndarray:
    """``col`` as int64, or a ValueError naming the first row that is not an integer."""
    if np.issubdtype(col.dtype, np.integer):
        return col.to_numpy(np.int64)
    if col.dtype == bool:
        values = np.full(len(col), np.nan)  # True/False are not line numbers or +1/-1 labels
    else:
        values = pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} row {_show(col.index[i])}: {field} must be an integer, "
                         f"got {_show(col.iloc[i])}")
    return values.astype(np.int64)


def _check_values(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``line`` (integer >= 0) and ``label`` (+1/-1) arrays; ids must not be missing."""
    line = _int_values(frame["line"], name, "line")
    if (line < 0).any():
        i = int(np.flatnonzero(line < 0)[0])
        raise ValueError(f"{name} row {_show(frame.index[i])}: line must be >= 0, got {line[i]}")
    lab = _int_values(frame["label"], name, "label")
    bad = (lab != 1) & (lab != -1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} row {_show(frame.index[i])}: label must be +1 (correct) or -1 "
                         f"(wrong), got {_show(frame['label'].iloc[i])}")
    for field in ("program_id", "annotator"):
        if field in frame.columns:
            missing = frame[field].isna().to_numpy()
            if missing.any():
                i = int(np.flatnonzero(missing)[0])
                raise ValueError(f"{name} row {_show(frame.index[i])}: {field} is missing")
    return line, lab.astype(np.int8)


def _item_codes(program_id: pd.Series, line: np.ndarray, name: str):
    """Item index per row, items sorted by (program_id, line); with the per-item ids."""
    try:
        pcode, puniq = pd.factorize(program_id, sort=True)
    except TypeError:
        raise ValueError(f"{name}: program_id values cannot be sorted (mixed types?); "
                         "use ids of one type") from None
    lcode, luniq = pd.factorize(line, sort=True)
    key = pcode.astype(np.int64) * max(len(luniq), 1) + lcode
    icode, ikey = pd.factorize(key, sort=True)
    n_lines = max(len(luniq), 1)
    pid = pd.Index(puniq).take(ikey // n_lines).to_numpy()  # keeps the ids' dtype
    return icode.astype(np.intp), pid, np.asarray(luniq, dtype=np.int64)[ikey % n_lines]


def _parse(labels, name: str = "labels") -> _Parsed:
    _check_frame(labels, LABEL_COLUMNS, name)
    line, lab = _check_values(labels, name)
    item, pid, item_line = _item_codes(labels["program_id"], line, name)
    ann, annotators = pd.factorize(labels["annotator"], sort=False)
    ann = ann.astype(np.intp)
    dup = pd.Series(item.astype(np.int64) * max(len(annotators), 1) + ann).duplicated(keep="last")
    if dup.any():
        keep = ~dup.to_numpy()
        item, ann, lab = item[keep], ann[keep], lab[keep]
    return _Parsed(item, ann, lab, pid, item_line, pd.Index(annotators, name="annotator"))


def _check_tie(tie) -> int:
    if isinstance(tie, bool) or tie not in TIES:
        raise ValueError(f"tie must be one of {TIES}, got {tie!r}")
    return int(tie)


def _result(program_id, line, posterior, label) -> pd.DataFrame:
    return pd.DataFrame({"program_id": program_id, "line": line,
                         "posterior": np.asarray(posterior, dtype=np.float64),
                         "label": np.asarray(label, dtype=np.int64)})


def _empty_result() -> pd.DataFrame:
    return _result(np.empty(0, dtype=object), np.empty(0, dtype=np.int64), [], [])


def _decide(posterior: np.ndarray, tie: int) -> np.ndarray:
    return np.where(posterior > 0.5, 1, np.where(posterior < 0.5, -1, tie))


# ---------------------------------------------------------------------------- aggregators
def majority_vote(labels: pd.DataFrame, tie: int = -1) -> pd.DataFrame:
    """Majority vote per line: ``posterior = n(+1) / n``, ``label = sign(posterior - 1/2)``.

    A tied line (as many +1 as -1 votes, posterior exactly 1/2) gets the label ``tie``:
    -1 by default, since a tied line does not exceed ``tau = 0.5`` in the reward ``s = c/k``;
    +1 to give it the benefit of the doubt; 0 to mark it undecided.
    """
    tie = _check_tie(tie)
    p = _parse(labels)
    if not p.n_items:
        return _empty_result()
    n = np.bincount(p.item, minlength=p.n_items)
    n_pos = np.bincount(p.item, weights=p.lab == 1, minlength=p.n_items)
    twice = 2 * n_pos.astype(np.int64)  # integer comparison: ties are exact
    label = np.where(twice > n, 1, np.where(twice < n, -1, tie))
    return _result(p.program_id, p.line, n_pos / n, label)


def single_annotator(labels: pd.DataFrame, annotator=None, seed: int = 0, tie: int = -1
                     ) -> pd.DataFrame:
    """One annotator's word per line, taken at face value (posterior 1.0 for +1, 0.0 for -1).

    With ``annotator`` given: that annotator's labels; every other labelled line of the frame
    is kept (so that all baselines cover the same lines) with posterior 1/2 and label ``tie``.
    Without: for each line, one of the annotators who labelled it, drawn uniformly with
    ``numpy.random.default_rng(seed)``.
    """
    tie = _check_tie(tie)
    p = _parse(labels)
    if annotator is not None:
        if annotator not in p.annotators:
            raise ValueError(f"annotator {annotator!r} has no labels in the frame (field 'annotator')")
        rows = p.ann == p.annotators.get_loc(annotator)
        post = np.full(p.n_items, 0.5)
        post[p.item[rows]] = p.lab[rows] == 1
        return _result(p.program_id, p.line, post, _decide(post, tie))
    if not p.n_items:
        return _empty_result()
    order = np.lexsort((np.random.default_rng(seed).random(len(p.item)), p.item))
    first = order[np.flatnonzero(np.diff(p.item[order], prepend=-1))]
    lab = p.lab[first]  # first[i] is the drawn label row of item i, items being 0..n-1 in order
    return _result(p.program_id, p.line, (lab == 1).astype(np.float64), lab)


def oracle(truth: pd.DataFrame) -> pd.DataFrame:
    """The true labels as an aggregator's output: posterior 1.0 (correct) or 0.0 (wrong).

    ``truth``: columns ``program_id, line, label``; a line listed twice with different labels is
    an error.
    """
    _check_frame(truth, TRUTH_COLUMNS, "truth")
    line, lab = _check_values(truth, "truth")
    if not len(truth):
        return _empty_result()
    item, pid, item_line = _item_codes(truth["program_id"], line, "truth")
    _, first = np.unique(item, return_index=True)  # first row of each line
    label = lab[first]
    conflict = label[item] != lab
    if conflict.any():
        i = int(np.flatnonzero(conflict)[0])
        raise ValueError(f"truth row {_show(truth.index[i])}: line {line[i]} of program "
                         f"{_show(truth['program_id'].iloc[i])} is listed with both labels "
                         "(field 'label')")
    return _result(pid, item_line, (label == 1).astype(np.float64), label)


def dawid_skene(labels: pd.DataFrame, coins: str = "two", max_iter: int = 100, tol: float = 1e-6,
                init="majority", smoothing: float = 0.01, prior: float | None = None,
                gold: pd.DataFrame | None = None, tie: int = -1, return_annotators: bool = False):
    """Binary Dawid-Skene by EM (Dawid & Skene 1979, *Appl. Statist.* 28:20-28).

    Each line has a latent truth ``z`` in {+1, -1} with prior ``pi = P(z = +1)``. Annotator ``a``
    answers with sensitivity ``alpha_a = P(y = +1 | z = +1)`` and specificity
    ``beta_a = P(y = -1 | z = -1)`` (``coins="two"``), or with one accuracy
    ``alpha_a = beta_a = p_a`` (``coins="one"``, the model of eq 7 with learned ``p_i``).

    - E-step: ``T_j = P(z_j = +1 | y) = expit(logit(pi) + sum_a w_a(y_aj))`` with
      ``w_a(+1) = log(alpha_a / (1 - beta_a))`` and ``w_a(-1) = log((1 - alpha_a) / beta_a)``.
    - M-step: ``alpha_a = (sum_j T_j [y_aj = +1] + s) / (sum_j T_j + 2 s)``,
      ``beta_a = (sum_j (1 - T_j) [y_aj = -1] + s) / (sum_j (1 - T_j) + 2 s)`` over the lines
      ``a`` labelled; one coin pools both; ``pi = (sum_j T_j + s) / (n_lines + 2 s)``, or the
      fixed ``prior`` when one is given (``coins="one", prior=0.5`` is eq 7 with ``p_i`` fitted
      in batch; a free prior lets one coin collapse to "every line correct" on crowds whose
      errors are one-sided).

    ``s = smoothing`` is a Laplace pseudo-count per cell (``s = 0``: plain maximum likelihood as
    in crowd-kit); every probability is then clipped into ``[1e-9, 1 - 1e-9]``, so an annotator
    with one label, identical labels everywhere or a single line give finite results.
    ``init="majority"`` starts from the majority-vote posteriors (ties 1/2); a frame with columns
    ``program_id, line, posterior`` (any aggregator's output) starts from those posteriors
    instead (lines it lacks start at their majority vote). ``gold``: a frame ``program_id, line,
    label`` of known truths, clamped in every E-step (lines not in ``labels`` are ignored).
    EM stops when no posterior moves by more than ``tol`` or after ``max_iter`` iterations.

    Returns the per-line frame; with ``return_annotators=True`` also a frame indexed by
    annotator with ``n_labels, accuracy, sensitivity, specificity`` (``accuracy`` =
    ``pi alpha + (1 - pi) beta``, the expected share of right labels), whose ``attrs`` hold
    ``prior``, ``n_iter`` and ``converged``.
    """
    if coins not in COINS:
        raise ValueError(f"coins must be one of {COINS}, got {coins!r}")
    tie = _check_tie(tie)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    tol, smoothing = float(tol), float(smoothing)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")
    if not (np.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be finite and >= 0, got {smoothing!r}")
    if prior is not None:
        prior = float(prior)
        if not 0 < prior < 1:
            raise ValueError(f"prior must lie in (0, 1) or be None (estimated), got {prior!r}")
    fixed_prior = prior
    p = _parse(labels)
    n_ann = len(p.annotators)
    pos = p.lab == 1
    n_labels = np.bincount(p.ann, minlength=n_ann)

    n = np.bincount(p.item, minlength=p.n_items)
    t = np.divide(np.bincount(p.item, weights=pos, minlength=p.n_items), n,
                  out=np.full(p.n_items, 0.5), where=n > 0)
    if isinstance(init, pd.DataFrame):
        idx, values = _align(p, init, ("program_id", "line", "posterior"), "init", "posterior")
        bad = ~((values >= 0) & (values <= 1))
        if bad.any():
            raise ValueError(f"init: posterior must lie in [0, 1], got {float(values[bad][0])}")
        t[idx] = values
    elif not (isinstance(init, str) and init == "majority"):
        raise ValueError(f"init must be 'majority' or a frame of posteriors, got {init!r}")
    gold_idx = gold_t = None
    if gold is not None:
        _check_frame(gold, TRUTH_COLUMNS, "gold")
        _check_values(gold, "gold")
        gold_idx, gold_lab = _align(p, gold, TRUTH_COLUMNS, "gold", "label")
        gold_t = (gold_lab == 1).astype(np.float64)
        t[gold_idx] = gold_t

    def m_step(t):
        tr = t[p.item]
        if coins == "one":
            right = np.bincount(p.ann, weights=np.where(pos, tr, 1.0 - tr), minlength=n_ann)
            alpha = beta = _ratio(right + smoothing, n_labels + 2 * smoothing)
        else:
            t_pos = np.bincount(p.ann, weights=tr, minlength=n_ann)
            agree_pos = np.bincount(p.ann, weights=tr * pos, minlength=n_ann)
            agree_neg = np.bincount(p.ann, weights=(1.0 - tr) * ~pos, minlength=n_ann)
            alpha = _ratio(agree_pos + smoothing, t_pos + 2 * smoothing)
            beta = _ratio(agree_neg + smoothing, n_labels - t_pos + 2 * smoothing)
        if fixed_prior is not None:
            return alpha, beta, fixed_prior
        prior = (t.sum() + smoothing) / (p.n_items + 2 * smoothing) if p.n_items else 0.5
        return alpha, beta, float(np.clip(prior, _CLIP, 1 - _CLIP))

    def e_step(alpha, beta, prior):
        w_pos = np.log(alpha) - np.log1p(-beta)
        w_neg = np.log1p(-alpha) - np.log(beta)
        w = np.where(pos, w_pos[p.ann], w_neg[p.ann])
        t = expit(float(logit(prior)) + np.bincount(p.item, weights=w, minlength=p.n_items))
        if gold_idx is not None:
            t[gold_idx] = gold_t
        return t

    converged, n_iter = False, 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (read after the loop)
        params = m_step(t)
        t_new = e_step(*params)
        delta = float(np.max(np.abs(t_new - t))) if p.n_items else 0.0
        t = t_new
        if delta <= tol:
            converged = True
            break
    alpha, beta, prior = m_step(t)
    t = e_step(alpha, beta, prior)

    result = _result(p.program_id, p.line, t, _decide(t, tie))
    if not return_annotators:
        return result
    annotators = pd.DataFrame({"n_labels": n_labels.astype(np.int64),
                               "accuracy": prior * alpha + (1 - prior) * beta,
                               "sensitivity": alpha, "specificity": beta}, index=p.annotators)
    annotators.attrs.update(prior=prior, n_iter=n_iter, converged=converged)
    return result, annotators


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` clipped into ``[_CLIP, 1 - _CLIP]``; 1/2 where ``den`` is 0 (no evidence)."""
    out = np.divide(num, den, out=np.full(len(num), 0.5), where=den > 0)
    return np.clip(out, _CLIP, 1.0 - _CLIP)


def _align(p: _Parsed, frame: pd.DataFrame, columns, name: str, value: str):
    """Item indices of the rows of ``frame`` that match a labelled line, with their ``value``."""
    _check_frame(frame, columns, name)
    line = _int_values(frame["line"], name, "line")
    values = pd.to_numeric(frame[value], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        i = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{name} row {_show(frame.index[i])}: {value} must be a number, "
                         f"got {_show(frame[value].iloc[i])}")
    items = pd.MultiIndex.from_arrays([p.program_id, p.line])
    idx = items.get_indexer(pd.MultiIndex.from_arrays([frame["program_id"].to_numpy(), line]))
    found = idx >= 0
    return idx[found], values[found]


# ---------------------------------------------------------------------------- real crowd data
def read_crowd_tsv(path: str | PathLike, values: tuple | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a binary crowd-labelling TSV (Snow et al. 2008: RTE, TEMP) as a label frame.

    Columns ``!amt_annotation_ids, !amt_worker_ids, orig_id, response, gold``. Each item becomes a
    program with one line 0 (``program_id = orig_id``, a str); the worker is the annotator. The
    two label values are mapped lower -> -1, higher -> +1 (RTE uses 0/1, TEMP 1/2); pass
    ``values=(negative, positive)`` when a file may show only one of them. Returns
    ``(labels, gold)``: ``program_id, line, annotator, label`` in file order, and
    ``program_id, line, label``, one row per item. Malformed rows raise a ValueError naming the
    file and line.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise ValueError(f"{path}: empty file; expected a header with columns {list(CROWD_TSV_COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in CROWD_TSV_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}, line 1: header lacks column(s) {missing}")
    col = {c: header.index(c) for c in CROWD_TSV_COLUMNS}
    body = [(i, r) for i, r in enumerate(rows[1:], start=2) if r and any(f.strip() for f in r)]
    fields: dict[str, list] = {c: [] for c in ("!amt_worker_ids", "orig_id", "response", "gold")}
    numbers: dict[int, int] = {}
    for lineno, r in body:
        if len(r) != len(header):
            raise ValueError(f"{path}, line {lineno}: {len(r)} fields, expected {len(header)}")
        for c in fields:
            raw = r[col[c]].strip()
            if not raw:
                raise ValueError(f"{path}, line {lineno}: empty {c!r}")
            v: str | int = raw
            if c in ("response", "gold"):
                try:
                    v = int(v)
                except ValueError:
                    raise ValueError(f"{path}, line {lineno}: {c} must be an integer label, "
                                     f"got {r[col[c]]!r}") from None
                numbers.setdefault(v, lineno)
            fields[c].append(v)
    if values is None:
        if len(numbers) > 2:
            third = sorted(numbers.items(), key=lambda kv: kv[1])[2]
            raise ValueError(f"{path}, line {third[1]}: label {third[0]!r} is a third value; "
                             f"a binary file has two (found {sorted(numbers)})")
        if len(numbers) < 2 and body:
            raise ValueError(f"{path}: only the label value(s) {sorted(numbers)} occur; "
                             "pass values=(negative, positive)")
        values = tuple(sorted(numbers)) if numbers else (0, 1)
    if len(values) != 2 or values[0] == values[1]:
        raise ValueError(f"values must be two different labels (negative, positive), got {values!r}")
    neg, positive = values
    lines = [ln for ln, _ in body]
    for c in ("response", "gold"):
        arr = np.asarray(fields[c], dtype=np.int64)
        bad = (arr != neg) & (arr != positive)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}, line {lines[i]}: {c} {arr[i]} is neither {neg} nor {positive}")
    response = np.where(np.asarray(fields["response"]) == positive, 1, -1) if body else np.zeros(0, int)
    gold_lab = np.where(np.asarray(fields["gold"]) == positive, 1, -1) if body else np.zeros(0, int)
    program_id = np.asarray(fields["orig_id"], dtype=object)
    labels = pd.DataFrame({"program_id": program_id, "line": np.zeros(len(body), dtype=np.int64),
                           "annotator": np.asarray(fields["!amt_worker_ids"], dtype=object),
                           "label": response.astype(np.int64)})
    codes, _ = pd.factorize(program_id)
    _, first = np.unique(codes, return_index=True)  # first row of each item
    bad = gold_lab != gold_lab[first[codes]]
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}, line {lines[j]}: gold of item {program_id[j]!r} disagrees with "
                         f"line {lines[first[codes[j]]]}")
    per_item = pd.DataFrame({"program_id": program_id, "label": gold_lab.astype(np.int64)})
    gold = per_item.drop_duplicates("program_id").reset_index(drop=True)
    gold.insert(1, "line", np.zeros(len(gold), dtype=np.int64))
    return labels, gold
