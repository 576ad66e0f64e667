"""Matplotlib figures of the kit. Each ``plot_*`` returns a Figure; ``save`` writes it as a PNG
next to a JSON file holding the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["reliability_trajectories", "notable_annotators", "plot_reliabilities", "plot_posterior_vs_log_odds", "save",
           "plot_passk", "plot_passk_before_after", "plot_threshold_curve"]


def _pyplot():
    import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves

    return plt


def reliability_trajectories(history: pd.DataFrame) -> pd.DataFrame:
    """A wide frame (step x annotator) of ``p_i`` from ``CrowdModel.history``, forward-filled;
    NaN before an annotator was registered."""
    missing = {"step", "annotator", "reliability"} - set(history.columns)
    if missing:
        raise ValueError(f"history lacks column(s) {sorted(missing)}")
    last = history.groupby(["step", "annotator"], sort=False).reliability.last().unstack()
    order = pd.unique(history["annotator"])
    return last.sort_index().ffill().reindex(columns=order)


def notable_annotators(final: pd.Series, max_labels: int = 6) -> dict[str, str]:
    """The annotators a p_i plot names, from their final ``p_i`` (``annotator -> p_i``): every
    one below 0.5 (they label against the truth: an adversary), lowest first, then the lowest
    and the highest, at most ``max_labels`` in all. Returns ``annotator -> why``."""
    final = pd.Series(final, dtype=float).dropna().sort_values(kind="stable")
    if final.empty:
        return {}
    out = {str(name): "p_i < 0.5" for name in final.index[final < 0.5]}
    top = final[final >= final.iloc[-1] - 1e-9]  # the highest, and any tied with it (e.g. at the cap)
    lowest, highest, tied = str(final.index[0]), str(top.index[0]), len(top) - 1
    out[lowest] = "lowest p_i"
    picked = dict(list(out.items())[:max(int(max_labels) - 1, 1)])
    picked.setdefault(highest, "highest p_i" + (f" (tied with {tied} more)" if tied else ""))
    return picked


def plot_reliabilities(history: pd.DataFrame, truth: dict | pd.Series | None = None, title=None,
                       ax=None, tight: bool = True, max_points: int | None = None, *,
                       calibration_end: float | None = None, kinds: dict | pd.Series | None = None,
                       p_max: float | None = None, label: bool = True):
    """``p_i`` of every annotator against the step (program) count.

    Only the annotators that matter are named (:func:`notable_annotators`: lowest and highest
    final ``p_i``, and any below 0.5), in the legend with their final ``p_i`` and, from
    ``kinds`` (``annotator -> kind``, e.g. ``Crowd.summary().kind``), what they are; the rest
    are grey. With ``truth`` (true accuracies) every line is coloured by it instead. A dashed
    vertical line marks ``calibration_end`` (the step where the gold calibration ends; by default
    the last step of round 0 when ``history`` has the loop's ``round`` column). With ``p_max``
    (the cap of ``p_i``, ``CrowdModel.p_max``) a dotted line marks the cap and the legend says
    how many annotators sit on it: they are tied there, however much better some of them are.
    ``tight=False`` skips ``tight_layout`` and ``max_points`` keeps at most that many steps
    (evenly spaced, the last one kept): both for live views that redraw every second;
    ``label=False`` draws no legend."""
    plt = _pyplot()
    wide = reliability_trajectories(history)
    if calibration_end is None and "round" in history.columns and (history["round"] > 0).any():
        calib = history.loc[history["round"] == 0, "step"]
        calibration_end = float(calib.max()) if len(calib) else None
    final = wide.ffill().iloc[-1] if len(wide) else pd.Series(dtype=float)
    notable = notable_annotators(final) if label else {}
    if max_points is not None and len(wide) > max_points:
        keep = np.unique(np.linspace(0, len(wide) - 1, int(max_points)).round().astype(int))
        wide = wide.iloc[keep]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 5))
    else:
        fig = ax.figure
    cmap = plt.get_cmap("viridis")
    highlight = iter(["C3", "C0", "C1", "C4", "C2", "C5", "C6"])
    kinds = {} if kinds is None else dict(kinds)
    others = [name for name in wide.columns if str(name) not in notable]
    for i, name in enumerate(others):
        colour = "0.7" if truth is None or name not in truth else cmap(float(np.clip((truth[name] - 0.3) / 0.7, 0, 1)))
        legend = f"{len(others)} other annotators" if i == 0 and notable and truth is None else None
        ax.plot(wide.index, wide[name], lw=0.8, color=colour, alpha=0.6 if truth is None else 0.85, label=legend)
    column = {str(c): c for c in wide.columns}
    named = []
    for key, why in notable.items():
        name, colour = column[key], next(highlight)
        if truth is not None and name in truth:
            colour = cmap(float(np.clip((truth[name] - 0.3) / 0.7, 0, 1)))
        kind = f" ({kinds[name]})" if name in kinds else ""
        named += ax.plot(wide.index, wide[name], lw=2.0, color=colour, zorder=3,
                         label=f"{name}{kind}: p_i {final[name]:.2f}, {why}")
    ax.set_xlabel("step (programs ingested)")
    ax.set_ylabel("reliability $p_i$")
    ax.set_ylim(0, 1)
    ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    if p_max is not None:
        capped = int((final >= float(p_max) - 1e-9).sum())
        note = f"cap p_max = {p_max:g}" + (f": {capped} annotators tied on it" if capped > 1 else "")
        ax.axhline(float(p_max), color="black", lw=0.6, ls=":", label=note if label else None)
    if calibration_end is not None:
        ax.axvline(float(calibration_end), color="black", lw=0.9, ls="--",
                   label="end of gold calibration" if label else None)
    if truth is not None:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0.3, 1.0))
        fig.colorbar(sm, ax=ax, label="true accuracy")
    handles, labels = ax.get_legend_handles_labels()
    if label and handles:
        order = sorted(range(len(handles)), key=lambda i: handles[i] not in named)  # named annotators first
        where = dict(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2) if tight else dict(loc="lower left")
        ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7, **where)  # below: no line hidden
    ax.set_title(title or "Annotator reliabilities")
    if tight:
        fig.tight_layout()
    return fig


def plot_posterior_vs_log_odds(ax=None):
    """The posterior ``expit(S)`` against the summed log-odds ``S`` of eq (7)."""
    from .bayes import expit

    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    s = np.linspace(-8, 8, 401)
    ax.plot(s, expit(s))
    ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax.axvline(0.0, color="grey", lw=0.6, ls=":")
    ax.set_xlabel(r"$S = \mathrm{logit}(p_0) + \sum_i \epsilon_i\,\mathrm{logit}(p_i)$")
    ax.set_ylabel("P(line correct)")
    fig.tight_layout()
    return fig


def save(fig, path: str | Path, data) -> tuple[Path, Path]:
    """Write ``fig`` to ``path`` (PNG) and ``data`` to the same path with a ``.json`` suffix."""
    png = Path(path).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    out = png.with_suffix(".json")
    out.write_text(json.dumps(_jsonable(data), indent=1))
    return png, out


def _jsonable(data):
    if isinstance(data, pd.DataFrame):
        return json.loads(data.to_json(orient="split"))
    if isinstance(data, pd.Series):
        return json.loads(data.to_json())
    if isinstance(data, dict):
        return {str(k): _jsonable(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_jsonable(v) for v in data]
    if isinstance(data, np.ndarray):
        return data.tolist()
    if isinstance(data, np.generic):
        return data.item()
    return data


def plot_passk(passk: pd.DataFrame, label: str | None = None, ax=None, band: bool = False, **style):
    """pass@k against k, one line per temperature (``passk``: ``temperature, k, pass_at_k``,
    as in ``EvalResult.passk``); ``label`` prefixes the legend, to compare runs on one axis.

    Each temperature keeps its hue (``C0, C1, ...`` by rank among the frame's temperatures), so
    two calls on one axis pair up: pass ``ls="--"`` for one of them. ``band=True`` shades the
    ``lo`` to ``hi`` interval (the 95% bootstrap interval of ``EvalResult.passk``)."""
    missing = {"temperature", "k", "pass_at_k"} - set(passk.columns)
    if band:
        missing |= {"lo", "hi"} - set(passk.columns)
    if missing:
        raise ValueError(f"passk lacks column(s) {sorted(missing)}")
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
    else:
        fig = ax.figure
    temps = sorted(passk["temperature"].unique())
    for temp, g in passk.sort_values("k").groupby("temperature"):
        name = f"T={temp:g}" if label is None else f"{label}, T={temp:g}"
        colour = style.get("color") or f"C{temps.index(temp) % 10}"
        ax.plot(g.k, g.pass_at_k, marker="o", label=name, **{**style, "color": colour})
        if band:
            ax.fill_between(g.k, g.lo, g.hi, color=colour, alpha=0.12, lw=0)
    ax.set_xscale("log")
    ks = sorted(int(k) for k in passk["k"].unique())
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_passk_before_after(before: pd.DataFrame, after: pd.DataFrame, ax=None,
                            labels: tuple[str, str] = ("baseline", "w/cRLHF"), band: bool = True):
    """pass@k against k before and after training on one axis (:func:`plot_passk` twice): one
    hue per temperature for both, ``before`` dashed and ``after`` solid, and with ``band`` each
    line's ``lo``-``hi`` interval shaded when the frames carry it (``EvalResult.passk``, or
    :func:`crlhf.report.combine_seeds` for several seeds, where the band is ± one std)."""
    for frame, what in ((before, "before"), (after, "after")):
        missing = {"temperature", "k", "pass_at_k"} - set(frame.columns)
        if missing:
            raise ValueError(f"{what} lacks column(s) {sorted(missing)}")
    temps = sorted(set(before.temperature) | set(after.temperature))
    fig = None
    for frame, label, ls in ((before, labels[0], "--"), (after, labels[1], "-")):
        has_band = band and {"lo", "hi"} <= set(frame.columns) and frame["k"].nunique() > 1
        for temp, g in frame.groupby("temperature"):
            fig = plot_passk(g, label=label, ax=ax, band=has_band, ls=ls, color=f"C{temps.index(temp) % 10}")
            ax = fig.axes[0]
    ax.set_xlabel("k (samples drawn per task)")
    ax.set_ylabel("pass@k (share of tasks solved)")
    return fig


def plot_threshold_curve(curves, tau: float | None = None, ax=None):
    """Line accuracy and score MAE against the threshold ``tau`` of ``s = c/k``.

    ``curves``: one frame from ``crlhf.crowd_views.threshold_curve`` or a mapping ``label -> frame``
    (several crowd models on one axis); ``tau`` draws a marker at the threshold in use."""
    if isinstance(curves, pd.DataFrame):
        curves = {None: curves}
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    else:
        fig = ax.figure
    for i, (name, curve) in enumerate(curves.items()):
        missing = {"tau", "line_accuracy", "score_mae"} - set(curve.columns)
        if missing:
            raise ValueError(f"curve lacks column(s) {sorted(missing)}: pass crlhf.crowd_views.threshold_curve(...)")
        colour = f"C{i}"
        suffix = "" if name is None else f" ({name})"
        ax.plot(curve["tau"], curve["line_accuracy"], color=colour, label=f"line accuracy{suffix}")
        ax.plot(curve["tau"], curve["score_mae"], color=colour, ls="--", label=f"score MAE{suffix}")
    if tau is not None:
        ax.axvline(tau, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(r"threshold $\tau$ (a line counts as correct when P > $\tau$)")
    ax.set_ylabel("accuracy / MAE")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
