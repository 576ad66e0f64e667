import json
from math import comb

import pytest

from crlhf.evaluate import evaluate
from crlhf.plots import plot_passk
from crlhf.tasks import load_tasks


@pytest.fixture(scope="module")
def tasks():
    return load_tasks("minicode", split="test", n=4, seed=11)


def scripted_sampler(tasks, passing):
    """At temperature T, task i gets ``passing[T][i]`` reference completions, the rest wrong."""
    wrong = "    return None\n"

    def sample(prompts, n, temperature):
        assert prompts == [t.prompt for t in tasks]
        out = []
        for i, task in enumerate(tasks):
            c = passing[temperature][i]
            # a stop sequence after the body must be cut before the sandbox sees it
            out.append([task.reference + "\ndef junk(:\n"] * c + [wrong] * (n - c))
        return out

    return sample


def test_pass_at_k_over_temperatures_and_the_table_i_view(tasks, tmp_path):
    passing = {0.2: [5, 0, 1, 0], 0.8: [3, 2, 2, 1]}
    result = evaluate(scripted_sampler(tasks, passing), tasks, ks=(1, 2, 5), temperatures=(0.2, 0.8),
                      n=5, progress=False)
    assert len(result.samples) == 2 * 4 * 5
    assert result.per_task.groupby("temperature").c.sum().to_dict() == {0.2: 6, 0.8: 8}

    def expect(cs, k):  # the textbook binomial form, against pass_at_k's log-product form
        return sum(1 - comb(5 - c, k) / comb(5, k) for c in cs) / len(cs)

    got = result.passk.set_index(["temperature", "k"]).pass_at_k
    for temp, cs in passing.items():
        for k in (1, 2, 5):
            assert got[(temp, k)] == pytest.approx(expect(cs, k))
    table = result.table()
    assert table.loc[1, "temperature"] == 0.8 and table.loc[5, "temperature"] == 0.8
    assert table.loc[1, "pass_at_k"] == pytest.approx(expect(passing[0.8], 1))
    saved = json.loads(result.save(tmp_path / "eval.json").read_text())
    assert saved["pass@1"]["0.2"] == pytest.approx(expect(passing[0.2], 1))
    assert saved["best"]["pass@5"]["temperature"] == 0.8 and saved["tasks"] == 4
    lo, hi = saved["interval"]["pass@1"]["0.2"]  # 4 tasks at 1.0, 0, 0.2, 0: a wide interval around 0.3
    assert lo <= expect(passing[0.2], 1) <= hi and hi - lo > 0.2
    assert saved["best"]["pass@1"]["interval"] == saved["interval"]["pass@1"]["0.8"]
    fig = plot_passk(result.passk)
    assert len(fig.axes[0].lines) == 2


def test_k_above_n_is_dropped_with_a_warning(tasks):
    sampler = scripted_sampler(tasks, {0.2: [1, 1, 1, 1]})
    with pytest.warns(UserWarning, match="dropping k"):
        result = evaluate(sampler, tasks, ks=(1, 10), temperatures=(0.2,), n=2, progress=False)
    assert sorted(result.passk.k) == [1]


def test_bad_sampler_output_and_arguments(tasks):
    with pytest.raises(ValueError, match="2 completions for each of the 4"):
        evaluate(lambda p, n, t: [["x"]] * len(p), tasks, ks=(1,), n=2, progress=False)
    with pytest.raises(TypeError, match="not str"):
        evaluate(lambda p, n, t: [[None]] * len(p), tasks, ks=(1,), n=1, progress=False)
    with pytest.raises(ValueError, match="tasks is empty"):
        evaluate(lambda p, n, t: [], [], ks=(1,))
    with pytest.raises(ValueError, match="positive"):
        evaluate(lambda p, n, t: [], tasks, ks=(0,))
