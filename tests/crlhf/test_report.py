"""crlhf.report: pass@k tables with intervals (one run) or mean ± std (several seeds), and the
before/after plot's paired colours (crlhf.plots.plot_passk_before_after)."""

import pandas as pd
import pytest

from crlhf.plots import plot_passk_before_after
from crlhf.report import combine_seeds, format_passk, passk_records, passk_table, table_note


def frame(values, temps=(0.2, 0.8), ks=(1, 10), width=0.1):
    rows = [{"temperature": t, "k": k, "pass_at_k": v, "lo": max(0.0, v - width), "hi": min(1.0, v + width)}
            for (t, k), v in zip([(t, k) for t in temps for k in ks], values)]
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


def test_table_cells_columns_and_best_temperature():
    table = passk_table({"baseline": frame([0.1, 0.3, 0.2, 0.5]),
                         "w/cRLHF": [frame([0.2, 0.4, 0.3, 0.6]), frame([0.4, 0.4, 0.3, 0.6])]})
    head, _, base, after = table.splitlines()
    assert head == ("| model | pass@1, T=0.2 (%) | pass@1, T=0.8 (%) | pass@10, T=0.2 (%) | pass@10, T=0.8 (%) "
                    "| best pass@1 (%) | best pass@10 (%) |")
    assert base == ("| baseline | 10.0 [0.0, 20.0] | 20.0 [10.0, 30.0] | 30.0 [20.0, 40.0] | 50.0 [40.0, 60.0] "
                    "| 20.0 [10.0, 30.0] (T=0.8) | 50.0 [40.0, 60.0] (T=0.8) |")
    assert after.startswith("| w/cRLHF | 30.0 ± 14.1 | 30.0 ± 0.0 |")
    assert format_passk(float("nan"), 0, 1) == "n/a"
    assert "mean ± standard deviation over 3 seeds" in table_note(3)
    assert "95% bootstrap interval over tasks" in table_note(1, tasks=164, n=200)


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
