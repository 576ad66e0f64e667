"""crlhf: crowd-sourced RLHF for code generation.

Line labels from annotators of unknown reliability are combined by Bayesian inference
(:class:`CrowdModel`) into a score per program (:mod:`crlhf.reward`), the reward PPO trains on
(:func:`run_loop`, :class:`PPOTrainer`); :func:`crlhf.evaluate.evaluate` measures pass@k with
every program run in :mod:`crlhf.sandbox`. Submodules (``crlhf.reward``, ``crlhf.store``, ...)
are reachable as attributes too.

The main entry points are attributes of this package, imported on first use (PEP 562), so
``import crlhf`` needs numpy only and ``crlhf.LabelStore`` costs only SQLAlchemy::

    import crlhf
    store = crlhf.LabelStore("labels.db")
    run = crlhf.run_loop(crlhf.Policy.from_pretrained("tiny"), tasks, crlhf.LoopConfig(crowd="store"), store=store)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # the crowd
    "CrowdModel": "crlhf.crowd",
    "replay_log": "crlhf.replay",
    "Crowd": "crlhf.simulate",
    "noisy_crowd": "crlhf.simulate",
    "paper_crowd": "crlhf.simulate",
    # labels
    "LabelStore": "crlhf.store",
    # the reward
    "rewards": "crlhf.reward",
    "program_scores": "crlhf.reward",
    "scored_lines": "crlhf.reward",
    "RewardInputs": "crlhf.reward",
    "SOURCES": "crlhf.reward",
    "SHAPES": "crlhf.reward",
    "CREDITS": "crlhf.reward",
    # the RL loop
    "LoopConfig": "crlhf.loop",
    "run_loop": "crlhf.loop",
    "PPOConfig": "crlhf.ppo",
    "PPOTrainer": "crlhf.ppo",
    "Policy": "crlhf.policy",
    # evaluation and the sandbox (crlhf.evaluate is the module; its function is crlhf.evaluate.evaluate)
    "EvalResult": "crlhf.evaluate",
    "pass_at_k": "crlhf.passk",
    "check_program": "crlhf.sandbox",
    "check_many": "crlhf.sandbox",
}

_SUBMODULES = ("aggregators", "bayes", "crowd", "crowd_views", "eval_run", "eval_samples", "eval_summary", "evaluate",
               "loop", "loop_folder", "passk", "plots", "policy", "ppo", "replay", "report", "reward", "reward_inputs",
               "sandbox", "simulate", "store", "tasks", "tiny", "train_config")

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # crlhf.reward etc. without an import statement
        return importlib.import_module(f"crlhf.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crlhf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access skips __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from .crowd import CrowdModel
    from .evaluate import EvalResult
    from .loop import LoopConfig, run_loop
    from .passk import pass_at_k
    from .policy import Policy
    from .ppo import PPOConfig, PPOTrainer
    from .replay import replay_log
    from .reward import CREDITS, SHAPES, SOURCES, RewardInputs, program_scores, rewards, scored_lines
    from .sandbox import check_many, check_program
    from .simulate import Crowd, noisy_crowd, paper_crowd
    from .store import LabelStore
