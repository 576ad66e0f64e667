"""Tests of crlhf.loop_folder (the loop's run folder): what a round writes reads back as it was,
rows of an unfinished round are left out, annotator ids keep their type through the CSV, the
label log numbers on, old checkpoints are pruned. No torch needed."""

import json

import numpy as np
import pandas as pd

from crlhf.loop_folder import (LABEL_LOG_COLUMNS, METRIC_COLUMNS, PROGRAM_COLUMNS, RunFolder, append_labels,
                               checkpoint_name, empty_label_log)


def _labels(lines, annotators, labels):
    return pd.DataFrame({"line": lines, "annotator": annotators, "label": labels})


def _a_run(tmp_path):
    """A folder whose state says round 1 while its tables already hold rows of round 2."""
    log = append_labels(empty_label_log(), _labels([0, 1], [7, 7], [1, -1]), "gold-0", 0)
    log = append_labels(log, _labels([0, 0], [7, "ann-b"], [1, 1]), "p1", 1)
    log = append_labels(log, _labels([1], ["ann-b"], [-1]), "p2", 2)  # round 2 never finished
    units = {"gold-0": {"round": 0, "program": "a\nb\n", "truth": [1, 0], "gold_id": "gold-0"},
             "p1": {"round": 1, "program": "x\n", "truth": None},
             "p2": {"round": 2, "program": "y\ny\n", "truth": None}}
    metrics = [{"round": 1, "reward_mean": 0.5, "kl": 0.1, "extra": 3.0}, {"round": 2, "reward_mean": 0.7, "kl": 0.2}]
    programs = [{"round": r, "program_id": f"p{r}", "task_id": "007", "prompt_index": 0, "passed": r == 1,
                 "reward": 0.5, "s_true": 1.0, "s_bayes": 0.5} for r in (1, 2)]
    history = pd.DataFrame({"step": [0, 1, 2, 3], "program_id": [None, "gold-0", "p1", "p2"],
                            "annotator": [7, 7, 7, "ann-b"], "reliability": [0.7, 0.8, 0.81, 0.6]})
    folder = RunFolder(tmp_path / "run")
    folder.write_config({"rounds": 3})
    folder.save_tables(metrics, programs, log, units, [7, "ann-b"], history)
    folder.write_state(1, "abc123", checkpoint_name(1), {"gold-0": {"program": "a\nb\n", "truth": [1, 0]}})
    return folder, log, history


def test_a_saved_run_reads_back_up_to_its_last_completed_round(tmp_path):
    folder, log, history = _a_run(tmp_path)
    assert folder.has_state() and not RunFolder(tmp_path / "elsewhere").has_state()
    assert json.loads((folder.path / "config.json").read_text()) == {"rounds": 3}
    run = folder.read()
    assert (run.round, run.tag, run.checkpoint) == (1, "abc123", "checkpoints/round-001")
    assert run.gold == {"gold-0": {"program": "a\nb\n", "truth": [1, 0]}}
    assert run.annotators == [7, "ann-b"]
    assert list(run.units) == ["gold-0", "p1"] and run.units["gold-0"]["truth"] == [1, 0]
    kept = log[log["round"] <= 1].reset_index(drop=True)
    assert list(run.log.columns) == list(LABEL_LOG_COLUMNS)
    assert run.log["annotator"].tolist() == [7, 7, 7, "ann-b"]  # the int id is an int again, not "7"
    pd.testing.assert_frame_equal(run.log.drop(columns="annotator"), kept.drop(columns="annotator"),
                                  check_dtype=False)
    assert [m["round"] for m in run.metrics] == [1] and run.metrics[0]["extra"] == 3.0
    assert [p["program_id"] for p in run.programs] == ["p1"] and run.programs[0]["task_id"] == "007"
    saved = pd.read_csv(folder.path / "metrics.csv")
    assert list(saved.columns) == list(METRIC_COLUMNS) + ["extra"]
    assert list(pd.read_csv(folder.path / "programs.csv").columns) == list(PROGRAM_COLUMNS)
    rel = pd.read_csv(folder.path / "reliabilities.csv")
    assert rel["round"].tolist() == [0, 0, 1, 2] and "round" not in history.columns  # the caller's frame is kept


def test_saving_what_was_read_drops_the_unfinished_rounds_rows(tmp_path):
    folder, _, history = _a_run(tmp_path)
    run = folder.read()
    folder.save_tables(run.metrics, run.programs, run.log, run.units, run.annotators, history.iloc[:3])
    again = folder.read()
    assert len(pd.read_csv(folder.path / "labels.csv")) == 4 and len(again.log) == 4
    assert pd.read_csv(folder.path / "metrics.csv")["round"].tolist() == [1]
    assert "p2" not in (folder.path / "units.jsonl").read_text()


def test_the_label_log_numbers_on_in_ingestion_order():
    log = empty_label_log()
    assert len(log) == 0 and list(log.columns) == list(LABEL_LOG_COLUMNS)
    assert log["order"].dtype == np.int64 and log["annotator"].dtype == object
    log = append_labels(log, _labels([0, 1, 2], ["a", "a", "b"], [1, -1, 1]), "p0", 1)
    log = append_labels(log, _labels([0], ["c"], [-1]), "p1", 2)
    assert log["order"].tolist() == [0, 1, 2, 3]
    assert log["program_id"].tolist() == ["p0"] * 3 + ["p1"] and log["round"].tolist() == [1, 1, 1, 2]
    assert log["label"].dtype == np.int64 and log["label"].tolist() == [1, -1, 1, -1]


def test_checkpoints_are_saved_by_round_and_the_oldest_pruned(tmp_path):
    class Trainer:
        def save_pretrained(self, path, reference):
            assert reference  # a resumed run needs the reference model too
            path.mkdir(parents=True)
            (path / "weights").write_text("w")

    folder = RunFolder(tmp_path)
    names = [folder.save_checkpoint(Trainer(), r) for r in (1, 2, 3)]
    assert names == ["checkpoints/round-001", "checkpoints/round-002", "checkpoints/round-003"]
    folder.prune_checkpoints(2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["round-002", "round-003"]
