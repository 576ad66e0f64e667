"""The reward science table: held-out pass@1 after cRLHF, by reward source x shape (x credit) x
labels per program (x reliability rule), 3 seeds each, run in slices that survive a stopped
session.

    # run cells (one JSON per cell and seed in --out; cells already there are skipped)
    python benchmarks/reward_sources.py run [--only source=bayes,shape=product/share,labels=10]
                                            (an axis named in --only takes the values given there)
                                            [--seeds 0 1 2] [--credits sequence] [--reliabilities two_coin]
                                            [--out benchmarks/results/reward_sources] [--workers 2] [--quick]
    # the table (and --json) from whatever cells the folder holds
    python benchmarks/reward_sources.py collect [--out ...] [--json PATH]
    # the planned cells and which are done
    python benchmarks/reward_sources.py list [--only ...]

The loop is ``crlhf demo``'s (``crlhf.demo.demo_config``: the packaged tiny coder, PPO settings
of ``crlhf.demo.tiny_ppo_config``, prompts from ``crlhf.demo.rl_tasks``,
``LoopConfig.baseline="prompt"``) under ``noisy_crowd(30)`` (20 reliable annotators, 4 weak, 4
spammers, 1 adversary, 1 lazy). A cell changes only:

- ``source`` (``LoopConfig.reward``, :data:`crlhf.reward.SOURCES`): bayes, majority, single,
  dawid_skene, oracle (the line truth), tests (1 if the program passes its unit tests);
- ``shape`` (``LoopConfig.reward_shape``): share (the paper's s = c/k), all_correct (1[c = k]),
  product (P(all generated lines correct)); ``tests`` is program-level, so it runs ``share`` only;
- ``credit`` (``LoopConfig.credit``): sequence (default), line_end, blame;
- ``labels`` (``LoopConfig.labels_per_program``): 5 and 10 by default; ``oracle`` and ``tests``
  do not read labels, so they run at the first value only;
- ``reliability`` (``CrowdModel(reliability=...)``): two_coin (the default) and, with
  ``--reliabilities two_coin eq8``, the paper's eq 8; only ``bayes`` reads it.

Each (cell, seed) trains a fresh copy of the coder with seed-dependent crowd, prompt order,
sampling and PPO, and is evaluated on the same held-out minicode test tasks, pass@1 at T = 0.2
(``--eval-n`` samples per task, sampling seed fixed), as is the SFT baseline (its own file,
``baseline.json``). Gains are paired: the same tasks and sampling seed before and after.
``collect`` prints, per cell, pass@1 per seed, mean, std (ddof 1), gain over the baseline,
gain/std, and the paired differences ``product - share`` per seed (same source, credit, labels,
reliability and seed: the same crowd, prompts and sampling seed), with wins out of seeds.

Files: ``<out>/baseline.json``; ``<out>/cells/source=..._shape=..._credit=..._labels=.._reliability=.._seed=N.json``
with ``cell`` (the axes), ``seed``, ``pass@1``, run statistics (``reward_error``, ``kl_last``,
``pass_rate_first/last``, ``train_s``, ``eval_s``) and ``sizes``; ``collect --json`` writes
``{"axes": {...}, "baseline": {"pass@1": x}, "cells": [{axes..., "pass@1": [...], "seeds": [...],
"mean", "std", "gain", "gain_over_std", ...}], "paired": [{axes..., "a": "product", "b": "share",
"diff": [...], "mean", "std", "wins"}], "settings": {...}}``. The exit status is 0 either way (a
measurement, not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _common import REPO, print_table, write_json

SOURCES = ("bayes", "majority", "single", "dawid_skene", "oracle", "tests")
SHAPES = ("share", "all_correct", "product")
CREDITS = ("sequence", "line_end", "blame")
RELIABILITIES = ("two_coin", "eq8", "beta")
AXES = ("source", "shape", "credit", "labels", "reliability")
DEFAULT_OUT = REPO / "benchmarks" / "results" / "reward_sources"
LABEL_FREE = ("oracle", "tests")  # sources that do not read the crowd's labels


def plan(sources, shapes, credits, labels, reliabilities) -> list[dict]:
    """The cells of the grid, without the redundant ones (see the module docstring)."""
    cells = []
    for src in sources:
        for shape in shapes if src != "tests" else shapes[:1]:
            for credit in credits if src != "tests" else credits[:1]:
                for k in labels if src not in LABEL_FREE else labels[:1]:
                    for rel in reliabilities if src == "bayes" else reliabilities[:1]:
                        cells.append({"source": src, "shape": shape, "credit": credit, "labels": int(k),
                                      "reliability": rel})
    return cells


def cell_name(cell: dict, seed: int) -> str:
    return "_".join(f"{a}={cell[a]}" for a in AXES) + f"_seed={seed}"


def parse_only(text: str | None) -> dict:
    """``source=bayes/majority,shape=product,labels=10`` -> {axis: set of str values}."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise SystemExit(f"--only: expected axis=value, got {part!r}")
        key, values = part.split("=", 1)
        key = key.strip()
        if key not in AXES:
            raise SystemExit(f"--only: unknown axis {key!r}; axes are {AXES}")
        out[key] = {v.strip() for v in values.split("/") if v.strip()}
    return out


def planned(args) -> list[dict]:
    """The cells of a command line: an axis named in ``--only`` takes the values given there
    (e.g. ``labels=3``), the others their option's values."""
    only = parse_only(args.only)
    axes = {"source": args.sources, "shape": args.shapes, "credit": args.credits, "labels": args.labels,
            "reliability": args.reliabilities}
    known = {"source": SOURCES, "shape": SHAPES, "credit": CREDITS, "reliability": RELIABILITIES}
    for axis, values in only.items():
        if axis == "labels":
            try:
                axes[axis] = sorted(int(v) for v in values)
            except ValueError:
                raise SystemExit(f"--only: labels must be integers, got {sorted(values)}") from None
        else:
            bad = sorted(values - set(known[axis]))
            if bad:
                raise SystemExit(f"--only: unknown {axis} {bad}; one of {known[axis]}")
            axes[axis] = [v for v in known[axis] if v in values]
    return plan(axes["source"], axes["shape"], axes["credit"], axes["labels"], axes["reliability"])


def _evaluate(policy, tasks, sizes):
    from crlhf.evaluate import evaluate

    stop = tuple(dict.fromkeys(s for t in tasks for s in t.stop)) or None
    sampler = policy.as_sampler(max_new_tokens=sizes["eval_tokens"], stop=stop, seed=0, batch_size=256,
                                progress=False)
    res = evaluate(sampler, tasks, ks=(1,), temperatures=(0.2,), n=sizes["eval_n"], progress=False)
    return float(res.to_dict()["pass@1"]["0.2"])


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def run_cell(job) -> str:
    """Train a fresh coder in one cell with one seed (or evaluate the baseline, ``cell=None``);
    write its JSON; return the path."""
    cell, seed, sizes, path, threads = job
    import torch

    from crlhf import tiny
    from crlhf.demo import demo_config, rl_tasks
    from crlhf.loop import run_loop

    torch.set_num_threads(threads)
    test, train = rl_tasks(sizes["eval_tasks"], sizes["train_tasks"])
    start = time.perf_counter()
    if cell is None:
        p = _evaluate(tiny.load(device="cpu"), test, sizes)
        _write_atomic(Path(path), {"pass@1": p, "eval_s": time.perf_counter() - start, "sizes": sizes})
        return path
    cfg = demo_config(dict(sizes, labels_per_program=cell["labels"]), reward=cell["source"], seed=seed,
                      reward_shape=cell["shape"], credit=cell["credit"],
                      crowd_model={"reliability": cell["reliability"]})
    run = run_loop(tiny.load(device="cpu"), train, cfg, progress=False)
    train_s = time.perf_counter() - start
    m = run.metrics
    t = time.perf_counter()
    p = _evaluate(run.policy, test, sizes)
    _write_atomic(Path(path), {
        "cell": cell, "seed": seed, "pass@1": p, "reward_error": float(m["reward_error"].mean()),
        "reward_mean": float(m["reward_mean"].mean()), "kl_last": float(m["kl"].iloc[-1]),
        "pass_rate_first": float(m["pass_rate"].iloc[:3].mean()),
        "pass_rate_last": float(m["pass_rate"].iloc[-3:].mean()),
        "train_s": train_s, "eval_s": time.perf_counter() - t, "sizes": sizes})
    return path


def sizes_for(args) -> dict:
    from crlhf.demo import SIZES

    sizes = dict(SIZES[False], eval_tasks=args.eval_tasks, eval_n=args.eval_n)
    if args.quick:
        sizes.update(SIZES[True], eval_tasks=min(args.eval_tasks, 20), eval_n=2)
    if args.rounds is not None:
        sizes["rounds"] = args.rounds
    sizes.pop("labels_per_program", None)  # an axis
    return sizes


def cmd_run(args) -> list[str]:
    from tqdm.auto import tqdm

    out = Path(args.out)
    sizes = sizes_for(args)
    cells = planned(args)
    jobs, skipped = [], 0
    base = out / "baseline.json"
    if not base.is_file():
        jobs.append((None, 0, sizes, str(base), 1))
    for cell in cells:
        for seed in args.seeds:
            path = out / "cells" / f"{cell_name(cell, seed)}.json"
            if path.is_file() and not args.force:
                skipped += 1
                continue
            jobs.append((cell, seed, sizes, str(path), 1))
    print(f"{len(jobs)} job(s) to run, {skipped} cell(s) already done in {out}", flush=True)
    start = time.perf_counter()
    done = []
    if jobs:
        with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
            for path in tqdm(pool.map(run_cell, jobs), total=len(jobs), desc="cells", unit="cell"):
                done.append(path)
                print(f"wrote {path}", flush=True)
    print(f"wall time {time.perf_counter() - start:.0f} s with {args.workers} worker(s)")
    return done


def _group_key(cell: dict) -> tuple:
    return tuple(cell[a] for a in AXES)


def collect(out) -> dict:
    """The table's numbers from the folder: one row per cell, paired product - share."""
    out = Path(out)
    base_path = out / "baseline.json"
    if not base_path.is_file():
        raise SystemExit(f"{base_path} is missing: run a slice first")
    base = json.loads(base_path.read_text())
    runs = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    eval_keys = ("eval_tasks", "eval_n", "eval_tokens")
    for r in runs:
        if {k: r["sizes"][k] for k in eval_keys} != {k: base["sizes"][k] for k in eval_keys}:
            raise SystemExit(f"cell {cell_name(r['cell'], r['seed'])} was evaluated with other sizes than "
                             f"baseline.json: {[r['sizes'][k] for k in eval_keys]}; use one --out per size")
        if r["sizes"] != runs[0]["sizes"]:
            raise SystemExit(f"cells {cell_name(runs[0]['cell'], runs[0]['seed'])} and "
                             f"{cell_name(r['cell'], r['seed'])} were trained with other sizes "
                             f"({runs[0]['sizes']} vs {r['sizes']}); use one --out per size")
    baseline = float(base["pass@1"])
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault(_group_key(r["cell"]), []).append(r)
    rows = []
    for key in sorted(groups, key=lambda k: (SOURCES.index(k[0]) if k[0] in SOURCES else 99, *map(str, k[1:]))):
        rs = sorted(groups[key], key=lambda r: r["seed"])
        p = np.array([r["pass@1"] for r in rs])
        std = float(p.std(ddof=1)) if len(p) > 1 else None
        gain = float(p.mean() - baseline)
        rows.append({**dict(zip(AXES, key, strict=True)), "seeds": [r["seed"] for r in rs], "pass@1": p.tolist(),
                     "mean": float(p.mean()), "std": std, "gain": gain,
                     "gain_over_std": gain / std if std else None,
                     "reward_error": float(np.mean([r["reward_error"] for r in rs])),
                     "kl_last": float(np.mean([r["kl_last"] for r in rs])),
                     "train_s": float(np.mean([r["train_s"] for r in rs]))})
    paired = []
    by_key = {(*_group_key(r["cell"]), r["seed"]): r for r in runs}
    for row in rows:
        if row["shape"] != "product":
            continue
        diffs, seeds = [], []
        for seed in row["seeds"]:
            other = by_key.get((row["source"], "share", row["credit"], row["labels"], row["reliability"], seed))
            if other is not None:
                diffs.append(by_key[(row["source"], "product", row["credit"], row["labels"], row["reliability"],
                                     seed)]["pass@1"] - other["pass@1"])
                seeds.append(seed)
        if diffs:
            d = np.array(diffs)
            paired.append({**{a: row[a] for a in AXES if a != "shape"}, "a": "product", "b": "share",
                           "seeds": seeds, "diff": d.tolist(), "mean": float(d.mean()),
                           "std": float(d.std(ddof=1)) if len(d) > 1 else None, "wins": int((d > 0).sum())})
    axes = {a: sorted({r[a] for r in rows}, key=str) for a in AXES}
    return {"axes": axes, "baseline": {"pass@1": baseline}, "cells": rows, "paired": paired,
            "settings": {"sizes": runs[0]["sizes"] if runs else base["sizes"], "crowd": "noisy_crowd(30)",
                         "out": str(out), "n_runs": len(runs), "cpu_count": os.cpu_count()}}


def cmd_collect(args) -> dict:
    data = collect(args.out)
    rows = data["cells"]
    n_seeds = max((len(r["seeds"]) for r in rows), default=0)
    header = ["source", "shape", "credit", "labels", "reliability", *(f"seed {i}" for i in range(n_seeds)),
              "mean", "std", "gain", "gain/std", "|r - s_true|", "KL last", "train s"]
    table = [[r["source"], r["shape"], r["credit"], r["labels"], r["reliability"],
              *(r["pass@1"] + [None] * (n_seeds - len(r["pass@1"]))), r["mean"], r["std"], r["gain"],
              r["gain_over_std"], r["reward_error"], r["kl_last"], r["train_s"]] for r in rows]
    s = data["settings"]["sizes"]
    print_table(f"Held-out pass@1 (T=0.2, {s['eval_tasks']} minicode test tasks x {s['eval_n']}) after "
                f"{s['rounds']} rounds of {s['prompts_per_round']} prompts x {s['n']}; "
                f"SFT baseline {data['baseline']['pass@1']:.4f}", header, table)
    if data["paired"]:
        print_table("Paired by seed: product - share (same source, credit, labels, reliability, seed)",
                    ["source", "credit", "labels", "reliability", "seeds", "diff per seed", "mean", "std", "wins"],
                    [[p["source"], p["credit"], p["labels"], p["reliability"], " ".join(map(str, p["seeds"])),
                      " ".join(f"{d:+.4f}" for d in p["diff"]), p["mean"], p["std"], f"{p['wins']}/{len(p['diff'])}"]
                     for p in data["paired"]])
    if args.json:
        write_json(args.json, data)
    return data


def cmd_list(args) -> list:
    out = Path(args.out)
    cells = planned(args)
    rows = []
    for cell in cells:
        for seed in args.seeds:
            name = cell_name(cell, seed)
            rows.append((name, (out / "cells" / f"{name}.json").is_file()))
    for name, ok in rows:
        print(f"{'done' if ok else 'todo'}  {name}")
    baseline = "done" if (out / "baseline.json").is_file() else "todo"
    print(f"{sum(ok for _, ok in rows)} of {len(rows)} done; baseline {baseline}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "collect", "list"):
        p = sub.add_parser(name)
        p.add_argument("--out", default=str(DEFAULT_OUT), help="the folder of cell JSONs")
        if name == "collect":
            p.add_argument("--json", help="write the table's figures to this file")
            continue
        p.add_argument("--only", help="a slice: axis=value[/value...][,axis=value...], axes " + ", ".join(AXES))
        p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
        p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
        p.add_argument("--credits", nargs="+", default=["sequence"], choices=CREDITS)
        p.add_argument("--labels", nargs="+", type=int, default=[5, 10], help="labels per program (default 5 10)")
        p.add_argument("--reliabilities", nargs="+", default=["two_coin"], choices=RELIABILITIES)
        p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
        if name == "run":
            p.add_argument("--rounds", type=int, help="PPO rounds per run (default: the demo's)")
            p.add_argument("--eval-tasks", type=int, default=200, help="held-out minicode test tasks (default 200)")
            p.add_argument("--eval-n", type=int, default=5, help="samples per task at T=0.2 (default 5)")
            p.add_argument("--workers", type=int, default=2, help="cells in parallel, one torch thread each")
            p.add_argument("--force", action="store_true", help="rerun cells already in --out")
            p.add_argument("--quick", action="store_true", help="smoke sizes: two tiny rounds, 20 eval tasks x 2")
    args = parser.parse_args(argv)
    return {"run": cmd_run, "collect": cmd_collect, "list": cmd_list}[args.command](args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
