"""Behaviour of the baseline aggregators (crlhf.aggregators)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlhf.aggregators import (
    RESULT_COLUMNS,
    dawid_skene,
    majority_vote,
    oracle,
    read_crowd_tsv,
    single_annotator,
)

CROWD_DATA = Path(__file__).resolve().parents[2] / "../shared/data/crowd"


def frame(rows):
    return pd.DataFrame(rows, columns=["program_id", "line", "annotator", "label"])


def synthetic_crowd(sens, spec, n_items=3000, per_item=7, prior=0.5, seed=0):
    """Items with one line each; ``per_item`` distinct annotators per item, annotator ``a``
    answering with sensitivity ``sens[a]`` and specificity ``spec[a]``."""
    rng = np.random.default_rng(seed)
    sens, spec = np.asarray(sens, float), np.asarray(spec, float)
    n_ann = len(sens)
    truth = np.where(rng.random(n_items) < prior, 1, -1)
    ann = np.argsort(rng.random((n_items, n_ann)), axis=1)[:, :per_item].ravel()
    item = np.repeat(np.arange(n_items), per_item)
    right = rng.random(len(ann)) < np.where(truth[item] == 1, sens[ann], spec[ann])
    label = np.where(right, truth[item], -truth[item])
    labels = pd.DataFrame({"program_id": item, "line": 0, "annotator": ann, "label": label})
    gold = pd.DataFrame({"program_id": np.arange(n_items), "line": 0, "label": truth})
    return labels, gold


def empirical(labels, gold):
    """Per-annotator sensitivity, specificity and accuracy of the labels actually given."""
    m = labels.merge(gold, on=["program_id", "line"], suffixes=("", "_true"))
    pos, right = m["label_true"] == 1, m["label"] == m["label_true"]
    by = m.assign(pos=pos, right=right, tp=right & pos, tn=right & ~pos).groupby("annotator")
    s = by[["pos", "right", "tp", "tn"]].sum()
    n = by.size()
    return pd.DataFrame({"sensitivity": s["tp"] / s["pos"], "specificity": s["tn"] / (n - s["pos"]),
                         "accuracy": s["right"] / n})


def accuracy(result, gold):
    merged = result.merge(gold, on=["program_id", "line"], suffixes=("", "_true"))
    assert len(merged) == len(gold)
    return float((merged["label"] == merged["label_true"]).mean())


# ---------------------------------------------------------------------------- majority vote
TIED = frame([
    ("p", 0, "a", 1), ("p", 0, "b", -1),                    # tie
    ("p", 1, "a", 1), ("p", 1, "b", 1), ("p", 1, "c", -1),  # 2 of 3 say correct
    ("p", 2, "c", -1),
])


@pytest.mark.parametrize("tie", [1, -1, 0])
def test_majority_vote_ties_take_the_given_label(tie):
    out = majority_vote(TIED, tie=tie)
    assert list(out.columns) == list(RESULT_COLUMNS)
    np.testing.assert_allclose(out["posterior"], [0.5, 2 / 3, 0.0])
    assert out["label"].tolist() == [tie, 1, -1]


def test_majority_vote_default_tie_is_wrong():
    assert majority_vote(TIED)["label"].tolist() == [-1, 1, -1]


@pytest.mark.parametrize("tie", [2, 0.5, True, None])
def test_majority_vote_rejects_other_ties(tie):
    with pytest.raises(ValueError, match="tie"):
        majority_vote(TIED, tie=tie)


def test_last_label_of_an_annotator_wins():
    relabelled = frame([("p", 0, "a", -1), ("p", 0, "b", 1), ("p", 0, "a", 1)])
    out = majority_vote(relabelled)
    assert out["posterior"].tolist() == [1.0]
    assert out["label"].tolist() == [1]


def test_output_is_sorted_by_program_and_line():
    labels = frame([("q", 3, "a", 1), ("p", 10, "a", -1), ("q", 0, "a", -1), ("p", 2, "b", 1)])
    out = majority_vote(labels)
    assert out[["program_id", "line"]].values.tolist() == [["p", 2], ["p", 10], ["q", 0], ["q", 3]]
    assert out["label"].tolist() == [1, -1, -1, 1]


def test_empty_frame_gives_empty_result():
    empty = frame([])
    for out in (majority_vote(empty), single_annotator(empty), dawid_skene(empty),
                oracle(pd.DataFrame(columns=["program_id", "line", "label"]))):
        assert list(out.columns) == list(RESULT_COLUMNS) and len(out) == 0


# ---------------------------------------------------------------------------- single annotator
def test_single_named_annotator_keeps_every_line():
    out = single_annotator(TIED, annotator="c")
    assert out["posterior"].tolist() == [0.5, 0.0, 0.0]
    assert out["label"].tolist() == [-1, -1, -1]
    assert single_annotator(TIED, annotator="a", tie=1)["label"].tolist() == [1, 1, 1]
    assert single_annotator(TIED, annotator="a", tie=0)["label"].tolist() == [1, 1, 0]


def test_single_unknown_annotator_raises():
    with pytest.raises(ValueError, match="annotator 'zz'"):
        single_annotator(TIED, annotator="zz")


def test_single_random_annotator_is_uniform_and_seeded():
    n = 4000  # every line: one annotator says +1, three say -1
    labels = frame([(i, 0, a, 1 if a == 0 else -1) for i in range(n) for a in range(4)])
    first = single_annotator(labels, seed=1)
    assert first.equals(single_annotator(labels, seed=1))
    assert not first.equals(single_annotator(labels, seed=2))
    share = (first["label"] == 1).mean()
    assert abs(share - 0.25) < 0.03
    assert set(first["posterior"]) == {0.0, 1.0}
    assert (first["posterior"] == (first["label"] == 1)).all()


def test_single_random_annotator_only_picks_labels_of_the_line():
    labels = frame([("p", 0, "a", 1), ("p", 0, "b", 1), ("p", 1, "a", -1), ("p", 2, "c", 1)])
    for seed in range(10):
        assert single_annotator(labels, seed=seed)["label"].tolist() == [1, -1, 1]


# ---------------------------------------------------------------------------- oracle
def test_oracle_reports_the_truth():
    truth = pd.DataFrame({"program_id": ["b", "a", "a", "a"], "line": [0, 1, 0, 1],
                          "label": [-1, 1, -1, 1]})
    out = oracle(truth)
    assert out[["program_id", "line"]].values.tolist() == [["a", 0], ["a", 1], ["b", 0]]
    assert out["posterior"].tolist() == [0.0, 1.0, 0.0]
    assert out["label"].tolist() == [-1, 1, -1]


def test_oracle_rejects_contradicting_truth():
    truth = pd.DataFrame({"program_id": ["a", "a"], "line": [0, 0], "label": [1, -1]})
    with pytest.raises(ValueError, match="row 1.*both labels"):
        oracle(truth)


# ---------------------------------------------------------------------------- Dawid-Skene
def test_dawid_skene_recovers_annotator_accuracy():
    acc = np.linspace(0.6, 0.95, 30)
    labels, gold = synthetic_crowd(acc, acc, seed=3)
    for coins in ("one", "two"):
        out, annotators = dawid_skene(labels, coins=coins, return_annotators=True)
        est = annotators.loc[np.arange(30), "accuracy"].to_numpy()
        assert np.abs(est - empirical(labels, gold).loc[np.arange(30), "accuracy"]).max() < 0.05
        assert np.abs(est - acc).max() < 0.08, coins  # the generating parameters, up to sampling
        assert annotators.attrs["converged"]
        assert abs(annotators.attrs["prior"] - 0.5) < 0.03
        assert accuracy(out, gold) >= accuracy(majority_vote(labels), gold)


def test_dawid_skene_beats_majority_vote_against_spammers():
    acc = np.r_[np.full(10, 0.8), np.full(10, 0.5)]  # half the crowd answers at random
    labels, gold = synthetic_crowd(acc, acc, n_items=2000, per_item=5, seed=4)
    out, annotators = dawid_skene(labels, return_annotators=True)
    ds, mv = accuracy(out, gold), accuracy(majority_vote(labels), gold)
    assert ds >= mv + 0.03, (ds, mv)
    est = annotators.loc[np.arange(20), "accuracy"].to_numpy()
    assert est[:10].min() > 0.72 and est[10:].max() < 0.6


def test_two_coins_fit_asymmetric_annotators_better_than_one():
    # half the crowd calls too much correct, the other half too much wrong
    sens = np.r_[np.full(8, 0.95), np.full(8, 0.55)]
    spec = np.r_[np.full(8, 0.55), np.full(8, 0.95)]
    labels, gold = synthetic_crowd(sens, spec, n_items=3000, per_item=5, seed=5)
    two, ann2 = dawid_skene(labels, coins="two", return_annotators=True)
    one, ann1 = dawid_skene(labels, coins="one", return_annotators=True)
    ann2, seen = ann2.loc[np.arange(16)], empirical(labels, gold).loc[np.arange(16)]
    for rate, true in (("sensitivity", sens), ("specificity", spec)):
        assert np.abs(ann2[rate] - seen[rate]).max() < 0.05, rate
        assert np.abs(ann2[rate].to_numpy() - true).max() < 0.08, rate
    assert (ann1["sensitivity"] == ann1["specificity"]).all()
    # one coin cannot see one-sided errors: with a free prior it drifts to "all correct"
    assert accuracy(two, gold) >= accuracy(one, gold) + 0.02
    assert ann1.attrs["prior"] > 0.9
    one_fixed = dawid_skene(labels, coins="one", prior=0.5)
    assert accuracy(two, gold) >= accuracy(one_fixed, gold) + 0.01


def test_dawid_skene_clamps_gold_and_accepts_an_initial_guess():
    acc = np.r_[np.full(5, 0.8), np.full(5, 0.5)]
    labels, gold = synthetic_crowd(acc, acc, n_items=400, per_item=4, seed=6)
    some = gold.iloc[:40]
    out = dawid_skene(labels, gold=some).set_index("program_id")
    assert (out.loc[some["program_id"], "posterior"].to_numpy() == (some["label"] == 1)).all()
    init = oracle(gold)
    from_truth = dawid_skene(labels, init=init, max_iter=1)
    assert accuracy(from_truth, gold) >= accuracy(majority_vote(labels), gold)
    with pytest.raises(ValueError, match="posterior"):
        dawid_skene(labels, init=init.assign(posterior=1.5))
    with pytest.raises(ValueError, match="init"):
        dawid_skene(labels, init="random")


def test_dawid_skene_degenerate_inputs_stay_finite():
    cases = [
        frame([("p", 0, "a", 1)]),                                       # one label
        frame([("p", i, a, 1) for i in range(3) for a in "abc"]),         # all labels identical
        frame([("p", 0, a, -1) for a in "abcd"]),                         # one line
        frame([("p", 0, "a", 1), ("p", 0, "b", -1)]),                     # one tied line
    ]
    for labels in cases:
        for coins in ("one", "two"):
            for smoothing in (0.0, 0.01):
                out, ann = dawid_skene(labels, coins=coins, smoothing=smoothing,
                                       return_annotators=True)
                values = np.r_[out["posterior"], ann[["accuracy", "sensitivity",
                                                      "specificity"]].to_numpy().ravel()]
                assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
                assert np.isfinite(ann.attrs["prior"])
    # identical labels: every line is called correct
    assert (dawid_skene(cases[1])["label"] == 1).all()
    assert (dawid_skene(cases[2])["label"] == -1).all()


label_rows = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 4), st.sampled_from([1, -1])),
    min_size=1, max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(rows=label_rows, coins=st.sampled_from(["one", "two"]),
       smoothing=st.sampled_from([0.0, 0.01, 1.0]), max_iter=st.integers(1, 30))
def test_no_nan_or_inf_on_any_small_crowd(rows, coins, smoothing, max_iter):
    labels = frame(rows)
    n_lines = len({(p, line) for p, line, _, _ in rows})
    out, ann = dawid_skene(labels, coins=coins, smoothing=smoothing, max_iter=max_iter,
                           return_annotators=True)
    assert len(out) == n_lines
    post = out["posterior"].to_numpy()
    assert np.isfinite(post).all() and ((post >= 0) & (post <= 1)).all()
    assert set(out["label"]) <= {1, -1}
    params = ann[["accuracy", "sensitivity", "specificity"]].to_numpy()
    assert np.isfinite(params).all() and ((params > 0) & (params < 1)).all()
    mv = majority_vote(labels)["posterior"].to_numpy()
    assert ((mv >= 0) & (mv <= 1)).all() and len(mv) == n_lines


# ---------------------------------------------------------------------------- bad input
AGGREGATORS = [majority_vote, single_annotator, dawid_skene]


@pytest.mark.parametrize("aggregate", AGGREGATORS)
@pytest.mark.parametrize("column", ["program_id", "line", "annotator", "label"])
def test_missing_column_is_named(aggregate, column):
    with pytest.raises(ValueError, match=f"'{column}'"):
        aggregate(TIED.drop(columns=column))


@pytest.mark.parametrize("aggregate", AGGREGATORS)
@pytest.mark.parametrize("column, value, message", [
    ("label", 0, "row 3: label must be \\+1"),
    ("label", 2, "row 3: label must be \\+1"),
    ("label", "yes", "row 3: label must be an integer"),
    ("line", 1.5, "row 3: line must be an integer"),
    ("line", -1, "row 3: line must be >= 0"),
    ("line", None, "row 3: line must be an integer"),
    ("annotator", None, "row 3: annotator is missing"),
    ("program_id", None, "row 3: program_id is missing"),
])
def test_bad_value_names_field_and_row(aggregate, column, value, message):
    bad = TIED.astype(object)
    bad.loc[3, column] = value
    with pytest.raises(ValueError, match=message):
        aggregate(bad)


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="DataFrame"):
        majority_vote([("p", 0, "a", 1)])
    with pytest.raises(ValueError, match="coins"):
        dawid_skene(TIED, coins="three")
    with pytest.raises(ValueError, match="max_iter"):
        dawid_skene(TIED, max_iter=0)
    with pytest.raises(ValueError, match="prior"):
        dawid_skene(TIED, prior=1.0)
    with pytest.raises(ValueError, match="smoothing"):
        dawid_skene(TIED, smoothing=-1)
    with pytest.raises(ValueError, match="program_id"):
        majority_vote(frame([(("p", 0), 0, "a", 1), (3, 0, "a", 1)]))
    with pytest.raises(ValueError, match="truth row 0: label"):
        oracle(pd.DataFrame({"program_id": ["a"], "line": [0], "label": [0]}))
    with pytest.raises(ValueError, match="gold row 0: label"):
        dawid_skene(TIED, gold=pd.DataFrame({"program_id": ["p"], "line": [0], "label": [3]}))


# ---------------------------------------------------------------------------- crowd TSV files
HEADER = "!amt_annotation_ids\t!amt_worker_ids\torig_id\tresponse\tgold\n"


def write_tsv(tmp_path, body):
    path = tmp_path / "crowd.tsv"
    path.write_text(HEADER + body)
    return path


def test_read_crowd_tsv_maps_lower_value_to_wrong(tmp_path):
    path = write_tsv(tmp_path, "x1\tw1\t7_0\t1\t2\nx2\tw2\t7_0\t2\t2\nx3\tw1\t8_1\t1\t1\n")
    labels, gold = read_crowd_tsv(path)
    assert labels.values.tolist() == [["7_0", 0, "w1", -1], ["7_0", 0, "w2", 1], ["8_1", 0, "w1", -1]]
    assert gold.values.tolist() == [["7_0", 0, 1], ["8_1", 0, -1]]


@pytest.mark.parametrize("body, message", [
    ("x1\tw1\t1\t0\t1\nx2\tw2\t1\t1\n", "line 3: 4 fields"),
    ("x1\tw1\t1\t0\t1\nx2\tw2\t1\tyes\t1\n", "line 3: response must be an integer"),
    ("x1\tw1\t1\t0\t1\nx2\tw2\t2\t2\t1\n", "line 3: label 2 is a third value"),
    ("x1\tw1\t1\t0\t1\nx2\tw2\t1\t1\t0\n", "line 3: gold of item '1' disagrees with line 2"),
    ("x1\t\t1\t0\t1\nx2\tw2\t1\t1\t1\n", "line 2: empty '!amt_worker_ids'"),
    ("x1\tw1\t1\t1\t1\n", "only the label value"),
])
def test_read_crowd_tsv_names_file_and_line(tmp_path, body, message):
    path = write_tsv(tmp_path, body)
    with pytest.raises(ValueError, match=message) as err:
        read_crowd_tsv(path)
    assert str(path) in str(err.value) or "only the label" in message


def test_read_crowd_tsv_needs_the_columns(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("worker\torig_id\tresponse\n")
    with pytest.raises(ValueError, match="line 1: header lacks column"):
        read_crowd_tsv(path)


@pytest.mark.filterwarnings("ignore::Warning:crowdkit.*")
@pytest.mark.parametrize("name", ["rte", "temp"])
def test_matches_crowdkit_dawid_skene_on_real_data(name):
    path = CROWD_DATA / f"{name}.tsv"
    if not path.exists():
        print(f"skipping: {path.resolve()} is absent")
        pytest.skip(f"crowd data {path} not found (expected ../shared/data/crowd next to the repo)")
    aggregation = pytest.importorskip("crowdkit.aggregation")
    labels, gold = read_crowd_tsv(path)
    ours = dawid_skene(labels).set_index("program_id")["label"]
    data = labels.rename(columns={"program_id": "task", "annotator": "worker"})
    theirs = aggregation.DawidSkene(n_iter=100).fit_predict(data[["task", "worker", "label"]])
    assert len(theirs) == len(ours) == len(gold)
    assert (theirs.loc[ours.index] == ours).mean() >= 0.99
    truth = gold.set_index("program_id")["label"]
    assert (ours == truth.loc[ours.index]).mean() >= (majority_vote(labels).set_index(
        "program_id")["label"] == truth.loc[ours.index]).mean() - 0.01
