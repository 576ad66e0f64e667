"""Gold programs (failing mutants with known wrong lines) and the line-truth heuristic."""

import ast
import collections
import functools

import pytest

from crlhf.sandbox import check_many
from crlhf.tasks import Task, load_tasks, line_truth, make_gold, make_gold_many, mutants
from crlhf.tasks.gold import MUTATIONS
from crlhf.tasks.minicode import make_task
from crlhf.tasks.truth import normalise_line, strip_comment


@pytest.fixture(scope="module")
def minicode():
    return load_tasks("minicode", split="train", n=40, seed=1)


@pytest.fixture(scope="module")
def gold(minicode):
    return make_gold_many(minicode, n=3, seed=0, timeout=1.0)


@functools.lru_cache(maxsize=1)
def _count_task():
    """A 'count numbers greater than t' task: lines def, docstring, count = 0, for, if, count += 1, return."""
    return next(t for t in (make_task(0, "train", i) for i in range(5000))
                if t.metadata["kind"] == "count" and t.metadata["variant"] == "gt")


def test_mutants_edit_one_line_of_the_generated_part_only():
    task = _count_task()
    prompt_lines = task.prompt.count("\n")
    found = collections.Counter()
    for m in mutants(task):
        ast.parse(m.program)
        assert m.program.startswith(task.prompt) and m.task_id == task.task_id
        assert len(m.truth) == len(m.program.splitlines()) and m.truth.count(-1) == 1
        (wrong,) = m.wrong_lines
        assert wrong >= prompt_lines
        ref, new = task.reference_program.splitlines(), m.program.splitlines()
        if m.mutation != "dropped_line":
            assert len(new) == len(ref) and [i for i in range(len(ref)) if ref[i] != new[i]] == [wrong]
        else:
            assert len(new) == len(ref) - 1
        found[m.mutation] += 1
    assert set(found) == set(MUTATIONS)


def test_mutant_examples_on_a_known_program():
    task = _count_task()
    programs = {m.program for m in mutants(task)}
    t = task.metadata["param"]
    lines = task.reference_program.splitlines()
    flip = "\n".join(lines[:4] + [lines[4].replace(">", "<")] + lines[5:]) + "\n"
    boundary = "\n".join(lines[:4] + [lines[4].replace(">", ">=")] + lines[5:]) + "\n"
    constant = "\n".join(lines[:4] + [lines[4].replace(f"> {t}", f"> {t + 1}")] + lines[5:]) + "\n"
    dropped = "\n".join(lines[:2] + lines[3:]) + "\n"
    assert {flip, boundary, constant, dropped} <= programs


def test_mutants_are_deterministic_and_varied_first():
    task = _count_task()
    assert mutants(task, seed=5) == mutants(task, seed=5)
    first = [m.mutation for m in mutants(task, seed=5)[: len(MUTATIONS)]]
    assert sorted(first) == sorted(MUTATIONS)


def test_gold_programs_fail_their_tests(minicode, gold):
    flat = [(task, g) for task, gs in zip(minicode, gold, strict=True) for g in gs]
    assert sum(len(gs) == 3 for gs in gold) >= 38
    results = check_many([task.item_for_program(g.program) for task, g in flat], timeout=1.0, progress=False)
    assert not any(r.passed for r in results)
    assert {g.mutation for _, g in flat} == set(MUTATIONS)


def test_line_truth_finds_the_mutated_line(minicode, gold):
    for task, gs in zip(minicode, gold, strict=True):
        for g in gs:
            assert line_truth(g.program, task, passed=False) == list(g.truth), (g.mutation, g.program)


def test_line_truth_on_real_task_mutants_without_running():
    tasks = load_tasks("humaneval")[:40]
    for task in tasks:
        for m in mutants(task)[:12]:
            assert line_truth(m.program, task, passed=False) == list(m.truth), (task.task_id, m.mutation)


def test_line_truth_runs_the_sandbox_when_no_verdict_is_given():
    task = _count_task()
    program = task.reference_program
    assert line_truth(program, task) == [1] * len(program.splitlines())
    (g,) = make_gold(task, n=1, seed=2, timeout=1.0)
    assert line_truth(g.program, task) == list(g.truth)


def test_passing_program_is_all_correct_even_if_it_differs():
    task = _count_task()
    program = task.prompt + "    return len([x for x in {} if x > {}])\n".format(
        task.prompt.split("(")[1].split(")")[0], task.metadata["param"])
    assert line_truth(program, task, passed=True) == [1, 1, 1]
    assert line_truth(program, task, passed=False) == [1, 1, -1]


def test_known_correct_solutions_vouch_for_their_lines():
    task = _count_task()
    arg = task.prompt.split("(")[1].split(")")[0]
    t = task.metadata["param"]
    alt = task.prompt + f"    n = 0\n    for v in {arg}:\n        n += v > {t}\n    return n\n"
    wrong = task.prompt + f"    n = 0\n    for v in {arg}:\n        n += v >= {t}\n    return n\n"
    assert line_truth(wrong, task, passed=False) == [1, 1, -1, -1, -1, -1]
    assert line_truth(wrong, task, known_correct=[alt], passed=False) == [1, 1, 1, 1, -1, 1]


def test_spacing_quotes_and_comments_do_not_matter_but_depth_does():
    task = _count_task()
    lines = task.reference_program.splitlines()
    restyled = [line[: (len(line) - len(line.lstrip())) // 2] + line.lstrip() for line in lines]  # 2-space indents
    restyled[2] = restyled[2].replace(" = ", "=") + "  # start"
    restyled[4] = restyled[4].replace(">", "<")
    assert line_truth("\n".join(restyled) + "\n", task, passed=False) == [-1 if i == 4 else 1 for i in range(7)]
    moved = lines[:-1] + ["        " + lines[-1].strip()]
    assert line_truth("\n".join(moved) + "\n", task, passed=False) == [1] * 6 + [-1]
    assert normalise_line('  x=foo( "a" )  # note') == normalise_line("x = foo('a')")
    assert normalise_line("if x >= 3:") != normalise_line("if x > 3:")
    assert strip_comment("s = '#'  # c") == "s = '#'  "


def test_failing_program_with_nothing_to_blame_marks_generated_lines():
    task = _count_task()
    truth = line_truth(task.reference_program, task, passed=False)
    assert truth == [1, 1] + [-1] * 5
    padded = task.reference_program + "\n# done\n"
    assert line_truth(padded, task, passed=False) == [1, 1] + [-1] * 5 + [1, 1]


def _hand_task(reference, test="def check(candidate):\n    assert candidate(2) == 3\n"):
    return Task(task_id="hand/1", prompt="def f(x):\n", entry_point="f", test=test, reference=reference,
                source="unit")


def test_no_gold_for_a_task_whose_reference_fails():
    task = _hand_task("    return x + 2\n")
    assert mutants(task) and make_gold(task, n=3, timeout=1.0) == []


def test_f_strings_are_not_mutated_inside():
    task = _hand_task("    y = x + 1\n    return f'{x + 1}'\n")
    for m in mutants(task):
        assert "f'{x + 1}'" in m.program or m.mutation in ("wrong_return", "dropped_line"), m.program


def test_bad_n_is_refused():
    with pytest.raises(ValueError, match="n must be"):
        make_gold_many([], n=-1)
