"""The kit's figures: which annotators a p_i plot names, the calibration line, paired pass@k colours."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from crlhf.plots import notable_annotators, plot_passk, plot_reliabilities

# final p_i: adv 0.30 (an adversary), weak 0.45, mid 0.70, low 0.55, top1 and top2 at the cap 0.95
FINAL = {"adv": 0.30, "weak": 0.45, "mid": 0.70, "low": 0.55, "top1": 0.95, "top2": 0.95}


def history(calibration_steps: int = 3, steps: int = 10) -> pd.DataFrame:
    """A CrowdModel.history-shaped frame with the loop's round column: every annotator from 0.7 at
    step 0 to its FINAL value at the last step; round 0 (calibration) up to ``calibration_steps``."""
    rows = []
    for step in range(steps + 1):
        for name, end in FINAL.items():
            rows.append({"round": 0 if step <= calibration_steps else 1 + (step - calibration_steps - 1) // 3,
                         "step": step, "program_id": f"p{step}", "annotator": name,
                         "reliability": 0.7 + (end - 0.7) * step / steps})
    return pd.DataFrame(rows)


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_notable_annotators_are_those_below_one_half_the_lowest_and_the_highest():
    picked = notable_annotators(pd.Series(FINAL))
    assert list(picked) == ["adv", "weak", "top1"]
    assert picked["adv"] == "lowest p_i" and picked["weak"] == "p_i < 0.5"
    assert picked["top1"] == "highest p_i (tied with 1 more)"
    reliable = notable_annotators(pd.Series({"a": 0.8, "b": 0.6, "c": 0.9}))
    assert reliable == {"b": "lowest p_i", "c": "highest p_i"}
    many_bad = notable_annotators(pd.Series({f"x{i}": 0.1 + i / 100 for i in range(10)} | {"good": 0.9}),
                                  max_labels=4)
    assert list(many_bad) == ["x0", "x1", "x2", "good"]  # the worst first, the best always
    assert notable_annotators(pd.Series(dtype=float)) == {}


def test_reliability_plot_names_the_annotators_that_matter_and_greys_the_rest():
    fig = plot_reliabilities(history(), kinds={"adv": "adversary", "top1": "reliable"}, p_max=0.95)
    ax = fig.axes[0]
    texts = legend_texts(ax)
    assert texts[:3] == ["adv (adversary): p_i 0.30, lowest p_i", "weak: p_i 0.45, p_i < 0.5",
                         "top1 (reliable): p_i 0.95, highest p_i (tied with 1 more)"]
    assert "3 other annotators" in texts
    assert "cap p_max = 0.95: 2 annotators tied on it" in texts
    assert not any(t.startswith(("mid", "low", "top2")) for t in texts)
    curves = [line for line in ax.lines if len(line.get_xdata()) == 11]
    assert len(curves) == len(FINAL)
    grey = [line for line in curves if line.get_color() == "0.7"]
    assert len(grey) == 3 and all(line.get_linewidth() < 1 for line in grey)
    named = {line.get_label().split(":")[0] for line in curves if line.get_color() != "0.7"}
    assert named == {"adv (adversary)", "weak", "top1 (reliable)"}
    plt.close(fig)


def test_reliability_plot_marks_where_calibration_ends():
    fig = plot_reliabilities(history(calibration_steps=3))
    ax = fig.axes[0]
    vertical = [line for line in ax.lines if np.allclose(line.get_xdata(), line.get_xdata()[0])
                and len(line.get_xdata()) == 2]
    assert len(vertical) == 1 and vertical[0].get_xdata()[0] == 3 and vertical[0].get_linestyle() == "--"
    assert "end of gold calibration" in legend_texts(ax)
    plt.close(fig)
    explicit = plot_reliabilities(history().drop(columns="round"), calibration_end=5).axes[0]
    assert [line.get_xdata()[0] for line in explicit.lines if line.get_label() == "end of gold calibration"] == [5]
    plt.close(explicit.figure)
    none = plot_reliabilities(history().drop(columns="round")).axes[0]  # no round column, no line
    assert "end of gold calibration" not in legend_texts(none)
    plt.close(none.figure)


def test_reliability_plot_with_truth_colours_by_it_and_still_names_the_few():
    truth = pd.Series({"adv": 0.3, "weak": 0.55, "mid": 0.8, "low": 0.6, "top1": 0.95, "top2": 0.9})
    fig = plot_reliabilities(history(), truth=truth)
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the colour bar
    assert not any(line.get_color() == "0.7" for line in ax.lines)
    assert [t.split(":")[0] for t in legend_texts(ax)][:3] == ["adv", "weak", "top1"]
    plt.close(fig)
    quiet = plot_reliabilities(history(), label=False).axes[0]
    assert quiet.get_legend() is None
    plt.close(quiet.figure)


def passk_frame(shift: float = 0.0) -> pd.DataFrame:
    rows = [{"temperature": t, "k": k, "pass_at_k": 0.2 + 0.1 * i + 0.2 * (k == 10) + shift,
             "lo": 0.1 + 0.1 * i, "hi": 0.5 + 0.1 * i}
            for i, t in enumerate((0.2, 0.6, 0.8)) for k in (1, 10)]
    return pd.DataFrame(rows)


def test_passk_plot_pairs_colours_per_temperature_with_a_band():
    fig, ax = plt.subplots()
    plot_passk(passk_frame(), label="baseline", ax=ax, band=True, ls="--")
    plot_passk(passk_frame(0.05), label="w/cRLHF", ax=ax, band=True)
    lines = {line.get_label(): line for line in ax.lines}
    for t in ("0.2", "0.6", "0.8"):
        before, after = lines[f"baseline, T={t}"], lines[f"w/cRLHF, T={t}"]
        assert before.get_color() == after.get_color()
        assert before.get_linestyle() == "--" and after.get_linestyle() == "-"
    assert len({line.get_color() for line in ax.lines}) == 3
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 6
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "10"]
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\['hi', 'lo'\]"):
        plot_passk(passk_frame().drop(columns=["lo", "hi"]), band=True)
