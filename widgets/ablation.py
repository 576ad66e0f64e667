"""ThresholdExplorer: how ``tau``, ``lam``, ``nu``, ``gold_certainty``, leave-one-out and the
reward shape change the crowd's scores (and, with the truth, their accuracy), live.

A change of ``lam``, ``nu``, ``gold_certainty``, leave-one-out or the reliability rule replays
the labels into a fresh ``CrowdModel`` (the posteriors depend on them); a change of ``tau`` or
of the reward shape only re-scores the posteriors it already has (``crlhf.reward``:
``program_scores`` for the shape on show, ``shape_table`` for what each shape would pay each
program, over the lines the model generated). Accuracy against the truth is
``crlhf.crowd_views.threshold_curve``. The widget draws; the numbers come from ``crlhf``.
"""

from __future__ import annotations

import time

import ipywidgets as W
import numpy as np
import pandas as pd

from crlhf.crowd import RELIABILITY_METHODS, CrowdModel, ReplayResult
from crlhf.crowd_views import threshold_curve
from crlhf.reward import SHAPES, program_scores, shape_table
from crlhf.store import LabelStore

TAUS = np.round(np.linspace(0.0, 1.0, 51), 2)


def _svg_histogram(values: np.ndarray, bins: int = 20, width: int = 320, height: int = 120,
                   label: str = "score s = c/k") -> str:
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    top = max(int(counts.max()) if len(counts) else 0, 1)
    pad, w = 24, (width - 30) / bins
    bars = "".join(
        f"<rect x='{pad + i * w:.1f}' y='{height - 18 - (c / top) * (height - 30):.1f}' width='{w - 1:.1f}' "
        f"height='{(c / top) * (height - 30):.1f}' fill='#1976d2'><title>{edges[i]:.2f}-{edges[i + 1]:.2f}: {c}"
        "</title></rect>" for i, c in enumerate(counts))
    axis = (f"<line x1='{pad}' y1='{height - 18}' x2='{width - 6}' y2='{height - 18}' stroke='#888'/>"
            f"<text x='{pad}' y='{height - 4}' font-size='10'>0</text>"
            f"<text x='{width - 12}' y='{height - 4}' font-size='10'>1</text>"
            f"<text x='{width / 2 - 30}' y='{height - 4}' font-size='10'>{label}</text>"
            f"<text x='2' y='12' font-size='10'>{top}</text>")
    return f"<svg width='{width}' height='{height}' role='img' aria-label='distribution of scores'>{bars}{axis}</svg>"


def _svg_curve(curve: pd.DataFrame, tau: float, width: int = 320, height: int = 140) -> str:
    pad_l, pad_b, pad_t = 30, 18, 8
    pw, ph = width - pad_l - 8, height - pad_b - pad_t

    def xy(x, y):
        return pad_l + x * pw, pad_t + (1 - y) * ph

    paths = []
    for col, colour in (("line_accuracy", "#2e7d32"), ("score_mae", "#d32f2f")):
        pts = [xy(x, y) for x, y in zip(curve["tau"], curve[col], strict=True) if np.isfinite(y)]
        if pts:
            paths.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='"
                         + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + "'/>")
    x, _ = xy(tau, 0)
    frame = (f"<rect x='{pad_l}' y='{pad_t}' width='{pw}' height='{ph}' fill='none' stroke='#bbb'/>"
             f"<line x1='{x:.1f}' y1='{pad_t}' x2='{x:.1f}' y2='{pad_t + ph}' stroke='#1976d2' stroke-dasharray='3,2'/>"
             f"<text x='2' y='{pad_t + 8}' font-size='10'>1</text><text x='2' y='{pad_t + ph}' font-size='10'>0</text>"
             f"<text x='{pad_l}' y='{height - 4}' font-size='10'>tau 0</text>"
             f"<text x='{width - 30}' y='{height - 4}' font-size='10'>1</text>"
             f"<text x='{pad_l + 40}' y='{height - 4}' font-size='10' fill='#2e7d32'>line accuracy</text>"
             f"<text x='{pad_l + 130}' y='{height - 4}' font-size='10' fill='#d32f2f'>score MAE</text>")
    return (f"<svg width='{width}' height='{height}' role='img' aria-label='accuracy against tau'>"
            f"{frame}{''.join(paths)}</svg>")


class ThresholdExplorer(W.VBox):
    """Sliders for the crowd model's parameters over a fixed set of labels.

    ``labels``: a label log (``program_id, line, annotator, label`` [+ ``order``]) or a
    ``LabelStore`` (its labels, gold and program texts). ``truth``: line truth for accuracy
    (a frame ``program_id, line, truth``/``label`` or a mapping ``program_id -> [+1/-1 ...]``).
    ``gold``: the truth of gold programs, which calibrate as in Algorithm 1; ``programs``:
    ``program_id -> text`` for the lines counted in ``k``; ``prompts``: ``program_id -> prompt``,
    whose lines are not scored (read from a store). ``shape``: the reward shape on show (one of
    ``crlhf.reward.SHAPES``). Keyword arguments set the starting ``CrowdModel`` parameters.

    ``scores`` holds every program's score under the shape on show, ``payments`` what each
    shape would pay each program (``program_id, k, share, all_correct, product``).
    """

    def __init__(self, labels, truth=None, *, gold=None, programs=None, prompts=None, shape: str = "share",
                 **model_kwargs):
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {shape!r} (field 'shape')")
        if isinstance(labels, LabelStore):
            store = labels
            labels = store.labels()
            if gold is None:
                g = store.gold()
                gold = g if len(g) else None
            if programs is None:
                progs = store.programs(text=True)
                programs = dict(zip(progs["program_id"], progs["program"], strict=True))
            if prompts is None:
                prompts = store.program_prompts()
        if not isinstance(labels, pd.DataFrame):
            raise TypeError(f"labels must be a label frame or a LabelStore, got {type(labels).__name__} "
                            "(field 'labels')")
        self.labels, self.truth, self.gold, self.programs, self.prompts = labels, truth, gold, programs, prompts
        start = CrowdModel(**model_kwargs)  # the model's own checks and defaults
        self._fixed = {k: v for k, v in model_kwargs.items()
                       if k not in ("tau", "lam", "nu", "gold_certainty", "leave_one_out", "reliability")}
        style = {"description_width": "110px"}
        lay = W.Layout(width="420px")
        self.tau = W.FloatSlider(value=start.tau, min=0.0, max=1.0, step=0.01, description="tau",
                                 readout_format=".2f", style=style, layout=lay)
        self.lam = W.FloatLogSlider(value=max(start.lam, 1e-5), base=10, min=-5, max=0, step=0.05, description="lam",
                                    readout_format=".4f", style=style, layout=lay, continuous_update=False)
        self.nu = W.FloatSlider(value=start.nu, min=start.p_min, max=start.p_max, step=0.01,
                                description="nu (p_i start)",
                                style=style, layout=lay, continuous_update=False)
        self.gold_certainty = W.FloatSlider(value=start.gold_certainty, min=0.51, max=0.999, step=0.001,
                                            description="gold_certainty", readout_format=".3f", style=style,
                                            layout=lay, continuous_update=False)
        self.leave_one_out = W.Checkbox(value=start.leave_one_out, description="leave one out", indent=False)
        self.reliability = W.ToggleButtons(options=list(RELIABILITY_METHODS), value=start.reliability,
                                           description="p_i rule",
                                           style={"description_width": "110px", "button_width": "60px"})
        self.shape = W.ToggleButtons(options=list(SHAPES), value=shape, description="reward shape",
                                     style={"description_width": "110px", "button_width": "80px"})
        self.summary = W.HTML()
        self.histogram = W.HTML()
        self.curve_view = W.HTML()
        self.model: CrowdModel | None = None
        self.result: ReplayResult | None = None
        self.scores = pd.DataFrame()
        self.payments = pd.DataFrame()
        self.curve: pd.DataFrame | None = None
        self.metrics: dict = {}
        self.last_update_seconds = 0.0
        self.n_replays = 0
        for w in (self.lam, self.nu, self.gold_certainty, self.leave_one_out, self.reliability):
            w.observe(self._on_model_change, "value")
        self.tau.observe(self._on_tau, "value")
        self.shape.observe(self._on_tau, "value")
        controls = W.VBox([self.tau, self.shape, self.lam, self.nu, self.gold_certainty, W.HBox([self.leave_one_out]),
                           self.reliability])
        views = W.HBox([self.histogram, self.curve_view]) if truth is not None else W.HBox([self.histogram])
        super().__init__([W.HBox([controls, self.summary]), views])
        self.add_class("crlhf-threshold-explorer")
        self.update()

    # ------------------------------------------------------------------ computing
    def params(self) -> dict:
        """The ``CrowdModel`` parameters the sliders stand at."""
        return dict(self._fixed, tau=float(self.tau.value), lam=float(self.lam.value), nu=float(self.nu.value),
                    gold_certainty=float(self.gold_certainty.value), leave_one_out=bool(self.leave_one_out.value),
                    reliability=self.reliability.value)

    def update(self, replay: bool = True) -> None:
        """Recompute (replaying the labels when ``replay``) and redraw."""
        start = time.perf_counter()
        if replay or self.result is None:
            self.model = CrowdModel(**self.params())
            self.result = self.model.replay(self.labels, gold=self.gold, programs=self.programs)
            self.n_replays += 1
        lines = self.result.lines
        if self.gold is not None:  # gold programs calibrate; they are not what the crowd scores
            scores = self.result.scores
            lines = lines[~lines["program_id"].isin(set(scores.loc[scores["gold"], "program_id"]))]
        tau, shape = float(self.tau.value), self.shape.value
        where = {"prompts": self.prompts, "programs": self.programs}
        self.scores = program_scores(lines, tau, shape, **where)
        self.payments = shape_table(lines, tau, **where)
        n = len(self.scores)
        self.metrics = {"tau": tau, "shape": shape, "programs": int(n),
                        "mean_score": float(self.scores["score"].mean()) if n else float("nan"),
                        "share_all_correct": float((self.scores["score"] == 1).mean()) if n else float("nan")}
        self.metrics.update({f"mean_{s}": float(self.payments[s].mean()) if n else float("nan") for s in SHAPES})
        if self.truth is not None:
            self.curve = threshold_curve(lines, self.truth, TAUS, shape, **where)
            here = threshold_curve(lines, self.truth, [tau], shape, **where).iloc[0]
            self.metrics.update(line_accuracy=float(here["line_accuracy"]), score_mae=float(here["score_mae"]))
        assert self.model is not None  # made with the result
        rel = self.model.reliabilities
        self.metrics.update(p_min=float(rel.min()) if len(rel) else float("nan"),
                            p_max=float(rel.max()) if len(rel) else float("nan"))
        self._render()
        self.last_update_seconds = time.perf_counter() - start

    def _on_model_change(self, change) -> None:
        self.update(replay=True)

    def _on_tau(self, change) -> None:
        self.update(replay=False)

    # ------------------------------------------------------------------ drawing
    def _render(self) -> None:
        m = self.metrics
        rows = [("programs scored", f"{m['programs']}"), (f"mean score s ({m['shape']})", f"{m['mean_score']:.3f}"),
                ("programs with s = 1", f"{m['share_all_correct']:.1%}"),
                ("mean pay: share / all correct / product",
                 " / ".join(f"{m['mean_' + s]:.3f}" for s in SHAPES))]
        if "line_accuracy" in m:
            rows += [("line accuracy (posterior &gt; tau vs truth)", f"{m['line_accuracy']:.3f}"),
                     ("score MAE vs true share correct", f"{m['score_mae']:.3f}")]
        rows += [("p_i range", f"{m['p_min']:.3f} &ndash; {m['p_max']:.3f}")]
        self.summary.value = ("<table class='crlhf-explorer-summary' style='font-size:12px;margin-left:12px'>"
                              + "".join(f"<tr><td>{k}</td>"
                                        f"<td style='text-align:right;padding-left:8px'><b>{v}</b></td></tr>"
                                        for k, v in rows) + "</table>")
        self.histogram.value = _svg_histogram(self.scores["score"].to_numpy(dtype=float),
                                              label=f"score s ({m['shape']})")
        if self.curve is not None:
            self.curve_view.value = _svg_curve(self.curve, float(self.tau.value))

    def describe(self) -> str:
        """The numbers on show, as text (for notebooks and logs)."""
        p = self.params()
        head = ", ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}"
                         for k, v in p.items() if k in ("tau", "lam", "nu", "gold_certainty", "leave_one_out",
                                                          "reliability"))
        head += f", shape={self.shape.value}"
        body = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in self.metrics.items() if k not in ("tau", "shape"))
        return f"{head}: {body}"
