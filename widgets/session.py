"""AnnotationSession: one annotator's queue in a notebook, written to a ``LabelStore``.

The queue is the store's (``LabelStore.next_program``): the gold programs first, then the
programs this annotator has not labelled, fewest annotators first (or, with ``active=True``,
the least certain). A submit writes the labelled lines in one transaction, with client label
ids, so a retry after an error is stored once; on a gold program the truth is shown after the
write (``feedback=True``), never before.
"""

from __future__ import annotations

import html
import uuid

import ipywidgets as W

from crlhf.store import Ack, LabelStore

from .annotator import LineAnnotator


class AnnotationSession(W.VBox):
    """One annotator labelling the store's queue: a progress bar and a :class:`LineAnnotator`.

    ``AnnotationSession("alice", store)`` registers ``alice`` (a name already taken is
    refused); ``AnnotationSession(store=store, token=token)`` continues as the token's owner.
    The token stays in this object (the kernel): labels are written under its owner's name
    only. ``n_gold``, ``round_id``, ``max_annotators``, ``active`` and ``model_kwargs`` go
    to ``LabelStore.next_program``; ``feedback`` shows the truth of gold programs after a
    submit; ``require_all`` makes every line need a label before a submit.
    """

    def __init__(self, annotator: str | None = None, store: LabelStore | None = None, *, token: str | None = None,
                 n_gold: int | None = 5, feedback: bool = True, active: bool = False, round_id: int | None = None,
                 max_annotators: int | None = None, require_all: bool = False, count_blank: bool = False,
                 autofocus: bool = False, model_kwargs: dict | None = None, **kwargs):
        if not isinstance(store, LabelStore):
            raise TypeError(f"store must be a crlhf.store.LabelStore, got {type(store).__name__} (field 'store')")
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
        self.acks: list[Ack] = []
        self.program = None  # the crlhf.store.Program on show
        self._submission, self._attempt, self._attempted = "", 0, None

        self.title = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, description="Programs", bar_style="info",
                                      layout=W.Layout(width="320px"))
        self.progress_text = W.HTML()
        self.line_annotator = LineAnnotator(count_blank=count_blank, require_all=require_all, autofocus=autofocus)
        self.line_annotator.observe(self._on_submitted, "submitted")
        self.line_annotator.observe(self._on_next, "next_requested")
        super().__init__([self.title, W.HBox([self.progress, self.progress_text]), self.line_annotator], **kwargs)
        self.add_class("crlhf-annotation-session")
        self.n_done = self._done_in_store()
        self.next_program()

    @property
    def token(self) -> str:
        """This annotator's secret token (to continue later with ``token=``)."""
        return self._token

    # ------------------------------------------------------------------ the queue
    def _done_in_store(self) -> int:
        """Programs this annotator has labelled (read once; then counted here)."""
        ann = self.store.annotators()
        mine = ann.loc[ann["annotator"] == self.annotator, "n_programs"]
        return int(mine.iloc[0]) if len(mine) else 0

    def _total(self) -> int:
        """Programs in this annotator's queue in all (gold up to ``n_gold``, then the ordinary ones)."""
        progs = self.store.programs(round_id=self.round_id) if self.round_id is not None else self.store.programs()
        n_gold = int(self.store.programs(gold=True).shape[0])
        if self.n_gold is not None:
            n_gold = min(n_gold, int(self.n_gold))
        return int((~progs["gold"]).sum()) + n_gold

    def _show_progress(self) -> None:
        done, total = self.n_done, self._total()
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)
        self.progress_text.value = f"<span class='crlhf-session-progress'>{done} of {total} programs labelled</span>"
        self.title.value = (f"<b>Labelling as {html.escape(self.annotator)}</b>"
                            " &middot; mark each line correct or wrong, then submit")

    def next_program(self):
        """Load the next program of the queue (``None`` when the queue is empty)."""
        prog = self.store.next_program(self.annotator, n_gold=self.n_gold, round_id=self.round_id,
                                       max_annotators=self.max_annotators, active=self.active, **self.model_kwargs)
        self.program = prog
        self._submission, self._attempt, self._attempted = uuid.uuid4().hex, 0, None
        self._show_progress()
        if prog is None:
            self.line_annotator.clear("All done: no program is left for you. Thank you!",
                                      header="Nothing left to label")
        else:
            self.line_annotator.load(prog.program, prog.program_id, prompt=prog.prompt or "",
                                     header=f"Program {self.n_done + 1} · {prog.program_id}")
        return prog

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
        ann, prog = self.line_annotator, self.program
        labelled = ann.labelled()
        if labelled != self._attempted:  # changed labels are a new write, a plain retry is not
            self._attempt, self._attempted = self._attempt + 1, labelled
        rows = [{"program_id": prog.program_id, "line": line, "label": lab,
                 "client_label_id": f"{self._submission}-{self._attempt}-{line}"} for line, lab in labelled]
        try:
            ack = self.store.add_labels(self._token, rows)
        except Exception as exc:  # noqa: BLE001 - shown to the annotator, who retries
            with ann.hold_sync():
                ann.submitted = False
                ann.message = f"Could not save ({type(exc).__name__}: {exc}). Press Enter to try again."
                ann.message_kind = "error"
            return None
        self.acks.append(ack)
        self.n_done += 1
        truth = self.store.gold_truth(prog.program_id) if self.feedback else None
        if truth is not None:
            right = sum(1 for line, lab in labelled if lab == truth[line])
            with ann.hold_sync():
                ann.feedback = [int(v) for v in truth]
                ann.message = (f"Saved. This was a calibration program with known answers: you agreed on "
                               f"{right} of {len(labelled)} labelled lines. Press Enter for the next program.")
                ann.message_kind = "ok"
            self._show_progress()
            return ack
        self.next_program()
        if self.program is not None:
            ann.message, ann.message_kind = f"Saved {len(labelled)} labels of {prog.program_id}.", "ok"
        return ack
