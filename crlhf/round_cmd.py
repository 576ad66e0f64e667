"""``crlhf round``: put a round of model-written programs (and gold) into a class's label store.

    crlhf round --db DB --model tiny|FOLDER|HUB_NAME --tasks SETS [--programs-per-task 4]
                [--gold 2] [--limit K] [--temperature 0.8] [--max-new-tokens M] [--seed S] [--mbpp PATH]

The instructor's step between a model and ``crlhf classroom``. In order, it:

1. loads the task sets (``--tasks``, as ``crlhf eval`` names them; ``--limit K`` keeps the
   *first* K tasks of each set, so every round of a class draws from the same tasks) and the
   model (``--model``, resolved as ``crlhf eval`` does: :func:`crlhf.eval_run.resolve_model`);
2. makes ``--gold N`` gold programs (failing one-line mutants of the reference solution,
   :func:`crlhf.tasks.make_gold_many`; the references and mutants are trusted code and run in
   ``crlhf.sandbox``) for each task that has **no gold program in the store yet**: gold belongs
   to a task, not to a round, so a later round adds none for the tasks it already has;
3. samples ``--programs-per-task`` completions per task from the model, cut at the task's stop
   sequences; the program the class labels is ``task.program(completion)``, as in the loop. The
   model's code is **never run** by this command;
4. writes, only once everything above succeeded: the tasks (``add_tasks``; a task already stored
   is kept as it is), the gold programs (ids ``gold-<task_id>-<i>``), a new round, and the
   round's programs (ids ``r<round>-<task_id>-s<sample>``: round, task and sample number).

Sampling is seeded: block seeds derive from ``--seed``, the round's number and the task set, so
the same command on a copy of the same store draws the same programs, and each new round draws
new ones.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from .eval_run import (TASK_SETS, _csv, _positive, _task_set, check_model_and_tasks, check_prompts_fit,
                       load_policy, load_task_set, model_label, resolve_max_new_tokens, resolve_model)
from .eval_samples import derive_seed

__all__ = ["CHUNK_ROWS", "RoundConfig", "program_id", "gold_id", "sample_programs", "RoundResult", "run_round",
           "build_parser", "config_from_args", "summary", "run"]

DEFAULT_PROGRAMS_PER_TASK = 4
DEFAULT_GOLD = 2
DEFAULT_TEMPERATURE = 0.8
CHUNK_ROWS = 64
"""Programs sampled per ``Policy.sample`` call (the progress bar moves once per call)."""


@dataclass
class RoundConfig:
    """The options of ``crlhf round`` (each field is the option of the same name)."""

    db: str
    model: str = "tiny"
    tasks: tuple = ("minicode",)
    programs_per_task: int = DEFAULT_PROGRAMS_PER_TASK
    gold: int = DEFAULT_GOLD
    limit: int | None = None
    temperature: float = DEFAULT_TEMPERATURE
    max_new_tokens: int | None = None
    seed: int = 0
    mbpp: str | None = None
    batch_size: int | None = None
    device: str | None = None
    dtype: str | None = None
    timeout: float = 3.0
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.db, str) or not self.db.strip():
            raise ValueError(f"--db must be a SQLite path or a database URL, got {self.db!r}")
        self.tasks = check_model_and_tasks(self.model, self.tasks)
        self.programs_per_task = _positive("--programs-per-task", self.programs_per_task)
        if isinstance(self.gold, bool) or not isinstance(self.gold, int) or self.gold < 0:
            raise ValueError(f"--gold takes an integer >= 0 (gold programs per task), got {self.gold!r}")
        for name in ("limit", "max_new_tokens", "batch_size"):
            if getattr(self, name) is not None:
                setattr(self, name, _positive("--" + name.replace("_", "-"), getattr(self, name)))
        try:
            t = float(self.temperature)
        except (TypeError, ValueError):
            t = float("nan")
        if isinstance(self.temperature, bool) or not math.isfinite(t) or t < 0:
            raise ValueError(f"--temperature takes a finite number >= 0 (0 is greedy), got {self.temperature!r}")
        self.temperature = t
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"--seed must be an integer, got {self.seed!r}")
        if self.mbpp is not None and not Path(self.mbpp).expanduser().is_file():
            raise ValueError(f"--mbpp: no MBPP file at {self.mbpp!r} (a JSONL file in the original release format, "
                             f"e.g. ../shared/data/mbpp.jsonl)")
        if not isinstance(self.timeout, (int, float)) or not 0 < float(self.timeout) <= 600:
            raise ValueError(f"--timeout must be a number of seconds in (0, 600], got {self.timeout!r}")


def program_id(round_id: int, task_id: str, sample: int) -> str:
    """The readable id of a round's program: ``r<round>-<task_id>-s<sample>``."""
    return f"r{round_id}-{task_id}-s{sample}"


def gold_id(task_id: str, index: int) -> str:
    """The readable id of a task's gold program: ``gold-<task_id>-<index>``."""
    return f"gold-{task_id}-{index}"


def sample_programs(policy, tasks: list, cfg: RoundConfig, max_new_tokens: int, seed_parts: tuple,
                    bar=None) -> list[list[str]]:
    """``cfg.programs_per_task`` programs ``task.program(completion)`` per task (completions cut
    at the task's stop sequences), sampled in chunks of about :data:`CHUNK_ROWS`; nothing runs."""
    n = cfg.programs_per_task
    per_call = max(1, CHUNK_ROWS // n)
    out = []
    for start in range(0, len(tasks), per_call):
        chunk = tasks[start:start + per_call]
        stop = tuple(dict.fromkeys(s for t in chunk for s in t.stop))
        rows = policy.sample([t.prompt for t in chunk], n=n, temperature=cfg.temperature,
                             max_new_tokens=max_new_tokens, stop=stop,
                             seed=derive_seed(cfg.seed, *seed_parts, start // per_call),
                             batch_size=cfg.batch_size, progress=False)
        out += [[t.program(t.truncate(c.text)) for c in row] for t, row in zip(chunk, rows, strict=True)]
        if bar is not None:
            bar.update(len(chunk) * n)
    return out


@dataclass
class RoundResult:
    """What one ``crlhf round`` wrote: the round, its program ids, the gold ids added, the task
    ids (new ones in ``new_tasks``), and the tasks that got no gold."""

    round_id: int
    program_ids: list
    gold_ids: list
    task_ids: list
    new_tasks: list
    no_gold: list
    gold_in_store: int


def run_round(cfg: RoundConfig, policy=None, task_sets: dict | None = None, progress: bool = True) -> RoundResult:
    """Make gold for new tasks, sample a round, write both to the store (see the module doc).

    ``policy``/``task_sets`` replace the model and the task loaders (tests pass their own).
    Raises ``ValueError`` naming the option at fault before anything is written."""
    from tqdm.auto import tqdm

    from .store import LabelStore

    if task_sets is None:
        task_sets = {name: load_task_set(name, cfg.limit, cfg.mbpp) for name in cfg.tasks}
    tasks = [t for ts in task_sets.values() for t in ts]
    if not tasks:
        raise ValueError("--tasks/--limit: no task to sample")
    ids = [t.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("--tasks: a task id appears twice")
    if policy is None:
        try:
            identity, where = resolve_model(cfg.model)
            policy = load_policy(where, device=cfg.device, dtype=cfg.dtype)
        except OSError as exc:
            raise ValueError(f"--model {cfg.model}: {exc}") from None
        label = model_label(cfg.model, identity)
    else:
        label = cfg.model
    max_new = resolve_max_new_tokens(policy, cfg)
    for name, ts in task_sets.items():
        check_prompts_fit(policy, name, ts, max_new)
    try:
        store = LabelStore(cfg.db)
    except Exception as exc:  # a bad URL, a missing driver or folder, a store of another schema version
        raise ValueError(f"--db {cfg.db}: {exc}") from None
    try:
        stored = store.tasks()
        stored_tasks = dict(zip(stored["task_id"], stored["prompt"], strict=True))
        clash = [t.task_id for t in tasks if stored_tasks.get(t.task_id, t.prompt) != t.prompt]
        if clash:
            raise ValueError(f"--tasks: {len(clash)} tasks are already in the store with another prompt (e.g. "
                             f"{clash[0]}; another --mbpp file?); use the tasks the store was filled with, or "
                             f"another --db")
        with_gold = set(store.programs(gold=True)["task_id"].dropna())
        need_gold = [t for t in tasks if t.task_id not in with_gold] if cfg.gold else []
        made = {}
        if need_gold:
            from .sandbox import SandboxUnavailable
            from .tasks import make_gold_many

            if progress:
                print(f"making gold for {len(need_gold)} tasks (mutants of their references, screened in the "
                      f"sandbox) ...", file=sys.stderr)
            try:
                per_task = make_gold_many(need_gold, n=cfg.gold, seed=cfg.seed, timeout=cfg.timeout,
                                          progress=progress)
            except SandboxUnavailable as exc:
                raise ValueError(f"--gold {cfg.gold}: making gold runs reference solutions in the sandbox, which "
                                 f"cannot start here ({exc}); pass --gold 0 to add no gold") from None
            made = {t.task_id: g for t, g in zip(need_gold, per_task, strict=True)}
        rounds = store.rounds()
        number = int(rounds["round_id"].max()) + 1 if len(rounds) else 1
        programs = {}
        with tqdm(total=len(tasks) * cfg.programs_per_task, desc="sampling programs", unit="program",
                  disable=not progress) as bar:
            for name, ts in task_sets.items():
                for t, texts in zip(ts, sample_programs(policy, ts, cfg, max_new, ("round", number, name), bar),
                                    strict=True):
                    programs[t.task_id] = texts

        # Everything is computed: write it (tasks, gold, the round, its programs).
        store.add_tasks(tasks)
        gold_rows = [{"program": g.program, "truth": list(g.truth), "task_id": tid, "program_id": gold_id(tid, i)}
                     for tid, gs in made.items() for i, g in enumerate(gs)]
        gold_ids = store.add_gold_programs(gold_rows) if gold_rows else []
        note = cfg.note or (f"crlhf round: {label} on {','.join(task_sets)}, {cfg.programs_per_task} per task, "
                            f"T={cfg.temperature:g}, seed {cfg.seed}")
        round_id = store.new_round(note=note)
        rows = [{"program": text, "task_id": tid, "program_id": program_id(round_id, tid, j)}
                for tid, texts in programs.items() for j, text in enumerate(texts)]
        pids = store.add_programs(rows, round_id=round_id)
        gold_in_store = int(len(store.programs(gold=True)))
    finally:
        store.close()
    return RoundResult(round_id=round_id, program_ids=pids, gold_ids=gold_ids, task_ids=ids,
                       new_tasks=[i for i in ids if i not in stored_tasks],
                       no_gold=[t.task_id for t in need_gold if not made.get(t.task_id)], gold_in_store=gold_in_store)


# ---------------------------------------------------------------------------------------------- the command
def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``crlhf round`` (every one documented in ``--help``)."""
    parser = parser or argparse.ArgumentParser(prog="crlhf round")
    parser.description = ("Put a round of programs into a class's label store: add the tasks, gold programs for "
                          "tasks that have none yet, and N programs per task sampled from the model (never run), "
                          "as a new round. Then serve it with `crlhf classroom --db DB`.")
    parser.add_argument("--db", required=True, metavar="DB",
                        help="the label store: a SQLite file path (created if missing) or a database URL "
                             "(postgresql+psycopg://...), as `crlhf classroom --db` takes it")
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                        help="'tiny' (the packaged tiny coder), a model folder (config.json + weights), a "
                             "run folder (its latest checkpoints/round-NNN/), or a Hugging Face Hub name")
    parser.add_argument("--tasks", type=_csv(_task_set), required=True, metavar="SETS",
                        help=f"comma-separated task sets: {', '.join(TASK_SETS)} (minicode is the tiny coder's "
                             "held-out family)")
    parser.add_argument("--programs-per-task", type=int, default=DEFAULT_PROGRAMS_PER_TASK, metavar="N",
                        help=f"programs sampled per task in this round (default {DEFAULT_PROGRAMS_PER_TASK})")
    parser.add_argument("--gold", type=int, default=DEFAULT_GOLD, metavar="N",
                        help=f"gold programs (failing mutants of the reference solution, screened in the sandbox) "
                             f"per task, made only for tasks with no gold in the store yet (default {DEFAULT_GOLD}; "
                             "0: none; `crlhf classroom` shows each student 5 gold programs first)")
    parser.add_argument("--limit", type=int, default=None, metavar="K",
                        help="only the first K tasks of each set (the same K tasks every round; default: all, "
                             "minicode: 200)")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, metavar="T",
                        help=f"sampling temperature (default {DEFAULT_TEMPERATURE}; 0 is greedy)")
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="M",
                        help="new tokens per program (default 256, at most half the model's positions)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the sampling (combined with the round's number) and of the gold mutants "
                             "(default 0)")
    parser.add_argument("--mbpp", type=str, default=None, metavar="PATH",
                        help="MBPP JSONL file in the original release format (default: the Hugging Face Hub)")
    parser.add_argument("--note", default="", help="the round's note in the store (default: model, tasks, options)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="B",
                        help="rows per generate call (default: from free GPU memory, 16 on CPU)")
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="seconds per reference or mutant in the sandbox while making gold (default 3)")
    parser.add_argument("--device", default=None, help="torch device (default CUDA, then MPS, then CPU)")
    parser.add_argument("--dtype", default=None, help="model dtype, e.g. bfloat16 (default bf16 on GPUs, else fp32)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace) -> RoundConfig:
    """A :class:`RoundConfig` from options parsed by :func:`build_parser`."""
    return RoundConfig(db=args.db, model=args.model, tasks=args.tasks, programs_per_task=args.programs_per_task,
                       gold=args.gold, limit=args.limit, temperature=args.temperature,
                       max_new_tokens=args.max_new_tokens, seed=args.seed, mbpp=args.mbpp,
                       batch_size=args.batch_size, device=args.device, dtype=args.dtype, timeout=args.timeout,
                       note=args.note)


def summary(cfg: RoundConfig, result: RoundResult, show: int = 6) -> str:
    """What ``crlhf round`` prints when it is done."""
    n_tasks = len(result.task_ids)
    lines = [f"round {result.round_id}: {len(result.program_ids)} programs ({n_tasks} tasks x "
             f"{cfg.programs_per_task}), {len(result.gold_ids)} gold programs added "
             f"({len(result.new_tasks)} new tasks; {result.gold_in_store} gold programs in the store)"]
    ids = result.program_ids
    shown = ", ".join(ids[:show]) + (f", ... ({len(ids) - show} more)" if len(ids) > show else "")
    lines.append(f"programs (r<round>-<task_id>-s<sample>): {shown}")
    if result.no_gold:
        lines.append(f"no gold could be made for {len(result.no_gold)} tasks (their reference fails its tests or no "
                     f"mutant fails): {', '.join(result.no_gold[:show])}")
    if result.gold_in_store < 5:
        lines.append(f"note: the store holds {result.gold_in_store} gold programs; `crlhf classroom` shows each "
                     "student --n-gold 5 first (raise --gold, or pass --n-gold to crlhf classroom)")
    lines.append(f"serve it: crlhf classroom --db {cfg.db}   (only this round: add --round {result.round_id})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``crlhf round`` from options parsed by :func:`build_parser`; returns the exit status.
    A bad option raises :class:`crlhf.cli.CommandError` naming it, before anything is written to
    the store."""
    from .cli import CommandError

    try:
        cfg = config_from_args(args)
        result = run_round(cfg, progress=not args.quiet)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        print("\ninterrupted: the store is written only after sampling, so this round is not in it; run the "
              "command again", file=sys.stderr)
        return 130
    print(summary(cfg, result))
    return 0
