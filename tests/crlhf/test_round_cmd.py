"""``crlhf round``: tasks, gold and a round of sampled programs into a label store, end to end on the
tiny coder; a second round; the errors; ``--help``."""

import re

import pytest

import crlhf.sandbox
from crlhf import round_cmd
from crlhf.cli import main
from crlhf.policy import Policy
from crlhf.store import LabelStore
from crlhf.tasks import load_tasks, make_gold_many, mutants

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def sampled(monkeypatch):
    """Every ``Policy.sample`` call as ``{"prompts", "n", "seed", "texts"}`` (the raw completions)."""
    seen = []
    original = Policy.sample

    def recording(self, prompts, n=1, *args, **kwargs):
        out = original(self, prompts, n, *args, **kwargs)
        seen.append({"prompts": list(prompts), "n": n, "seed": kwargs.get("seed"),
                     "texts": [[c.text for c in row] for row in out]})
        return out

    monkeypatch.setattr(Policy, "sample", recording)
    return seen


@pytest.fixture
def checked(monkeypatch):
    """Every program text that reaches the sandbox through ``crlhf.sandbox.check_many``."""
    seen = []
    original = crlhf.sandbox.check_many

    def recording(items, *args, **kwargs):
        items = list(items)
        seen.extend(item[0] for item in items)
        return original(items, *args, **kwargs)

    monkeypatch.setattr(crlhf.sandbox, "check_many", recording)
    return seen


def run(db, limit, *extra):
    return main(["round", "--db", str(db), "--model", "tiny", "--tasks", "minicode", "--limit", str(limit),
                 "--programs-per-task", "2", "--gold", "2", "--quiet", *extra])


def expected_programs(tasks, calls, round_id):
    """``program_id -> text`` from the recorded sampling calls, built as the loop builds programs."""
    by_prompt = {t.prompt: t for t in tasks}
    assert len(by_prompt) == len(tasks)  # the minicode test tasks used here have distinct prompts
    out = {}
    for call in calls:
        for prompt, texts in zip(call["prompts"], call["texts"], strict=True):
            task = by_prompt[prompt]
            for j, text in enumerate(texts):
                out[f"r{round_id}-{task.task_id}-s{j}"] = task.program(task.truncate(text))
    return out


def test_round_writes_tasks_gold_and_exactly_the_sampled_programs(tmp_path, sampled, checked, capsys):
    db = tmp_path / "class.db"
    assert run(db, 2) == 0
    tasks = load_tasks("minicode", split="test", n=2, seed=0)
    printed = capsys.readouterr().out
    assert "round 1: 4 programs" in printed and f"crlhf classroom --db {db}" in printed
    assert "r1-minicode/0/test/0-s1" in printed

    with LabelStore(str(db)) as store:
        assert list(store.tasks()["task_id"]) == [t.task_id for t in tasks]
        rounds = store.rounds()
        assert list(rounds["round_id"]) == [1] and list(rounds["n_programs"]) == [4]
        progs = store.programs(round_id=1, text=True)
        assert not progs["gold"].any()
        assert dict(zip(progs["program_id"], progs["program"], strict=True)) == expected_programs(tasks, sampled, 1)
        assert sum(c["n"] * len(c["prompts"]) for c in sampled) == 4
        assert (progs.groupby("task_id").size() == 2).all()

        gold = store.programs(gold=True, text=True)
        assert gold["round_id"].isna().all()
        want = make_gold_many(tasks, n=2, seed=0)
        assert all(len(g) == 2 for g in want)
        assert dict(zip(gold["program_id"], gold["program"], strict=True)) == {
            f"gold-{t.task_id}-{i}": g.program for t, gs in zip(tasks, want, strict=True) for i, g in enumerate(gs)}
        for t, gs in zip(tasks, want, strict=True):
            for i, g in enumerate(gs):
                assert list(store.gold_truth(f"gold-{t.task_id}-{i}")) == list(g.truth)
    # only trusted code ran (references and their mutants, the gold among them), never a sampled program
    trusted = {t.reference_program for t in tasks} | {m.program for t in tasks for m in mutants(t, seed=0)}
    assert checked and set(checked) <= trusted
    assert set(gold["program"]) <= set(checked)


def test_second_round_adds_programs_without_duplicating_tasks_or_gold(tmp_path, sampled, checked, capsys):
    db = tmp_path / "class.db"
    assert run(db, 2) == 0
    with LabelStore(str(db)) as store:
        first = store.programs(text=True)
    seeds_first = {c["seed"] for c in sampled}
    sampled.clear()
    checked.clear()

    assert run(db, 3) == 0  # one task more: only it gets gold
    assert "round 2: 6 programs" in capsys.readouterr().out
    tasks = load_tasks("minicode", split="test", n=3, seed=0)
    new = tasks[2]  # gold is made (and run in the sandbox) for the new task only
    assert checked and set(checked) <= {new.reference_program} | {m.program for m in mutants(new, seed=0)}
    with LabelStore(str(db)) as store:
        assert list(store.tasks()["task_id"]) == [t.task_id for t in tasks]
        assert list(store.rounds()["round_id"]) == [1, 2]
        assert list(store.rounds()["n_programs"]) == [4, 6]
        again = store.programs(text=True)
        gold = store.programs(gold=True)
        second = store.programs(round_id=2, text=True)
    old = again[again["program_id"].isin(first["program_id"])]
    cols = ["program_id", "program", "round_id"]
    assert old[cols].reset_index(drop=True).equals(first[cols].reset_index(drop=True))
    assert gold.groupby("task_id").size().to_dict() == {t.task_id: 2 for t in tasks}
    assert set(gold["program_id"]) - set(first["program_id"]) == {f"gold-{tasks[2].task_id}-0",
                                                                  f"gold-{tasks[2].task_id}-1"}
    assert dict(zip(second["program_id"], second["program"], strict=True)) == expected_programs(tasks, sampled, 2)
    assert not {c["seed"] for c in sampled} & seeds_first  # a new round draws with new seeds


def test_gold_zero_adds_no_gold_and_runs_nothing(tmp_path, checked):
    db = tmp_path / "class.db"
    assert main(["round", "--db", str(db), "--model", "tiny", "--tasks", "minicode", "--limit", "2",
                 "--programs-per-task", "1",
                 "--gold", "0", "--quiet"]) == 0
    with LabelStore(str(db)) as store:
        assert len(store.programs(gold=True)) == 0
        assert len(store.programs(round_id=1)) == 2
    assert checked == []


@pytest.mark.parametrize("extra, option", [
    (["--tasks", "minicode,leetcode"], "--tasks"),
    (["--programs-per-task", "0"], "--programs-per-task"),
    (["--gold", "-1"], "--gold"),
    (["--limit", "0"], "--limit"),
    (["--temperature", "-0.5"], "--temperature"),
    (["--tasks", "mbpp", "--mbpp", "no/such/mbpp.jsonl"], "--mbpp"),
    (["--model", "no_such_dir/checkpoints/round-001"], "--model"),
    (["--max-new-tokens", "100000"], "--max-new-tokens"),
])
def test_bad_options_exit_2_naming_the_option_and_write_nothing(tmp_path, capsys, extra, option):
    db = tmp_path / "class.db"
    argv = ["round", "--db", str(db), "--model", "tiny", "--tasks", "minicode", "--limit", "2", "--quiet"]
    with pytest.raises(SystemExit) as exc:
        main(argv + extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.search(rf"error: .*{re.escape(option)}\b", err), err
    assert not db.exists()


def test_a_model_folder_without_a_checkpoint_is_an_error(tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["round", "--db", str(tmp_path / "c.db"), "--model", str(tmp_path / "empty_run"), "--tasks",
              "minicode", "--limit", "1"])
    assert exc.value.code == 2
    assert "--model" in capsys.readouterr().err


def test_a_bad_db_is_an_error_naming_db(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["round", "--db", str(tmp_path / "no" / "such" / "folder" / "c.db"), "--model", "tiny", "--tasks",
              "minicode", "--limit", "1", "--gold", "0", "--quiet"])
    assert exc.value.code == 2
    assert "--db" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["--model", "--tasks", "--db"])
def test_model_tasks_and_db_are_required(tmp_path, capsys, missing):
    given = {"--db": str(tmp_path / "c.db"), "--model": "tiny", "--tasks": "minicode"}
    del given[missing]
    with pytest.raises(SystemExit) as exc:
        main(["round", *[x for kv in given.items() for x in kv]])
    assert exc.value.code == 2
    assert missing in capsys.readouterr().err
    assert not (tmp_path / "c.db").exists()


def test_tasks_stored_with_another_prompt_are_refused_before_sampling(tmp_path, sampled, capsys):
    db = tmp_path / "class.db"
    with LabelStore(str(db)) as store:
        store.add_task("minicode/0/test/1", "def other():\n")
    with pytest.raises(SystemExit) as exc:
        run(db, 2)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--tasks" in err and "minicode/0/test/1" in err
    assert sampled == []
    with LabelStore(str(db)) as store:
        assert len(store.rounds()) == 0 and len(store.programs()) == 0


def test_gold_without_a_sandbox_is_an_error_naming_gold(tmp_path, monkeypatch, sampled, capsys):
    import crlhf.tasks

    def unavailable(*args, **kwargs):
        raise crlhf.sandbox.SandboxUnavailable("no Landlock here (test)")

    monkeypatch.setattr(crlhf.tasks, "make_gold_many", unavailable)
    with pytest.raises(SystemExit) as exc:
        run(tmp_path / "class.db", 1)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--gold 2" in err and "--gold 0" in err and "no Landlock here" in err
    assert sampled == []


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["round", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    options = [s for a in round_cmd.build_parser()._actions for s in a.option_strings if s.startswith("--")]
    assert {"--db", "--model", "--tasks", "--programs-per-task", "--gold", "--limit", "--temperature",
            "--max-new-tokens", "--seed", "--mbpp"} <= set(options)
    for option in options:
        assert option in text, option
    assert "crlhf classroom" in text
