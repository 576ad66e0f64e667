"""A simulated class: students who label a ``LabelStore``'s programs through the classroom's
path, in a background thread, while the RL loop waits for their labels.

Each student is a :class:`crlhf.simulate.SimulatedAnnotator` of a :class:`~crlhf.simulate.Crowd`
with a *page*: what a student's browser drives. :class:`StorePage` makes the store calls of
``widgets.session.AnnotationSession`` (``register_annotator``, ``next_program`` with the
classroom's options, ``add_labels`` with the token and client label ids);
:class:`SessionPage` drives a real ``AnnotationSession`` (e.g. the one ``ClassroomApp.sign_up``
opens) as its front end does, by setting the line annotator's ``labels``, ``submitted`` and
``next_requested``. A student knows the line truth of what it labels (``truth``: the tasks,
whose tests run in the class's own :class:`crlhf.sandbox.Sandbox`, or a function) and labels
each counted line (non-blank, non-comment) +1/-1 with its sensitivity and specificity, each
line with probability ``coverage`` (at least one).

The class works round by round, so that a run is reproducible whatever the timing: it waits
until a round's programs are in the store (the loop adds them in one transaction), then the
students take turns in a fixed order, each loading its next program of that round (gold
programs first, ``n_gold`` of them) just before labelling it, with ``max_annotators =
labels_per_program`` as ``crlhf classroom --max-annotators`` sets it, until no student gets a
program. Every program of the round then has exactly ``labels_per_program`` annotators, and
which student labels which program depends only on the store and the seed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from .crowd import counted_lines, program_lines
from .simulate import Crowd
from .store import LabelStore, Program

if TYPE_CHECKING:
    from .sandbox import Sandbox

__all__ = ["Page", "StorePage", "SessionPage", "task_truth", "SimulatedClass", "truth_table"]

WRITE_COLUMNS = ("order", "round_id", "annotator", "program_id", "gold", "n_labels")
FILLING_COLUMNS = ("round_id", "programs", "complete", "min_annotators", "max_annotators", "labels",
                   "students", "gold_labels")


class Page(Protocol):
    """What a simulated student drives: its queue in the store."""

    annotator: str

    def load(self, round_id: int | None) -> Program | None:
        """The next program of the student's queue (gold first, then ``round_id``'s), or None."""

    def submit(self, labels: Sequence[int] | np.ndarray) -> None:
        """Store one label per line of the loaded program (+1, -1, or 0 for none)."""


class StorePage:
    """A student's page as the store sees it: ``AnnotationSession``'s store calls, no widgets.

    Registers ``annotator`` (or continues as the owner of ``token``); ``n_gold`` and
    ``max_annotators`` go to ``LabelStore.next_program`` as the classroom's options do."""

    def __init__(self, store: LabelStore, annotator: str | None = None, *, token: str | None = None,
                 n_gold: int | None = 5, max_annotators: int | None = None):
        if not isinstance(store, LabelStore):
            raise TypeError(f"store must be a crlhf.store.LabelStore, got {type(store).__name__} (field 'store')")
        if token is None:
            if annotator is None:
                raise ValueError("give an annotator name to register, or a token (field 'annotator')")
            token = store.register_annotator(annotator)
        self.store, self._token = store, token
        self.annotator = store.annotator_of(token)
        self.n_gold, self.max_annotators = n_gold, max_annotators
        self.program: Program | None = None

    def load(self, round_id: int | None = None) -> Program | None:
        self.program = self.store.next_program(self.annotator, n_gold=self.n_gold, round_id=round_id,
                                               max_annotators=self.max_annotators)
        return self.program

    def submit(self, labels: Sequence[int] | np.ndarray) -> None:
        prog = self.program
        if prog is None:
            raise RuntimeError(f"{self.annotator}: no program is loaded")
        submission = uuid.uuid4().hex
        rows = [{"program_id": prog.program_id, "line": i, "label": int(v), "client_label_id": f"{submission}-1-{i}"}
                for i, v in enumerate(labels) if v in (1, -1)]
        self.store.add_labels(self._token, rows)


class SessionPage:
    """Drives an ``AnnotationSession`` as its browser front end does (``set_state`` of the line
    annotator's ``labels``, then ``submitted``, then ``next_requested`` after gold feedback).
    ``load`` serves the given round (the session's ``round_id``, as ``crlhf classroom --round``)."""

    def __init__(self, session):
        for name in ("annotator", "next_program", "line_annotator"):
            if not hasattr(session, name):
                raise TypeError(f"session must be a widgets.session.AnnotationSession (it lacks {name})")
        self.session = session
        self.annotator = session.annotator

    def load(self, round_id: int | None = None) -> Program | None:
        self.session.round_id = round_id
        return self.session.next_program()

    def submit(self, labels: Sequence[int] | np.ndarray) -> None:
        ann = self.session.line_annotator
        pid = ann.program_id
        ann.set_state({"labels": [int(v) for v in labels]})
        ann.set_state({"submitted": True})
        if ann.message_kind == "error":
            raise RuntimeError(f"{self.annotator}: the page could not save {pid}: {ann.message}")
        if ann.submitted and ann.feedback:  # gold feedback on show: the student moves on
            ann.set_state({"next_requested": True})


def task_truth(tasks: Sequence, timeout: float = 3.0) -> Callable:
    """A truth function for :class:`SimulatedClass`: the line truth (``crlhf.tasks.line_truth``)
    of programs of these tasks, after their tests ran in the sandbox the class passes."""
    by_id = {t.task_id: t for t in tasks}
    if not by_id:
        raise ValueError("tasks is empty: the students' line truth comes from the tasks' tests")
    return _TaskTruth(by_id, timeout)


class _TaskTruth:
    """The truth function :func:`task_truth` returns; it asks :class:`SimulatedClass` for a sandbox."""

    needs_sandbox = True

    def __init__(self, by_id: dict, timeout: float):
        self.by_id, self.timeout = by_id, timeout

    def __call__(self, programs: pd.DataFrame, sandbox) -> dict:
        from .tasks import line_truth

        unknown = sorted(set(programs["task_id"].dropna()) - set(self.by_id)) + (
            ["(none)"] if programs["task_id"].isna().any() else [])
        if unknown:
            raise ValueError(f"programs of task {unknown[0]!r} are in the store, but the simulated class was "
                             f"not given that task (field 'truth')")
        items = [self.by_id[t].item_for_program(text)
                 for t, text in zip(programs["task_id"], programs["program"], strict=True)]
        results = sandbox.check_many(items, timeout=self.timeout, progress=False)
        return {pid: line_truth(text, self.by_id[t], passed=bool(r.passed))
                for pid, t, text, r in zip(programs["program_id"], programs["task_id"], programs["program"], results,
                                           strict=True)}


class SimulatedClass:
    """Students of ``crowd`` labelling ``store`` in a background thread (see the module doc).

    ``truth``: the tasks of the store's programs (their tests give the line truth, in a
    one-worker sandbox the class starts), or a function ``truth(programs, sandbox)`` mapping the
    ``program_id`` of each row of ``programs`` (``program_id, task_id, program``) to its line
    truth (+1/-1 per line); ``sandbox`` is None unless the function has ``needs_sandbox = True``
    (as :func:`task_truth`'s has). ``labels_per_program``: annotators per program (the loop's
    ``labels_per_program``). ``n_gold``: gold programs each student labels first. ``seed``: the
    students' label streams. ``open_page(name) -> Page``: how a student opens its page
    (default a :class:`StorePage` on ``store``). ``poll``: seconds between looks for a new round.

    ``start()`` registers the students (in crowd order) and starts the thread; ``stop()`` ends
    it and raises what went wrong in it, if anything. ``writes`` and ``filling()`` say what
    the class wrote.
    """

    def __init__(self, store: LabelStore, crowd: Crowd, truth, *, labels_per_program: int, n_gold: int | None = 5,
                 seed: int = 0, open_page: Callable[[str], Page] | None = None, poll: float = 0.1,
                 count_blank: bool = False):
        if not isinstance(store, LabelStore):
            raise TypeError(f"store must be a crlhf.store.LabelStore, got {type(store).__name__} (field 'store')")
        if store.dialect == "sqlite" and store.url.database in (None, "", ":memory:"):
            raise ValueError("store: an in-memory SQLite store cannot be shared with a background thread; use a "
                             "SQLite file or a database URL (field 'store')")
        if not isinstance(crowd, Crowd):
            raise TypeError(f"crowd must be a crlhf.simulate.Crowd, got {type(crowd).__name__} (field 'crowd')")
        bad = [n for n in crowd.names if not isinstance(n, str)]
        if bad:
            raise TypeError(f"crowd: student names must be str (they are registered in the store), got {bad[0]!r}")
        k = labels_per_program
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"labels_per_program must be an int >= 1, got {k!r} (field 'labels_per_program')")
        if k > len(crowd):
            raise ValueError(f"labels_per_program ({k}) exceeds the class's {len(crowd)} students: no round could "
                             f"be completed (field 'labels_per_program')")
        if n_gold is not None and (isinstance(n_gold, bool) or not isinstance(n_gold, int) or n_gold < 0):
            raise ValueError(f"n_gold must be an int >= 0 or None, got {n_gold!r} (field 'n_gold')")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r} (field 'seed')")
        if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not poll > 0:
            raise ValueError(f"poll must be a number of seconds > 0, got {poll!r} (field 'poll')")
        if callable(truth):
            self._truth = truth
        elif isinstance(truth, Sequence) and not isinstance(truth, str):
            self._truth = task_truth(truth)
        else:
            raise TypeError("truth must be the tasks of the store's programs or a function truth(programs, sandbox) "
                            f"(field 'truth'), got {type(truth).__name__}")
        self.store, self.crowd = store, crowd
        self.labels_per_program, self.n_gold, self.seed, self.poll = int(k), n_gold, int(seed), float(poll)
        self.count_blank = bool(count_blank)
        self.open_page = open_page or (lambda name: StorePage(store, name, n_gold=n_gold, max_annotators=int(k)))
        self.pages: list[Page] = []
        self.swept: list[int] = []
        self._writes: list[dict] = []
        self._known: dict[str, np.ndarray] = {}
        self._rngs = [np.random.default_rng([int(seed), i]) for i in range(len(crowd))]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sandbox: Sandbox | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SimulatedClass:
        """Open every student's page (registering the students), then start labelling."""
        if self._thread is not None:
            raise RuntimeError("this SimulatedClass was started already")
        if getattr(self._truth, "needs_sandbox", False):
            from .sandbox import Sandbox

            # started here: a sandbox worker dies with the thread that started it
            self._sandbox = Sandbox(1)
            self._sandbox.layers()
        self.pages = [self.open_page(str(name)) for name in self.crowd.names]
        self._thread = threading.Thread(target=self._run, name="crlhf-simulated-class", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the students (after the program each is labelling) and raise their error, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        if self.error is not None:
            raise RuntimeError(f"the simulated class stopped on an error: {self.error!r}") from self.error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> SimulatedClass:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ the work
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                rnd = self._next_round()
                if rnd is None:
                    self._stop.wait(self.poll)
                    continue
                self.sweep(rnd)
                self.swept.append(rnd)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def _next_round(self) -> int | None:
        progs = self.store.programs()
        rounds = progs.loc[~progs["gold"], "round_id"].dropna().astype(int)
        new = sorted(set(rounds) - set(self.swept))
        return new[0] if new else None

    def sweep(self, round_id: int) -> int:
        """Students take turns on round ``round_id`` until none gets a program; returns the
        number of programs labelled. (The thread calls this; call it yourself only when the
        class is not started.)"""
        progs = self.store.programs(round_id=round_id, gold=False, text=True)
        todo = progs[~progs["program_id"].isin(self._known)]
        if len(todo):
            self._known.update({p: np.asarray(t, dtype=np.int64)
                                for p, t in self._truth(todo[["program_id", "task_id", "program"]],
                                                        self._sandbox).items()})
        n, idle, i, done = len(self.pages), 0, 0, 0
        while idle < n and not self._stop.is_set():
            page, j = self.pages[i], i
            i = (i + 1) % n
            prog = page.load(round_id)
            if prog is None:
                idle += 1
                continue
            idle = 0
            labels, gold = self.labels_for(j, prog)
            page.submit(labels)
            self._writes.append({"order": len(self._writes), "round_id": round_id, "annotator": page.annotator,
                                 "program_id": prog.program_id, "gold": gold,
                                 "n_labels": int(np.count_nonzero(labels))})
            done += 1
        return done

    def labels_for(self, student: int, prog: Program) -> tuple[np.ndarray, bool]:
        """Student ``student``'s labels of ``prog`` (one per line, 0 = unlabelled) and whether it is gold."""
        truth = self.store.gold_truth(prog.program_id)
        gold = truth is not None
        if truth is None:
            truth = self._known.get(prog.program_id)
            if truth is None:
                raise RuntimeError(f"program {prog.program_id!r} is of round {prog.round_id}, which was not swept; "
                                   "a student was served it outside its round")
        n_lines = len(program_lines(prog.program))
        if len(truth) != n_lines:
            raise ValueError(f"the truth of {prog.program_id!r} has {len(truth)} lines, the program {n_lines}")
        counted = counted_lines(prog.program, self.count_blank)
        if not counted.any():
            raise ValueError(f"program {prog.program_id!r} has no line to label (all blank or comments)")
        ann, rng = self.crowd.annotators[student], self._rngs[student]
        label = np.where(rng.random(n_lines) < ann.p_plus(truth), 1, -1)
        keep = counted & (rng.random(n_lines) < ann.coverage)
        if not keep.any():
            keep[np.flatnonzero(counted)[0]] = True
        return np.where(keep, label, 0).astype(np.int64), gold

    # ------------------------------------------------------------------ what it wrote
    @property
    def writes(self) -> pd.DataFrame:
        """One row per submitted program: ``order, round_id, annotator, program_id, gold, n_labels``."""
        return pd.DataFrame(list(self._writes), columns=list(WRITE_COLUMNS))

    def filling(self) -> pd.DataFrame:
        """Per swept round, from the store: its ``programs``, how many are ``complete`` (labels
        from ``labels_per_program`` annotators), the fewest and most annotators of a program,
        the ``labels`` on them, the ``students`` who labelled them, and the gold labels the
        class wrote during the round."""
        writes = self.writes
        rows = []
        for rnd in list(self.swept):
            pids = self.store.programs(round_id=rnd, gold=False)["program_id"].tolist()
            counts = self.store.counts(pids)
            labels = self.store.labels(program_ids=pids)
            w = writes[writes["round_id"] == rnd]
            rows.append({"round_id": rnd, "programs": len(pids),
                         "complete": int((counts["n_annotators"] >= self.labels_per_program).sum()),
                         "min_annotators": int(counts["n_annotators"].min()) if len(counts) else 0,
                         "max_annotators": int(counts["n_annotators"].max()) if len(counts) else 0,
                         "labels": int(counts["n_labels"].sum()), "students": int(labels["annotator"].nunique()),
                         "gold_labels": int(w.loc[w["gold"], "n_labels"].sum())})
        return pd.DataFrame(rows, columns=list(FILLING_COLUMNS))


def truth_table(truths: Mapping[str, Sequence[int]]) -> Callable:
    """A truth function for :class:`SimulatedClass` from known truths ``{program_id: [+1/-1 ...]}``."""
    known = {p: np.asarray(t, dtype=np.int64) for p, t in truths.items()}

    def truth(programs: pd.DataFrame, sandbox) -> dict:
        missing = [p for p in programs["program_id"] if p not in known]
        if missing:
            raise ValueError(f"no truth for program {missing[0]!r} (field 'truth')")
        return {p: known[p] for p in programs["program_id"]}

    return truth
