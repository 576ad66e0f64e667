"""XLCoST text-to-code pairs from the fixtures the tests write: JSONL, original and Hub layouts."""

import json

import pytest

from crlhf.tasks import TaskFormatError, load_tasks
from crlhf.tasks.xlcost import detokenize

TOKENS = ("def maxPresum ( a , b ) : NEW_LINE INDENT X = max ( a [ 0 ] , 0 ) NEW_LINE "
          "for i in range ( 1 , len ( a ) ) : NEW_LINE INDENT X += a [ i ] NEW_LINE DEDENT return X NEW_LINE "
          "DEDENT print ( maxPresum ( [ 1 ] , [ 2 ] ) ) NEW_LINE")
SOURCE = ("def maxPresum ( a , b ) :\n    X = max ( a [ 0 ] , 0 )\n    for i in range ( 1 , len ( a ) ) :\n"
          "        X += a [ i ]\n    return X\nprint ( maxPresum ( [ 1 ] , [ 2 ] ) )\n")
TEXT = "Maximum Prefix Sum | Function to find the maximum prefix sum ; Driver code"


def test_detokenize_rebuilds_lines_and_indentation():
    assert detokenize(TOKENS) == SOURCE
    compile(SOURCE, "<xlcost>", "exec")
    assert detokenize("print ( \" a\u2581b \" ) NEW_LINE") == 'print ( " a b " )\n'


def test_jsonl_file_gives_tasks_without_tests(tmp_path):
    path = tmp_path / "train.json"
    rows = [{"text": TEXT, "code": TOKENS}, {"text": "b", "code": "x = 1"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tasks = load_tasks("xlcost", path=path)
    assert [t.task_id for t in tasks] == ["xlcost/train/0", "xlcost/train/1"]
    assert tasks[0].prompt == f"# {TEXT}\n" and tasks[0].reference == SOURCE
    assert tasks[0].test_style == "none" and tasks[0].entry_point is None
    assert tasks[0].metadata["line"] == 1 and tasks[1].metadata["line"] == 2
    assert load_tasks("xlcost", path=path, detokenize_code=False)[0].reference == TOKENS + "\n"
    assert len(load_tasks("xlcost", path=path, limit=1)) == 1
    with pytest.raises(ValueError, match="no tests"):
        tasks[0].check_item("x = 1\n")


def test_original_release_layout(tmp_path):
    folder = tmp_path / "XLCoST_data" / "generation" / "pair_data_tok_full_desc_comment" / "Python-desc"
    folder.mkdir(parents=True)
    (folder / "val-Python-desc-tok.txt").write_text(TEXT + "\nsecond problem\n")
    (folder / "val-Python-desc-tok.py").write_text(TOKENS + "\nx = 1 NEW_LINE\n")
    tasks = load_tasks("xlcost", path=tmp_path, split="validation")
    assert [t.reference for t in tasks] == [SOURCE, "x = 1\n"]
    assert tasks[1].metadata["text"] == "second problem" and tasks[1].metadata["split"] == "validation"
    with pytest.raises(FileNotFoundError, match="no XLCoST 'train' program-level Python data"):
        load_tasks("xlcost", path=tmp_path, split="train")


def test_hub_file_layout(tmp_path):
    folder = tmp_path / "data" / "Python-snippet-level"
    folder.mkdir(parents=True)
    (folder / "test.json").write_text(json.dumps({"text": "Driver code", "code": "print ( 1 ) NEW_LINE"}) + "\n")
    (task,) = load_tasks("xlcost", path=tmp_path, split="test", level="snippet")
    assert task.reference == "print ( 1 )\n" and task.metadata["level"] == "snippet"


def test_parallel_files_of_different_length_name_the_short_file(tmp_path):
    (tmp_path / "train-Python-desc-tok.txt").write_text("a\nb\nc\n")
    (tmp_path / "train-Python-desc-tok.py").write_text("x = 1 NEW_LINE\ny = 2 NEW_LINE\n")
    with pytest.raises(TaskFormatError, match=r"train-Python-desc-tok\.py, line 3: field 'code': missing"):
        load_tasks("xlcost", path=tmp_path)


@pytest.mark.parametrize("row, message", [
    ({"text": "t"}, r"line 2: field 'code': missing"),
    ({"text": 5, "code": "x"}, r"line 2: field 'text': expected str, got int"),
    ({"text": "t", "code": "   "}, r"line 2: field 'code': empty"),
    ("[1, 2]", r"line 2: expected a JSON object, got list"),
    ("{oops", r"line 2: invalid JSON"),
])
def test_malformed_jsonl_names_file_line_and_field(tmp_path, row, message):
    path = tmp_path / "xl.jsonl"
    bad = row if isinstance(row, str) else json.dumps(row)
    path.write_text(json.dumps({"text": "a", "code": "x = 1"}) + "\n" + bad)
    with pytest.raises(TaskFormatError, match=r"xl\.jsonl, " + message):
        load_tasks("xlcost", path=path)


def test_bad_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_tasks("xlcost", path=tmp_path, split="dev")
    with pytest.raises(ValueError, match="level"):
        load_tasks("xlcost", path=tmp_path, level="function")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tasks("xlcost", path=tmp_path / "nope.jsonl")
