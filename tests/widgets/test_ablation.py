"""ThresholdExplorer without a browser: sliders set as a front end sets them, the numbers are
crlhf's, and every change takes under 200 ms on 10,000 labels."""

import time

import pandas as pd
import pytest

from crlhf.crowd import CrowdModel
from crlhf.crowd_views import scores_at, threshold_curve
from crlhf.simulate import noisy_crowd, random_truths
from widgets.ablation import ThresholdExplorer


@pytest.fixture(scope="module")
def crowd_10k():
    crowd = noisy_crowd(30, seed=3)
    gold_log, gold = crowd.gold_log(n_gold=5, lines=8, seed=1)
    truths = random_truths(220, 8, seed=2)
    labels = crowd.label_programs(truths, k=5)
    log = pd.concat([gold_log, labels], ignore_index=True)
    assert len(log) == 10_000
    return log, gold, {j: truths[j] for j in range(len(truths))}


def test_numbers_are_the_crowd_models(crowd_10k):
    log, gold, truth = crowd_10k
    ex = ThresholdExplorer(log, truth=truth, gold=gold)
    ex.tau.set_state({"value": 0.65})  # as the slider's front end sends it
    ex.lam.set_state({"value": 0.01})
    ex.leave_one_out.set_state({"value": False})
    model = CrowdModel(tau=0.65, lam=0.01, leave_one_out=False)
    result = model.replay(log, gold=gold)
    lines = result.lines[~result.lines.program_id.isin(list(gold))]
    expect = scores_at(lines, 0.65)
    pd.testing.assert_frame_equal(ex.scores.reset_index(drop=True), expect.reset_index(drop=True))
    curve = threshold_curve(lines, truth, [0.65]).iloc[0]
    assert ex.metrics["line_accuracy"] == pytest.approx(curve.line_accuracy)
    assert ex.metrics["score_mae"] == pytest.approx(curve.score_mae)
    assert ex.params()["leave_one_out"] is False and ex.model.lam == pytest.approx(0.01)
    assert "<svg" in ex.histogram.value and "<svg" in ex.curve_view.value and "line accuracy" in ex.summary.value
    assert "tau=0.65" in ex.describe()


def test_tau_and_shape_rescale_without_a_replay(crowd_10k):
    log, gold, truth = crowd_10k
    ex = ThresholdExplorer(log, truth=truth, gold=gold)
    n = ex.n_replays
    ex.tau.value = 0.8
    ex.shape.value = "product"
    assert ex.n_replays == n
    ex.nu.value = 0.6
    assert ex.n_replays == n + 1


def test_the_shape_control_shows_what_each_shape_pays(crowd_10k):
    log, gold, truth = crowd_10k
    ex = ThresholdExplorer(log, truth=truth, gold=gold)
    ex.tau.set_state({"value": 0.6})
    ex.shape.set_state({"index": ex.shape.options.index("product")})  # as the toggle's front end sends it
    lines = ex.result.lines[~ex.result.lines.program_id.isin(list(gold))]
    codes, _ = pd.factorize(lines.program_id)
    post, counted = lines.posterior.to_numpy(), lines.counted.to_numpy()
    # the product of the counted posteriors, program by program, by hand
    want = [float(post[(codes == j) & counted].prod()) for j in range(codes.max() + 1)]
    assert ex.scores["score"].tolist() == pytest.approx(want)
    pay = ex.payments.set_index("program_id")
    assert list(ex.payments.columns) == ["program_id", "k", "share", "all_correct", "product"]
    assert pay["product"].tolist() == pytest.approx(want)
    assert pay["share"].tolist() == pytest.approx(scores_at(lines, 0.6).score.tolist())
    assert ((pay["all_correct"] == 1) == (pay["share"] == 1)).all()
    assert ex.metrics["mean_product"] == pytest.approx(sum(want) / len(want))
    assert ex.metrics["mean_product"] < ex.metrics["mean_share"]
    assert ex.metrics["mean_score"] == pytest.approx(ex.metrics["mean_product"])
    here = threshold_curve(lines, truth, [0.6], "product").iloc[0]
    assert ex.metrics["score_mae"] == pytest.approx(here.score_mae)
    assert "score s (product)" in ex.histogram.value and "shape=product" in ex.describe()
    ex.shape.value = "all_correct"
    assert set(ex.scores["score"].unique()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="field 'shape'"):
        ThresholdExplorer(log, shape="mean")


@pytest.mark.perf
def test_every_change_within_200_ms_on_10k_labels(crowd_10k):
    log, gold, truth = crowd_10k
    ex = ThresholdExplorer(log, truth=truth, gold=gold)
    changes = [(ex.tau, [0.7, 0.5]), (ex.lam, [0.02, 0.002]), (ex.nu, [0.6, 0.7]),
               (ex.gold_certainty, [0.9, 0.99]), (ex.leave_one_out, [False, True]), (ex.reliability, ["beta", "eq8"])]
    worst = {}
    for slider, values in changes:
        best = float("inf")
        for _ in range(3):  # best of 3: the machine is shared
            for v in values:
                start = time.perf_counter()
                slider.value = v
                best = min(best, time.perf_counter() - start)
        worst[slider.description] = best
    print("explorer update times (s, best of 3):", {k: round(v, 4) for k, v in worst.items()})
    assert max(worst.values()) < 0.2, worst


def test_a_store_and_no_truth(store):
    tokens = store.register_annotators(["a", "b"])
    store.add_labels(tokens["a"], [("g0", 0, 1), ("g0", 1, 1), ("g0", 2, -1), ("p1", 0, 1), ("p1", 1, -1)])
    store.add_labels(tokens["b"], [("p1", 0, 1), ("p1", 1, 1)])
    ex = ThresholdExplorer(store)
    assert ex.scores.program_id.tolist() == ["p1"] and ex.curve is None and "line_accuracy" not in ex.metrics
    # a program of a stored task: the prompt's lines are not scored, as in the dataset export
    store.add_task("t", "def f():\n")
    store.add_programs([{"program_id": "e", "program": "def f():\n"},
                        {"program_id": "q", "program": "def f():\n    return 1\n"}], task_id="t")
    store.add_labels(tokens["a"], [("e", 0, 1), ("q", 0, 1), ("q", 1, 1)])
    ex = ThresholdExplorer(store, shape="all_correct")
    pay = ex.payments.set_index("program_id")
    assert pay.loc["e"].tolist() == [0, 0.0, 0.0, 0.0] and pay.loc["q", "k"] == 1
    data = store.dataset(shape="all_correct").set_index("program_id")
    assert ex.scores.set_index("program_id").loc[["e", "q", "p1"], "score"].tolist() == \
        data.loc[["e", "q", "p1"], "score"].tolist()
    assert len(ex.children[1].children) == 1  # the histogram only
    with pytest.raises(TypeError, match="field 'labels'"):
        ThresholdExplorer([("p", 0, "a", 1)])
    with pytest.raises(ValueError, match="nu"):
        ThresholdExplorer(store, nu=0.99)
