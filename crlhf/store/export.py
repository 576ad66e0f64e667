"""The store's labels through the crowd model, and out as a dataset: the bodies of
:meth:`crlhf.store.LabelStore.replay`, ``dataset``, ``export_dataset`` and ``to_dataset``.
The replay itself is :func:`crlhf.replay.replay_log` and the score :mod:`crlhf.reward`: these
functions only read the store for them. Each takes the :class:`~crlhf.store.LabelStore` it reads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..crowd import CrowdModel, ReplayResult
from ..replay import replay_log
from .schema import LABEL_COLUMNS, annotators_table, gold_table, labels_table, programs_table, tasks_table
from .values import _as_int, _chunks, _label_frame

__all__ = ["replay", "dataset", "export_dataset", "to_dataset"]


def replay(store, model: CrowdModel | None, model_kwargs: dict
           ) -> tuple[CrowdModel, ReplayResult, pd.DataFrame]:
    """:meth:`crlhf.store.LabelStore.replay`, and the latest-label log it replayed."""
    if model is None:
        CrowdModel(**model_kwargs)  # bad parameters fail before the read
    with store._read() as conn:  # one snapshot for annotators, log, gold and programs
        a = annotators_table
        names = conn.execute(sa.select(a.c.annotator).order_by(a.c.created, a.c.annotator)).scalars().all()
        lab = labels_table
        newest = sa.select(sa.func.max(lab.c.label_id)).group_by(lab.c.program_id, lab.c.annotator, lab.c.line)
        rows = conn.execute(sa.select(lab.c.program_id, lab.c.line, lab.c.annotator, lab.c.label, lab.c.time,
                                      lab.c.label_id).where(lab.c.label_id.in_(newest))
                            .order_by(lab.c.label_id)).all()
        log = _label_frame(rows)
        pids = list(dict.fromkeys(log["program_id"]))
        p, g = programs_table, gold_table
        texts, gold_rows = {}, []
        for chunk in _chunks(pids):
            texts.update(conn.execute(sa.select(p.c.program_id, p.c.program)
                                      .where(p.c.program_id.in_(chunk))).all())
            gold_rows += conn.execute(sa.select(g.c.program_id, g.c.line, g.c.label)
                                      .where(g.c.program_id.in_(chunk))).all()
    gold = pd.DataFrame(gold_rows, columns=["program_id", "line", "label"])
    model, result = replay_log(log[[*LABEL_COLUMNS, "order"]], annotators=names, gold=gold, programs=texts,
                               model=model, **model_kwargs)
    return model, result, log


def dataset(store, model: CrowdModel | None, round_id: int | None, min_annotators: int,
            include_gold: bool, shape: str, model_kwargs: dict) -> pd.DataFrame:
    """See :meth:`crlhf.store.LabelStore.dataset`."""
    from ..reward import program_scores

    fitted, result = store.replay(model, **model_kwargs)
    p, t_ = programs_table, tasks_table
    with store._read() as conn:
        q = (sa.select(p.c.program_id, p.c.task_id, p.c.round_id, t_.c.prompt, p.c.program)
             .select_from(p.outerjoin(t_, t_.c.task_id == p.c.task_id)))
        info = {}
        for chunk in _chunks(list(result.scores["program_id"])):
            for row in conn.execute(q.where(p.c.program_id.in_(chunk))):
                info[row[0]] = row
    scores = program_scores(result.lines, fitted.tau, shape,
                            prompts={x: r[3] for x, r in info.items() if r[3] is not None},
                            programs={x: r[4] for x, r in info.items()})
    gold_of = dict(zip(result.scores["program_id"], result.scores["gold"].to_numpy(dtype=bool), strict=True))
    counts = store.labels()[["program_id", "annotator"]].drop_duplicates().groupby("program_id").size()
    pids = scores["program_id"].to_numpy()
    frame = pd.DataFrame({
        "prompt": pd.Series([info[x][3] for x in pids], dtype=object),
        "program": pd.Series([info[x][4] for x in pids], dtype=object),
        "score": scores["score"].to_numpy(dtype=float),
        "program_id": pd.Series(pids, dtype=object),
        "task_id": pd.Series([info[x][1] for x in pids], dtype=object),
        "round_id": pd.array([info[x][2] for x in pids], dtype="Int64"),
        "k": scores["k"].to_numpy(dtype=np.int64),
        "n_annotators": counts.reindex(pids).fillna(0).to_numpy(dtype=np.int64),
        "gold": np.array([gold_of[x] for x in pids], dtype=bool),
    })
    keep = frame["n_annotators"] >= _as_int(min_annotators, "min_annotators")
    if not include_gold:
        keep &= ~frame["gold"]
    if round_id is not None:
        keep &= (frame["round_id"] == _as_int(round_id, "round_id")).fillna(False).astype(bool)
    return frame[keep.to_numpy(dtype=bool)].reset_index(drop=True)


def export_dataset(store, path, format: str | None, dataset_kwargs: dict) -> Path:
    """See :meth:`crlhf.store.LabelStore.export_dataset`."""
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in ("jsonl", "parquet"):
        raise ValueError(f"format must be 'jsonl' or 'parquet', got {fmt!r} (field 'format')")
    frame = store.dataset(**dataset_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":  # json.dumps writes floats exactly (pandas' to_json rounds to 10 digits)
        columns = {c: [None if pd.isna(v) else (v.item() if isinstance(v, np.generic) else v)
                       for v in frame[c].astype(object)] for c in frame.columns}
        with open(path, "w", encoding="utf-8") as fh:
            for values in zip(*columns.values(), strict=True):
                fh.write(json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False) + "\n")
    else:
        if importlib.util.find_spec("pyarrow") is None:
            raise ImportError("Parquet export needs pyarrow: pip install pyarrow")
        frame.to_parquet(path, index=False)
    return path


def to_dataset(store, dataset_kwargs: dict):
    """See :meth:`crlhf.store.LabelStore.to_dataset`."""
    try:
        import datasets
    except ImportError:
        raise ImportError("to_dataset needs the datasets package: pip install datasets") from None
    frame = store.dataset(**dataset_kwargs)
    frame["round_id"] = frame["round_id"].astype(object).where(frame["round_id"].notna(), None)
    return datasets.Dataset.from_pandas(frame, preserve_index=False)
