"""Tests of crlhf.reward: the shapes against hand computations, the scored lines (the prompt's
lines never count; an empty completion scores 0 everywhere, the store's export included), the
loop's reward and the exported dataset agreeing on the same labels, tokens mapped to lines
(multi-byte characters, tokens that span a newline), and line-level credit."""

import json

import numpy as np
import pandas as pd
import pytest

from crlhf import reward as R
from crlhf.crowd import CrowdModel
from crlhf.crowd_views import scores_at
from crlhf.reward_inputs import check_programs, crowd_scores
from crlhf.simulate import paper_crowd
from crlhf.store import LabelStore
from crlhf.tasks import load_tasks


@pytest.fixture(scope="module")
def tasks():
    return load_tasks("minicode", split="train", n=4, seed=0)


# ----------------------------------------------------------------------------- shapes
def test_shapes_equal_a_hand_computation():
    q = np.array([0.9, 0.2, 0.7, 0.99, 0.6])
    scored = np.array([True, False, True, True, True])  # line 1 (0.2) is not scored
    # share: 4 scored lines, 4 above 0.5 -> 1; at tau 0.65: 0.9, 0.7, 0.99 -> 3/4
    assert R.score(q, scored, "share") == 1.0
    assert R.score(q, scored, "share", tau=0.65) == pytest.approx(0.75)
    assert R.score(q, scored, "all_correct") == 1.0
    assert R.score(q, scored, "all_correct", tau=0.65) == 0.0
    assert R.score(q, scored, "product") == pytest.approx(0.9 * 0.7 * 0.99 * 0.6)
    assert R.score(q, scored, "product", tau=0.99) == pytest.approx(0.9 * 0.7 * 0.99 * 0.6)  # no threshold
    none = np.zeros(5, dtype=bool)
    for shape in R.SHAPES:
        assert R.score(q, none, shape) == 0.0  # k = 0 pays nothing
        assert R.score([0.0, 1.0], [True, True], shape) == (0.5 if shape == "share" else 0.0)  # one line wrong
        assert R.score([1.0, 1.0], [True, True], shape) == 1.0
    assert R.score([1e-300] * 400, [True] * 400, "product") == 0.0  # underflow is 0, not NaN
    assert np.isfinite(R.score([np.nan, 0.5], [True, True], "product"))
    with pytest.raises(ValueError, match=r"shape must be one of \('share', 'all_correct', 'product'\)"):
        R.score(q, scored, "mean")
    with pytest.raises(ValueError, match="tau"):
        R.score(q, scored, "share", tau=1.5)
    with pytest.raises(ValueError, match="field 'scored'"):
        R.score(q, scored[:2])


def test_vectorised_scores_equal_the_one_program_scores():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 7, size=40)
    codes = np.repeat(np.arange(40), lengths)
    q = rng.random(len(codes))
    scored = rng.random(len(codes)) < 0.8
    # R.score is shape_scores on one program: the reference is each shape's definition in plain numpy,
    # one program at a time (k = 0 pays 0)
    define = {"share": lambda x: float(np.mean(x > 0.4)), "all_correct": lambda x: float(np.all(x > 0.4)),
              "product": lambda x: float(np.prod(x))}
    assert (np.bincount(codes, minlength=40) == 0).any()  # some programs have no lines at all
    for shape in R.SHAPES:
        got = R.shape_scores(q, scored, codes, 40, shape, 0.4)
        want = [define[shape](q[(codes == j) & scored]) if ((codes == j) & scored).any() else 0.0 for j in range(40)]
        assert got == pytest.approx(want)


def test_product_is_p_all_lines_correct_on_program_result():
    model = CrowdModel(reliability="eq8")
    model.add_annotators(["a", "b"])
    res = model.ingest({"a": [1, -1, 1], "b": [1, 1, 0]}, program="x = 1\ny = 2\n# c\n")
    assert res.counted.tolist() == [True, True, False]
    assert res.product == pytest.approx(res.posteriors[0] * res.posteriors[1])
    assert res.score_as("all_correct") == float((res.posteriors[:2] > 0.5).all())
    assert res.score_as("share") == res.score


# ----------------------------------------------------------------------------- scored lines
def test_scored_lines_skip_the_prompt_and_an_empty_completion_scores_zero(tasks):
    t = tasks[0]
    g = t.prompt.count("\n")
    full = t.program(t.reference)
    assert R.given_lines(full, t.prompt) == g == t.given_lines(full)
    assert not R.scored_lines(full, t)[:g].any()
    assert (R.scored_lines(full, t) == R.scored_lines(full, prompt=t.prompt)).all()
    empty = t.program("")
    assert not R.scored_lines(empty, t).any()
    lines = pd.DataFrame({"program_id": ["e"] * len(empty.splitlines()), "line": np.arange(len(empty.splitlines())),
                          "posterior": 0.99, "counted": True})
    for shape in R.SHAPES:
        assert scores_at(lines, 0.5, shape, prompts={"e": t.prompt}, programs={"e": empty}).score.tolist() == [0.0]
    assert scores_at(lines, 0.5).score.tolist() == [1.0]  # without the prompt every counted line is scored


def test_the_loops_reward_and_the_exported_dataset_agree(tasks, tmp_path):
    """The same labels, ingested in the same order: the loop's score of each program equals the
    store's dataset (and JSONL export) score, under each shape; an empty completion scores 0."""
    t = tasks[1]
    completions = [t.reference, "", "    return None\n", t.reference.replace("return", "return -1 +", 1)]
    checked = dict(zip([f"p{j}" for j in range(4)], check_programs([t] * 4, completions), strict=True))
    crowd = paper_crowd(6, seed=1)
    labels = crowd.label_programs({p: c.truth for p, c in checked.items()}, k=4, rng=np.random.default_rng(2))
    labels = labels.drop_duplicates(["program_id", "line", "annotator"], keep="last")
    store = LabelStore(str(tmp_path / "labels.db"))
    try:
        tokens = store.register_annotators([str(a) for a in crowd.names])
        store.add_tasks([t])
        store.add_programs([{"program": c.program, "program_id": p, "task_id": t.task_id} for p, c in checked.items()])
        for p in checked:  # program by program: the store replays in the order of first labels
            rows = labels[labels.program_id == p]
            for a, g in rows.groupby("annotator", sort=False):
                store.add_labels(tokens[str(a)], list(zip(g.program_id, g.line.astype(int), g.label.astype(int),
                                                          strict=True)))
        for shape in R.SHAPES:
            model = CrowdModel()
            model.add_annotators(store.annotators()["annotator"].tolist())
            frame = labels.assign(annotator=labels.annotator.astype(str))
            loop_s, _ = crowd_scores(model, frame, checked, shape=shape)
            data = store.dataset(shape=shape).set_index("program_id")
            assert data.loc[list(checked), "score"].to_numpy() == pytest.approx([loop_s[p] for p in checked])
            assert data.loc["p1", "score"] == 0.0 and data.loc["p1", "k"] == 0  # the empty completion
        path = store.export_dataset(tmp_path / "s.jsonl")
        exported = {r["program_id"]: r["score"] for r in map(json.loads, path.read_text().splitlines())}
        model = CrowdModel()
        model.add_annotators(store.annotators()["annotator"].tolist())
        loop_s, _ = crowd_scores(model, labels.assign(annotator=labels.annotator.astype(str)), checked)
        assert exported == pytest.approx(loop_s)
        assert exported["p1"] == 0.0 and loop_s["p0"] > 0
    finally:
        store.close()


# ----------------------------------------------------------------------------- sources
def test_every_source_feeds_every_shape(tasks):
    t = tasks[1]
    checked = dict(zip(["good", "empty"], check_programs([t, t], [t.reference, ""]), strict=True))
    crowd = paper_crowd(6, seed=1)
    labels = crowd.label_programs({p: c.truth for p, c in checked.items() if len(c.truth)}, k=6,
                                  rng=np.random.default_rng(0))
    model = CrowdModel()
    model.add_annotators(crowd.names)
    post = {p: model.assess(labels[labels.program_id == p], program=c.program).posteriors for p, c in checked.items()}
    inputs = R.RewardInputs(checked, labels, post, log=labels, seed=3)
    for source in R.SOURCES:
        for shape in R.SHAPES:
            out = R.rewards(source, inputs, shape)
            assert out.scores["empty"] == 0.0, (source, shape)
            assert 0.0 <= out.scores["good"] <= 1.0
    assert R.rewards("oracle", inputs, "all_correct").scores["good"] == 1.0
    assert R.rewards("tests", inputs, "product").scores == {"good": 1.0, "empty": 0.0}
    mv = R.rewards("majority", inputs, "product")
    scored = checked["good"].scored
    share = labels[labels.program_id == "good"].groupby("line").label.apply(lambda x: (x == 1).mean())
    assert mv.scores["good"] == pytest.approx(np.prod([share.get(i, 0.0) for i in np.flatnonzero(scored)]))
    with pytest.raises(ValueError, match="reward source must be one of"):
        R.rewards("reward_model", inputs)
    with pytest.raises(ValueError, match="RewardInputs.posteriors"):
        R.rewards("bayes", R.RewardInputs(checked, labels))


# ----------------------------------------------------------------------------- tokens to lines
class ByteTokenizer:
    """A byte-level tokenizer with a fixed vocabulary of byte strings: decoding a prefix of ids
    gives what a real byte-level BPE gives (U+FFFD for an incomplete UTF-8 tail)."""

    def __init__(self, pieces):
        self.pieces = [p.encode() if isinstance(p, str) else p for p in pieces]

    def batch_decode(self, seqs, skip_special_tokens=True, clean_up_tokenization_spaces=False):
        return [b"".join(self.pieces[i] for i in s).decode("utf-8", errors="replace") for s in seqs]


def test_tokens_map_to_lines_with_multibyte_characters_and_shared_tokens():
    arrow = "→".encode()  # three bytes, split over two tokens
    tok = ByteTokenizer(["x = 1", ")\n", "\n    ", "y", arrow[:2], arrow[2:], "\n", "z", b"", "é\nw"])
    # response "x = 1)\n" + "\n    y→\nz" + "é\nw":
    ids = [0, 1, 2, 3, 4, 5, 6, 7, 9, 8]
    # line 0: "x = 1)"   line 1: ""   line 2: "    y→"   line 3: "zé"   line 4: "w"
    got = R.token_lines(tok, ids, first_line=10)
    # ")\n" ends line 0; "\n    " ends line 1 and indents line 2 -> line of its last char (2);
    # the arrow's first two bytes complete no character -> the line of the token completing it;
    # "é\nw" ends on line 4; the empty token after the last character -> -1
    assert got.tolist() == [10, 10, 12, 12, 12, 12, 12, 13, 14, -1]
    text = tok.batch_decode([ids])[0]
    assert text.splitlines()[2] == "    y→"


def test_tokens_map_to_lines_with_the_tiny_tokenizer():
    from transformers import AutoTokenizer

    from crlhf import tiny

    tok = AutoTokenizer.from_pretrained(str(tiny.MODEL_DIR))
    text = "    s = 'é→'\n    return s  # ok\n\n    x = 1\n"
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    lines = R.token_lines(tok, ids, first_line=3)
    assert lines[-1] == -1  # EOS: no character
    # each line's tokens decode to that line (with its newline), in order
    for i, line in enumerate(text.splitlines(keepends=True)):
        mine = [tid for tid, ln in zip(ids, lines, strict=True) if ln == 3 + i]
        assert tok.decode(mine) == line, (i, line)


# ----------------------------------------------------------------------------- credit
def test_line_end_and_blame_credit():
    class T:
        def given_lines(self, program):
            return 1

    prog = "def f():\n    a = 1\n    b = 2\n    return a\n"
    scored = R.scored_lines(prog, T())
    checked = {"p": R.CheckedProgram(T(), prog, False, [1, 1, -1, 1], scored)}
    q = {"p": np.array([0.9, 0.8, 0.3, 0.6])}
    tok_lines = {"p": np.array([1, 1, 1, 2, 2, 3, 3, -1])}
    for shape in R.SHAPES:
        s = R.score(q["p"], scored, shape)
        rw = R.Rewards({"p": s}, q, shape, 0.5)
        term, dense, weights = R.credit("line_end", rw, checked, tok_lines)
        # lines 1 and 3 are judged correct: 1/3 at their last tokens (indices 2 and 6)
        assert dense["p"].tolist() == pytest.approx([0, 0, 1 / 3, 0, 0, 0, 1 / 3, 0])
        assert term["p"] + dense["p"].sum() == pytest.approx(s) and not weights
        term, dense, weights = R.credit("blame", rw, checked, tok_lines)
        assert weights["p"].tolist() == [0, 0, 0, 1, 1, 0, 0, 0] and term["p"] == s and not dense
        term, dense, weights = R.credit("sequence", rw, checked, tok_lines)
        assert term == {"p": s} and not dense and not weights
    clean = R.Rewards({"p": 0.5}, {"p": np.ones(4)}, "product", 0.5)
    assert R.credit("blame", clean, checked, tok_lines)[2]["p"].tolist() == [1.0] * 8  # nothing to blame
    with pytest.raises(ValueError, match="credit must be one of"):
        R.credit("token", clean, checked, tok_lines)
