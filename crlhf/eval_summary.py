"""What ``crlhf eval`` (:mod:`crlhf.eval_run`) reports from a run folder's samples files: the
Table-I row (:func:`table_one`: one model, the best pass@k over temperatures for each task set
and k) in ``table.md``, and pass@k against k in ``passk.png``/``passk.json``
(:func:`summarize_run`). The before/after table of ``crlhf demo`` and ``crlhf train`` is
:mod:`crlhf.report`'s.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from .eval_run import DISPLAY, EvalConfig, model_label
from .eval_samples import read_samples, results_of, samples_path

__all__ = ["table_one", "summarize_run"]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def table_one(model: str, results: dict, ks) -> str:
    """The Table-I row as markdown: for each task set and k, the best pass@k (%) and its temperature."""
    head = ["model"] + [f"{DISPLAY[s]} pass@{k}" for s in results for k in ks]
    cells = [model]
    for res in results.values():
        for k in ks:
            best = res["best"].get(f"pass@{k}")
            cells.append(f"{_pct(best['pass_at_k'])} (T={best['temperature']:g})" if best else "n/a")
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(cells) + " |"])


def summarize_run(out: Path, cfg: EvalConfig, task_sets: dict, identity: dict, echo: bool = True) -> dict:
    """Write ``table.md`` and ``passk.png``/``.json`` from the samples files (``echo``: print the
    table too); return the results."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import plot_passk, save

    per_set, frames = {}, {}
    for name, tasks in task_sets.items():
        res = results_of(read_samples(samples_path(out, name)), tasks, cfg)
        per_set[name] = {**res.to_dict(), "temperatures": list(cfg.temperatures), "ks": list(cfg.ks),
                         "samples_file": samples_path(out, name).name,
                         "statuses": {str(k): int(v) for k, v in res.samples.status.value_counts().items()}}
        frames[name] = res.passk
    label = model_label(cfg.model, identity["model"])
    table = table_one(label, per_set, cfg.ks)
    title = (f"crlhf eval: {label}, n = {cfg.n} samples per task and temperature, T in "
             f"{', '.join(f'{t:g}' for t in cfg.temperatures)}; best pass@k (%) over temperatures")
    (out / "table.md").write_text(f"{title}\n\n{table}\n")
    if echo:
        print(f"\n{title}\n\n{table}\n")
    fig, axes = plt.subplots(1, len(frames), figsize=(5 * len(frames), 3.6), squeeze=False)
    for ax, (name, passk) in zip(axes[0], frames.items(), strict=True):
        plot_passk(passk, ax=ax)
        ax.set_title(f"{DISPLAY[name]} ({len(task_sets[name])} tasks, n={cfg.n})")
    fig.suptitle(label)
    fig.tight_layout()
    save(fig, out / "passk", frames)
    plt.close(fig)
    return {"model": label, "sampling": identity, "config": asdict(cfg), "task_sets": per_set, "table_i": table}
