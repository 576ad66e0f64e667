"""``crlhf train CONFIG``: the paper's experiment as one command, from a TOML file.

    crlhf train configs/tiny.toml [--out DIR] [--db DB] [--quiet]

In order, into the run folder (``out``, default ``runs/train/<config name>``):

1. **SFT** (optional, ``[sft] data = PATH``): :func:`crlhf.sft.sft` fine-tunes the model on
   text-to-code pairs in the XLCoST layouts (or JSON lines ``text``/``code``) into ``sft/``; the
   model after it is the starting point of everything below.
2. for each seed of ``seeds``:

   a. **baseline**: pass@k of the starting model on the ``[eval]`` task sets
      (:func:`crlhf.eval_run.run_eval`, the ``crlhf eval`` run folder ``seed-S/baseline/``);
   b. **rounds**: Algorithm 1 (:func:`crlhf.loop.run_loop`) on the ``[prompts]`` tasks, with a
      simulated crowd (``[loop] crowd = "paper"`` or ``"noisy"``) or, with ``db``/``--db``, the
      humans labelling in that label store through ``crlhf classroom`` (the command waits for
      their labels, ``[loop] store_timeout`` seconds a round); folder ``seed-S/run/``;
   c. **after**: pass@k of the trained policy, the same way (``seed-S/after-round-NNN/``).

3. **report**: ``report.md`` (per task set the pass@k table of :func:`crlhf.report.passk_table`,
   as ``crlhf demo`` writes it: baseline, w/cRLHF and the gain with a paired interval, in % with
   95% bootstrap intervals over tasks, or mean ± std over seeds and then each seed when several
   are asked for; the rounds' reward and KL), ``results.json`` (the same numbers, the table's in
   ``task_sets.NAME.table``, per seed too), ``passk.png`` and
   ``passk.json`` (pass@k against k, a colour per temperature, baseline dashed and w/cRLHF solid).

The folder also holds ``config.toml`` (the file as given) and ``config.json`` (every setting,
defaults filled in). **Resuming**: run the same command again. Finished SFT is reused
(``sft/sft_result.json``), evaluations sample only what their folders lack, and the rounds
continue after the last finished one (``state.json``). Only ``[loop] rounds``, ``seeds`` and
``[eval]`` ``n``/``temperatures``/``ks``/``workers``/``batch_size`` may change between
invocations; the rest is checked against ``config.json``.

**The TOML file** (every key checked; unknown keys and wrong types are errors naming the file,
the table and the key): :mod:`crlhf.train_config`.

**Several GPUs**: ``accelerate launch --num_processes 4 -m crlhf train CONFIG`` (or
``accelerate launch $(which crlhf) train CONFIG``). SFT runs data-parallel (TRL); evaluations
and the crowd run in the main process while the others wait; each PPO step is data-parallel, the
main process sending every process an equal share of the round's programs
(``prompts_per_round * n`` must divide by the number of processes). Each process loads the model
on its own GPU. In one process ``[ppo] use_accelerate = true`` routes the PPO step through
``accelerate`` too (it then changes nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ._deprecation import moved_names

if TYPE_CHECKING:
    from .train_config import TrainConfig

__all__ = ["DIST_TIMEOUT", "RESUMABLE", "quiet_libraries", "train_prompts", "run_train", "write_report",
           "build_parser", "run"]

DIST_TIMEOUT = timedelta(hours=24)
"""How long processes wait for the main one (evaluations run there alone) under accelerate launch."""
RESUMABLE = ("loop.rounds", "seeds", "eval.n", "eval.temperatures", "eval.ks", "eval.workers", "eval.batch_size")
"""Settings that may change between invocations on one run folder."""

_MOVED = {name: "crlhf.train_config" for name in (
    "ConfigError", "ModelSettings", "SFTSettings", "PromptSettings", "LoraSettings", "TrainConfig", "parse_config",
    "load_config", "PROMPT_SETS", "DEFAULT_MINICODE_PROMPTS", "SECTION_TYPES", "TOP_KEYS", "SET_ELSEWHERE")}

__getattr__ = moved_names(__name__, _MOVED)


# ---------------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def quiet_libraries():
    """Silence transformers' own bars (``Loading weights``, ``Writing model shards`` at every
    checkpoint) and its logged warnings while ``crlhf train`` runs; our bars stay."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _accelerator(cfg: TrainConfig):
    """An ``accelerate.Accelerator`` under ``accelerate launch`` with several processes, or when
    ``[ppo] use_accelerate``; else None (accelerate is not imported)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not cfg.ppo.get("use_accelerate", False):
        return None
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    return Accelerator(kwargs_handlers=[InitProcessGroupKwargs(timeout=DIST_TIMEOUT)])


def train_prompts(cfg: TrainConfig, eval_sets: dict) -> list:
    """The tasks PPO trains on (``[prompts]``), none of them among the evaluated ones."""
    if cfg.prompts.tasks == "minicode":
        from .demo import rl_tasks
        from .train_config import DEFAULT_MINICODE_PROMPTS

        evaluated = len(eval_sets.get("minicode", ()))
        return rl_tasks(evaluated, cfg.prompts.limit or DEFAULT_MINICODE_PROMPTS)[1]
    from .tasks import load_tasks

    path = cfg.prompts.mbpp or cfg.eval.get("mbpp")
    if path is not None and not Path(path).expanduser().is_file():
        raise ValueError(f"[prompts] mbpp: no MBPP file at {path!r}")
    try:
        tasks = load_tasks("mbpp", path=None if path is None else str(Path(path).expanduser()), split="train",
                           prompt_style=cfg.eval.get("mbpp_style", "docstring"))
    except (ImportError, RuntimeError) as exc:
        raise ValueError(f"[prompts] mbpp: MBPP's train split needs a local JSONL file ([prompts] mbpp or [eval] "
                         f"mbpp) or the Hugging Face Hub, which failed: {exc}") from None
    return tasks[:cfg.prompts.limit] if cfg.prompts.limit else tasks


def _check_run_folder(out: Path, now: dict) -> None:
    path = out / "config.json"
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"--out {out}: config.json is not a crlhf train config; pick another --out") from None
    if isinstance(saved, dict) and "crowd" in saved and "crowd_model" not in saved:  # written before the rename
        saved["crowd_model"] = saved.pop("crowd")
    if isinstance(saved, dict) and isinstance(saved.get("ppo"), dict) and "lam" in saved["ppo"]:
        saved["ppo"]["gae_lambda"] = saved["ppo"].pop("lam")
    diff = []
    for table, values in now.items():
        if isinstance(values, dict):
            diff += [f"{table}.{k}" for k, v in values.items() if saved.get(table, {}).get(k) != v]
        elif saved.get(table) != values and table != "out":
            diff.append(table)
    diff = [d for d in diff if d not in RESUMABLE]
    if diff:
        raise ValueError(f"the run folder {out} was made with another config; settings differ: {', '.join(diff)} "
                         f"(only {', '.join(RESUMABLE)} may change on resume); use another out")


def _free(*objects) -> None:
    del objects
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


# ---------------------------------------------------------------------------------------------- the run
def run_train(cfg: TrainConfig, progress: bool = True, config_text: str | None = None) -> dict:
    """Run (or resume) the experiment into ``cfg.out`` (see the module docstring); returns what
    ``results.json`` holds (on the main process; other processes get ``{}``)."""
    from .eval_run import load_policy, load_task_set, resolve_model, run_eval

    t_start = time.perf_counter()
    out = Path(cfg.out)
    resolved = cfg.to_dict()
    acc = _accelerator(cfg)
    main = acc is None or acc.is_main_process
    world = acc.num_processes if acc is not None else 1

    def say(text: str) -> None:
        if main:
            print(text, flush=True)

    def barrier() -> None:
        if world > 1:
            acc.wait_for_everyone()

    _check_run_folder(out, resolved)
    barrier()
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if config_text is not None:
            (out / "config.toml").write_text(config_text, encoding="utf-8")
        (out / "config.json").write_text(json.dumps({"config": resolved, "source": cfg.source}, indent=1) + "\n")
    device = str(acc.device) if world > 1 else cfg.model.device
    invocation: dict = {"seeds": {}}
    timings: dict = {}
    stages = 1 + 3 * len(cfg.seeds) + (1 if cfg.sft.data else 0)
    stage = iter(range(1, stages + 1))
    with quiet_libraries():
        where = resolve_model(cfg.model.name)[1]
        label = cfg.model.name if cfg.model.name == "tiny" or not Path(cfg.model.name).is_dir() else Path(where).name
        if cfg.sft.data:
            sft_dir = out / "sft"
            t = time.perf_counter()
            if (sft_dir / "sft_result.json").is_file():
                say(f"[{next(stage)}/{stages}] SFT: done before, reusing {sft_dir}")
                invocation["sft"] = "reused"
            else:
                say(f"[{next(stage)}/{stages}] SFT of {label} on {cfg.sft.data}")
                _run_sft(cfg, where, sft_dir, progress and main, main, barrier)
                invocation["sft"] = "trained"
            timings["sft"] = time.perf_counter() - t
            where, label = str(sft_dir), f"{label}+SFT"
        eval_sets = {name: load_task_set(name, cfg.eval.get("limit"), cfg.eval.get("mbpp"),
                                         cfg.eval.get("mbpp_style", "docstring"))
                     for name in cfg.eval_config(label, out, 0).tasks}
        prompts = train_prompts(cfg, eval_sets)
        store = None
        if cfg.db is not None:
            from .store import LabelStore

            try:
                store = LabelStore(cfg.db)
            except Exception as exc:  # a bad URL, a missing driver or folder, another schema version
                raise ValueError(f"--db {cfg.db}: {exc}") from None
        per_seed: dict = {}
        try:
            for seed in cfg.seeds:
                per_seed[seed] = _run_seed(cfg, seed, out / f"seed-{seed}", where, label, device, eval_sets, prompts,
                                           store, acc, progress and main, say, stage, stages, timings, invocation,
                                           barrier, load_policy, run_eval)
        finally:
            if store is not None:
                store.close()
    if not main:
        return {}
    say(f"[{next(stage)}/{stages}] report")
    timings["total"] = time.perf_counter() - t_start
    results = write_report(out, cfg, resolved, label, eval_sets, per_seed, len(prompts), invocation, timings)
    say(f"\nwrote {out / 'report.md'}, results.json, passk.png in {timings['total']:.0f} s")
    return results


def _run_sft(cfg: TrainConfig, where: str, sft_dir: Path, progress: bool, main: bool, barrier) -> None:
    """SFT into ``sft_dir``, written under another name first so that the folder exists only
    once SFT has finished (all processes train; the main one renames)."""
    from .sft import sft

    s = cfg.sft
    assert s.data is not None  # called only with [sft] data
    partial = sft_dir.with_name(sft_dir.name + ".partial")
    if main and partial.exists():
        shutil.rmtree(partial)
    barrier()
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # "Tokenizing train dataset" etc.
    try:
        sft(where, s.data, partial, epochs=s.epochs, lr=s.lr, max_steps=s.max_steps, batch_size=s.batch_size,
            grad_accum=s.grad_accum, max_length=s.max_length, warmup=s.warmup, weight_decay=s.weight_decay,
            split=s.split, language=s.language, limit=s.limit, eval_data=s.eval_data, seed=s.seed,
            device=cfg.model.device, logging_steps=s.logging_steps, checkpointing=s.checkpointing, progress=progress)
    finally:
        if bars:
            datasets.enable_progress_bars()
    barrier()
    if main:
        if sft_dir.exists():
            shutil.rmtree(sft_dir)
        os.replace(partial, sft_dir)
    barrier()


def _run_seed(cfg, seed, d, where, label, device, eval_sets, prompts, store, acc, progress, say, stage, stages,
              timings, invocation, barrier, load_policy, run_eval) -> dict:
    from .loop import run_loop

    main = acc is None or acc.is_main_process
    record = invocation["seeds"].setdefault(str(seed), {})
    loop_cfg = cfg.loop_config(seed, d / "run")
    policy = load_policy(where, device=device, dtype=cfg.model.dtype)

    t = time.perf_counter()
    say(f"[{next(stage)}/{stages}] seed {seed}: baseline, {label} on "
        + ", ".join(f"{len(ts)} {n} tasks" for n, ts in eval_sets.items()))
    baseline = {}
    if main:
        baseline = run_eval(cfg.eval_config(label, d / "baseline", seed), policy=policy, task_sets=eval_sets,
                            progress=progress, echo=False)
        record["baseline_sampled"] = baseline["invocation"]["sampled"]
    barrier()
    timings[f"seed {seed} baseline"] = time.perf_counter() - t

    t = time.perf_counter()
    crowd = f"the label store {cfg.db}" if store is not None else f"a simulated {loop_cfg.crowd} crowd"
    say(f"[{next(stage)}/{stages}] seed {seed}: {loop_cfg.rounds} cRLHF round(s) of {loop_cfg.prompts_per_round} "
        f"prompts x {loop_cfg.n} programs, {crowd}" + (", LoRA" if cfg.lora.enabled else ""))
    if store is not None:
        say(f"  (serve the rounds to the class with `crlhf classroom --db {cfg.db}`; each round waits for "
            f"{loop_cfg.labels_per_program} annotators per program)")
    if cfg.lora.enabled:
        from .policy import add_lora

        policy.model = add_lora(policy.model, r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                                target_modules=cfg.lora.target_modules)
    state = d / "run" / "state.json"
    before = json.loads(state.read_text())["round"] if state.is_file() else 0
    run = run_loop(policy, prompts, loop_cfg, store=store, progress=progress, accelerator=acc)
    record["rounds_run"] = max(0, loop_cfg.rounds - before)
    timings[f"seed {seed} rounds"] = time.perf_counter() - t

    t = time.perf_counter()
    rounds = loop_cfg.rounds
    after_label = f"{label}+cRLHF-r{rounds}"
    say(f"[{next(stage)}/{stages}] seed {seed}: w/cRLHF, the policy after round {rounds}")
    after, passk = {}, {}
    if main:
        after_cfg = cfg.eval_config(after_label, d / f"after-round-{rounds:03d}", seed)
        after = run_eval(after_cfg, policy=run.policy, task_sets=eval_sets, progress=progress, echo=False)
        record["after_sampled"] = after["invocation"]["sampled"]
        passk = {name: _paired_summary(cfg.eval_config(label, d / "baseline", seed), after_cfg, name, tasks)
                 for name, tasks in eval_sets.items()}
    barrier()
    timings[f"seed {seed} after"] = time.perf_counter() - t
    metrics = run.metrics
    _free(policy, run)
    return {"baseline": baseline, "after": after, "rounds": metrics, "passk": passk}


def _paired_summary(before_cfg, after_cfg, name: str, tasks: list) -> dict:
    """:func:`crlhf.report.passk_summary` of one task set from the two evaluations' samples files
    (the per-task counts the paired gain needs)."""
    from .eval_samples import read_samples, results_of, samples_path
    from .report import passk_summary

    before, after = (results_of(read_samples(samples_path(c.out, name)), tasks, c) for c in (before_cfg, after_cfg))
    return passk_summary(before, after)


# ---------------------------------------------------------------------------------------------- the report
ROUND_COLUMNS = {"reward_mean": "mean reward (0-1)", "pass_rate": "programs passing (share)",
                 "kl": "KL to reference (nats)", "beta": "KL coefficient beta", "time": "round time (s)"}


def write_report(out: Path, cfg: TrainConfig, resolved: dict, label: str, eval_sets: dict, per_seed: dict,
                 n_prompts: int, invocation: dict, timings: dict) -> dict:
    """``report.md``, ``results.json`` and ``passk.png``/``.json`` from the seeds' evaluations."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .eval_run import DISPLAY
    from .plots import plot_passk_before_after, save
    from .report import combine_seeds, passk_frame, passk_records, passk_table, table_note, table_records

    seeds = list(per_seed)
    n = cfg.eval_config(label, out, 0).n
    lines = [f"# crlhf train: {Path(cfg.source).name}", "",
             f"Model {label}" + (" with a LoRA adapter" if cfg.lora.enabled else "") + "; "
             f"{resolved['loop']['rounds']} cRLHF round(s) of {resolved['loop']['prompts_per_round']} prompts x "
             f"{resolved['loop']['n']} programs at T={resolved['loop']['temperature']:g} on {n_prompts} "
             f"{cfg.prompts.tasks} training tasks (none of them evaluated), "
             + (f"labels from the store {cfg.db}" if cfg.db else f"a simulated {resolved['loop']['crowd']} crowd of "
                f"{resolved['loop']['crowd_size']}")
             + f", reward {resolved['loop']['reward']} ({resolved['loop']['reward_shape']}); "
             f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}.", ""]
    task_results, frames = {}, {}
    for name, tasks in eval_sets.items():
        summaries = [per_seed[s]["passk"][name] for s in seeds]
        base = [passk_frame(summary["baseline"]) for summary in summaries]
        after = [passk_frame(summary["crlhf"]) for summary in summaries]
        frames[name] = (combine_seeds(base), combine_seeds(after))
        task_results[name] = {"tasks": len(tasks), "n": n, "baseline": passk_records(base),
                              "crlhf": passk_records(after), "table": table_records(summaries)}
        lines += [f"## {DISPLAY[name]}: baseline vs w/cRLHF", "", table_note(len(seeds), len(tasks), n), "",
                  passk_table(summaries, seeds), ""]
    lines += ["## rounds", "", "The last round of each seed (the whole trajectory is in `seed-S/run/metrics.csv`).",
              "", "| seed | rounds | " + " | ".join(ROUND_COLUMNS.values()) + " |",
              "|---" * (2 + len(ROUND_COLUMNS)) + "|"]
    for s in seeds:
        m = per_seed[s]["rounds"]
        if len(m):
            last = m.iloc[-1]
            lines.append(f"| {s} | {int(last['round'])} | "
                         + " | ".join(f"{float(last[c]):.3f}" for c in ROUND_COLUMNS) + " |")
        else:
            lines.append(f"| {s} | 0 | " + " | ".join("n/a" for _ in ROUND_COLUMNS) + " |")
    lines += ["", "Plot: `passk.png` (numbers in `passk.json`): pass@k against k, a colour per temperature, "
              "baseline dashed, w/cRLHF solid, the shaded band "
              + ("± one std over seeds." if len(seeds) > 1 else "the 95% bootstrap interval over tasks."),
              "", "Time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ".", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")

    fig, axes = plt.subplots(1, len(frames), figsize=(5.5 * len(frames), 4), squeeze=False)
    for ax, (name, (base, after)) in zip(axes[0], frames.items(), strict=True):
        plot_passk_before_after(base, after, ax=ax)
        ax.set_title(f"{DISPLAY[name]} ({len(eval_sets[name])} tasks, n={n})")
    fig.suptitle(f"{label}: baseline vs w/cRLHF")
    fig.tight_layout()
    save(fig, out / "passk", {name: {"baseline": b, "crlhf": a} for name, (b, a) in frames.items()})
    plt.close(fig)

    results = {"model": label, "config": resolved, "seeds": seeds, "task_sets": task_results,
               "per_seed": {str(s): {"baseline": per_seed[s]["baseline"]["task_sets"],
                                     "crlhf": per_seed[s]["after"]["task_sets"],
                                     "gain": {name: per_seed[s]["passk"][name]["gain"] for name in eval_sets},
                                     "rounds": per_seed[s]["rounds"].to_dict(orient="records")} for s in seeds},
               "invocation": invocation, "timings_s": {k: round(v, 2) for k, v in timings.items()}}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    return results


# ---------------------------------------------------------------------------------------------- the command
def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``crlhf train`` (every one documented in ``--help``)."""
    parser = parser or argparse.ArgumentParser(prog="crlhf train")
    parser.description = ("The paper's experiment from a TOML config: optional SFT, baseline pass@k, cRLHF rounds "
                          "with a simulated crowd (or the humans of a label store with --db), pass@k after, and a "
                          "report 'baseline vs w/cRLHF'. Resumable: run the same command again. On several GPUs: "
                          "accelerate launch -m crlhf train CONFIG. See configs/*.toml for examples.")
    parser.add_argument("config", metavar="CONFIG", help="the TOML file (tables [model], [sft], [eval], [prompts], "
                        "[loop], [ppo], [crowd_model], [lora]; see `python -m pydoc crlhf.train_config`)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run folder (default: the file's `out`, else runs/train/<config name>); an existing "
                             "one is resumed")
    parser.add_argument("--db", default=None, metavar="DB",
                        help="train on human labels: the label store (SQLite path or database URL) the class labels "
                             "through `crlhf classroom --db DB`; overrides the file's `db`")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``crlhf train`` from options parsed by :func:`build_parser`; returns the exit status.
    A bad config raises :class:`crlhf.cli.CommandError` naming the file, table and key; an
    interruption returns 130 (run the command again to resume)."""
    from .cli import CommandError
    from .train_config import ConfigError, load_config

    try:
        cfg = load_config(args.config, out=args.out, db=args.db)
        text = Path(args.config).read_text(encoding="utf-8")
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    try:
        run_train(cfg, progress=not args.quiet, config_text=text)
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to resume from {cfg.out}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError, TimeoutError) as exc:
        raise CommandError(str(exc)) from None
    return 0
