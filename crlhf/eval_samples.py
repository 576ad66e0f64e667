"""The samples file of ``crlhf eval`` (:mod:`crlhf.eval_run`) and the blocks that fill it: which
(task, temperature, sample index) keys are still to draw (:func:`plan_blocks`, each block with a
seed of its own from :func:`derive_seed`), drawing a block (:func:`sample_block`), checking it in
the sandbox (:func:`check_block`), appending its rows in one write (:func:`append_rows`), and
reading the file back, checked (:func:`read_samples`), as pass@k (:func:`results_of`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .eval_run import EvalConfig

__all__ = ["SAMPLE_FIELDS", "samples_path", "read_samples", "derive_seed", "Block", "plan_blocks", "sample_block",
           "check_block", "append_rows", "results_of"]

SAMPLE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "task_id": str, "temperature": (int, float), "sample": int, "completion": str, "passed": bool, "status": str}


def samples_path(out: str | os.PathLike, task_set: str) -> Path:
    """The samples file of ``task_set`` in the run folder ``out``."""
    return Path(out) / f"{task_set}_samples.jsonl"


def read_samples(path: str | os.PathLike) -> list[dict]:
    """The rows of a samples file, checked. A last line without its newline (a write cut short by
    an interruption) is dropped from the file with a warning; any other bad line is an error
    naming the file, the line and the field."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        warnings.warn(f"{path}: dropping an unfinished last line ({len(data) - end} bytes) left by an "
                      f"interrupted write; its samples will be drawn again", stacklevel=2)
        with open(path, "r+b") as fh:
            fh.truncate(end)
    rows: list[dict] = []
    seen: dict[tuple, int] = {}
    for number, line in enumerate(data[:end].decode("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {number}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object")
        for name, kind in SAMPLE_FIELDS.items():
            value = row.get(name)
            if name not in row or not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise ValueError(f"{path}, line {number}: field {name!r} missing or not "
                                 f"{getattr(kind, '__name__', 'a number')}")
        key = (row["task_id"], float(row["temperature"]), row["sample"])
        if key in seen:
            raise ValueError(f"{path}, line {number}: sample {key} is already on line {seen[key]}")
        seen[key] = number
        rows.append(row)
    return rows


def derive_seed(seed: int, *parts) -> int:
    """A 31-bit seed from ``seed`` and the parts naming a block (stable across runs and machines)."""
    text = "|".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass
class Block:
    """Samples to draw together: ``tasks`` at ``temperature``, sample indices ``indices`` of each."""

    task_set: str
    temperature: float
    index: int
    tasks: list
    indices: list
    seed: int

    @property
    def size(self) -> int:
        return len(self.tasks) * len(self.indices)


def plan_blocks(task_set: str, tasks: list, cfg: EvalConfig, done: set) -> list[Block]:
    """The blocks still to sample: every (task, temperature, index < n) key not in ``done``.

    Tasks are grouped in fixed runs of ``cfg.block_tasks``; inside a group, tasks lacking the
    same indices are sampled together (normally the whole group, all n)."""
    g = cfg.block_tasks
    blocks = []
    for temp in cfg.temperatures:
        for b in range(0, len(tasks), g):
            groups: dict[tuple, list] = {}
            for task in tasks[b:b + g]:
                missing = tuple(j for j in range(cfg.n) if (task.task_id, temp, j) not in done)
                if missing:
                    groups.setdefault(missing, []).append(task)
            for missing, members in groups.items():
                blocks.append(Block(task_set, temp, b // g, members, list(missing),
                                    derive_seed(cfg.seed, task_set, repr(temp), b // g, missing[0])))
    return blocks


def sample_block(policy, block: Block, cfg: EvalConfig, max_new_tokens: int) -> list[list[str]]:
    """``len(block.indices)`` completions for each task of ``block``, cut at the task's stops."""
    stop = tuple(dict.fromkeys(s for t in block.tasks for s in t.stop))
    result = policy.sample([t.prompt for t in block.tasks], n=len(block.indices), temperature=block.temperature,
                           max_new_tokens=max_new_tokens, stop=stop, seed=block.seed, batch_size=cfg.batch_size,
                           progress=False, cache_implementation="static" if cfg.static_cache else None)
    return [[task.truncate(c.text) for c in row] for task, row in zip(block.tasks, result, strict=True)]


def check_block(block: Block, completions: list[list[str]], cfg: EvalConfig, sandbox=None) -> list[dict]:
    """The sandbox's verdicts on a block's completions, as samples-file rows (``sandbox``: a
    ``crlhf.sandbox.Sandbox``; default the shared pool of ``crlhf.sandbox.check_many``)."""
    from .sandbox import check_many

    keyed = [(task, j, comp) for task, comps in zip(block.tasks, completions, strict=True)
             for j, comp in zip(block.indices, comps, strict=True)]
    items = [task.check_item(comp) for task, _, comp in keyed]
    if sandbox is not None:
        results = sandbox.check_many(items, timeout=cfg.timeout, progress=False)
    else:
        results = check_many(items, timeout=cfg.timeout, workers=cfg.workers, progress=False)
    return [{"task_id": task.task_id, "temperature": block.temperature, "sample": j, "completion": comp,
             "passed": bool(res.passed), "status": res.status, "detail": res.detail[:200]}
            for (task, j, comp), res in zip(keyed, results, strict=True)]


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to the samples file in one write, flushed to disk."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def results_of(rows: list[dict], tasks: list, cfg: EvalConfig):
    """pass@k (:class:`crlhf.evaluate.EvalResult`) of ``tasks`` at ``cfg``'s temperatures from
    samples-file rows, using sample indices ``0..n-1`` of each (task, temperature)."""
    import pandas as pd

    from .evaluate import summarize

    frame = pd.DataFrame(rows, columns=list(SAMPLE_FIELDS) + ["detail"])
    frame["temperature"] = frame["temperature"].astype(float)
    ids = [t.task_id for t in tasks]
    keep = frame.task_id.isin(ids) & frame.temperature.isin(cfg.temperatures) & (frame["sample"] < cfg.n)
    frame = frame[keep].copy()
    counts = frame.groupby(["task_id", "temperature"]).size()
    expected = len(ids) * len(cfg.temperatures)
    if len(counts) != expected or (counts != cfg.n).any():
        raise RuntimeError(f"the samples file lacks samples ({len(frame)} of {expected * cfg.n}); run again to finish")
    order = {tid: i for i, tid in enumerate(ids)}
    frame = frame.sort_values(["temperature", "task_id", "sample"], key=lambda s: s.map(order) if s.name == "task_id"
                              else s, kind="stable").reset_index(drop=True)
    return summarize(frame, cfg.ks)
