"""Replaying a label log into a crowd model: replay_log (the one replay path), its incremental
form for a growing log (the dashboard), and labels_frame."""

import numpy as np
import pandas as pd
import pytest

from crlhf.crowd import CrowdModel
from crlhf.replay import IncrementalReplay, labels_frame, replay_log


def frame(rows, program_id="p"):
    return pd.DataFrame(rows, columns=["line", "annotator", "label"]).assign(program_id=program_id)


def _growing_log(seed=0):
    rng = np.random.default_rng(seed)
    names = [f"w{i}" for i in range(5)]
    rows, order = [], 0
    for j in range(40):
        for name in rng.choice(names, size=3, replace=False):
            for line in range(4):
                rows.append((f"p{j}", line, name, int(rng.choice([1, -1])), order))
                order += 1
    log = pd.DataFrame(rows, columns=["program_id", "line", "annotator", "label", "order"])
    return names, log


@pytest.mark.parametrize("reliability", ["eq8", "beta", "two_coin"])
def test_incremental_replay_equals_a_full_replay(reliability):
    names, log = _growing_log()
    gold = {"p0": np.array([1, -1, 1, 1]), "p1": np.array([1, 1, -1, -1])}
    texts = {f"p{j}": "a = 1\nb = 2\n# c\nd = 4" for j in range(40)}
    inc = IncrementalReplay(every=4, reliability=reliability)
    n = len(log)
    relabel = log.iloc[[5, n - 30]].assign(label=lambda f: -f["label"], order=[n, n + 1])
    newcomer = pd.DataFrame({"program_id": ["p39", "p40"], "line": [0, 1], "annotator": ["x", "w0"],
                             "label": [1, -1], "order": [n + 2, n + 3]})
    chunks = [log.iloc[:0], log.iloc[:100], log.iloc[100:300], log.iloc[300:n - 12], log.iloc[n - 12:],
              relabel.iloc[1:], relabel.iloc[:1], newcomer]
    seen = []
    for chunk in chunks:
        seen.append(chunk)
        model, result = inc.update(chunk, annotators=names, gold=gold, programs=texts)
        full, expect = replay_log(pd.concat(seen, ignore_index=True), annotators=names, gold=gold,
                                  programs=texts, reliability=reliability)
        pd.testing.assert_frame_equal(result.lines, expect.lines)
        pd.testing.assert_frame_equal(result.scores, expect.scores)
        pd.testing.assert_frame_equal(model.history, full.history)
        assert model.annotators == full.annotators and model.line_prior == full.line_prior
        np.testing.assert_array_equal(model.log_likelihood_ratios, full.log_likelihood_ratios)
    assert inc.n_replayed == 41  # a new annotator: everything again
    inc.update(log.iloc[:0].assign(program_id=[]), annotators=names, gold=gold, programs=texts)
    assert inc.n_replayed <= 4  # nothing new: only from the last kept state


def test_incremental_replay_replays_only_the_recent_programs():
    names, log = _growing_log(1)
    inc = IncrementalReplay(every=8, reliability="two_coin")
    inc.update(log.iloc[:-6], annotators=names)
    inc.update(log.iloc[-6:], annotators=names)  # the last program's last labels
    assert 1 <= inc.n_replayed <= 8
    with pytest.raises(TypeError, match="new"):
        inc.update([1, 2])
    with pytest.raises(ValueError, match="label"):
        inc.update(log.iloc[:1].assign(label=3))
    with pytest.raises(ValueError, match="every"):
        IncrementalReplay(every=0)
    with pytest.raises(ValueError, match="reliability"):
        IncrementalReplay(reliability="three_coin")


def test_replay_log_registers_annotators_first_and_checks_its_model():
    log = frame([(0, "b", 1), (0, "c", -1)])
    model, result = replay_log(log, annotators=["z", "b"], gold={}, nu=0.6)
    assert model.annotators == ["z", "b", "c"] and model.nu == 0.6 and len(result.lines) == 1
    with pytest.raises(TypeError, match="not both"):
        replay_log(log, model=CrowdModel(), nu=0.6)
    with pytest.raises(TypeError, match="model"):
        replay_log(log, model="eq8")


def test_labels_frame_lists_the_labelled_cells_and_replays_as_the_matrix():
    lab = np.array([[1, 0, -1], [0, 0, 0], [-1, 1, 1]])
    f = labels_frame(lab, ["a", "b", "c"], "p")
    assert list(f.columns) == ["program_id", "line", "annotator", "label"]
    assert f[["line", "annotator", "label"]].values.tolist() == [[0, "a", 1], [0, "c", -1], [2, "a", -1],
                                                                 [2, "b", 1], [2, "c", 1]]
    _, result = replay_log(f, annotators=["a", "b", "c"], nu=0.8)
    expect = CrowdModel(nu=0.8).add_annotators(["a", "b", "c"]).ingest(
        {n: lab[:, j] for j, n in enumerate("abc")}, program_id="p")
    assert result.lines.posterior.to_numpy() == pytest.approx(expect.posteriors)
    with pytest.raises(ValueError, match=r"shape \(n_lines, 2\)"):
        labels_frame(lab, ["a", "b"])
