"""Algorithm 1 of the paper, end to end and resumable: calibrate the crowd on gold programs,
then in rounds sample ``n`` programs per prompt from the policy, check them in the sandbox,
collect line labels from the crowd, compute posteriors and scores ``s`` with
:class:`crlhf.crowd.CrowdModel` (reliabilities updated online: two coins by default, eq 8 by
name), and run one PPO step (:class:`crlhf.ppo.PPOTrainer`) on exactly those
``(prompt, program, s)`` triples. No reward model.

What the crowd sees and labels is the whole program ``task.program(completion)`` (prompt lines
included, as the annotation UI shows it); the reward is :mod:`crlhf.reward`'s, over the lines the
model generated (:func:`crlhf.reward.scored_lines`; an empty completion scores 0), the same
function the store's dataset export calls, so a run's rewards and an exported dataset agree.

Reward sources (``LoopConfig.reward``, the registry :data:`crlhf.reward.SOURCES`): ``bayes``
(default; the CrowdModel's eq 7 posteriors), ``majority`` / ``single`` / ``dawid_skene`` (the
aggregators of :mod:`crlhf.aggregators`; ``single`` draws one annotator per line with seed
``(seed, round)``; ``dawid_skene`` runs EM on every label of the run so far, gold lines
clamped), ``oracle`` (the line truth of :func:`crlhf.tasks.line_truth`) and ``tests`` (1.0 if
the program passes its unit tests in the sandbox). Their per-line probabilities become a score
by ``LoopConfig.reward_shape`` (``share`` = the paper's ``s = c/k``, ``all_correct``,
``product`` = P(all scored lines correct)), and reach the tokens by ``LoopConfig.credit``
(``sequence``, ``line_end``, ``blame``); see :mod:`crlhf.reward` for the formulas.

The crowd always labels and the CrowdModel always ingests, whatever the reward source, so
the ``p_i`` history is recorded in every ablation.

Crowds (``LoopConfig.crowd``): ``paper`` / ``noisy`` build a simulated crowd
(:func:`crlhf.simulate.paper_crowd` / :func:`~crlhf.simulate.noisy_crowd`; or pass any
:class:`crlhf.simulate.Crowd`), which labels synchronously from the line truth; ``store``
(or passing ``store=``) writes each round's programs to a :class:`crlhf.store.LabelStore`
and waits, with a timeout and a progress bar, until every program has labels from
``labels_per_program`` annotators. Gold programs go to the store too; gold labels found there
calibrate each annotator once per gold program (late arrivals at the next round).

The run folder (``LoopConfig.run_dir``: config, state, per-round metrics, per-program rows,
reliabilities, the label log and its units, annotators, checkpoints) is described and written by
:mod:`crlhf.loop_folder`.

A run resumes where it stopped: :func:`run_loop` on a folder holding ``state.json`` reloads
the last checkpoint, replays the label log into a fresh CrowdModel (the same state as before,
since the log holds every ingestion unit in order) and continues at the next round; rows of an
unfinished round are dropped. Only ``rounds`` (and ``run_dir``) may differ from the saved config.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._deprecation import moved_names
from .crowd import CrowdModel, latest_labels
# moved names under private aliases: crlhf.loop.<old name> reaches __getattr__ and warns
from .loop_folder import LABEL_LOG_COLUMNS as _LOG_COLUMNS
from .loop_folder import METRIC_COLUMNS as _METRIC_COLUMNS
from .loop_folder import PROGRAM_COLUMNS as _PROGRAM_COLUMNS
from .loop_folder import RunFolder, append_labels, checkpoint_name, empty_label_log
from .replay import replay_log
from .reward import CREDITS, SHAPES, SOURCES, RewardInputs, Rewards, prompt_centred, token_lines
from .reward import credit as reward_credit
from .reward import rewards as compute_rewards
from .reward_inputs import check_programs as _check_programs
from .reward_inputs import checked_tasks as _checked_tasks
from .reward_inputs import crowd_posteriors as _crowd_posteriors

if TYPE_CHECKING:  # torch-backed; imported when a run starts
    from .policy import Policy
    from .ppo import PPOConfig, PPOTrainer

__all__ = ["REWARD_SOURCES", "LoopConfig", "RunResult", "Loop", "run_loop"]

REWARD_SOURCES = tuple(SOURCES)
CROWD_KINDS = ("paper", "noisy", "store")
BASELINES = ("none", "prompt")

_MOVED = {"check_programs": "crlhf.reward_inputs", "crowd_posteriors": "crlhf.reward_inputs",
          "crowd_scores": "crlhf.reward_inputs", "checked_tasks": "crlhf.reward_inputs",
          "METRIC_COLUMNS": "crlhf.loop_folder", "LABEL_LOG_COLUMNS": "crlhf.loop_folder",
          "PROGRAM_COLUMNS": "crlhf.loop_folder",
          # the reward's own names, once imported here
          "CheckedProgram": "crlhf.reward", "scored_lines": "crlhf.reward", "line_share": "crlhf.reward"}

__getattr__ = moved_names(__name__, _MOVED)


def _ppo_config() -> PPOConfig:
    from .ppo import PPOConfig  # imports torch

    return PPOConfig()


@dataclass
class LoopConfig:
    """Settings of one cRLHF run (Algorithm 1).

    rounds : number of PPO rounds.
    prompts_per_round : prompts (tasks) per round, drawn without replacement from a seeded
        permutation of the tasks, a new permutation each pass.
    n : programs sampled per prompt.
    temperature, max_new_tokens : sampling settings (PPO's log-prob temperature is set to match).
    reward : the reward source, one of ``REWARD_SOURCES`` (:data:`crlhf.reward.SOURCES`).
    reward_shape : how per-line judgements become the score, one of :data:`crlhf.reward.SHAPES`:
        ``"share"`` (default, the paper's ``s = c/k``), ``"all_correct"`` (``1[c = k]``),
        ``"product"`` (``prod_j q_j``, P(all scored lines correct)).
    credit : how the score reaches the tokens, one of :data:`crlhf.reward.CREDITS`:
        ``"sequence"`` (default, at the last token), ``"line_end"`` (dense, at each line's last
        token), ``"blame"`` (negative advantages only on the tokens of lines judged wrong).
    baseline : what PPO receives as the score: ``"none"`` the reward itself (Ziegler et al.);
        ``"prompt"`` the reward minus the mean reward of the other ``n - 1`` programs of the
        same prompt (the leave-one-out baseline of Kool et al. 2019 / RLOO), so a program is
        credited only for beating its siblings: with a batch-wide baseline a failing program
        that scores above the batch mean (``s = 0.8`` on an easy prompt) is reinforced.
        Needs ``n >= 2``.
    crowd : ``"paper"``, ``"noisy"`` (simulated) or ``"store"`` (humans through a LabelStore).
    crowd_size, crowd_seed : size and seed of a simulated crowd (the seed also seeds its labels).
    labels_per_program : annotators per program (k); in store mode, the labels to wait for.
        ``None`` (simulated only): every annotator labels every program.
    gold_per_annotator : gold programs each annotator answers before the rounds (q).
    crowd_model : keyword arguments of :class:`crlhf.crowd.CrowdModel`.
    ppo : :class:`crlhf.ppo.PPOConfig` (or its dict).
    seed : seeds prompt order, sampling and ``single``.
    run_dir : the run folder (``None``: nothing is written and nothing can be resumed).
    store_timeout, store_poll : seconds to wait for a round's labels (``None``: for ever) and
        between polls.
    sandbox_timeout : seconds per program in the sandbox.
    keep_checkpoints : how many round checkpoints to keep (``None``: all).
    """

    rounds: int = 4
    prompts_per_round: int = 16
    n: int = 4
    temperature: float = 0.8
    max_new_tokens: int = 96
    reward: str = "bayes"
    reward_shape: str = "share"
    credit: str = "sequence"
    baseline: str = "none"
    crowd: str = "paper"
    crowd_size: int = 30
    crowd_seed: int = 0
    labels_per_program: int | None = 5
    gold_per_annotator: int = 5
    crowd_model: dict = field(default_factory=dict)
    ppo: PPOConfig = field(default_factory=_ppo_config)
    seed: int = 0
    run_dir: str | None = None
    store_timeout: float | None = 3600.0
    store_poll: float = 1.0
    sandbox_timeout: float = 3.0
    keep_checkpoints: int | None = 2

    def __post_init__(self):
        from .ppo import PPOConfig

        def integer(name, minimum, allow_none=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                raise ValueError(f"LoopConfig.{name} must be an int >= {minimum}, got {v!r}")
            setattr(self, name, int(v))

        for name, minimum in (("rounds", 0), ("prompts_per_round", 1), ("n", 1), ("max_new_tokens", 1),
                              ("crowd_size", 1), ("gold_per_annotator", 0), ("seed", 0), ("crowd_seed", 0)):
            integer(name, minimum)
        integer("labels_per_program", 1, allow_none=True)
        integer("keep_checkpoints", 1, allow_none=True)
        for name in ("temperature", "store_poll", "sandbox_timeout"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"LoopConfig.{name} must be a number > 0, got {v!r}")
        if self.store_timeout is not None and not (isinstance(self.store_timeout, (int, float))
                                                   and self.store_timeout > 0):
            raise ValueError(f"LoopConfig.store_timeout must be a number of seconds > 0 or None, "
                             f"got {self.store_timeout!r}")
        if self.reward not in REWARD_SOURCES:
            raise ValueError(f"LoopConfig.reward must be one of {REWARD_SOURCES}, got {self.reward!r}")
        if self.reward_shape not in SHAPES:
            raise ValueError(f"LoopConfig.reward_shape must be one of {SHAPES}, got {self.reward_shape!r}")
        if self.credit not in CREDITS:
            raise ValueError(f"LoopConfig.credit must be one of {CREDITS}, got {self.credit!r}")
        if self.baseline not in BASELINES:
            raise ValueError(f"LoopConfig.baseline must be one of {BASELINES}, got {self.baseline!r}")
        if self.baseline == "prompt" and self.n < 2:
            raise ValueError("LoopConfig.baseline='prompt' needs n >= 2 programs per prompt")
        if self.crowd not in CROWD_KINDS:
            raise ValueError(f"LoopConfig.crowd must be one of {CROWD_KINDS}, got {self.crowd!r}")
        if self.crowd == "store" and self.labels_per_program is None:
            raise ValueError("LoopConfig.labels_per_program must be an int with crowd='store' "
                             "(the number of annotators to wait for)")
        if not isinstance(self.crowd_model, dict):
            raise TypeError(f"LoopConfig.crowd_model must be a dict of CrowdModel arguments, "
                            f"got {type(self.crowd_model).__name__}")
        try:
            CrowdModel(**self.crowd_model)
        except TypeError as exc:
            raise ValueError(f"LoopConfig.crowd_model: {exc}") from None
        if self.ppo is None:
            self.ppo = PPOConfig()
        elif isinstance(self.ppo, dict):
            self.ppo = PPOConfig.from_dict(self.ppo)
        elif not isinstance(self.ppo, PPOConfig):
            raise TypeError(f"LoopConfig.ppo must be a PPOConfig or a dict, got {type(self.ppo).__name__}")
        if self.ppo.temperature != self.temperature:  # PPO must score tokens as they were sampled
            self.ppo = dataclasses.replace(self.ppo, temperature=float(self.temperature))
        if self.run_dir is not None:
            self.run_dir = str(self.run_dir)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ppo"] = asdict(self.ppo)
        d["ppo"]["adam_betas"] = list(d["ppo"]["adam_betas"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LoopConfig:
        """A config from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown LoopConfig fields: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> LoopConfig:
        """The config saved in a run folder (its ``run_dir`` set to that folder)."""
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} holds no config.json: not a run folder")
        d = json.loads(path.read_text())
        d["run_dir"] = str(run_dir)
        return cls.from_dict(d)


@dataclass
class RunResult:
    """What :func:`run_loop` returns: per-round ``metrics``, per-program ``programs``, the
    ``crowd_model`` (its ``history`` is the p_i trajectory), the ``trainer`` and the trained
    ``policy``, and the ``run_dir`` (or None)."""

    metrics: pd.DataFrame
    programs: pd.DataFrame
    crowd_model: CrowdModel
    trainer: PPOTrainer
    policy: Policy
    run_dir: Path | None
    start_round: int


@dataclass(frozen=True)
class _RoundRewards:
    rewards: Rewards
    s_true: dict
    s_bayes: dict

    @property
    def scores(self) -> dict:
        return self.rewards.scores


class Loop:
    """Algorithm 1 as an object; :meth:`run` does the rounds. See :func:`run_loop`."""

    def __init__(self, policy, tasks, config: LoopConfig | None = None, crowd=None, store=None,
                 progress: bool = True, accelerator=None):
        from .simulate import Crowd, noisy_crowd, paper_crowd

        if config is None:
            config = LoopConfig()
        if not isinstance(config, LoopConfig):
            raise TypeError(f"config must be a LoopConfig, got {type(config).__name__}")
        tasks = _checked_tasks(tasks)
        if not hasattr(policy, "sample") or not hasattr(policy, "model"):
            raise TypeError(f"policy must be a crlhf.policy.Policy, got {type(policy).__name__}")
        if store is not None:
            if config.crowd != "store":
                config = dataclasses.replace(config, crowd="store")
            for name in ("new_round", "add_programs", "wait_for_labels", "labels", "add_gold_programs",
                         "add_tasks"):
                if not callable(getattr(store, name, None)):
                    raise TypeError(f"store must be a crlhf.store.LabelStore (it lacks {name}())")
            crowd = None
        elif config.crowd == "store":
            raise ValueError("LoopConfig.crowd='store' needs a store= argument (a crlhf.store.LabelStore)")
        elif crowd is None:
            make = paper_crowd if config.crowd == "paper" else noisy_crowd
            crowd = make(config.crowd_size, seed=config.crowd_seed)
        elif not isinstance(crowd, Crowd):
            raise TypeError(f"crowd must be a crlhf.simulate.Crowd, got {type(crowd).__name__}")
        if crowd is not None and config.labels_per_program is not None and config.labels_per_program > len(crowd):
            raise ValueError(f"LoopConfig.labels_per_program ({config.labels_per_program}) exceeds the "
                             f"crowd's {len(crowd)} annotators")
        self.policy, self.tasks, self.config = policy, tasks, config
        self.crowd, self.store, self.progress = crowd, store, progress
        self.accelerator = accelerator
        self._world = accelerator.num_processes if accelerator is not None else 1
        self._main = accelerator is None or accelerator.is_main_process
        if (config.prompts_per_round * config.n) % self._world:
            raise ValueError(f"LoopConfig.prompts_per_round * n ({config.prompts_per_round * config.n} programs a "
                             f"round) must be a multiple of the {self._world} processes: each trains on an equal share")
        self.run_dir = Path(config.run_dir) if config.run_dir is not None else None
        self.folder = RunFolder(self.run_dir) if self.run_dir is not None else None
        self._count_blank = CrowdModel(**config.crowd_model).count_blank
        # run state
        self.model = CrowdModel(**config.crowd_model)
        self.trainer: PPOTrainer | None = None
        self.round = 0
        self.tag = uuid.uuid4().hex[:8]
        self._annotators: list = []
        self._log = empty_label_log()
        self._units: dict = {}  # unit id -> {"round", "program", "truth"}
        self._metrics: list[dict] = []
        self._programs: list[dict] = []
        self._gold: dict = {}  # gold program id -> {"program", "truth", "task_id"}
        self._gold_done: set = set()  # (gold program id, annotator) calibrated (store mode)

    # ------------------------------------------------------------------ the run folder
    def _resume(self) -> bool:
        folder = self.folder
        if folder is None or not folder.has_state():
            return False
        saved = LoopConfig.load(folder.path).to_dict()
        mine = self.config.to_dict()
        diff = sorted(k for k in mine if k not in ("rounds", "run_dir") and mine[k] != saved.get(k))
        if diff:
            raise ValueError(f"run folder {folder.path} was made with another config; fields differ: {diff} "
                             "(only 'rounds' may change on resume; use a new run_dir)")
        run = folder.read()
        self.round, self.tag, self._gold = run.round, run.tag, run.gold
        self._annotators, self._units, self._log = run.annotators, run.units, run.log
        self._metrics.extend(run.metrics)
        self._programs.extend(run.programs)
        gold = {u: np.asarray(v["truth"]) for u, v in self._units.items() if v.get("truth") is not None}
        texts = {u: v["program"] for u, v in self._units.items()}
        self.model, _ = replay_log(self._log[list(_LOG_COLUMNS)], annotators=self._annotators, gold=gold,
                                   programs=texts, **self.config.crowd_model)
        for u, v in self._units.items():
            if v.get("truth") is not None and v.get("gold_id") is not None:
                rows = self._log[self._log["program_id"] == u]
                self._gold_done |= {(v["gold_id"], a) for a in rows["annotator"].unique()}
        if self.round > 0:
            from .ppo import PPOTrainer

            assert run.checkpoint is not None  # written with every completed round
            ckpt = folder.path / run.checkpoint
            dev = self.policy.device
            kwargs: dict[str, Any] = {} if dev.type == "cpu" else {"device_map": {"": str(dev)}}
            self.trainer = PPOTrainer.from_pretrained(ckpt, tokenizer=self.policy.tokenizer, config=self.config.ppo,
                                                      accelerator=self.accelerator, **kwargs)
            self.policy.model = self.trainer.model  # the caller's Policy now samples the trained weights
        self._barrier()  # every process has read the folder before the main one rewrites it
        self._save_tables()  # drop rows of an unfinished round
        return True

    def _barrier(self) -> None:
        if self._world > 1:
            self.accelerator.wait_for_everyone()

    def _save_tables(self) -> None:
        if self.folder is not None and self._main:
            self.folder.save_tables(self._metrics, self._programs, self._log, self._units, self._annotators,
                                    self.model.history)

    def _checkpoint(self) -> str:
        if self.folder is None:
            return checkpoint_name(self.round)
        assert self.trainer is not None  # made before the first round
        return self.folder.save_checkpoint(self.trainer, self.round)

    def _prune_checkpoints(self) -> None:
        keep = self.config.keep_checkpoints
        if self.folder is not None and keep is not None and self._main:
            self.folder.prune_checkpoints(keep)

    def _write_state(self, checkpoint) -> None:
        if self.folder is not None and self._main:
            self.folder.write_state(self.round, self.tag, checkpoint, self._gold)

    # ------------------------------------------------------------------ crowd plumbing
    def _register(self, annotators) -> None:
        new = [a for a in dict.fromkeys(annotators) if a not in set(self._annotators)]
        if new:
            self._annotators.extend(new)
            self.model.add_annotators(new)

    def _append_log(self, frame: pd.DataFrame, unit, rnd: int) -> None:
        self._log = append_labels(self._log, frame, unit, rnd)

    def _make_gold(self) -> None:
        from .tasks import make_gold_many

        q = self.config.gold_per_annotator
        if q == 0:
            return
        pool = self.tasks[:max(q, 1) * 2]
        per_task = make_gold_many(pool, n=2, seed=self.config.seed, timeout=self.config.sandbox_timeout,
                                  progress=False)
        golds = []
        for j in range(2):  # round-robin over tasks: different tasks first
            golds += [g[j] for g in per_task if len(g) > j]
        golds = golds[:q]
        if not golds:
            raise ValueError("no gold program could be made from the tasks (their references must pass "
                             "their tests); set LoopConfig.gold_per_annotator=0 to skip calibration")
        if len(golds) < q:
            warnings.warn(f"only {len(golds)} gold programs for gold_per_annotator={q}", stacklevel=3)
        self._gold = {f"gold-{self.tag}-{i}": {"program": g.program, "truth": list(g.truth),
                                               "task_id": g.task_id} for i, g in enumerate(golds)}

    def _calibrate_simulated(self) -> None:
        """Algorithm 1, lines 3-6: every annotator answers every gold program."""
        self._register(self.crowd.names)
        if not self._gold:
            return
        rng = np.random.default_rng([self.config.crowd_seed, 0])
        labels = self.crowd.label_programs({g: v["truth"] for g, v in self._gold.items()}, rng=rng)
        for gid, v in self._gold.items():
            frame = latest_labels(labels[labels["program_id"] == gid])
            if not len(frame):
                continue
            self.model.calibrate(frame, v["truth"], program=v["program"], program_id=gid)
            self._units[gid] = {"round": 0, "program": v["program"], "truth": v["truth"], "gold_id": gid}
            self._append_log(frame, gid, 0)

    def _calibrate_from_store(self, rnd: int) -> None:
        """Gold labels in the store not yet used calibrate their annotators (once per gold program)."""
        if not self._gold:
            return
        labels = latest_labels(self.store.labels(program_ids=list(self._gold)))
        self._register(labels["annotator"])
        for gid, v in self._gold.items():
            rows = labels[labels["program_id"] == gid]
            rows = rows[[(gid, a) not in self._gold_done for a in rows["annotator"]]]
            if not len(rows):
                continue
            unit = f"{gid}@r{rnd}"
            self.model.calibrate(rows, v["truth"], program=v["program"], program_id=unit)
            self._units[unit] = {"round": rnd, "program": v["program"], "truth": v["truth"], "gold_id": gid}
            self._append_log(rows, unit, rnd)
            self._gold_done |= {(gid, a) for a in rows["annotator"].unique()}

    def _setup_store(self) -> None:
        tids = {v["task_id"] for v in self._gold.values()}
        self.store.add_tasks([t for t in self.tasks if t.task_id in tids])
        if self._gold:
            self.store.add_gold_programs([{"program": v["program"], "truth": v["truth"], "program_id": g,
                                           "task_id": v["task_id"]} for g, v in self._gold.items()])

    def _collect_labels(self, rnd: int, checked: dict) -> pd.DataFrame:
        cfg = self.config
        if self.store is None:
            rng = np.random.default_rng([cfg.crowd_seed, rnd])
            return self.crowd.label_programs({p: c.truth for p, c in checked.items()}, k=cfg.labels_per_program,
                                             rng=rng)
        pids = list(checked)
        round_id = self.store.new_round(note=f"crlhf run {self.tag}, round {rnd}")
        self.store.add_tasks(list({c.task.task_id: c.task for c in checked.values()}.values()))
        self.store.add_programs([{"program": c.program, "program_id": p, "task_id": c.task.task_id}
                                 for p, c in checked.items()], round_id=round_id)
        labels = self.store.wait_for_labels(pids, min_annotators=cfg.labels_per_program,
                                            timeout=cfg.store_timeout, poll=cfg.store_poll,
                                            progress=self.progress)
        self._calibrate_from_store(rnd)
        return labels

    # ------------------------------------------------------------------ one round
    def _round_tasks(self, rnd: int) -> list[int]:
        """Task indices of a round: consecutive slices of seeded permutations, one per pass."""
        P, T = self.config.prompts_per_round, len(self.tasks)
        start = (rnd - 1) * P
        out: list[int] = []
        epoch = start // T
        while len(out) < P:
            perm = np.random.default_rng([self.config.seed, epoch]).permutation(T)
            lo = start + len(out) - epoch * T
            out += perm[lo:lo + P - len(out)].tolist()
            epoch += 1
        return out

    def _prepare_round(self, rnd: int):
        cfg = self.config
        t0 = time.perf_counter()
        idx = self._round_tasks(rnd)
        tasks = [self.tasks[i] for i in idx]
        stop = tuple(dict.fromkeys(s for t in tasks for s in t.stop)) or None
        comps = self.policy.sample([t.prompt for t in tasks], n=cfg.n, temperature=cfg.temperature,
                                   max_new_tokens=cfg.max_new_tokens, stop=stop,
                                   seed=cfg.seed * 100003 + rnd, progress=False)
        t1 = time.perf_counter()
        pids, flat, prompt_index, flat_tasks = [], [], {}, []
        for j, (t, cs) in enumerate(zip(tasks, comps, strict=True)):
            for m, c in enumerate(cs):
                pid = f"{self.tag}-r{rnd}-p{j}-s{m}"
                pids.append(pid)
                prompt_index[pid] = j
                flat.append(c)
                flat_tasks.append(t)
        checked = dict(zip(pids, _check_programs(flat_tasks, [c.text for c in flat], cfg.sandbox_timeout,
                                                self._count_blank), strict=True))

        labels = latest_labels(self._collect_labels(rnd, checked))
        labels = labels[labels["program_id"].isin(set(pids))]
        self._register(labels["annotator"])
        t2 = time.perf_counter()

        posteriors, frames = _crowd_posteriors(self.model, labels, checked)
        for p, frame in frames.items():
            self._units[p] = {"round": rnd, "program": checked[p].program, "truth": None}
            self._append_log(frame, p, rnd)
        run = self._rewards(rnd, checked, labels, posteriors)
        reward, s_true, s_bayes = run.scores, run.s_true, run.s_bayes

        scores = [reward[p] for p in pids]
        terminal, dense, weights = reward_credit(cfg.credit, run.rewards, checked,
                                                 self._token_lines(flat, pids, checked))
        if cfg.baseline == "prompt":  # the baseline moves the return: subtract it at the last token
            centred = prompt_centred(scores, [prompt_index[p] for p in pids])
            terminal = {p: terminal[p] + (c - reward[p]) for p, c in zip(pids, centred, strict=True)}
        batch = (flat, [terminal[p] for p in pids], [dense[p] for p in pids] if dense else None,
                 [weights[p] for p in pids] if weights else None)
        return batch, (t0, t1, t2, pids, checked, prompt_index, reward, s_true, s_bayes, scores, labels)

    def _ppo_step(self, batch) -> dict:
        """The PPO step on a round's batch; with several processes the main process's batch is
        sent to all and each trains on its equal share (statistics are reduced over all)."""
        if self._world > 1:
            from accelerate.utils import broadcast_object_list

            box = [batch]
            broadcast_object_list(box, from_process=0)
            m = len(box[0][0]) // self._world
            part = slice(self.accelerator.process_index * m, (self.accelerator.process_index + 1) * m)
            batch = tuple(None if x is None else x[part] for x in box[0])
        flat, terminal, dense, weights = batch
        assert self.trainer is not None  # made before the first round
        return self.trainer.step_completions(flat, terminal, token_rewards=dense, advantage_weights=weights)

    def _run_round(self, rnd: int) -> dict | None:
        """One round: the main process samples, checks, collects labels and computes rewards;
        every process takes the PPO step; the main process returns the round's metrics."""
        batch, kept = self._prepare_round(rnd) if self._main else (None, None)
        stats = self._ppo_step(batch)
        if not self._main:
            return None
        assert kept is not None  # the main process prepared the round
        t0, t1, t2, pids, checked, prompt_index, reward, s_true, s_bayes, scores, labels = kept
        t3 = time.perf_counter()
        rel = self.model.reliabilities
        for p in pids:
            self._programs.append({"round": rnd, "program_id": p, "task_id": checked[p].task.task_id,
                                   "prompt_index": prompt_index[p], "passed": checked[p].passed, "reward": reward[p],
                                   "s_true": s_true[p], "s_bayes": s_bayes[p]})
        r = np.asarray(scores)
        return {"round": rnd, "reward_mean": float(r.mean()), "reward_std": float(r.std()),
                "kl": stats["kl"], "beta": stats["beta"],
                "pass_rate": float(np.mean([c.passed for c in checked.values()])),
                "mean_p": float(rel.mean()) if len(rel) else float("nan"),
                "s_true_mean": float(np.mean(list(s_true.values()))),
                "reward_error": float(np.mean([abs(reward[p] - s_true[p]) for p in pids])),
                "n_programs": len(pids), "n_labels": int(len(labels)),
                "policy_loss": stats["policy_loss"], "value_loss": stats["value_loss"],
                "entropy": stats["entropy"], "response_length": stats["response_length"],
                "time_sample": t1 - t0, "time_labels": t2 - t1, "time_ppo": t3 - t2,
                "time": time.perf_counter() - t0}

    def _rewards(self, rnd, checked, labels, posteriors) -> _RoundRewards:
        """The round's rewards (:func:`crlhf.reward.rewards`, the configured source and shape),
        the oracle's under the same shape (``s_true``) and the crowd's ``s = c/k`` (``s_bayes``)."""
        cfg = self.config
        gold = [pd.DataFrame({"program_id": u, "line": np.arange(len(v["truth"])), "label": v["truth"]})
                for u, v in self._units.items() if v.get("truth") is not None]
        inputs = RewardInputs(checked, labels, posteriors,
                              log=self._log.loc[:, ["program_id", "line", "annotator", "label"]],
                              gold=pd.concat(gold, ignore_index=True) if gold else None,
                              seed=cfg.seed * 100003 + rnd)
        tau = self.model.tau
        run = compute_rewards(cfg.reward, inputs, cfg.reward_shape, tau)
        return _RoundRewards(run, compute_rewards("oracle", inputs, cfg.reward_shape, tau).scores,
                             compute_rewards("bayes", inputs, "share", tau).scores)

    def _token_lines(self, completions, pids, checked) -> dict | None:
        """The program line of every response token (:func:`crlhf.reward.token_lines`), for
        line-level credit; None with ``credit="sequence"``."""
        if self.config.credit == "sequence":
            return None
        tok = self.policy.tokenizer
        return {p: token_lines(tok, c.token_ids, checked[p].given) for p, c in zip(pids, completions, strict=True)}

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunResult:
        """Calibrate (unless resuming), then run the remaining rounds."""
        from tqdm.auto import tqdm

        from .ppo import PPOTrainer

        cfg = self.config
        resumed = self._resume()
        self._barrier()  # no process may take the main one's fresh state.json for a run to resume
        start = self.round + 1
        if not resumed and self._main:  # the crowd (gold, calibration, labels) lives in the main process
            if self.folder is not None:
                self.folder.write_config(cfg.to_dict())
            self._make_gold()
            if self.store is None:
                self._calibrate_simulated()
            else:
                self._setup_store()
            self._save_tables()
            self._write_state(None)  # calibrated: a crash in round 1 resumes here
        elif resumed and self._main and self.folder is not None:
            self.folder.write_config(cfg.to_dict())  # records a changed 'rounds'
        if self.trainer is None:
            self.trainer = PPOTrainer(self.policy.model, self.policy.tokenizer, cfg.ppo, accelerator=self.accelerator)
        bar = tqdm(range(start, cfg.rounds + 1), desc="cRLHF rounds", unit="round",
                   disable=not (self.progress and self._main))
        for rnd in bar:
            metrics = self._run_round(rnd)
            self.round = rnd
            ckpt = self._checkpoint()  # every process: saving waits for all of them
            if metrics is None:
                continue
            self._metrics.append(metrics)
            self._save_tables()
            self._write_state(ckpt)
            self._prune_checkpoints()
            bar.set_postfix(reward=f"{metrics['reward_mean']:.3f}", kl=f"{metrics['kl']:.3f}",
                            passed=f"{metrics['pass_rate']:.2f}")
        return RunResult(metrics=pd.DataFrame(self._metrics, columns=list(_METRIC_COLUMNS)),
                         programs=pd.DataFrame(self._programs, columns=list(_PROGRAM_COLUMNS)),
                         crowd_model=self.model, trainer=self.trainer, policy=self.policy,
                         run_dir=self.run_dir, start_round=start)


def run_loop(policy, tasks: Sequence, config: LoopConfig | None = None, crowd=None, store=None,
             progress: bool = True, accelerator=None) -> RunResult:
    """Run Algorithm 1 (see the module docstring): calibrate the crowd on gold, then
    ``config.rounds`` rounds of sample -> sandbox -> crowd labels -> CrowdModel -> PPO step.

    ``policy``: a :class:`crlhf.policy.Policy` (trained in place). ``tasks``: the prompts'
    :class:`crlhf.tasks.Task` records. ``crowd``: a simulated :class:`crlhf.simulate.Crowd`
    (default: built from the config). ``store``: a :class:`crlhf.store.LabelStore` for human
    labels (switches the crowd to ``store``). With ``config.run_dir`` holding a finished
    round, the run resumes after it. ``accelerator``: an ``accelerate.Accelerator`` for the PPO
    step (else one is made when ``config.ppo.use_accelerate``); under ``accelerate launch`` with
    several processes the main process samples, collects labels and writes the run folder, and
    every process trains on an equal share of each round's programs (``prompts_per_round * n``
    must divide evenly); the other processes' results hold no metrics.
    """
    return Loop(policy, tasks, config, crowd=crowd, store=store, progress=progress, accelerator=accelerator).run()
