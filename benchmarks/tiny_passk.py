"""pass@k of the packaged tiny coder on minicode's held-out test split.

    python benchmarks/tiny_passk.py [--json PATH] [--tasks 200] [--n 20] [--model DIR]
                                    [--seed 0] [--batch-size 256] [--threads 1]

Loads ``crlhf.tiny.load()`` (or ``--model DIR``, e.g. a folder written by ``crlhf tiny train``),
samples ``--n`` completions for each of the first ``--tasks`` minicode test tasks (task seed 0)
at temperatures 0.2, 0.6 and 0.8 with ``Policy.sample`` (pure temperature sampling, HumanEval
stop sequences, at most 128 new tokens, sampling seed ``--seed``), runs every completion in
``crlhf.sandbox`` and reports pass@1 and pass@10 per temperature (the unbiased estimator), the
paper's Table-I view (best temperature per k), pass@1 at T=0.2 by held-out component and by
task kind, and the wall time of loading, sampling+checking, and the whole run.

The quality window the checkpoint is tuned for (DESIGN.md §3, issue 4): pass@1 at T=0.2 in
[0.15, 0.60] and pass@10 clearly above pass@1. The verdict is printed; the exit status is 0
either way (a measurement, not a test).
"""

from __future__ import annotations

import argparse
import os
import time

from _common import print_table, write_json

TEMPERATURES = (0.2, 0.6, 0.8)
KS = (1, 10)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--tasks", type=int, default=200, help="minicode test tasks (default 200)")
    parser.add_argument("--n", type=int, default=20, help="samples per task and temperature (default 20, >= 10)")
    parser.add_argument("--model", help="checkpoint folder (default: the packaged tiny coder)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per generate call (default 256)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    if args.n < max(KS):
        parser.error(f"--n must be >= {max(KS)} for pass@{max(KS)}")
    if args.tasks < 1:
        parser.error("--tasks must be >= 1")

    start = time.perf_counter()
    import torch

    from crlhf.evaluate import evaluate
    from crlhf.tasks import load_tasks
    from crlhf.tiny import MODEL_DIR, load

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    policy = load(args.model, device="cpu")
    load_s = time.perf_counter() - t0
    tasks = load_tasks("minicode", split="test", n=args.tasks, seed=0)
    sampler = policy.as_sampler(max_new_tokens=128, seed=args.seed, batch_size=args.batch_size, progress=True)
    t0 = time.perf_counter()
    result = evaluate(sampler, tasks, ks=KS, temperatures=TEMPERATURES, n=args.n)
    eval_s = time.perf_counter() - t0
    seconds = time.perf_counter() - start

    figures = result.to_dict()
    grid = result.passk.pivot(index="k", columns="temperature", values="pass_at_k")
    print_table(f"tiny coder on minicode test: {args.tasks} tasks x {args.n} samples per temperature",
                ["k", *(f"T={t:g}" for t in TEMPERATURES)],
                [[f"pass@{k}", *(float(grid.loc[k, t]) for t in TEMPERATURES)] for k in KS])
    table = result.table()
    print_table("Table I view (best temperature per k)", ["k", "pass@k", "temperature"],
                [[f"pass@{k}", float(r.pass_at_k), float(r.temperature)] for k, r in table.iterrows()])

    held = {t.task_id: "+".join(t.metadata["held_out"]) or "-" for t in tasks}
    kind = {t.task_id: t.metadata["kind"] for t in tasks}
    low = result.per_task[result.per_task.temperature == TEMPERATURES[0]].copy()
    low["rate"] = low.c / low.n
    low["held_out"], low["kind"] = low.task_id.map(held), low.task_id.map(kind)
    by_held = low.groupby("held_out").rate.agg(["size", "mean"])
    by_kind = low.groupby("kind").rate.agg(["size", "mean"])
    print_table(f"pass@1 at T={TEMPERATURES[0]:g} by held-out component", ["held out", "tasks", "pass@1"],
                [[h, int(r["size"]), float(r["mean"])] for h, r in by_held.iterrows()], digits=3)
    print_table(f"pass@1 at T={TEMPERATURES[0]:g} by task kind", ["kind", "tasks", "pass@1"],
                [[k, int(r["size"]), float(r["mean"])] for k, r in by_kind.iterrows()], digits=3)

    p1, p10 = figures["pass@1"]["0.2"], max(figures["pass@10"].values())
    inside = 0.15 <= p1 <= 0.60 and p10 >= p1 + 0.1
    print(f"\nquality window (pass@1 at T=0.2 in [0.15, 0.60], best pass@10 >= pass@1 + 0.10): "
          f"{'inside' if inside else 'OUTSIDE'} (pass@1 {p1:.3f}, pass@10 {p10:.3f})")
    load_avg = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    print(f"time: {seconds:.1f} s in all (load {load_s:.2f} s, sampling + sandbox {eval_s:.1f} s); "
          f"{args.threads} torch thread(s), {os.cpu_count()} cores, 1-min load average {load_avg}")

    out = {
        "pass@1": figures["pass@1"], "pass@10": figures["pass@10"], "n": args.n, "tasks": args.tasks,
        "seconds": round(seconds, 1), "best": figures["best"], "load_seconds": round(load_s, 3),
        "eval_seconds": round(eval_s, 1), "window": {"pass@1_T0.2": p1, "best_pass@10": p10, "inside": inside},
        "by_held_out": {h: float(r["mean"]) for h, r in by_held.iterrows()},
        "by_kind": {k: float(r["mean"]) for k, r in by_kind.iterrows()},
        "model": str(args.model or MODEL_DIR), "seed": args.seed, "threads": args.threads,
        "load_average_1min": load_avg,
    }
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
