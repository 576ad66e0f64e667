"""What goes into and comes out of the label store: :class:`Program`, :class:`Ack`,
:func:`program_name`, and the checks every write applies to the values it is given."""

from __future__ import annotations

import hashlib
import numbers
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..crowd import program_lines
from .schema import MAX_ID, MAX_NAME

__all__ = ["Program", "Ack", "program_name", "NEWEST"]

_CHUNK = 900  # ids per IN (...) list

NEWEST = "newest"
"""A queue's ``round_id`` that follows the store's newest round (:meth:`crlhf.store.LabelStore.head`)."""
_SAMPLE_SUFFIX = re.compile(r"-s(\d+)$")


def program_name(program_id: str, task_id: str | None = None, round_id: int | None = None,
                 gold: bool = False) -> str:
    """A program's name for people (the annotation session, the dashboard): its task and sample
    number, e.g. ``minicode/0/train/3 · sample 2 · round 1`` for the loop's
    ``<run>-r1-p0-s1`` or ``crlhf round``'s ``r1-minicode/0/train/3-s1`` (samples counted
    from 1); ``gold · <task>`` for a calibration program; the id itself without a task."""
    m = _SAMPLE_SUFFIX.search(program_id)
    if task_id is None:
        return f"gold · {program_id}" if gold else program_id
    if gold:
        return f"gold · {task_id}"
    parts = [task_id]
    if m:
        parts.append(f"sample {int(m.group(1)) + 1}")
    if round_id is not None:
        parts.append(f"round {int(round_id)}")
    return " · ".join(parts)


@dataclass(frozen=True)
class Program:
    """One program as an annotator sees it (no gold flag, no truth: those come after submit)."""

    program_id: str
    program: str
    task_id: str | None = None
    prompt: str | None = None
    round_id: int | None = None

    @property
    def name(self) -> str:
        """Its readable name (:func:`program_name`; never says "gold": calibration is blind)."""
        return program_name(self.program_id, self.task_id, self.round_id)

    @property
    def lines(self) -> list[str]:
        """The lines the annotator labels, numbered from 0."""
        return program_lines(self.program)

    @property
    def n_lines(self) -> int:
        """How many lines there are to label."""
        return len(self.lines)


@dataclass(frozen=True)
class Ack:
    """Acknowledgement of a committed label write.

    ``client_label_ids``: one per label written, in order (generated where not given);
    ``stored``: labels new to the log; ``duplicates``: retries of labels already stored.
    """

    annotator: str
    client_label_ids: tuple[str, ...]
    stored: int
    duplicates: int
    time: float


# ----------------------------------------------------------------------------- validation
def _check_str(value, field: str, max_len: int = MAX_ID) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a str, got {value!r} (field {field!r})")
    if not value or len(value) > max_len:
        raise ValueError(f"{field} must have 1 to {max_len} characters, got {value!r} (field {field!r})")
    return value


def _check_name(name) -> str:
    name = _check_str(name, "annotator", MAX_NAME)
    if name != name.strip() or any(not ch.isprintable() for ch in name):
        raise ValueError(f"annotator name {name!r} has surrounding spaces or unprintable characters "
                         "(field 'annotator')")
    return name


def _as_int(value, field: str, where: str = "") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}{field} must be an integer, got {value!r} (field {field!r})")
    if isinstance(value, numbers.Integral):
        return int(value)
    f = float(value)
    if not f.is_integer():
        raise ValueError(f"{where}{field} must be an integer, got {value!r} (field {field!r})")
    return int(f)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _chunks(seq: Sequence, n: int = _CHUNK):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _rows(items, columns: Sequence[str], what: str) -> list[dict]:
    """Frames, mappings or tuples as a list of dicts with (at most) ``columns``."""
    if isinstance(items, pd.DataFrame):  # missing values (NaN, NA) become None
        return items.astype(object).where(items.notna(), None).to_dict("records")
    if isinstance(items, Mapping):
        return [dict(items)]
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"{what} must be a DataFrame or an iterable of mappings/tuples, got {items!r}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            out.append(dict(item))
        elif isinstance(item, (tuple, list)) and not isinstance(item, str):
            if len(item) > len(columns):
                raise ValueError(f"{what}[{i}] has {len(item)} fields; expected at most {list(columns)}")
            out.append(dict(zip(columns, item, strict=False)))
        else:
            raise TypeError(f"{what}[{i}] must be a mapping or a tuple {tuple(columns)}, got {item!r}")
    return out


def _label_frame(rows) -> pd.DataFrame:
    """Rows ``program_id, line, annotator, label, time, label_id`` as a label frame, built column
    by column (5x faster than ``pd.DataFrame(rows)`` on 100k rows)."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * 6

    def objects(values):
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr

    return pd.DataFrame({
        "program_id": objects(cols[0]),
        "line": np.asarray(cols[1], dtype=np.int64),
        "annotator": objects(cols[2]),
        "label": np.asarray(cols[3], dtype=np.int64),
        "time": pd.to_datetime(np.asarray(cols[4], dtype=float), unit="s", utc=True),
        "order": np.asarray(cols[5], dtype=np.int64),
    })


def _task_rows(tasks) -> list[dict]:
    """Tasks (objects or mappings) as rows ``task_id, prompt, source``; a task_id given twice
    must come with the same prompt."""
    rows: list[dict] = []
    for i, t in enumerate(tasks.to_dict("records") if isinstance(tasks, pd.DataFrame) else tasks):
        get = t.get if isinstance(t, Mapping) else (lambda k, d=None, t=t: getattr(t, k, d))
        task_id = _check_str(get("task_id"), "task_id")
        prompt = get("prompt")
        if not isinstance(prompt, str):
            raise ValueError(f"tasks[{i}]: prompt must be a str, got {prompt!r} (field 'prompt')")
        source = get("source")
        if source is not None and not isinstance(source, str):
            raise ValueError(f"tasks[{i}]: source must be a str, got {source!r} (field 'source')")
        rows.append({"task_id": task_id, "prompt": prompt, "source": source})
    prompts: dict[str, str] = {}
    for r in rows:
        if prompts.setdefault(r["task_id"], r["prompt"]) != r["prompt"]:
            raise ValueError(f"task_id {r['task_id']!r} appears twice with different prompts (field 'task_id')")
    return rows


def _program_rows(items: list[dict], task_id, round_id: int | None, gold: bool
                  ) -> tuple[list[dict], dict[str, list[int]], dict[str, dict]]:
    """Program mappings as ``programs`` rows (ids made up where missing), the line truth of gold
    ones, and the rows by id (an id given twice must come with the same content)."""
    rows, truths = [], {}
    for i, it in enumerate(items):
        text = it.get("program")
        if not isinstance(text, str):
            raise ValueError(f"programs[{i}]: program must be a str, got {text!r} (field 'program')")
        pid = it.get("program_id")
        pid = uuid.uuid4().hex if pid is None else _check_str(pid, "program_id")
        tid = it.get("task_id", None)
        tid = task_id if tid is None else tid
        if tid is not None:
            _check_str(tid, "task_id")
        n = len(program_lines(text))
        if gold:
            truth = it.get("truth")
            arr = np.asarray(truth if truth is not None else [], dtype=object).ravel()
            try:
                vals = [_as_int(v, "truth", f"gold program {pid!r}: ") for v in arr]
            except ValueError:
                vals = [0]
            if len(vals) != n or any(v not in (1, -1) for v in vals):
                raise ValueError(f"gold program {pid!r}: truth must be +1/-1 for each of its {n} lines, "
                                 f"got {truth!r} (field 'truth')")
            truths[pid] = vals
        rows.append({"program_id": pid, "task_id": tid, "round_id": round_id, "program": text,
                     "n_lines": n, "gold": gold})
    seen: dict[str, dict] = {}
    for r in rows:
        if r["program_id"] in seen and seen[r["program_id"]] != r:
            raise ValueError(f"program_id {r['program_id']!r} appears twice with different content "
                             "(field 'program_id')")
        seen[r["program_id"]] = r
    return rows, truths, seen


def _label_rows(rows: list[dict]) -> tuple[list[str], list[int], list[int], list[str], set]:
    """Label rows checked: ``program_ids, lines, labels, client_label_ids`` (made up where
    missing) and the annotator names the rows claim."""
    pids, lines, labs, cids, claimed = [], [], [], [], set()
    for i, r in enumerate(rows):
        where = f"labels[{i}]: "
        unknown = set(r) - {"program_id", "line", "label", "client_label_id", "annotator", "time", "order"}
        if unknown:
            raise ValueError(f"{where}unknown field(s) {sorted(unknown)}; expected program_id, line, label, "
                             "client_label_id")
        for field in ("program_id", "line", "label"):
            if field not in r:
                raise ValueError(f"{where}missing field {field!r}")
        pid = r["program_id"]
        if not isinstance(pid, str) or not pid:
            raise ValueError(f"{where}program_id must be a non-empty str, got {pid!r} (field 'program_id')")
        line = _as_int(r["line"], "line", where)
        try:
            lab = _as_int(r["label"], "label", where)
        except ValueError:
            lab = None
        if lab not in (1, -1):
            raise ValueError(f"{where}label must be +1 (correct) or -1 (wrong), got {r['label']!r} "
                             "(field 'label')")
        cid = r.get("client_label_id")
        if cid is None or (isinstance(cid, float) and np.isnan(cid)):
            cid = uuid.uuid4().hex
        else:
            _check_str(cid, "client_label_id")
        if "annotator" in r:
            claimed.add(r["annotator"])
        pids.append(pid)
        lines.append(line)
        labs.append(lab)
        cids.append(cid)
    return pids, lines, labs, cids, claimed
