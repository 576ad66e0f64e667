"""Tasks: one ``Task`` record and loaders for HumanEval, MBPP, XLCoST and minicode.

``load_tasks(name, **options)`` dispatches to ``load_<name>`` of the submodule; gold
programs (``make_gold``) and line truth (``line_truth``) for the crowd live in ``gold`` and
``truth``. Every program runs only inside ``crlhf.sandbox``.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Task, TaskFormatError
from .gold import GoldProgram, make_gold, make_gold_many, mutants
from .humaneval import load_humaneval
from .mbpp import load_mbpp
from .minicode import load_minicode
from .truth import line_truth
from .xlcost import load_xlcost

LOADERS: dict[str, Callable[..., list[Task]]] = {"humaneval": load_humaneval, "mbpp": load_mbpp,
                                                 "xlcost": load_xlcost, "minicode": load_minicode}


def load_tasks(name: str, **options) -> list[Task]:
    """Tasks of the family ``name`` (``humaneval``, ``mbpp``, ``xlcost``, ``minicode``).

    Options go to the family's loader, e.g. ``load_tasks("mbpp", path=..., split="test",
    prompt_style="3shot")`` or ``load_tasks("minicode", split="test", n=200, seed=0)``.
    """
    if not isinstance(name, str) or name.lower() not in LOADERS:
        raise ValueError(f"unknown task family {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name.lower()](**options)


__all__ = ["Task", "TaskFormatError", "GoldProgram", "load_tasks", "load_humaneval", "load_mbpp",
           "load_xlcost", "load_minicode", "make_gold", "make_gold_many", "mutants", "line_truth"]
