"""Which program an annotator labels next, and how far the labelling is: the bodies of
:meth:`crlhf.store.LabelStore.next_program` (gold first, then the fewest annotators or, with
``active``, the least certain program), ``queue_progress``, ``counts``, ``round_progress``
and ``wait_for_labels``. Each function takes the :class:`~crlhf.store.LabelStore` it reads."""

from __future__ import annotations

import copy
import numbers
import time
from collections.abc import Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..crowd import CrowdModel, counted_lines
from .schema import LABEL_COLUMNS, labels_table, program_query, programs_table
from .values import Program, _as_int, _check_name, _check_str, _chunks, program_name

__all__ = ["next_program", "least_certain", "queue_progress", "round_progress", "counts", "wait_for_labels",
           "check_min_annotators"]


def check_min_annotators(min_annotators) -> int:
    """``min_annotators`` as an int >= 1, else a ``ValueError`` naming the field."""
    m = _as_int(min_annotators, "min_annotators")
    if m < 1:
        raise ValueError(f"min_annotators must be >= 1, got {min_annotators!r} (field 'min_annotators')")
    return m


def counts(store, program_ids: Iterable[str] | None) -> pd.DataFrame:
    """See :meth:`crlhf.store.LabelStore.counts`."""
    lab = labels_table

    def query(cond=None):
        lines = sa.select(lab.c.program_id, lab.c.annotator, lab.c.line)
        if cond is not None:
            lines = lines.where(cond)
        per_line = lines.group_by(lab.c.program_id, lab.c.annotator, lab.c.line).subquery()
        return (sa.select(per_line.c.program_id, sa.func.count(sa.distinct(per_line.c.annotator)), sa.func.count())
                .group_by(per_line.c.program_id))

    with store._read() as conn:
        if program_ids is None:
            pids = conn.execute(sa.select(programs_table.c.program_id).order_by(
                programs_table.c.seq)).scalars().all()
            rows = conn.execute(query()).all()
        else:
            pids = [program_ids] if isinstance(program_ids, str) else list(program_ids)
            for pid in pids:
                _check_str(pid, "program_id")
            store._lines_of(conn, pids)
            rows = []
            for chunk in _chunks(list(dict.fromkeys(pids))):
                rows += conn.execute(query(lab.c.program_id.in_(chunk))).all()
    got = {pid: (na, nl) for pid, na, nl in rows}
    return pd.DataFrame({"program_id": pd.Series(pids, dtype=object),
                         "n_annotators": np.array([got.get(p, (0, 0))[0] for p in pids], dtype=np.int64),
                         "n_labels": np.array([got.get(p, (0, 0))[1] for p in pids], dtype=np.int64)})


def round_progress(store, round_id: int | None, min_annotators: int) -> pd.DataFrame:
    """See :meth:`crlhf.store.LabelStore.round_progress`."""
    m = check_min_annotators(min_annotators)
    p, lab = programs_table, labels_table
    n = (sa.select(sa.func.count(sa.distinct(lab.c.annotator))).where(lab.c.program_id == p.c.program_id)
         .scalar_subquery())  # one index range per program (ix_labels_program)
    q = sa.select(p.c.program_id, p.c.task_id, p.c.round_id, n).where(p.c.gold == sa.false()).order_by(p.c.seq)
    if round_id is not None:
        q = q.where(p.c.round_id == _as_int(round_id, "round_id"))
    with store._read() as conn:
        rows = conn.execute(q).all()
    counts = np.array([r[3] for r in rows], dtype=np.int64)
    return pd.DataFrame({"program_id": pd.Series([r[0] for r in rows], dtype=object),
                         "name": pd.Series([program_name(pid, tid, rid) for pid, tid, rid, _ in rows], dtype=object),
                         "n_annotators": counts, "complete": counts >= m})


def wait_for_labels(store, program_ids: Iterable[str], min_annotators: int, timeout: float | None,
                    poll: float, progress: bool) -> pd.DataFrame:
    """See :meth:`crlhf.store.LabelStore.wait_for_labels`."""
    pids = [program_ids] if isinstance(program_ids, str) else list(program_ids)
    if not (isinstance(poll, numbers.Real) and poll > 0):
        raise ValueError(f"poll must be a positive number of seconds, got {poll!r} (field 'poll')")
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pids), desc="programs labelled", unit="program")
    try:
        while True:
            status = store.labels_complete(pids, min_annotators)
            done = int(status["complete"].sum())
            if bar is not None:
                bar.n = done
                bar.refresh()
            if done == len(status):
                return store.labels(program_ids=pids)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{len(status) - done} of {len(status)} programs still have labels from "
                                   f"fewer than {min_annotators} annotators after {timeout} s")
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
    finally:
        if bar is not None:
            bar.close()


def next_program(store, annotator: str, n_gold: int | None, round_id: int | None,
                 max_annotators: int | None, active: bool, model: CrowdModel | None,
                 model_kwargs: dict) -> Program | None:
    """See :meth:`crlhf.store.LabelStore.next_program`."""
    lab, p = labels_table, programs_table
    with store._read() as conn:
        name = store._require_annotator(conn, annotator)
        mine = sa.select(lab.c.program_id).where(lab.c.annotator == name)
        if n_gold is None or _as_int(n_gold, "n_gold") > 0:
            done = conn.execute(
                sa.select(sa.func.count(sa.distinct(lab.c.program_id)))
                .select_from(lab.join(p, p.c.program_id == lab.c.program_id))
                .where(lab.c.annotator == name, p.c.gold == sa.true())).scalar_one()
            if n_gold is None or done < n_gold:
                row = conn.execute(program_query().where(p.c.gold == sa.true(), p.c.program_id.not_in(mine))
                                   .order_by(p.c.seq).limit(1)).first()
                if row is not None:
                    return Program(*row)
        n = (sa.select(lab.c.program_id, sa.func.count(sa.distinct(lab.c.annotator)).label("n"))
             .group_by(lab.c.program_id).subquery())
        n_ann = sa.func.coalesce(n.c.n, 0)
        q = (sa.select(p.c.program_id, p.c.program, n_ann)
             .select_from(p.outerjoin(n, n.c.program_id == p.c.program_id))
             .where(p.c.gold == sa.false(), p.c.program_id.not_in(mine)))
        if round_id is not None:
            q = q.where(p.c.round_id == _as_int(round_id, "round_id"))
        if max_annotators is not None:
            q = q.where(n_ann < _as_int(max_annotators, "max_annotators"))
        q = q.order_by(n_ann, p.c.seq)
        if not active:
            row = conn.execute(program_query().where(p.c.program_id.in_(
                sa.select(q.limit(1).subquery().c.program_id)))).first()
            return None if row is None else Program(*row)
        candidates = conn.execute(q).all()
    if not candidates:
        return None
    return store.program(least_certain(store, candidates, model, model_kwargs))


def queue_progress(store, annotator: str, n_gold: int | None, round_id: int | None) -> tuple[int, int]:
    """See :meth:`crlhf.store.LabelStore.queue_progress`."""
    lab, p = labels_table, programs_table
    ordinary = p.c.gold == sa.false()
    if round_id is not None:
        ordinary = sa.and_(ordinary, p.c.round_id == _as_int(round_id, "round_id"))
    mine = sa.select(lab.c.program_id).where(lab.c.annotator == _check_name(annotator)).distinct().subquery()
    q = sa.select(sa.func.count().filter(p.c.gold == sa.true()),
                  sa.func.count(mine.c.program_id).filter(p.c.gold == sa.true()),
                  sa.func.count().filter(ordinary),
                  sa.func.count(mine.c.program_id).filter(ordinary)
                  ).select_from(p.outerjoin(mine, mine.c.program_id == p.c.program_id))
    with store._read() as conn:
        gold_all, gold_done, total, done = (int(x or 0) for x in conn.execute(q).one())
    if n_gold is not None:
        cap = max(_as_int(n_gold, "n_gold"), 0)
        gold_all, gold_done = min(gold_all, cap), min(gold_done, cap)
    return gold_done + done, gold_all + total


def least_certain(store, candidates, model: CrowdModel | None, model_kwargs: dict) -> str:
    """Active labelling: the candidate whose least certain counted line is nearest 1/2, under
    the model's current reliabilities. The posteriors come from ``CrowdModel.assess_log``
    (eq 7, or its two-coin form) on a copy of the model that nothing updates, one call for
    all candidates; ``model`` itself is left as it is. ``candidates``: rows ``(program_id,
    program, n_annotators)``, fewest annotators first, then oldest."""
    from .export import replay

    if model is None:
        model, _, log = replay(store, None, model_kwargs)
    elif model_kwargs:
        raise TypeError("pass either model or CrowdModel keyword arguments, not both")
    elif not isinstance(model, CrowdModel):
        raise TypeError(f"model must be a crlhf.crowd.CrowdModel, got {type(model).__name__}")
    else:
        log = None
    texts = {pid: text for pid, text, _ in candidates}
    log = store.labels(program_ids=list(texts)) if log is None else log[log["program_id"].isin(texts)]
    frozen = copy.deepcopy(model).add_annotators(list(dict.fromkeys(log["annotator"])))
    in_order = list(dict.fromkeys(log["program_id"]))
    lines = frozen.assess_log(log[[*LABEL_COLUMNS, "order"]], programs={pid: texts[pid] for pid in in_order})
    lines = lines[lines["counted"].to_numpy(dtype=bool)]
    certainty = (lines["posterior"] - 0.5).abs().groupby(lines["program_id"], sort=False).min().to_dict()
    labelled = set(in_order)

    def key(item):
        rank, (pid, text, _) = item  # candidates come fewest annotators first, then oldest
        if pid in certainty:
            return certainty[pid], rank
        if pid not in labelled and counted_lines(text, model.count_blank).any():
            return abs(model.line_prior - 0.5), rank  # no labels: every line at the prior
        return 0.5, rank  # nothing to count

    return candidates[min(enumerate(candidates), key=key)[0]][0]
