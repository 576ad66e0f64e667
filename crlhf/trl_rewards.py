"""A crowd-scored reward function for TRL's critic-free trainers (``GRPOTrainer``,
``RLOOTrainer``): the cRLHF score ``s`` without PPO's value head.

TRL calls a reward function as ``fn(prompts, completions, completion_ids, **kwargs)`` with
every dataset column in ``kwargs`` as a list aligned per completion, and wants one float per
completion. :class:`CrowdReward` does for each completion what one round of
:mod:`crlhf.loop` does for a sampled program: cut it at the task's stop sequences, build the
program (``Task.program``), check it in the sandbox (:func:`crlhf.sandbox.check_many`, one
batch per call), compute the line truth (:func:`crlhf.tasks.line_truth`), let a simulated
crowd label its lines (:meth:`crlhf.simulate.Crowd.label_programs`, ``labels_per_program``
annotators each) and return the reward of :mod:`crlhf.reward` (by default the
:class:`crlhf.crowd.CrowdModel` score ``s = c/k`` over the generated lines), so reliabilities
update online as training goes. The sandbox, line truth, posterior and reward steps are the
loop's own (:func:`crlhf.reward_inputs.check_programs`, :func:`crlhf.reward_inputs.crowd_posteriors`,
:func:`crlhf.reward.rewards`).

Usage::

    from trl import GRPOConfig, GRPOTrainer
    from crlhf.trl_rewards import CrowdReward, trl_dataset

    reward = CrowdReward(tasks)
    trainer = GRPOTrainer(model=path, reward_funcs=[reward], args=GRPOConfig(...),
                          train_dataset=trl_dataset(tasks))

Nothing here imports TRL; :func:`trl_dataset` imports ``datasets`` when called.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .crowd import CrowdModel, latest_labels
from .reward_inputs import check_programs, checked_tasks, crowd_posteriors
from .reward import SHAPES, SOURCES, RewardInputs, rewards

if TYPE_CHECKING:
    from .tasks import Task

__all__ = ["trl_dataset", "CrowdReward"]


def trl_dataset(tasks: Sequence):
    """A ``datasets.Dataset`` with ``prompt`` (the task's prompt text) and ``task_id`` columns,
    one row per task, for TRL's trainers (``task_id`` reaches the reward function)."""
    from datasets import Dataset

    tasks = list(tasks)
    return Dataset.from_dict({"prompt": [t.prompt for t in tasks], "task_id": [t.task_id for t in tasks]})


def _text(x) -> str:
    """A completion or prompt as text: TRL passes a str (standard format) or a list of chat
    messages (conversational format; the last message's content is the text)."""
    if isinstance(x, str):
        return x
    if isinstance(x, dict):
        return str(x.get("content", ""))
    if isinstance(x, (list, tuple)) and x:
        return _text(x[-1])
    raise TypeError(f"expected a str or chat messages, got {type(x).__name__}")


class CrowdReward:
    """Reward function for TRL scoring completions with a simulated crowd (see the module
    docstring).

    tasks : the :class:`crlhf.tasks.Task` records whose prompts the trainer samples from
        (each must have tests).
    crowd : a :class:`crlhf.simulate.Crowd` (default ``paper_crowd(crowd_size, seed)``).
    crowd_model : a :class:`crlhf.crowd.CrowdModel` (default a new one; pass a calibrated one
        to start from known reliabilities). Updated in place.
    labels_per_program : annotators per completion (``None``: all of them).
    seed : seeds the crowd's labels (call ``i`` draws from ``default_rng([seed, i])``).
    sandbox_timeout : seconds per program in the sandbox.
    reward : a reward source of :data:`crlhf.reward.SOURCES`: ``"bayes"`` (default, the
        CrowdModel's posteriors), ``"majority"``, ``"single"``, ``"dawid_skene"`` (on this call's
        labels), ``"oracle"`` (the line truth) or ``"tests"`` (1.0 if the program passes, else
        0.0). The crowd labels and the CrowdModel ingests in every case.
    shape : a reward shape of :data:`crlhf.reward.SHAPES` (default ``"share"``, ``s = c/k``).
    name : ``__name__`` (TRL logs rewards under it).

    After each call, ``last`` holds a DataFrame of that call (program_id, task_id, program,
    passed, s_true, s_bayes, reward) and ``last_labels`` the crowd's labels; ``calls`` counts
    calls and ``n_scored`` completions scored.
    """

    SOURCES = tuple(SOURCES)

    def __init__(self, tasks: Sequence, crowd=None, crowd_model: CrowdModel | None = None,
                 labels_per_program: int | None = 5, seed: int = 0, *, crowd_size: int = 30,
                 sandbox_timeout: float = 3.0, reward: str = "bayes", shape: str = "share",
                 name: str = "crowd_reward"):
        from .simulate import Crowd, paper_crowd

        tasks = checked_tasks(tasks)
        if crowd is None:
            crowd = paper_crowd(crowd_size, seed=seed)
        elif not isinstance(crowd, Crowd):
            raise TypeError(f"crowd must be a crlhf.simulate.Crowd, got {type(crowd).__name__}")
        if crowd_model is None:
            crowd_model = CrowdModel()
        elif not isinstance(crowd_model, CrowdModel):
            raise TypeError(f"crowd_model must be a crlhf.crowd.CrowdModel, got {type(crowd_model).__name__}")
        if labels_per_program is not None:
            if isinstance(labels_per_program, bool) or not isinstance(labels_per_program, (int, np.integer)) \
                    or labels_per_program < 1:
                raise ValueError(f"labels_per_program must be an int >= 1 or None, got {labels_per_program!r}")
            if labels_per_program > len(crowd):
                raise ValueError(f"labels_per_program ({labels_per_program}) exceeds the crowd's "
                                 f"{len(crowd)} annotators")
            labels_per_program = int(labels_per_program)
        if reward not in self.SOURCES:
            raise ValueError(f"reward must be one of {self.SOURCES}, got {reward!r}")
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
        if not (isinstance(sandbox_timeout, (int, float)) and math.isfinite(sandbox_timeout)
                and sandbox_timeout > 0):
            raise ValueError(f"sandbox_timeout must be a number > 0, got {sandbox_timeout!r}")
        self.tasks = tasks
        self.by_id = {t.task_id: t for t in tasks}
        self.by_prompt: dict[str, Task] = {}
        for t in tasks:
            self.by_prompt.setdefault(t.prompt, t)
        self.crowd, self.crowd_model = crowd, crowd_model
        self.labels_per_program, self.seed = labels_per_program, int(seed)
        self.sandbox_timeout, self.reward, self.shape = float(sandbox_timeout), reward, shape
        self.__name__ = name
        self.tag = uuid.uuid4().hex[:8]
        self.calls = 0
        self.n_scored = 0
        self.last: pd.DataFrame | None = None
        self.last_labels: pd.DataFrame | None = None
        self.crowd_model.add_annotators([a for a in crowd.names if a not in set(crowd_model.annotators)])

    def __repr__(self) -> str:
        return (f"CrowdReward({len(self.tasks)} tasks, {len(self.crowd)} annotators, "
                f"k={self.labels_per_program}, reward={self.reward!r}, calls={self.calls})")

    def task_for(self, prompt=None, task_id=None):
        """The Task of a completion: by ``task_id`` when given, else by its prompt text (exact,
        then the longest task prompt the text ends with, for chat templates / prefixes)."""
        if task_id is not None:
            try:
                return self.by_id[task_id]
            except KeyError:
                raise KeyError(f"unknown task_id {task_id!r}") from None
        text = _text(prompt)
        t = self.by_prompt.get(text)
        if t is not None:
            return t
        hits = [p for p in self.by_prompt if text.endswith(p)]
        if hits:
            return self.by_prompt[max(hits, key=len)]
        raise KeyError(f"no task has the prompt {text[:60]!r}...; pass a task_id column")

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        completions = list(completions)
        n = len(completions)
        task_ids = kwargs.get("task_id")
        if task_ids is not None and len(task_ids) != n:
            raise ValueError(f"task_id has {len(task_ids)} entries for {n} completions")
        if prompts is not None and task_ids is None and len(prompts) != n:
            raise ValueError(f"{len(prompts)} prompts for {n} completions")
        tasks = [self.task_for(None if prompts is None else prompts[j],
                               None if task_ids is None else task_ids[j]) for j in range(n)]
        call = self.calls
        self.calls += 1
        if n == 0:
            return []
        cut = [t.truncate(_text(c)) for t, c in zip(tasks, completions, strict=True)]
        pids = [f"trl-{self.tag}-c{call}-{j}" for j in range(n)]
        checked = dict(zip(pids, check_programs(tasks, cut, self.sandbox_timeout, self.crowd_model.count_blank),
                           strict=True))
        rng = np.random.default_rng([self.seed, call])
        labelled = {p: c.truth for p, c in checked.items() if len(c.truth)}
        labels = self.crowd.label_programs(labelled, k=self.labels_per_program, rng=rng) if labelled else \
            pd.DataFrame({"program_id": [], "line": [], "annotator": [], "label": []})
        labels = latest_labels(labels)
        posteriors, _ = crowd_posteriors(self.crowd_model, labels, checked)
        inputs = RewardInputs(checked, labels, posteriors, seed=self.seed * 100003 + call)
        tau = self.crowd_model.tau
        s_bayes = rewards("bayes", inputs, "share", tau).scores
        s_true = {p: c.s_true for p, c in checked.items()}
        scores = rewards(self.reward, inputs, self.shape, tau).scores
        out = [scores[p] for p in pids]
        self.n_scored += n
        self.last = pd.DataFrame({"program_id": pids, "task_id": [t.task_id for t in tasks],
                                  "program": [checked[p].program for p in pids],
                                  "passed": [checked[p].passed for p in pids],
                                  "s_true": [s_true[p] for p in pids], "s_bayes": [s_bayes[p] for p in pids],
                                  "reward": out})
        self.last_labels = labels
        return [float(x) for x in out]
