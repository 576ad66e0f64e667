"""The read-only views of the crowd model that the widgets use: posteriors of many programs
without updating (assess_log), scores at a threshold, accuracy against tau, the leaderboard."""

import numpy as np
import pandas as pd
import pytest

from crlhf.crowd import CrowdModel
from crlhf.crowd_views import annotator_summary, scores_at, threshold_curve, truth_frame
from crlhf.simulate import noisy_crowd, random_truths

PROG = "def f(xs):\n    total = 0\n\n    # add\n    for x in xs:\n        total += x\n    return total\n"


def _log():
    rows = [("p", 0, "a", 1), ("p", 1, "a", -1), ("p", 1, "b", 1), ("q", 0, "b", -1), ("p", 1, "a", 1),
            ("q", 2, "c", 1)]
    return pd.DataFrame(rows, columns=["program_id", "line", "annotator", "label"])


def test_assess_log_equals_assess_program_by_program_and_updates_nothing():
    crowd = noisy_crowd(8, seed=1)
    log = crowd.label_programs(random_truths(40, 6, seed=2), k=4)
    model = CrowdModel(lam=0.05)
    model.replay(log)
    before = model.reliabilities.copy()
    n_hist = len(model.history)
    lines = model.assess_log(log)
    assert model.reliabilities.equals(before) and len(model.history) == n_hist
    for pid, g in log.groupby("program_id", sort=False):
        res = model.assess(g[["line", "annotator", "label"]], n_lines=6)
        got = lines[lines.program_id == pid]
        assert got.posterior.to_numpy() == pytest.approx(res.posteriors)
        assert got.consensus.tolist() == res.consensus.tolist()
    assert list(lines.columns) == ["program_id", "line", "posterior", "consensus", "counted"]


def test_assess_log_latest_label_wins_and_program_texts_count_lines():
    m = CrowdModel(nu=0.8).add_annotators(["a", "b", "c"])
    lines = m.assess_log(_log(), programs={"p": PROG})
    p = lines[lines.program_id == "p"]
    assert len(p) == 7 and p.counted.tolist() == [True, True, False, False, True, True, True]
    # eq (7) at p_i = 0.8 (odds 4): one +1 -> 0.8; two +1 -> odds 16 -> 16/17; none -> 1/2
    assert p.posterior.tolist()[:3] == pytest.approx([0.8, 16 / 17, 0.5])  # a's line 1 is +1 now
    q = lines[lines.program_id == "q"]
    assert len(q) == 3 and q.counted.all() and q.posterior.tolist() == pytest.approx([0.2, 0.5, 0.8])
    with pytest.raises(ValueError, match="not registered"):
        CrowdModel().assess_log(_log())
    with pytest.raises(ValueError, match="out of range"):
        m.assess_log(_log(), programs={"q": "x = 1"})
    assert len(CrowdModel().assess_log(_log().iloc[:0])) == 0


def test_scores_at_matches_the_replay_scores():
    crowd = noisy_crowd(10, seed=3)
    log = crowd.label_programs(random_truths(30, 5, seed=4), k=5)
    for tau in (0.3, 0.5, 0.8):
        res = CrowdModel(tau=tau).replay(log)
        s = scores_at(res.lines, tau)
        assert s.program_id.tolist() == res.scores.program_id.tolist()
        assert s.score.to_numpy() == pytest.approx(res.scores.score.to_numpy())
        assert s.k.tolist() == res.scores.k.tolist()
    empty = pd.DataFrame({"program_id": ["e"], "line": [0], "posterior": [0.9], "counted": [False]})
    assert scores_at(empty, 0.5).score.tolist() == [0.0]
    with pytest.raises(ValueError, match="tau"):
        scores_at(empty, 1.5)
    with pytest.raises(ValueError, match="lack"):
        scores_at(empty.drop(columns="counted"))


def test_threshold_curve_by_hand():
    lines = pd.DataFrame({"program_id": ["p", "p", "p", "q", "q"], "line": [0, 1, 2, 0, 1],
                          "posterior": [0.9, 0.6, 0.2, 0.4, 0.7], "counted": [True, True, True, True, False]})
    truth = {"p": [1, -1, -1], "q": [1, 1]}
    c = threshold_curve(lines, truth, [0.5, 0.65]).set_index("tau")
    # tau 0.5: p -> +,+,- vs +,-,- (2/3 right); q line 0 -> - vs + (wrong): 2 of 4 counted lines
    assert c.loc[0.5, "line_accuracy"] == pytest.approx(2 / 4)
    assert c.loc[0.65, "line_accuracy"] == pytest.approx(3 / 4)
    # scores: p true 1/3, q true 1/1 (one counted line)
    assert c.loc[0.5, "score_mae"] == pytest.approx((abs(2 / 3 - 1 / 3) + abs(0 - 1)) / 2)
    assert c.loc[0.65, "mean_score"] == pytest.approx((1 / 3 + 0) / 2)
    assert (c.n_lines == 4).all() and (c.n_programs == 2).all()
    frame = truth_frame(pd.DataFrame({"program_id": ["p", "p", "p", "q", "q"], "line": [0, 1, 2, 0, 1],
                                      "label": [1, -1, -1, 1, 1]}))
    pd.testing.assert_frame_equal(threshold_curve(lines, frame, [0.5, 0.65]),
                                  threshold_curve(lines, truth, [0.5, 0.65]))
    assert len(threshold_curve(lines, truth)) == 51
    with pytest.raises(ValueError, match=r"\+1/-1"):
        truth_frame({"p": [1, 0]})
    with pytest.raises(TypeError):
        truth_frame([1, -1])


def test_annotator_summary_counts_and_gold_agreement():
    m = CrowdModel().add_annotators(["a", "b", "c", "d"])
    log = _log()
    board = annotator_summary(m, log, gold={"q": [-1, 1, -1]}).set_index("annotator")
    assert board.loc["a", "n_labels"] == 2 and board.loc["a", "n_programs"] == 1  # a's line 1 counted once
    assert board.loc["b", "n_labels"] == 2 and board.loc["b", "n_programs"] == 2
    assert board.loc["d", "n_labels"] == 0 and np.isnan(board.loc["d", "gold_accuracy"])
    assert board.loc["b", "gold_lines"] == 1 and board.loc["b", "gold_accuracy"] == 1.0
    assert board.loc["c", "gold_accuracy"] == 0.0
    with pytest.raises(ValueError, match="not registered"):
        annotator_summary(CrowdModel().add_annotators(["a"]), log)
