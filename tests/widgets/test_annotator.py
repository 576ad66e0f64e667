"""LineAnnotator without a browser: state driven as the front end drives it (set_state, the
same keys through press), and the front-end files checked for what the browser relies on."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from widgets.annotator import KEYS, LineAnnotator

PROG = "def f(xs):\n    total = 0\n\n    # add them\n    for x in xs:\n        total += x\n    return total\n"
HERE = Path(__file__).resolve().parents[2] / "widgets"


def test_load_shows_lines_counted_and_cursor_on_the_first_line_to_label():
    w = LineAnnotator(PROG, "p0")
    assert w.lines == PROG.splitlines() and w.program_id == "p0"
    assert w.counted == [True, True, False, False, True, True, True]
    assert w.labels == [0] * 7 and w.cursor == 0 and not w.submitted and w.feedback == []
    assert w.n_counted == 5 and w.n_labelled == 0
    assert "crlhf-line-annotator" in w._dom_classes
    w2 = LineAnnotator("\n# only a comment\nx = 1\n")
    assert w2.cursor == 2 and w2.counted == [False, False, True]
    assert LineAnnotator(PROG, count_blank=True).counted == [True] * 7


def test_keys_move_label_undo_and_submit_like_the_front_end():
    w = LineAnnotator(PROG, "p0")
    w.press("c")  # line 0 correct, cursor advances
    assert w.labels[0] == 1 and w.cursor == 1
    w.press("w")  # line 1 wrong; the blank and comment lines are skipped
    assert w.labels[1] == -1 and w.cursor == 4
    w.press("k")
    assert w.cursor == 1
    w.press("j", "j")
    assert w.cursor == 5
    w.press("2", "1")  # numbers work too; at the last line the cursor stays
    assert w.labels == [1, -1, 0, 0, 0, -1, 1] and w.cursor == 6
    w.press("u")
    assert w.labels == [1, -1, 0, 0, 0, -1, 0] and w.cursor == 6
    w.press("u", "u", "u")
    assert w.labels == [0] * 7 and w.cursor == 0 and w.undo_stack == []
    w.press("u")
    assert w.message == "Nothing to undo."
    w.press("Enter")  # nothing labelled: refused
    assert not w.submitted and w.message_kind == "error"
    w.press("c", "ArrowDown", "ArrowUp", "Enter")
    assert w.submitted and w.labelled() == [(0, 1)]
    w.press("c", "u")  # locked after submit: nothing changes
    assert w.labels[0] == 1 and w.labels[1] == 0
    with pytest.raises(ValueError, match="unknown key"):
        w.press("x")
    with pytest.raises(ValueError, match="field 'label'"):
        w.label(0)


def test_require_all_and_disabled():
    w = LineAnnotator("a = 1\nb = 2\n", require_all=True)
    w.press("c", "Enter")
    assert not w.submitted and "1 left" in w.message
    w.press("c", "Enter")
    assert w.submitted
    w.clear("All done")
    assert w.disabled and w.lines == [] and w.message == "All done"
    w.press("c", "j", "Enter")
    assert not w.submitted and w.labels == []


def test_state_set_by_a_front_end_fires_the_observers_once_all_is_set():
    w = LineAnnotator(PROG, "p0")
    seen = []
    w.observe(lambda ch: seen.append((ch["new"], list(w.labels))), "submitted")
    # what annotator.js sends: the labels, the undo stack and the cursor, then the submit
    w.set_state({"labels": [1, -1, 0, 0, 1, 0, 0], "undo_stack": [[0, 0, 0], [1, 0, 1], [4, 0, 4]], "cursor": 5})
    w.set_state({"submitted": True, "message": "Saving..."})
    assert seen == [(True, [1, -1, 0, 0, 1, 0, 0])]
    assert w.get_state()["labels"] == [1, -1, 0, 0, 1, 0, 0]
    w.set_state({"feedback": [1, 1, 1, 1, 1, 1, -1]})  # after a gold submit
    w.set_state({"next_requested": True})
    assert w.next_requested


def test_state_never_holds_more_than_the_program():
    w = LineAnnotator(PROG, "p0", prompt="def f(xs):\n    '''sum'''\n")
    state = w.get_state()
    assert state["feedback"] == [] and "gold" not in json.dumps({k: v for k, v in state.items() if k != "_esm"})


def test_front_end_files_cover_the_keys_stop_propagation_and_accessible_names():
    js = (HERE / "annotator.js").read_text()
    css = (HERE / "annotator.css").read_text()
    assert "e.stopPropagation()" in js and "data-lm-suppress-shortcuts" in js
    for key in KEYS:
        assert f'"{key}"' in js, key
    assert js.count("aria-label") >= 5 and "aria-pressed" in js and 'role: "status"' in js
    assert "innerHTML" not in js  # program text goes in as text nodes only
    for cls in re.findall(r'crlhf-la-[a-z-]+', css):
        assert cls in js or cls.startswith("crlhf-la-msg"), cls


CODE = ["def f(x):  # doc", '    s = """a', 'b""" + "q\\"x" + 12.5e3', "    return None"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_highlighter_tokens_with_node():
    script = ("import { highlightLine } from " + json.dumps((HERE / "annotator.js").as_uri()) + ";\n"
              "const out = []; let state = '';\n"
              "for (const line of " + json.dumps(CODE) + ") {\n"
              "  const [tokens, next] = highlightLine(line, state); state = next; out.push(tokens);\n}\n"
              "console.log(JSON.stringify(out));\n")
    res = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = json.loads(res.stdout)
    assert ["kw", "def"] in lines[0] and ["def", "f"] in lines[0] and ["comment", "# doc"] in lines[0]
    assert ["str", '"""a'] in lines[1]
    assert ["str", 'b"""'] in lines[2] and ["str", '"q\\"x"'] in lines[2] and ["num", "12.5e3"] in lines[2]
    assert ["kw", "return"] in lines[3] and ["const", "None"] in lines[3]
    for tokens, text in zip(lines, CODE, strict=True):
        assert "".join(t[1] for t in tokens) == text
