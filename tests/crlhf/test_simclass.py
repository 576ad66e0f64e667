"""A simulated class labelling a label store in a background thread: every program of a round
ends with exactly labels_per_program annotators, every student labels the gold programs first,
labels follow each student's skill, the labels do not depend on when a round arrives, the RL
loop in store mode runs on them, and bad arguments get clear errors."""

import time

import numpy as np
import pandas as pd
import pytest

from crlhf.simclass import SimulatedClass, StorePage, task_truth, truth_table
from crlhf.simulate import Crowd, adversary, lazy, make_crowd, reliable
from crlhf.store import LabelStore

GOLD = {"g0": ("def g(a, b):\n    c = a + b\n    return c - 1\n", [1, 1, -1]),
        "g1": ("def h(x):\n    # double it\n    return x * 3\n", [1, 1, -1])}
ROUNDS = {1: {f"r1-p{j}": (f"def f{j}(xs):\n    total = {j}\n\n    for x in xs:\n        total += x\n"
                           f"    return total\n", [1, -1 if j % 2 else 1, 1, 1, 1, 1]) for j in range(5)},
          2: {f"r2-p{j}": (f"x = {j}\ny = x + 1\n", [1, -1]) for j in range(4)}}
TRUTH = {pid: t for rnd in ROUNDS.values() for pid, (_, t) in rnd.items()}


def new_store(path):
    store = LabelStore(path)
    store.add_gold_programs([{"program_id": pid, "program": text, "truth": t} for pid, (text, t) in GOLD.items()])
    return store


def post_round(store, rnd):
    round_id = store.new_round(note=f"round {rnd}")
    store.add_programs([{"program_id": pid, "program": text} for pid, (text, _) in ROUNDS[rnd].items()],
                       round_id=round_id)
    return [pid for pid in ROUNDS[rnd]]


def wait_swept(cls, n, timeout=30):
    deadline = time.monotonic() + timeout
    while len(cls.swept) < n and time.monotonic() < deadline and cls.error is None:
        time.sleep(0.02)
    assert cls.error is None, cls.error
    assert len(cls.swept) >= n, f"only {cls.swept} swept"


def run_class(path, crowd, k=3, early=True, seed=0):
    """Post both rounds (before the class starts, or while it waits) and return the label log."""
    store = new_store(path)
    if early:
        post_round(store, 1)
    cls = SimulatedClass(store, crowd, truth_table(TRUTH), labels_per_program=k, n_gold=2, seed=seed, poll=0.01)
    cls.start()
    try:
        if not early:
            time.sleep(0.2)
            post_round(store, 1)
        wait_swept(cls, 1)
        post_round(store, 2)
        wait_swept(cls, 2)
    finally:
        cls.stop()
    labels = store.labels()[["program_id", "line", "annotator", "label"]]
    filling = cls.filling()
    store.close()
    return labels, filling, cls


def test_each_program_gets_exactly_k_annotators_and_every_student_the_gold_first(tmp_path):
    crowd = make_crowd([0.9, 0.8, 0.7, 0.85, 0.95], seed=1)
    labels, filling, cls = run_class(tmp_path / "a.db", crowd, k=3)
    assert filling.to_dict("list") == {
        "round_id": [1, 2], "programs": [5, 4], "complete": [5, 4], "min_annotators": [3, 3],
        "max_annotators": [3, 3], "labels": [5 * 3 * 5, 4 * 3 * 2],  # counted lines x annotators
        "students": [5, 5], "gold_labels": [5 * (3 + 2), 0]}  # g0: 3 counted lines, g1: 2
    per_program = labels.groupby("program_id")["annotator"].nunique()
    assert (per_program[list(GOLD)] == 5).all() and (per_program.drop(list(GOLD)) == 3).all()
    writes = cls.writes
    for name, rows in writes.groupby("annotator"):
        assert rows["gold"].tolist()[:2] == [True, True] and not rows["gold"].iloc[2:].any(), name
    # only counted lines are labelled (the comment line of g1 and the blank line of r1 programs are not)
    assert not ((labels["program_id"] == "g1") & (labels["line"] == 1)).any()
    assert not (labels["program_id"].str.startswith("r1") & (labels["line"] == 2)).any()


def test_the_labels_do_not_depend_on_when_a_round_arrives(tmp_path):
    crowd = make_crowd([0.9, 0.6, 0.7, 0.55], seed=3)
    early, _, _ = run_class(tmp_path / "early.db", crowd, early=True)
    late, _, _ = run_class(tmp_path / "late.db", crowd, early=False)
    pd.testing.assert_frame_equal(early.reset_index(drop=True), late.reset_index(drop=True))
    other, _, _ = run_class(tmp_path / "seed.db", crowd, early=True, seed=1)
    assert not early.reset_index(drop=True).equals(other.reset_index(drop=True))


def test_labels_follow_each_students_skill(tmp_path):
    crowd = Crowd([reliable("perfect", 1.0), adversary("liar", 0.0), lazy("lazy")], seed=0)
    labels, _, _ = run_class(tmp_path / "skill.db", crowd, k=3)
    truth = {**TRUTH, **{pid: t for pid, (_, t) in GOLD.items()}}
    expected = np.array([truth[p][line] for p, line in zip(labels["program_id"], labels["line"], strict=True)])
    by = labels["annotator"].to_numpy()
    got = labels["label"].to_numpy()
    assert (got[by == "perfect"] == expected[by == "perfect"]).all()
    assert (got[by == "liar"] == -expected[by == "liar"]).all()
    assert (got[by == "lazy"] == 1).all()
    assert -1 in expected[by == "lazy"]  # the lazy student passed wrong lines


def test_coverage_labels_a_share_of_lines_and_at_least_one(tmp_path):
    crowd = make_crowd([0.9, 0.8], coverage=0.3, seed=0)
    labels, filling, _ = run_class(tmp_path / "cov.db", crowd, k=2)
    per = labels.groupby(["program_id", "annotator"]).size()
    assert per.min() >= 1 and len(per) == 2 * (len(TRUTH) + len(GOLD))
    assert filling["labels"].sum() < 2 * (5 * 5 + 4 * 2)


def test_task_truth_runs_the_tests_in_the_sandbox(tmp_path):
    from crlhf.sandbox import Sandbox
    from crlhf.tasks import load_tasks

    task = load_tasks("minicode", split="train", n=1, seed=0)[0]
    good = task.reference_program
    lines = good.splitlines()
    body = [i for i in range(task.prompt.count("\n"), len(lines)) if lines[i].strip()]
    bad_lines = list(lines)
    bad_lines[body[-1]] = bad_lines[body[-1]].split("return")[0] + "return None"
    bad = "\n".join(bad_lines) + "\n"
    programs = pd.DataFrame({"program_id": ["good", "bad"], "task_id": [task.task_id] * 2, "program": [good, bad]})
    with Sandbox(1) as sandbox:
        got = task_truth([task])(programs, sandbox)
    assert got["good"] == [1] * len(lines)
    assert got["bad"][body[-1]] == -1 and got["bad"][:task.prompt.count("\n")] == [1] * task.prompt.count("\n")
    with pytest.raises(ValueError, match="task 'other'"):
        task_truth([task])(programs.assign(task_id="other"), None)


def test_an_error_in_the_thread_is_raised_by_stop(tmp_path):
    store = new_store(tmp_path / "err.db")
    post_round(store, 1)
    cls = SimulatedClass(store, make_crowd([0.9, 0.8]), truth_table({}), labels_per_program=2, poll=0.01).start()
    deadline = time.monotonic() + 10
    while cls.running and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(RuntimeError, match="no truth for program 'r1-p0'"):
        cls.stop()


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels_per_program=3), "exceeds the class's 2 students"),
    (dict(labels_per_program=0), "labels_per_program must be an int >= 1"),
    (dict(labels_per_program=2, n_gold=-1), "n_gold must be"),
    (dict(labels_per_program=2, poll=0), "poll must be"),
])
def test_bad_arguments_name_the_field(tmp_path, kwargs, match):
    store = LabelStore(tmp_path / "x.db")
    with pytest.raises(ValueError, match=match):
        SimulatedClass(store, make_crowd([0.9, 0.8]), truth_table({}), **kwargs)


def test_an_in_memory_store_and_a_bad_truth_are_refused(tmp_path):
    with pytest.raises(ValueError, match="in-memory SQLite"):
        SimulatedClass(LabelStore("sqlite://"), make_crowd([0.9]), truth_table({}), labels_per_program=1)
    with pytest.raises(TypeError, match="field 'truth'"):
        SimulatedClass(LabelStore(tmp_path / "y.db"), make_crowd([0.9]), "tasks", labels_per_program=1)


def test_a_store_page_is_the_sessions_queue(tmp_path):
    store = new_store(tmp_path / "page.db")
    post_round(store, 1)
    page = StorePage(store, "zoe", n_gold=1, max_annotators=1)
    assert page.load(1).program_id == "g0"
    page.submit([1, 0, -1])
    assert store.labels(annotators="zoe")[["line", "label"]].values.tolist() == [[0, 1], [2, -1]]
    assert page.load(1).program_id == "r1-p0"
    other = StorePage(store, "yan", n_gold=0, max_annotators=1)
    page.submit([1] * 6)
    assert other.load(1).program_id == "r1-p1"  # r1-p0 has its one annotator
    assert StorePage(store, token=page._token).annotator == "zoe"


@pytest.mark.usefixtures("one_torch_thread")
def test_the_loop_in_store_mode_runs_on_the_simulated_class(tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    from crlhf import tiny
    from crlhf.loop import LoopConfig, run_loop
    from crlhf.ppo import PPOConfig
    from crlhf.tasks import load_tasks

    tasks = load_tasks("minicode", split="train", n=4, seed=0)
    store = LabelStore(tmp_path / "loop.db")
    crowd = make_crowd([0.9, 0.8, 0.7, 0.6], seed=0)
    cfg = LoopConfig(rounds=2, prompts_per_round=2, n=2, max_new_tokens=32, labels_per_program=3,
                     gold_per_annotator=2, ppo=PPOConfig(ppo_epochs=1, learning_rate=1e-4), store_poll=0.05,
                     store_timeout=120)
    with SimulatedClass(store, crowd, tasks, labels_per_program=3, n_gold=2, seed=0, poll=0.05) as cls:
        run = run_loop(tiny.load(device="cpu"), tasks, cfg, store=store, progress=False)
    assert run.metrics["round"].tolist() == [1, 2] and cls.swept == [1, 2]
    assert cls.filling()[["programs", "complete", "min_annotators", "max_annotators", "students"]].values.tolist() \
        == [[4, 4, 3, 3, 4], [4, 4, 3, 3, 4]]
    assert sorted(run.crowd_model.annotators) == crowd.names  # every student was calibrated on gold
    assert not cls.running
    store.close()
