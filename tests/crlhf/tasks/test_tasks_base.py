"""The Task record, its conventions, and load_tasks dispatch."""

import dataclasses

import pytest

from crlhf.tasks import Task, TaskFormatError, load_tasks
from crlhf.tasks.base import normalise_code


def _task(**changes):
    fields = dict(task_id="t/1", prompt="def f(x):\n", entry_point="f", test="def check(candidate):\n    pass\n",
                  reference="    return x\n", source="unit", stop=["\ndef"])
    fields.update(changes)
    return Task(**fields)


def test_check_item_docstring_style_prepends_prompt():
    task = _task()
    assert task.check_item("    return 1\n") == ("def f(x):\n    return 1\n", task.test, "f")
    assert task.reference_program == "def f(x):\n    return x\n"


def test_check_item_asserts_style_has_no_entry_point_and_fewshot_drops_prompt():
    task = _task(prompt="[BEGIN]\n", prompt_in_program=False, test_style="asserts", test="assert f(1) == 1\n")
    assert task.check_item("def f(x):\n    return x\n") == ("def f(x):\n    return x\n", "assert f(1) == 1\n", None)


def test_tasks_without_tests_refuse_check_item():
    task = _task(entry_point=None, test="", test_style="none")
    with pytest.raises(ValueError, match="no tests"):
        task.check_item("x = 1\n")


def test_truncate_cuts_at_the_first_stop_sequence():
    task = _task(stop=("\ndef", "\nprint"))
    assert task.truncate("    return x\nprint(1)\ndef g(): pass") == "    return x"
    assert task.truncate("    return x\n") == "    return x\n"


def test_task_is_frozen_hashable_and_validated():
    task = _task()
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.prompt = "x"
    assert hash(task) == hash(_task(metadata={"other": 1}))
    assert task.stop == ("\ndef",)
    with pytest.raises(ValueError, match="test_style"):
        _task(test_style="doctest")
    with pytest.raises(ValueError, match="entry_point"):
        _task(entry_point=None)
    with pytest.raises(TypeError, match="Task.prompt"):
        _task(prompt=None)


def test_load_tasks_rejects_unknown_family():
    with pytest.raises(ValueError, match="known: humaneval, mbpp, xlcost, minicode"):
        load_tasks("apps")


def test_format_error_names_file_line_and_field():
    err = TaskFormatError("data.jsonl", 7, "code", "expected str, got int")
    assert str(err) == "data.jsonl, line 7: field 'code': expected str, got int"
    assert (err.path, err.line, err.field) == ("data.jsonl", 7, "code")
    assert isinstance(err, ValueError)


def test_normalise_code_expands_leading_tabs_and_crlf_only():
    code = "def f(x):\r\n\tif x:\r\n\t\treturn '\t'  \r\n\treturn 0"
    assert normalise_code(code) == "def f(x):\n        if x:\n                return '\t'\n        return 0\n"
