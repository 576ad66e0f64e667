"""CrowdDashboard: the crowd's posteriors and reliabilities, live from a ``LabelStore``.

A refresh reads only the labels written since the last one (``labels(since=...)``), appends
them to the log it holds, and brings the crowd model up to date with
``crlhf.replay.IncrementalReplay`` (the incremental form of ``replay_log``, the replay of
``LabelStore.replay``: the latest label of each annotator for each line, programs in order
of their first label, registered annotators first, gold programs calibrating), which replays
only from the first program whose labels changed. Nothing is recomputed when nothing changed. A
background thread refreshes about once a second (``interval``), so the kernel stays free;
:meth:`refresh` does one refresh by hand.

Views: the progress of the store's newest round (the round the RL loop waits on: how many of
its programs have ``labels_per_program`` annotators, ``LabelStore.round_progress``), a per-line
posterior heat map of a chosen program (with every annotator's label) and its reward under each
shape (``crlhf.reward.shape_table``, over the lines the model generated: the prompt's lines of
a stored task are not scored), the ``p_i`` trajectories (matplotlib, as a PNG; the lowest and
highest and the adversarial annotators named), and a leaderboard. Programs go by their readable
names (``crlhf.store.program_name``: task and sample number). ``scores`` holds every program's
reward (``crlhf.reward.program_scores``, the score ``LabelStore.dataset`` exports).
"""

from __future__ import annotations

import html
import io
import threading
import time
import traceback

import ipywidgets as W
import numpy as np
import pandas as pd

from crlhf.crowd import CrowdModel, ReplayResult, latest_labels, program_lines
from crlhf.crowd_views import annotator_summary
from crlhf.replay import IncrementalReplay
from crlhf.reward import program_scores, scored_mask, shape_table
from crlhf.store import LabelStore, program_name

_LOG_COLUMNS = ["program_id", "line", "annotator", "label", "time", "order"]


def _colour(p: float) -> str:
    """Red (0) through white (1/2) to green (1), as a CSS colour."""
    p = float(np.clip(p, 0.0, 1.0))
    if p >= 0.5:
        f = (p - 0.5) * 2
        r, g, b = 255 - f * (255 - 46), 255 - f * (255 - 160), 255 - f * (255 - 67)
    else:
        f = (0.5 - p) * 2
        r, g, b = 255 - f * (255 - 218), 255 - f * (255 - 54), 255 - f * (255 - 51)
    return f"rgb({r:.0f},{g:.0f},{b:.0f})"


class CrowdDashboard(W.VBox):
    """A live view of a label store for the instructor.

    ``store``: the ``LabelStore`` the class writes to. ``interval``: seconds between
    background refreshes (``autostart=False`` or :meth:`stop` to refresh only by hand).
    ``program_id``: the program of the heat map (default: follow the newest labelled one).
    ``plot``: draw the ``p_i`` trajectories (matplotlib; only while their tab is on show, the
    costliest view). ``labels_per_program``: the annotators each program of a round needs (the
    loop's ``LoopConfig.labels_per_program``), the target of the round progress. ``top``: rows
    of the leaderboard and the round table. Other keyword arguments go to
    ``CrowdModel`` (``nu``, ``lam``, ``tau``, ``reliability``, ...).
    """

    def __init__(self, store: LabelStore, *, interval: float = 1.0, autostart: bool = True,
                 program_id: str | None = None, plot: bool = True, top: int = 30, labels_per_program: int = 5,
                 **model_kwargs):
        if not isinstance(store, LabelStore):
            raise TypeError(f"store must be a crlhf.store.LabelStore, got {type(store).__name__} (field 'store')")
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r} (field 'interval')")
        if isinstance(labels_per_program, bool) or not isinstance(labels_per_program, int) or labels_per_program < 1:
            raise ValueError(f"labels_per_program must be an int >= 1, got {labels_per_program!r} "
                             "(field 'labels_per_program')")
        self._replay = IncrementalReplay(**model_kwargs)  # bad parameters fail here, with the model's message
        self.store, self.interval, self.model_kwargs = store, float(interval), dict(model_kwargs)
        self.plot, self.top, self.labels_per_program = bool(plot), int(top), labels_per_program
        self.model: CrowdModel | None = None
        self.result: ReplayResult | None = None
        self.leaderboard = pd.DataFrame()
        self.scores = pd.DataFrame(columns=["program_id", "score", "k"])
        self._prompts: dict[str, str] = {}
        self.refresh_seconds: float | None = None
        self.n_refreshes = 0
        self.error: str | None = None
        self._log = pd.DataFrame({c: pd.Series(dtype=object) for c in _LOG_COLUMNS})
        self._mark: int | None = None
        self._names: list = []
        self._texts: dict[str, str] = {}
        self._display: dict[str, str] = {}  # program_id -> readable name
        self.program_ids: list[str] = []  # the labelled programs, in the heat map's list
        self.round_id: int | None = None  # the round of the progress view (None: no round yet)
        self.round = pd.DataFrame(columns=["program_id", "name", "n_annotators", "complete"])
        self._head: tuple | None = None
        self._gold_ids: set[str] = set()
        self._gold = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._quiet = False
        self._names_read = 0.0
        self.annotators_every = 5.0  # seconds between reads of the registered annotators

        self.status = W.HTML()
        self.round_bar = W.IntProgress(value=0, min=0, max=1, bar_style="info", layout=W.Layout(width="240px"))
        self.round_text = W.HTML()
        self.round_table = W.HTML()
        self.program = W.Dropdown(description="Program", options=[], layout=W.Layout(width="340px"))
        self.follow = W.Checkbox(value=program_id is None, description="follow the newest labels", indent=False)
        self.live = W.ToggleButton(value=False, description="Live", icon="refresh",
                                   tooltip="refresh about once a second")
        self.heatmap = W.HTML()
        self.trajectories = W.Image(format="png", layout=W.Layout(max_width="640px"))
        self.board = W.HTML()
        self.program.observe(self._on_program, "value")
        self.live.observe(self._on_live, "value")
        self._wanted = program_id
        tabs = W.Tab(children=[W.VBox([W.HBox([self.program, self.follow]), self.heatmap]),
                               self.trajectories, self.board, self.round_table])
        for i, name in enumerate(["Posteriors", "Reliabilities p_i", "Leaderboard", "Round"]):
            tabs.set_title(i, name)
        self.tabs = tabs
        self._plot_stale = True
        tabs.observe(self._on_tab, "selected_index")
        super().__init__([W.HBox([self.live, self.status]), W.HBox([self.round_bar, self.round_text]), tabs])
        self.add_class("crlhf-crowd-dashboard")
        self.refresh()
        if autostart:
            self.start()

    # ------------------------------------------------------------------ live refresh
    def start(self) -> None:
        """Refresh in a background thread every ``interval`` seconds."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="crlhf-dashboard", daemon=True)
        self._thread.start()
        if not self.live.value:
            self.live.value = True

    def stop(self) -> None:
        """Stop the background refresh (a refresh under way finishes first)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        if self.live.value:
            self.live.value = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _on_live(self, change) -> None:
        if change["new"]:
            self.start()
        else:
            self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a dashboard must keep going; show what failed
                self.error = traceback.format_exc(limit=3)
                self.status.value = f"<span style='color:#d32f2f'>refresh failed: {html.escape(self.error)}</span>"

    def close(self) -> None:
        if hasattr(self, "_stop"):  # also when __init__ failed half-way
            self.stop()
        super().close()

    # ------------------------------------------------------------------ reading the store
    def refresh(self) -> bool:
        """Read what is new in the store and update every view; returns whether anything changed."""
        with self._lock:
            start = time.perf_counter()
            new = self.store.labels(latest=False, since=self._mark)
            names = self._names
            now = time.monotonic()
            # the registered annotators (a count over the log): every few seconds, or at once
            # when labels name someone new
            if (self.model is None or now - self._names_read >= self.annotators_every
                    or not set(new["annotator"].unique()) <= set(self._names)):
                names = self.store.annotators()["annotator"].tolist()
                self._names_read = now
            changed = self.model is None or len(new) > 0 or names != self._names
            if len(new):
                self._log = new if not len(self._log) else pd.concat([self._log, new], ignore_index=True)
                self._mark = int(new["order"].max())
                missing = set(new["program_id"].unique()) - self._texts.keys()
                if missing:
                    progs = self.store.programs(text=True)
                    self._texts.update(zip(progs["program_id"], progs["program"], strict=True))
                    self._name_programs(progs)
                    self._prompts = self.store.program_prompts()
                    gold_ids = set(progs.loc[progs["gold"], "program_id"])
                    if gold_ids != self._gold_ids:
                        self._gold_ids, self._gold = gold_ids, self.store.gold()
            if changed:
                self._names = names
                gold = self._gold if self._gold is not None and len(self._gold) else None
                model, result = self._replay.update(new, annotators=names, gold=gold, programs=self._texts)
                board = annotator_summary(model, self._log, gold)
                last = self._log.groupby("annotator", sort=False)["time"].max()
                board["last_label"] = board["annotator"].map(last)
                self.model, self.result, self.leaderboard = model, result, board
                self.scores = program_scores(result.lines, model.tau, prompts=self._prompts, programs=self._texts)
                self._update_programs()
                self._render_board()
                self._plot_stale = True
                if self.plot and self.tabs.selected_index == 1:  # drawn when on show
                    self._render_plot()
            head = self.store.head()
            if changed or head != self._head:  # labels arrived, or a round opened / programs came
                self._head = head
                self._update_round(head[0])
            self.refresh_seconds = time.perf_counter() - start
            self.n_refreshes += 1
            self._render_status()
            return changed

    # ------------------------------------------------------------------ names and rounds
    def _name_programs(self, progs: pd.DataFrame) -> None:
        """Readable names (``program_name``) of the programs in ``progs``, unique in the list."""
        names = {pid: program_name(pid, None if pd.isna(tid) else tid, None if pd.isna(r) else int(r), bool(g))
                 for pid, tid, r, g in zip(progs["program_id"], progs["task_id"], progs["round_id"], progs["gold"],
                                           strict=True)}
        repeated = pd.Series(list(names.values())).duplicated(keep=False).to_numpy()
        self._display = {pid: f"{name} ({pid})" if rep else name
                         for (pid, name), rep in zip(names.items(), repeated, strict=True)}

    def name_of(self, program_id: str) -> str:
        """The readable name the dashboard shows for ``program_id``."""
        return self._display.get(program_id, program_id)

    def _update_round(self, round_id: int | None) -> None:
        """The progress of round ``round_id`` (every ordinary program before the first round)."""
        k = self.labels_per_program
        frame = self.store.round_progress(round_id, min_annotators=k)
        self.round_id, self.round = round_id, frame
        done, total = int(frame["complete"].sum()), len(frame)
        what = f"Round {round_id}" if round_id is not None else "All programs (no round yet)"
        waiting = "" if done == total else f" &middot; waiting for {total - done}"
        self.round_bar.max, self.round_bar.value = max(total, 1), done
        self.round_bar.bar_style = "success" if total and done == total else "info"
        self.round_text.value = (f"<span class='crlhf-round-progress'><b>{what}</b>: {done} of {total} programs "
                                 f"have {k} label{'s' * (k != 1)}{waiting}</span>")
        order = frame.sort_values(["complete", "n_annotators"], kind="stable")  # the ones still waiting first
        shown = order.head(self.top)
        cell = "padding:2px 10px"
        rows = []
        for name, pid, n, ok in zip(shown["name"], shown["program_id"], shown["n_annotators"], shown["complete"],
                                    strict=True):
            width = 100 * min(int(n), k) / k
            bar = (f"<div style='width:120px;height:9px;background:#e0e0e0;border-radius:2px'>"
                   f"<div style='width:{width:.0f}%;height:9px;border-radius:2px;"
                   f"background:{'#2ea043' if ok else '#1976d2'}'></div></div>")
            rows.append(f"<tr data-program-id='{html.escape(pid)}'><td style='{cell}' title='{html.escape(pid)}'>"
                        f"{html.escape(name)}</td><td style='{cell};text-align:right'>{int(n)} / {k}</td>"
                        f"<td style='{cell}'>{bar}</td></tr>")
        more = total - len(shown)
        self.round_table.value = (
            f"<div><b>{what}</b>: {done} of {total} programs have labels from {k} annotator{'s' * (k != 1)} "
            "(what the RL loop waits for).</div>"
            "<table class='crlhf-round-table' style='border-collapse:collapse;font-size:12px'>"
            f"<tr><th style='{cell};text-align:left'>program</th><th style='{cell};text-align:right'>annotators"
            f"</th><th style='{cell};text-align:left'>progress</th></tr>" + "".join(rows) + "</table>"
            + (f"<div>... and {more} more (complete first hidden)</div>" if more > 0 else ""))

    # ------------------------------------------------------------------ views
    def _update_programs(self) -> None:
        assert self.result is not None  # called by the refresh that read one
        lines = self.result.lines
        pids = list(pd.unique(lines["program_id"])) if len(lines) else []
        if pids != self.program_ids:
            current = self.program.value
            self._quiet = True  # new options reset the value: no heat map for that
            try:
                self.program.options = [(self.name_of(pid), pid) for pid in pids]
                if current in pids:
                    self.program.value = current
            finally:
                self._quiet = False
        target = None
        if self._wanted is not None and self._wanted in self._texts:
            target, self._wanted = self._wanted, None
        elif self.follow.value and len(self._log):
            target = self._log["program_id"].iloc[-1]
        if target is not None and target in pids and target != self.program.value:
            self.program.value = target  # renders through _on_program
        else:
            self._render_heatmap()
        self.program_ids = pids  # last: a reader that sees a program listed sees its heat map too

    def _on_program(self, change) -> None:
        if change["new"] is not None and self.result is not None and not self._quiet:
            with self._lock:
                self._render_heatmap()

    def _on_tab(self, change) -> None:
        if change["new"] == 1 and self._plot_stale and self.plot and self.model is not None:
            with self._lock:
                self._render_plot()

    def select(self, program_id: str) -> None:
        """Show ``program_id`` in the heat map (stops following the newest labels)."""
        with self._lock:
            self.follow.value = False
            if program_id not in self.program_ids:
                raise ValueError(f"program {program_id!r} has no labels yet (field 'program_id')")
            self.program.value = program_id
            self._render_heatmap()

    def posteriors_of(self, program_id: str) -> pd.DataFrame:
        """The heat map's numbers: per line of ``program_id``: ``line, code, posterior, counted,
        scored`` (counted in the reward: generated, not given with the prompt) and one column
        per annotator who labelled it (+1/-1, 0 = not labelled)."""
        with self._lock:
            if self.result is None:
                raise ValueError("nothing read yet: call refresh() first")
            lines = self.result.lines
            rows = lines[lines["program_id"] == program_id]
            if not len(rows):
                raise ValueError(f"program {program_id!r} has no labels yet (field 'program_id')")
            text = program_lines(self._texts.get(program_id, ""))
            out = pd.DataFrame({"line": rows["line"].to_numpy(),
                                "code": [text[i] if i < len(text) else "" for i in rows["line"]],
                                "posterior": rows["posterior"].to_numpy(), "counted": rows["counted"].to_numpy(),
                                "scored": scored_mask(rows, self._prompts, self._texts)})
            log = self._log[self._log["program_id"] == program_id]
            log = latest_labels(log)
            wide = log.pivot(index="line", columns="annotator", values="label")
            for name in wide.columns:
                out[name] = wide[name].reindex(out["line"]).fillna(0).astype(np.int64).to_numpy()
            return out

    def _render_heatmap(self) -> None:
        pid = self.program.value
        if pid is None or self.result is None or self.model is None:
            self.heatmap.value = "<i>No labels yet.</i>"
            return
        frame = self.posteriors_of(pid)
        names = [c for c in frame.columns if c not in ("line", "code", "posterior", "counted", "scored")]
        rel = self.model.reliabilities
        tau = self.model.tau
        lines = self.result.lines
        row = shape_table(lines[lines["program_id"] == pid], tau, prompts=self._prompts,
                          programs=self._texts).iloc[0]
        head = "".join(f"<th title='p_i = {rel[n]:.2f}' style='writing-mode:vertical-rl;font-weight:normal'>"
                       f"{html.escape(str(n))}</th>" for n in names)
        body = []
        marks = {1: ("#2ea043", "&#10003;"), -1: ("#da3633", "&#10007;")}
        votes = frame[names].to_numpy() if names else np.zeros((len(frame), 0), dtype=np.int64)
        for j, (line, code, post, counted) in enumerate(zip(frame["line"], frame["code"], frame["posterior"],
                                                            frame["scored"], strict=True)):
            cells = "".join("<td style='text-align:center;color:{}'>{}</td>".format(*marks.get(int(v), ("#999", "")))
                            for v in votes[j])
            cell = (f"<td style='background:{_colour(post)};text-align:right;padding:0 6px'>{post:.3f}</td>"
                    if counted else "<td></td>")
            body.append(f"<tr data-line='{line}'><td style='color:#999;text-align:right'>{line + 1}</td>"
                        f"<td><code style='white-space:pre'>{html.escape(code)}</code></td>{cell}{cells}</tr>")
        gold = " (gold)" if pid in self._gold_ids and not self.name_of(pid).startswith("gold") else ""
        self.heatmap.value = (
            f"<div class='crlhf-heatmap' data-program-id='{html.escape(pid)}'>"
            f"<div><b title='{html.escape(pid)}'>{html.escape(self.name_of(pid))}</b>{gold}: "
            f"score s = {row['share']:.3f} "
            f"({int(round(row['share'] * row['k']))} of {int(row['k'])} scored lines above tau = {tau:g}); "
            f"all correct {row['all_correct']:.0f}, product {row['product']:.3f}; "
            f"{len(names)} annotator(s)</div>"
            "<table style='border-collapse:collapse;font-size:12px'>"
            f"<tr><th>#</th><th style='text-align:left'>line</th><th>P(correct)</th>{head}</tr>"
            + "".join(body) + "</table></div>")

    def _render_board(self) -> None:
        assert self.model is not None  # called by the refresh that made one
        b = self.leaderboard.head(self.top)
        cap = self.model.p_max
        at_cap = self.leaderboard["reliability"].to_numpy() >= cap - 1e-9
        left, right = "padding:2px 10px;text-align:left", "padding:2px 10px;text-align:right"
        line = "border-bottom:1px solid #ddd"
        rows = []
        for i, r in enumerate(b.itertuples(index=False), 1):
            gold = "" if np.isnan(r.gold_accuracy) else f"{r.gold_accuracy:.2f} ({r.gold_lines})"
            last = "" if pd.isna(r.last_label) else pd.Timestamp(r.last_label).tz_convert(None).strftime("%H:%M:%S")
            capped = "&thinsp;*" if r.reliability >= cap - 1e-9 else ""
            rows.append(f"<tr style='{line}'><td style='{right}'>{i}</td><td style='{left}'>"
                        f"{html.escape(str(r.annotator))}</td>"
                        f"<td style='background:{_colour(r.reliability)};{right}'>{r.reliability:.3f}{capped}</td>"
                        f"<td style='{right}'>{r.n_labels}</td><td style='{right}'>{r.n_programs}</td>"
                        f"<td style='{right}'>{gold}</td><td style='{left}'>{last}</td></tr>")
        more = len(self.leaderboard) - len(b)
        n_cap = int(at_cap.sum())
        note = (f"<div class='crlhf-cap-note' style='font-size:12px;margin-top:4px'>* at the cap: p_i is kept "
                f"within [p_min, p_max] = [{self.model.p_min:g}, {cap:g}] (CrowdModel), so the {n_cap} "
                f"annotator{'s' * (n_cap != 1)} who reached p_max tie; among them more labels rank "
                "higher.</div>" if n_cap else "")
        head = "".join(f"<th style='{right if num else left};{line}'>{name}</th>" for name, num in (
            ("#", True), ("annotator", False), ("p_i", True), ("labels", True), ("programs", True),
            ("gold agreement (lines)", True), ("last label (UTC)", False)))
        self.board.value = (
            "<table class='crlhf-leaderboard' style='border-collapse:collapse;font-size:12px'>"
            f"<tr>{head}</tr>" + "".join(rows) + "</table>"
            + (f"<div>... and {more} more</div>" if more > 0 else "") + note)

    def _render_plot(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from crlhf.plots import plot_reliabilities

        assert self.model is not None  # called by the refresh that made one
        fig = Figure(figsize=(7, 3.6), dpi=72)
        FigureCanvasAgg(fig)
        fig.subplots_adjust(left=0.09, right=0.98, bottom=0.13, top=0.9)
        plot_reliabilities(self.model.history, p_max=self.model.p_max, ax=fig.add_subplot(),
                           title="p_i by program, replayed from the store", tight=False, max_points=400)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        self.trajectories.value = buf.getvalue()
        self._plot_stale = False

    def _render_status(self) -> None:
        self.status.value = (
            f"<span class='crlhf-dashboard-status'>{len(self._names)} annotators &middot; "
            f"{len(self.program_ids)} programs labelled &middot; {len(self._log)} labels in the log "
            f"&middot; refreshed {time.strftime('%H:%M:%S')} in {1000 * (self.refresh_seconds or 0):.0f} ms</span>")
