"""MBPP from the original-format JSONL: splits, both prompt styles, references pass, bad files."""

import json

import pytest

from crlhf.sandbox import check_many
from crlhf.tasks import TaskFormatError, load_tasks

SIZES = {"prompt": 10, "test": 500, "validation": 90, "train": 374}


@pytest.fixture(scope="module")
def everything(mbpp_path):
    return {style: load_tasks("mbpp", path=mbpp_path, split="all", prompt_style=style)
            for style in ("docstring", "3shot")}


@pytest.mark.parametrize("split", list(SIZES))
def test_split_sizes_follow_the_literature(mbpp_path, split):
    tasks = load_tasks("mbpp", path=mbpp_path, split=split)
    assert len(tasks) == SIZES[split]
    ids = [t.metadata["mbpp_task_id"] for t in tasks]
    lo = {"prompt": 1, "test": 11, "validation": 511, "train": 601}[split]
    assert ids == list(range(lo, lo + SIZES[split]))
    assert all(t.metadata["split"] == split for t in tasks)


def test_default_split_is_test_and_ids_are_unique(everything, mbpp_path):
    assert len(everything["docstring"]) == 974
    assert len({t.task_id for t in everything["docstring"]}) == 974
    assert [t.task_id for t in load_tasks("mbpp", path=mbpp_path)][:2] == ["mbpp/11", "mbpp/12"]


def test_docstring_style_is_humaneval_like(everything):
    task = next(t for t in everything["docstring"] if t.task_id == "mbpp/2")
    assert task.entry_point == "similar_elements" and task.prompt_in_program and task.test_style == "asserts"
    assert task.prompt.startswith("def similar_elements(test_tup1, test_tup2):\n")
    assert ">>> similar_elements((3, 4, 5, 6), (5, 7, 4, 10))\n  (4, 5)\n" in task.prompt
    assert task.prompt.endswith('"""\n') and "def " not in task.reference
    assert task.check_item(task.reference)[2] is None


def test_docstring_prompt_keeps_helpers_before_the_tested_function(everything):
    task = next(t for t in everything["docstring"] if t.task_id == "mbpp/1")
    assert task.prompt.startswith("R = 3\nC = 3\ndef min_cost(cost, m, n):\n")
    assert "\t" not in task.prompt + task.reference and "\r" not in task.prompt + task.reference


def test_3shot_style_follows_austin_et_al(everything):
    task = next(t for t in everything["3shot"] if t.task_id == "mbpp/11")
    assert task.prompt.count("[BEGIN]") == 4 and task.prompt.count("[DONE]") == 3
    assert task.prompt.startswith("You are an expert Python programmer, and here is your task: Write a function "
                                  "to find the similar elements")
    assert task.prompt.endswith("Your code should pass these tests:\n\n" + "\n".join(task.metadata["test_list"])
                                + "\n[BEGIN]\n")
    assert not task.prompt_in_program and task.stop == ("[DONE]",)
    assert task.program("x = 1\n") == "x = 1\n"
    assert task.truncate("def f():\n    pass\n[DONE]\nmore") == "def f():\n    pass\n"


def test_every_docstring_style_reference_passes(everything):
    tasks = everything["docstring"] + everything["3shot"][:10]
    results = check_many([t.check_item(t.reference) for t in tasks], timeout=15.0, progress=False)
    failed = [(t.task_id, t.metadata["split"], r.status) for t, r in zip(tasks, results, strict=True) if not r.passed]
    assert failed == []


def test_docstring_program_is_the_3shot_program_plus_a_docstring(everything):
    # so the 974 runs above also vouch for the 3-shot programs (the normalised code alone)
    for doc, shot in zip(everything["docstring"], everything["3shot"], strict=True):
        assert doc.task_id == shot.task_id
        program = doc.reference_program.splitlines()
        start = doc.prompt.index('"""')
        doc_lines = doc.prompt[start:].count("\n")
        first = doc.prompt[:start].count("\n")
        assert program[:first] + program[first + doc_lines:] == shot.reference_program.splitlines(), doc.task_id


def test_tests_run_setup_code_after_the_program(everything):
    task = next(t for t in everything["docstring"] if t.task_id == "mbpp/367")
    assert task.test.startswith("root = Node(1)")
    assert task.test.rstrip().endswith("assert is_tree_balanced(root2) == False")


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


GOOD = {"text": "Add.", "code": "def add(a, b):\r\n\treturn a + b", "task_id": 11, "test_setup_code": "",
        "test_list": ["assert add(1, 2) == 3"], "challenge_test_list": []}


@pytest.mark.parametrize("bad, message", [
    ({**GOOD, "task_id": 12, "code": None}, r"line 2: field 'code': expected str, got NoneType"),
    ({k: v for k, v in GOOD.items() if k != "test_list"} | {"task_id": 12}, r"line 2: field 'test_list': missing"),
    ({**GOOD, "task_id": 12, "test_list": ["assert 1", 2]}, r"line 2: field 'test_list\[1\]': expected str"),
    ({**GOOD, "task_id": "12"}, r"line 2: field 'task_id': expected int, got str"),
    ({**GOOD, "task_id": True}, r"line 2: field 'task_id': expected int, got bool"),
    ({**GOOD, "task_id": 12, "code": "def f(:"}, r"line 2: field 'code': not valid Python"),
    ({**GOOD, "task_id": 12, "test_list": ["assert g(1)"]}, r"line 2: field 'code': no top-level function"),
    (GOOD, r"line 2: field 'task_id': duplicate 11 \(first on line 1\)"),
    ('{"text": "unterminated', r"line 2: invalid JSON"),
])
def test_malformed_rows_name_file_line_and_field(tmp_path, bad, message):
    path = tmp_path / "mbpp_bad.jsonl"
    _write(path, [GOOD, bad])
    with pytest.raises(TaskFormatError, match=r"mbpp_bad\.jsonl, " + message):
        load_tasks("mbpp", path=path, split="all")


def test_small_file_loads_and_missing_shots_are_reported(tmp_path):
    path = tmp_path / "mbpp_small.jsonl"
    _write(path, [GOOD])
    (task,) = load_tasks("mbpp", path=path)
    docstring = '        """Add.\n        >>> add(1, 2)\n        3\n        """\n'
    assert task.reference_program == "def add(a, b):\n" + docstring + "        return a + b\n"
    with pytest.raises(ValueError, match=r"shots \[2, 3, 4\]"):
        load_tasks("mbpp", path=path, prompt_style="3shot")
    with pytest.raises(ValueError, match="split"):
        load_tasks("mbpp", path=path, split="dev")
