"""The run folder of Algorithm 1 (:mod:`crlhf.loop`, ``LoopConfig.run_dir``): what each round
writes and what a resumed run reads back. :class:`RunFolder` does the files; the loop decides
when (and, with several processes, which process) writes them::

    config.json          the LoopConfig (PPOConfig nested)
    state.json           the last completed round, checkpoint path, run tag
    metrics.csv          one row per round: reward_mean, kl, beta, pass_rate, mean_p, time, ...
    programs.csv         one row per program: round, program_id, task_id, passed, reward, s_true, s_bayes
                         (s_true: the oracle under the run's shape; s_bayes: the crowd's s = c/k)
    reliabilities.csv    CrowdModel.history with a round column (0 = calibration)
    labels.csv           the label log, in ingestion order (order, round, program_id, line, annotator, label)
    units.jsonl          the text (and gold truth) of every unit in labels.csv
    annotators.json      annotators in registration order
    checkpoints/round-NNN/   PPOTrainer.save_pretrained(reference=True)

:meth:`RunFolder.read` returns what the folder holds up to its last completed round
(:class:`SavedRun`): rows of an unfinished round are left out, and the next
:meth:`RunFolder.save_tables` drops them from the files. The label log (``labels.csv``) is
built with :func:`empty_label_log` and :func:`append_labels`; replayed in order
(:func:`crlhf.replay.replay_log`) it restores the run's CrowdModel.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch-backed
    from .ppo import PPOTrainer

__all__ = ["METRIC_COLUMNS", "LABEL_LOG_COLUMNS", "PROGRAM_COLUMNS", "empty_label_log", "append_labels",
           "checkpoint_name", "SavedRun", "RunFolder"]

METRIC_COLUMNS = ("round", "reward_mean", "reward_std", "kl", "beta", "pass_rate", "mean_p", "s_true_mean",
                  "reward_error", "n_programs", "n_labels", "policy_loss", "value_loss", "entropy",
                  "response_length", "time_sample", "time_labels", "time_ppo", "time")
LABEL_LOG_COLUMNS = ("order", "round", "program_id", "line", "annotator", "label")
PROGRAM_COLUMNS = ("round", "program_id", "task_id", "prompt_index", "passed", "reward", "s_true", "s_bayes")


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def empty_label_log() -> pd.DataFrame:
    """A label log without rows (:data:`LABEL_LOG_COLUMNS`, typed)."""
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("program_id", "annotator") else np.int64)
                         for c in LABEL_LOG_COLUMNS})


def append_labels(log: pd.DataFrame, frame: pd.DataFrame, unit, rnd: int) -> pd.DataFrame:
    """``log`` with the labels of ``frame`` (``line, annotator, label``) appended as one
    ingestion ``unit`` of round ``rnd``, numbered on from the log's last ``order``."""
    start = int(log["order"].max()) + 1 if len(log) else 0
    rows = pd.DataFrame({"order": np.arange(start, start + len(frame), dtype=np.int64),
                         "round": np.full(len(frame), rnd, dtype=np.int64),
                         "program_id": [unit] * len(frame),
                         "line": frame["line"].to_numpy(np.int64),
                         "annotator": frame["annotator"].to_numpy(object),
                         "label": frame["label"].to_numpy(np.int64)})
    return pd.concat([log, rows], ignore_index=True) if len(log) else rows


def checkpoint_name(rnd: int) -> str:
    """The checkpoint folder of round ``rnd``, relative to the run folder."""
    return f"checkpoints/round-{rnd:03d}"


@dataclass
class SavedRun:
    """A run folder's contents up to its last completed ``round``: the run ``tag``, the
    ``checkpoint`` path (relative; ``None`` before round 1), the ``gold`` programs, the
    ``annotators`` in registration order, the ``units`` (unit id -> round, program, truth), the
    label ``log`` (:data:`LABEL_LOG_COLUMNS`) and the ``metrics`` and ``programs`` rows."""

    round: int
    tag: str
    checkpoint: str | None
    gold: dict
    annotators: list
    units: dict
    log: pd.DataFrame
    metrics: list[dict]
    programs: list[dict]


class RunFolder:
    """The run folder at ``path`` (see the module docstring for its files)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def has_state(self) -> bool:
        """Whether the folder holds a run to resume (a ``state.json``)."""
        return (self.path / "state.json").is_file()

    def write_config(self, config: dict) -> None:
        """Write ``config.json`` (a :meth:`crlhf.loop.LoopConfig.to_dict`), making the folder."""
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / "config.json", config)

    def read(self) -> SavedRun:
        """What the folder holds up to the round of its ``state.json``."""
        d = self.path
        state = json.loads((d / "state.json").read_text())
        rnd = int(state["round"])
        annotators = json.loads((d / "annotators.json").read_text())
        units = [json.loads(line) for line in (d / "units.jsonl").read_text().splitlines() if line.strip()]
        log = pd.read_csv(d / "labels.csv", dtype={"program_id": object, "annotator": object})
        names = {str(a): a for a in annotators}  # CSV turns every annotator id into a str
        log["annotator"] = [names.get(a, a) for a in log["annotator"]]
        rows: dict[str, list[dict]] = {"metrics.csv": [], "programs.csv": []}
        for name, sink in rows.items():
            if (d / name).is_file():
                frame = pd.read_csv(d / name, dtype={"program_id": object, "task_id": object})
                sink.extend(frame[frame["round"] <= rnd].to_dict("records"))
        return SavedRun(round=rnd, tag=state["tag"], checkpoint=state["checkpoint"], gold=state.get("gold", {}),
                        annotators=annotators, units={u["unit"]: u for u in units if u["round"] <= rnd},
                        log=log[log["round"] <= rnd].reset_index(drop=True), metrics=rows["metrics.csv"],
                        programs=rows["programs.csv"])

    def save_tables(self, metrics: list[dict], programs: list[dict], log: pd.DataFrame, units: dict,
                    annotators: list, history: pd.DataFrame) -> None:
        """Rewrite the tables: metrics, programs, the label log and its units, the annotators and
        the reliability ``history`` (:attr:`crlhf.crowd.CrowdModel.history`, given a round column)."""
        d = self.path
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(metrics, columns=list(METRIC_COLUMNS) + sorted(
            {k for m in metrics for k in m} - set(METRIC_COLUMNS))).to_csv(d / "metrics.csv", index=False)
        pd.DataFrame(programs, columns=list(PROGRAM_COLUMNS)).to_csv(d / "programs.csv", index=False)
        log.to_csv(d / "labels.csv", index=False)
        with open(d / "units.jsonl", "w") as fh:
            for u, v in units.items():
                fh.write(json.dumps(dict(v, unit=u)) + "\n")
        _write_json(d / "annotators.json", annotators)
        hist = history.copy()
        unit_round = {u: v["round"] for u, v in units.items()}
        hist.insert(0, "round", [unit_round.get(p, 0) for p in hist["program_id"]])
        hist.to_csv(d / "reliabilities.csv", index=False)

    def write_state(self, rnd: int, tag: str, checkpoint: str | None, gold: dict) -> None:
        """Record round ``rnd`` as completed (``state.json``, replaced atomically)."""
        _write_json(self.path / "state.json", {"round": rnd, "tag": tag, "checkpoint": checkpoint, "gold": gold})

    def save_checkpoint(self, trainer: PPOTrainer, rnd: int) -> str:
        """Save ``trainer`` (with its reference model) as round ``rnd``'s checkpoint; returns its name."""
        name = checkpoint_name(rnd)
        trainer.save_pretrained(self.path / name, reference=True)
        return name

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the last ``keep`` round checkpoints."""
        for p in sorted((self.path / "checkpoints").glob("round-*"))[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
