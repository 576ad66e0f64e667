"""Read-only views of crowd results, what the ThresholdExplorer and the dashboard read: every
program's score at a threshold (:func:`scores_at`), line truth as a frame (:func:`truth_frame`),
how the threshold ``tau`` trades off against that truth (:func:`threshold_curve`) and the
annotators' leaderboard (:func:`annotator_summary`). They update no model; the posteriors they
read come from :class:`crlhf.crowd.CrowdModel` (``ReplayResult.lines`` or
:meth:`crlhf.crowd.CrowdModel.assess_log`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .crowd import CrowdModel, _gold_mapping, _int_column, _latest_labels
from .reward import LINE_FRAME_COLUMNS, _check_lines, _check_tau, program_scores, scored_mask, shape_scores

__all__ = ["scores_at", "truth_frame", "threshold_curve", "annotator_summary"]

LINE_COLUMNS = LINE_FRAME_COLUMNS  # the columns of ReplayResult.lines


def scores_at(lines: pd.DataFrame, tau: float = 0.5, shape: str = "share", *, prompts: Mapping | None = None,
              programs: Mapping | None = None) -> pd.DataFrame:
    """The reward of every program at threshold ``tau`` from per-line posteriors
    (``ReplayResult.lines`` or :meth:`crlhf.crowd.CrowdModel.assess_log`), computed by
    :func:`crlhf.reward.program_scores`: by default ``s = c / k``, ``c`` scored lines with
    posterior ``> tau``, ``k`` scored lines, ``s = 0`` when ``k = 0``. The scored lines are the
    counted lines after those given with the prompt (``prompts``: ``program_id -> prompt`` and
    ``programs``: ``program_id -> text``; without them every counted line). Returns
    ``program_id, score, k`` in order of first appearance."""
    return program_scores(lines, tau, shape, prompts=prompts, programs=programs)


def truth_frame(truth) -> pd.DataFrame:
    """Line truth as a frame ``program_id, line, truth`` (+1 correct / -1 wrong), from a frame
    with ``program_id, line`` and ``truth`` or ``label`` (as ``LabelStore.gold()``), or a
    mapping ``program_id -> [+1/-1 per line]``."""
    if isinstance(truth, pd.DataFrame):
        col = "truth" if "truth" in truth.columns else "label" if "label" in truth.columns else None
        missing = [c for c in ("program_id", "line") if c not in truth.columns] + ([] if col else ["truth"])
        if missing:
            raise ValueError(f"truth frame lacks column(s) {missing}; expected program_id, line, truth (or label)")
        values = _int_column(truth[col], "truth")
        lines = _int_column(truth["line"], "line")
        frame = pd.DataFrame({"program_id": truth["program_id"].to_numpy(dtype=object), "line": lines,
                              "truth": values})
    elif isinstance(truth, Mapping):
        mapping = _gold_mapping(truth)
        lengths = np.array([len(v) for v in mapping.values()], dtype=np.int64)
        pid_obj = np.empty(len(mapping), dtype=object)
        pid_obj[:] = list(mapping)
        frame = pd.DataFrame({"program_id": np.repeat(pid_obj, lengths),
                              "line": np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else
                              np.zeros(0, np.int64),
                              "truth": np.concatenate(list(mapping.values())) if mapping else np.zeros(0, np.int64)})
    else:
        raise TypeError(f"truth must be a frame (program_id, line, truth) or a mapping program_id -> "
                        f"[+1/-1 per line], got {type(truth).__name__}")
    bad = ~np.isin(frame["truth"].to_numpy(), (1, -1))
    if bad.any():
        raise ValueError(f"truth row {int(np.flatnonzero(bad)[0])}: line truth must be +1 or -1 (field 'truth')")
    return frame.drop_duplicates(["program_id", "line"], keep="last").reset_index(drop=True)


def threshold_curve(lines: pd.DataFrame, truth, taus=None, shape: str = "share", *, prompts: Mapping | None = None,
                    programs: Mapping | None = None) -> pd.DataFrame:
    """How the threshold ``tau`` of the reward trades off against the truth, for each ``tau``
    in ``taus`` (default 0, 0.02, ..., 1): ``tau``, ``line_accuracy`` (share of scored lines
    with known truth where ``posterior > tau`` agrees with it), ``score_mae`` (mean absolute
    error of the score, :func:`crlhf.reward.shape_scores` with ``shape``, against the same shape
    of the truth, over programs whose scored lines all have truth), ``mean_score``, ``n_lines``
    and ``n_programs`` evaluated. The scored lines are those of :func:`crlhf.reward.scored_mask`
    (``prompts``/``programs`` as in :func:`scores_at`). Vectorised over lines."""
    _check_lines(lines)
    taus = np.round(np.linspace(0, 1, 51), 2) if taus is None else np.atleast_1d(np.asarray(taus, dtype=float))
    for t in taus:
        _check_tau(t)
    t_frame = truth_frame(truth)
    key = pd.MultiIndex.from_arrays([lines["program_id"].to_numpy(dtype=object), lines["line"].to_numpy()])
    pos = pd.MultiIndex.from_arrays([t_frame["program_id"].to_numpy(dtype=object),
                                     t_frame["line"].to_numpy()]).get_indexer(key)
    known = pos >= 0
    t_line = np.where(known, t_frame["truth"].to_numpy()[np.maximum(pos, 0)], 0)
    counted = scored_mask(lines, prompts, programs)
    post = lines["posterior"].to_numpy(dtype=float)
    codes, pids = pd.factorize(lines["program_id"], sort=False)
    n_prog = len(pids)
    k = np.bincount(codes, weights=counted, minlength=n_prog)
    k_known = np.bincount(codes, weights=counted & known, minlength=n_prog)
    full = (k > 0) & (k_known == k)  # programs whose every scored line has truth
    true_s = shape_scores((t_line > 0).astype(float), counted, codes, n_prog, shape, 0.5)
    use = counted & known
    above = post[None, :] > taus[:, None]  # (n_taus, n_lines)
    n_used = int(use.sum())
    hits = ((above == (t_line > 0)[None, :]) & use[None, :]).sum(axis=1)
    acc = hits / n_used if n_used else np.full(len(taus), np.nan)
    s = np.stack([shape_scores(post, counted, codes, n_prog, shape, t) for t in taus]) if len(taus) else \
        np.zeros((0, n_prog))  # one bincount per threshold (51 by default)
    n_full = int(full.sum())
    mae = np.abs(s[:, full] - true_s[full][None, :]).mean(axis=1) if n_full else np.full(len(taus), np.nan)
    return pd.DataFrame({"tau": taus, "line_accuracy": acc, "score_mae": mae,
                         "mean_score": s.mean(axis=1) if n_prog else np.full(len(taus), np.nan),
                         "n_lines": n_used, "n_programs": n_full})


def annotator_summary(model: CrowdModel, log: pd.DataFrame, gold=None) -> pd.DataFrame:
    """One row per annotator of ``model`` (a leaderboard), best reliability first:
    ``annotator, reliability`` (current ``p_i``), ``n_labels`` (latest labels), ``n_programs``,
    ``gold_lines`` (gold lines labelled) and ``gold_accuracy`` (share of them labelled as the
    truth says; NaN without gold labels)."""
    if not isinstance(model, CrowdModel):
        raise TypeError(f"model must be a CrowdModel, got {type(model).__name__}")
    frame = _latest_labels(log)
    names = pd.Index(model.annotators, dtype=object)
    rel = model.reliabilities.to_numpy()
    codes, uniques = pd.factorize(frame["annotator"], sort=False)
    where = names.get_indexer(pd.Index(uniques, dtype=object))
    if (where < 0).any():
        raise ValueError(f"annotator {uniques[int(np.flatnonzero(where < 0)[0])]!r} of the log "
                         "is not registered in the model (field 'annotator')")
    ann = where[codes] if len(codes) else np.zeros(0, dtype=np.intp)
    n = len(names)
    n_labels = np.bincount(ann, minlength=n)
    pcodes, puniques = pd.factorize(frame["program_id"], sort=False)
    pairs = np.unique(ann.astype(np.int64) * max(len(puniques), 1) + pcodes)
    n_programs = np.bincount(pairs // max(len(puniques), 1), minlength=n)
    gold_lines: np.ndarray = np.zeros(n, dtype=np.int64)
    gold_right: np.ndarray = np.zeros(n)
    if gold is not None:
        t_frame = truth_frame(gold)
        on_gold = frame["program_id"].isin(pd.unique(t_frame["program_id"])).to_numpy(dtype=bool)
        if len(t_frame) and on_gold.any():
            sub, sub_ann = frame[on_gold], ann[on_gold]
            key = pd.MultiIndex.from_arrays([sub["program_id"].to_numpy(dtype=object), sub["line"].to_numpy()])
            pos = pd.MultiIndex.from_arrays([t_frame["program_id"].to_numpy(dtype=object),
                                             t_frame["line"].to_numpy()]).get_indexer(key)
            known = pos >= 0
            right = known & (sub["label"].to_numpy() == t_frame["truth"].to_numpy()[np.maximum(pos, 0)])
            gold_lines = np.bincount(sub_ann, weights=known, minlength=n).astype(np.int64)
            gold_right = np.bincount(sub_ann, weights=right, minlength=n)
    out = pd.DataFrame({
        "annotator": names.to_numpy(dtype=object), "reliability": rel, "n_labels": n_labels.astype(np.int64),
        "n_programs": n_programs.astype(np.int64), "gold_lines": gold_lines,
        "gold_accuracy": np.divide(gold_right, gold_lines, out=np.full(n, np.nan), where=gold_lines > 0),
    })
    return out.sort_values(["reliability", "n_labels"], ascending=[False, False], kind="stable").reset_index(drop=True)
