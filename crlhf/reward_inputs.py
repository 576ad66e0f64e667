"""The steps between sampling programs and computing their reward, shared by Algorithm 1
(:mod:`crlhf.loop`) and the TRL reward function (:mod:`crlhf.trl_rewards`): the tasks a run may
use (:func:`checked_tasks`), each program checked in the sandbox with its line truth and scored
lines (:func:`check_programs`, a :class:`crlhf.reward.CheckedProgram`), and the crowd's
per-line posteriors (:func:`crowd_posteriors`, eq 7) or scores (:func:`crowd_scores`). These are
the parts of a :class:`crlhf.reward.RewardInputs`; the reward itself is :mod:`crlhf.reward`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .reward import CheckedProgram, scored_lines

if TYPE_CHECKING:
    import pandas as pd

    from .crowd import CrowdModel

__all__ = ["checked_tasks", "check_programs", "crowd_posteriors", "crowd_scores"]


def checked_tasks(tasks) -> list:
    """``tasks`` as a list of Task records that have tests: line truth and the pass rate need
    the sandbox's verdict."""
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks is empty: prompts come from the tasks")
    for i, t in enumerate(tasks):
        if not hasattr(t, "check_item") or not hasattr(t, "prompt"):
            raise TypeError(f"tasks[{i}] must be a crlhf.tasks.Task, got {type(t).__name__}")
        if t.test_style == "none":
            raise ValueError(f"tasks[{i}] ({t.task_id}) has no tests: line truth needs the sandbox verdict")
    return tasks


def check_programs(tasks: Sequence, completions: Sequence[str], timeout: float = 3.0,
                   count_blank: bool = False) -> list[CheckedProgram]:
    """Run each completion (already cut at its stop sequences) against its task's tests in
    the sandbox, one batch, and compute its line truth and scored lines."""
    from .sandbox import check_many
    from .tasks import line_truth

    results = check_many([t.check_item(c) for t, c in zip(tasks, completions, strict=True)], timeout=timeout,
                         progress=False)
    out = []
    for t, c, r in zip(tasks, completions, results, strict=True):
        text = t.program(c)
        out.append(CheckedProgram(t, text, bool(r.passed), line_truth(text, t, passed=bool(r.passed)),
                                  scored_lines(text, t, count_blank)))
    return out


def crowd_posteriors(model: CrowdModel, labels: pd.DataFrame, checked: dict) -> tuple[dict, dict]:
    """Ingest each program's labels into ``model`` (posteriors, eq 7; reliability update, its
    rule). ``checked``: ``program_id -> CheckedProgram``; ``labels``: the latest label per
    ``(program_id, line, annotator)``. A program without labels is assessed under the prior, no
    update. Returns ``(posteriors, frames)``: per-line posteriors, and each labelled program's rows."""
    frames = {p: g for p, g in labels.groupby("program_id", sort=False) if len(g)}
    posteriors = {}
    for p, c in checked.items():
        frame = frames.get(p)
        if frame is None:
            posteriors[p] = model.assess({}, program=c.program, program_id=p).posteriors
        else:
            posteriors[p] = model.ingest(frame, program=c.program, program_id=p).posteriors
    return posteriors, frames


def crowd_scores(model: CrowdModel, labels: pd.DataFrame, checked: dict, shape: str = "share") -> tuple[dict, dict]:
    """:func:`crowd_posteriors`, then each program's score (:func:`crlhf.reward.rewards`, source
    ``bayes``, ``shape``; by default ``s = c/k`` over its scored lines, ``c`` = lines whose
    posterior ``> tau``). Returns ``(scores, frames)``."""
    from .reward import RewardInputs, rewards

    posteriors, frames = crowd_posteriors(model, labels, checked)
    return rewards("bayes", RewardInputs(checked, labels, posteriors), shape, model.tau).scores, frames

