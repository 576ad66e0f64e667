"""crlhf.report: the paired gain, pass@k tables with intervals (one run) or mean ± std then each
seed (several seeds), their JSON, and the before/after plot's paired colours
(crlhf.plots.plot_passk_before_after)."""

import pandas as pd
import pytest

from crlhf.plots import plot_passk_before_after
from crlhf.report import (combine_seeds, format_passk, passk_frame, passk_records, passk_summary, passk_table,
                          table_cells, table_note, table_records)


def frame(values, temps=(0.2, 0.8), ks=(1, 10), width=0.1):
    rows = [{"temperature": t, "k": k, "pass_at_k": v, "lo": max(0.0, v - width), "hi": min(1.0, v + width)}
            for (t, k), v in zip([(t, k) for t in temps for k in ks], values, strict=False)]
    return pd.DataFrame(rows)


def test_one_run_keeps_its_interval_and_seeds_give_mean_and_std():
    one = combine_seeds([frame([0.1, 0.3, 0.2, 0.5])])
    assert one.loc[0, ["pass_at_k", "lo", "hi", "std", "seeds"]].tolist() == pytest.approx([0.1, 0.0, 0.2, 0.0, 1])
    three = combine_seeds([frame([0.1, 0.3, 0.2, 0.5]), frame([0.2, 0.3, 0.2, 0.5]), frame([0.3, 0.3, 0.2, 0.5])])
    row = three[(three.temperature == 0.2) & (three.k == 1)].iloc[0]
    assert row.pass_at_k == pytest.approx(0.2) and row["std"] == pytest.approx(0.1)  # sample std, ddof 1
    assert (row.lo, row.hi, row.seeds) == (pytest.approx(0.1), pytest.approx(0.3), 3)
    with pytest.raises(ValueError, match="pass@10 at T=0.8 is missing"):
        combine_seeds([frame([0.1, 0.3, 0.2, 0.5]), frame([0.1, 0.3, 0.2])])
    with pytest.raises(ValueError, match="NaN"):
        combine_seeds([frame([float("nan"), 0.3, 0.2, 0.5])])
    records = passk_records([frame([0.1, 0.3, 0.2, 0.5])])
    assert records[0] == {"temperature": 0.2, "k": 1, "pass_at_k": 0.1, "lo": 0.0, "hi": pytest.approx(0.2),
                          "std": 0.0, "seeds": 1}


def scripted_result(passes, tasks=4, temps=(0.2, 0.6, 0.8), n=10):
    """An EvalResult of ``tasks`` tasks x ``n`` samples where sample j of task i passes when
    ``j < passes[i]`` (``passes``: an int for every task, or one per task; or a dict temperature
    -> that)."""
    from crlhf.evaluate import summarize

    per_t = passes if isinstance(passes, dict) else {t: passes for t in temps}
    per_t = {t: [p] * tasks if isinstance(p, int) else p for t, p in per_t.items()}
    return summarize(pd.DataFrame([{"task_id": f"t{i}", "temperature": t, "passed": j < c}
                                   for t, ps in per_t.items() for i, c in enumerate(ps) for j in range(n)]),
                     ks=(1, 10))


def test_gain_is_paired_over_tasks():
    # tasks of very different difficulty, each one sample in ten better after: the gain is certain
    summary = passk_summary(scripted_result([0, 2, 8, 9]), scripted_result([1, 3, 9, 10]))
    assert summary["gain"]["pass@1"]["0.6"] == pytest.approx(0.1)
    assert summary["gain"]["interval"]["pass@1"]["0.6"] == pytest.approx([0.1, 0.1])
    lo, hi = summary["baseline"]["interval"]["pass@1"]["0.6"]
    assert hi - lo > 0.3  # while each model's own interval over these tasks is wide
    assert summary["gain"]["best"]["pass@1"]["gain"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="different tasks"):
        passk_summary(scripted_result(3), scripted_result(3, tasks=5))


def test_one_seed_table_has_intervals_a_gain_row_and_each_models_best():
    # the baseline is best at T=0.2, w/cRLHF at T=0.8; the best gain compares the two
    before = scripted_result({0.2: 4, 0.8: 2}, temps=(0.2, 0.8))
    after = scripted_result({0.2: 4, 0.8: 7}, temps=(0.2, 0.8))
    summary = passk_summary(before, after)
    head, rule, base, trained, gain = passk_table([summary]).splitlines()
    assert head == ("| model | pass@1 at T=0.2 (%) | pass@1 at T=0.8 (%) | pass@10 at T=0.2 (%) | pass@10 at T=0.8 (%) "
                    "| best pass@1 (%) | best pass@10 (%) |")
    assert rule == "|---|---|---|---|---|---|---|"
    assert base == ("| baseline | 40.0 [40.0, 40.0] | 20.0 [20.0, 20.0] | 100.0 [100.0, 100.0] | 100.0 [100.0, 100.0] "
                    "| 40.0 [40.0, 40.0] at T=0.2 | 100.0 [100.0, 100.0] at T=0.2 |")
    assert trained.startswith("| w/cRLHF | 40.0 [40.0, 40.0] | 70.0 [70.0, 70.0] |")
    assert "| 70.0 [70.0, 70.0] at T=0.8 |" in trained
    assert gain == ("| gain (points) | +0.0 [+0.0, +0.0] | +50.0 [+50.0, +50.0] | +0.0 [+0.0, +0.0] "
                    "| +0.0 [+0.0, +0.0] | +30.0 [+30.0, +30.0] | +0.0 [+0.0, +0.0] |")
    records = table_records([summary])
    assert records["crlhf"]["best pass@1 (%)"] == {"mean": pytest.approx(0.7), "std": 0.0, "lo": pytest.approx(0.7),
                                                   "hi": pytest.approx(0.7), "seeds": 1, "temperature": 0.8}
    assert records["gain"]["best pass@1 (%)"]["mean"] == pytest.approx(0.3)
    assert "95% bootstrap interval over tasks" in table_note(1, tasks=164, n=200)


def test_several_seeds_give_mean_and_std_then_each_seed():
    summaries = [passk_summary(scripted_result(2 + s), scripted_result(4 + 2 * s)) for s in range(3)]
    table = passk_table(summaries, seeds=[5, 6, 7])
    labels = [line.split(" | ")[0][2:] for line in table.splitlines()[2:]]
    assert labels == ["baseline, mean ± std", "w/cRLHF, mean ± std", "gain (points), mean ± std"] + [
        f"{m}, seed {s}" for s in (5, 6, 7) for m in ("baseline", "w/cRLHF", "gain (points)")]
    cells = table_cells(summaries)
    gain = cells[(cells.model == "gain") & (cells.column == "pass@1 at T=0.6 (%)")].iloc[0]
    assert (gain.value, gain["std"], gain.seeds) == (pytest.approx(0.3), pytest.approx(0.1), 3)  # gains 2, 3, 4 in 10
    assert "| gain (points), mean ± std | +30.0 ± 10.0 |" in table
    best = cells[(cells.model == "baseline") & (cells.column == "best pass@1 (%)")].iloc[0]
    assert best.temperature == 0.2 and best.value == pytest.approx(0.3)  # ties: the first temperature
    assert table_records(summaries)["gain"]["best pass@1 (%)"]["mean"] == pytest.approx(0.3)
    assert "mean ± standard deviation over 3 seeds" in table_note(3)
    with pytest.raises(ValueError, match="seed names"):
        passk_table(summaries, seeds=[1, 2])
    with pytest.raises(ValueError, match="other ks or temperatures"):
        table_cells([summaries[0], passk_summary(scripted_result(2, temps=(0.2,)), scripted_result(3, temps=(0.2,)))])
    assert format_passk(float("nan"), 0, 1) == "n/a"
    assert format_passk(-0.0004, -0.01, 0.01, sign=True) == "+0.0 [-1.0, +1.0]"  # no "-0.0"


def test_passk_frame_reads_an_eval_results_entry():
    result = scripted_result([0, 2, 8, 9])
    frame = passk_frame(result.to_dict()).sort_values(["temperature", "k"]).reset_index(drop=True)
    expected = result.passk.sort_values(["temperature", "k"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected[list(frame.columns)], check_dtype=False)


def test_before_and_after_share_a_colour_per_temperature():
    fig = plot_passk_before_after(frame([0.1, 0.3, 0.2, 0.5]), frame([0.2, 0.4, 0.3, 0.6]))
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    for t in ("0.2", "0.8"):
        before, after = lines[f"baseline, T={t}"], lines[f"w/cRLHF, T={t}"]
        assert before.get_color() == after.get_color()
        assert (before.get_linestyle(), after.get_linestyle()) == ("--", "-")
    assert lines["baseline, T=0.2"].get_color() != lines["baseline, T=0.8"].get_color()
    assert len(fig.axes[0].collections) == 4  # an interval band per line
    with pytest.raises(ValueError, match="after lacks column"):
        plot_passk_before_after(frame([0.1, 0.3, 0.2, 0.5]), pd.DataFrame({"k": [1]}))
