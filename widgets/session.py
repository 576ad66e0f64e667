"""AnnotationSession: one annotator's queue in a notebook, written to a ``LabelStore``.

The queue is the store's (``LabelStore.next_program``): the gold programs first, then the
programs this annotator has not labelled, fewest annotators first (or, with ``active=True``,
the least certain); with ``round_id="newest"`` only those of the store's newest round, the one
the RL loop waits on. A submit writes the labelled lines in one transaction, with client label
ids, so a retry after an error is stored once; on a gold program the truth is shown after the
write (``feedback=True``), never before.

When the queue is empty the session waits: a background thread polls the store (``poll``
seconds, one cheap query, :meth:`crlhf.store.LabelStore.head`) and shows the next program as
soon as a round opens or programs arrive, without a reload; it stops when the widget closes.
"""

from __future__ import annotations

import html
import numbers
import threading
import uuid

import ipywidgets as W

from crlhf.store import NEWEST, Ack, LabelStore, Program

from .annotator import LineAnnotator


class AnnotationSession(W.VBox):
    """One annotator labelling the store's queue: a progress bar and a :class:`LineAnnotator`.

    ``AnnotationSession("alice", store)`` registers ``alice`` (a name already taken is
    refused); ``AnnotationSession(store=store, token=token)`` continues as the token's owner.
    The token stays in this object (the kernel): labels are written under its owner's name
    only. ``n_gold``, ``round_id``, ``max_annotators``, ``active`` and ``model_kwargs`` go
    to ``LabelStore.next_program`` (``round_id="newest"``: the store's newest round at each
    step, every program before the first round); ``feedback`` shows the truth of gold
    programs after a submit; ``require_all`` makes every line need a label before a submit;
    ``poll``: seconds between checks for new programs while the queue is empty (``None``: no
    waiting, the queue ends).
    """

    def __init__(self, annotator: str | None = None, store: LabelStore | None = None, *, token: str | None = None,
                 n_gold: int | None = 5, feedback: bool = True, active: bool = False,
                 round_id: int | str | None = None, max_annotators: int | None = None, require_all: bool = False,
                 count_blank: bool = False, autofocus: bool = False, model_kwargs: dict | None = None,
                 poll: float | None = 2.0, **kwargs):
        if not isinstance(store, LabelStore):
            raise TypeError(f"store must be a crlhf.store.LabelStore, got {type(store).__name__} (field 'store')")
        if round_id is not None and round_id != NEWEST and (isinstance(round_id, bool)
                                                            or not isinstance(round_id, numbers.Integral)):
            raise ValueError(f"round_id must be a round id, {NEWEST!r} or None, got {round_id!r} (field 'round_id')")
        if poll is not None and (isinstance(poll, bool) or not isinstance(poll, numbers.Real) or not poll > 0):
            raise ValueError(f"poll must be a positive number of seconds or None, got {poll!r} (field 'poll')")
        if token is None:
            if annotator is None:
                raise ValueError("give an annotator name to register, or the token of a registered one "
                                 "(field 'annotator')")
            token = store.register_annotator(annotator)
        owner = store.annotator_of(token)
        if annotator is not None and annotator != owner:
            raise ValueError(f"the token belongs to {owner!r}, not {annotator!r} (field 'annotator')")
        self.store = store
        self.annotator = owner
        self._token = token
        self.n_gold, self.feedback, self.active = n_gold, bool(feedback), bool(active)
        self.round_id, self.max_annotators = round_id, max_annotators
        self.model_kwargs = dict(model_kwargs or {})
        self.poll = None if poll is None else float(poll)
        self.acks: list[Ack] = []
        self.program: Program | None = None  # on show
        self.n_done = 0
        self.rounds_seen: list[int | None] = []  # the rounds whose programs were shown, in order
        self._submission, self._attempt = "", 0
        self._attempted: list[tuple[int, int]] | None = None
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._waiter: threading.Thread | None = None

        self.title = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, description="Programs", bar_style="info",
                                      layout=W.Layout(width="320px"))
        self.progress_text = W.HTML()
        self.line_annotator = LineAnnotator(count_blank=count_blank, require_all=require_all, autofocus=autofocus)
        self.line_annotator.observe(self._on_submitted, "submitted")
        self.line_annotator.observe(self._on_next, "next_requested")
        super().__init__([self.title, W.HBox([self.progress, self.progress_text]), self.line_annotator], **kwargs)
        self.add_class("crlhf-annotation-session")
        self.next_program()

    @property
    def token(self) -> str:
        """This annotator's secret token (to continue later with ``token=``)."""
        return self._token

    # ------------------------------------------------------------------ the queue
    def current_round(self) -> int | None:
        """The round the queue serves now (``None``: every round)."""
        if self.round_id == NEWEST:
            return self.store.head()[0]
        return None if self.round_id is None else int(self.round_id)

    def _show_progress(self, round_id: int | None) -> None:
        done, total = self.store.queue_progress(self.annotator, n_gold=self.n_gold, round_id=round_id)
        self.n_done = done
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)
        where = "" if round_id is None or self.round_id != NEWEST else f" &middot; round {round_id}"
        self.progress_text.value = (f"<span class='crlhf-session-progress'>{done} of {total} programs "
                                    f"labelled{where}</span>")
        self.title.value = (f"<b>Labelling as {html.escape(self.annotator)}</b>"
                            " &middot; mark each line correct or wrong, then submit")

    def next_program(self):
        """Load the next program of the queue (``None`` when the queue is empty: then, with
        ``poll``, wait for new programs in the background)."""
        with self._lock:
            round_id = self.current_round()
            prog = self.store.next_program(self.annotator, n_gold=self.n_gold, round_id=round_id,
                                           max_annotators=self.max_annotators, active=self.active,
                                           **self.model_kwargs)
            self.program = prog
            self._submission, self._attempt, self._attempted = uuid.uuid4().hex, 0, None
            self._show_progress(round_id)
            if prog is None:
                if self.poll is None:
                    self.line_annotator.clear("All done: no program is left for you. Thank you!",
                                              header="Nothing left to label")
                else:
                    self.line_annotator.clear(
                        "All done for now: no program is left for you. New programs appear here by "
                        "themselves when the next round starts; keep this page open (no need to reload).",
                        header="Waiting for new programs")
                    self._wait()
            else:
                if not self.rounds_seen or self.rounds_seen[-1] != prog.round_id:
                    self.rounds_seen.append(prog.round_id)
                self.line_annotator.load(prog.program, prog.program_id, prompt=prog.prompt or "",
                                         header=f"Program {self.n_done + 1} · {prog.name}")
            return prog

    # ------------------------------------------------------------------ waiting for new programs
    @property
    def waiting(self) -> bool:
        """Whether the background check for new programs runs (the queue is empty)."""
        waiter = self._waiter
        return waiter is not None and waiter.is_alive()

    def _wait(self) -> None:
        if self._waiter is not None or self._closed.is_set():
            return
        self._waiter = threading.Thread(target=self._poll_loop, name="crlhf-session-wait", daemon=True)
        self._waiter.start()

    def _poll_loop(self) -> None:
        head = None  # the first check looks at the queue itself: programs may have come since it was read
        while not self._closed.wait(self.poll) and self._waiter is threading.current_thread():
            try:
                now = self.store.head()
                if now == head:
                    continue
                head = now
                if self.check_for_programs():
                    return
            except Exception as exc:  # shown on the page; the next check tries again
                self.line_annotator.message = (f"Could not check for new programs ({type(exc).__name__}: "
                                               f"{exc}); trying again.")
                self.line_annotator.message_kind = "error"

    def check_for_programs(self) -> bool:
        """While the queue is empty: load the next program if there is one now, telling the
        annotator it is new (what the background check calls when the store changes)."""
        with self._lock:
            if self.program is not None or self._closed.is_set():
                return self.program is not None
            ann = self.line_annotator
            with ann.hold_sync():  # the program and the news reach the page together
                prog = self.next_program()
                if prog is None:
                    return False
                where = f" (round {prog.round_id})" if prog.round_id is not None else ""
                ann.message, ann.message_kind = f"New programs to label{where}: here is the next one.", "ok"
            self._waiter = None  # the wait is over (a later empty queue starts a new one)
            return True

    def close(self) -> None:
        """Close the widget and stop waiting for new programs."""
        if hasattr(self, "_closed"):  # also when __init__ failed half-way
            self._closed.set()
            waiter = self._waiter
            if waiter is not None and waiter is not threading.current_thread():
                waiter.join(timeout=30)
        super().close()

    # ------------------------------------------------------------------ submit
    def _on_submitted(self, change) -> None:
        if change["new"] and self.program is not None:
            self.save()

    def _on_next(self, change) -> None:
        if change["new"]:
            self.next_program()

    def save(self) -> Ack | None:
        """Write the labelled lines of the program on show (what a submit does); on an error
        the annotator may submit again: a retry reuses the client label ids, so labels that
        did reach the store are stored once. Returns the store's acknowledgement."""
        with self._lock:
            return self._save()

    def _save(self) -> Ack | None:
        ann, prog = self.line_annotator, self.program
        if prog is None:
            raise ValueError("no program on show: the queue is empty")
        labelled = ann.labelled()
        if labelled != self._attempted:  # changed labels are a new write, a plain retry is not
            self._attempt, self._attempted = self._attempt + 1, labelled
        rows = [{"program_id": prog.program_id, "line": line, "label": lab,
                 "client_label_id": f"{self._submission}-{self._attempt}-{line}"} for line, lab in labelled]
        try:
            ack = self.store.add_labels(self._token, rows)
        except Exception as exc:  # shown to the annotator, who retries
            with ann.hold_sync():
                ann.submitted = False
                ann.message = f"Could not save ({type(exc).__name__}: {exc}). Press Enter to try again."
                ann.message_kind = "error"
            return None
        self.acks.append(ack)
        truth = self.store.gold_truth(prog.program_id) if self.feedback else None
        if truth is not None:
            right = sum(1 for line, lab in labelled if lab == truth[line])
            with ann.hold_sync():
                ann.feedback = [int(v) for v in truth]
                ann.message = (f"Saved. This was a calibration program with known answers: you agreed on "
                               f"{right} of {len(labelled)} labelled lines. Press Enter for the next program.")
                ann.message_kind = "ok"
            self._show_progress(self.current_round())
            return ack
        self.next_program()
        if self.program is not None:
            ann.message, ann.message_kind = f"Saved {len(labelled)} labels of {prog.name}.", "ok"
        return ack
