"""LineAnnotator: one program, a correct/wrong label per line, keyboard first.

The front end (``annotator.js``, ``annotator.css`` beside this file; anywidget, no build step)
shows the program with line numbers and a small Python syntax highlighter, a correct / wrong
button per line (with accessible names) and the labelling progress. Keys, while the widget
has focus: ``j``/``k`` (or the arrows) move, ``c``/``1`` correct, ``w``/``2`` wrong, ``u``
undo, ``Enter`` submit (and, after gold feedback, next). The handler stops the keys from
propagating, so JupyterLab keeps its own shortcuts for everywhere else.

All state is in traitlets, so a kernel (or a test) can drive the widget as a front end would:
set ``labels``/``cursor``/``submitted`` with ``set_state``, or call :meth:`press` with the same
keys. Gold truth is never part of the state before a submit: ``feedback`` is filled in by
whoever owns the widget (``AnnotationSession``) after the labels are stored.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets as t

from crlhf.crowd import counted_lines, program_lines

_HERE = Path(__file__).parent
KEYS = {"j": "down", "ArrowDown": "down", "k": "up", "ArrowUp": "up", "c": "correct", "1": "correct",
        "w": "wrong", "2": "wrong", "u": "undo", "Enter": "submit", "n": "next"}
"""The key map of ``annotator.js`` (``n`` acts only after a submit)."""


class LineAnnotator(anywidget.AnyWidget):
    """One program to label line by line: ``labels[i]`` is +1 (correct), -1 (wrong) or 0.

    ``counted`` marks the lines to label (non-blank, non-comment by default, as in ``k`` of
    ``s = c/k``); the others are shown but skipped. ``submitted`` turns True when the annotator
    submits (Enter); the owner stores the labels, may show ``feedback`` (the gold truth, +1/-1
    per line) and then loads the next program with :meth:`load`. ``next_requested`` turns
    True when the annotator asks to move on after feedback.
    """

    _esm = _HERE / "annotator.js"
    _css = _HERE / "annotator.css"

    program_id = t.Unicode("").tag(sync=True)
    lines = t.List(t.Unicode()).tag(sync=True)
    counted = t.List(t.Bool()).tag(sync=True)
    prompt = t.Unicode("").tag(sync=True)
    header = t.Unicode("").tag(sync=True)
    labels = t.List(t.Int()).tag(sync=True)
    cursor = t.Int(0).tag(sync=True)
    undo_stack = t.List(t.List(t.Int())).tag(sync=True)
    submitted = t.Bool(False).tag(sync=True)
    next_requested = t.Bool(False).tag(sync=True)
    feedback = t.List(t.Int()).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    message_kind = t.Unicode("info").tag(sync=True)
    disabled = t.Bool(False).tag(sync=True)
    require_all = t.Bool(False).tag(sync=True)
    advance = t.Bool(True).tag(sync=True)
    autofocus = t.Bool(False).tag(sync=True)

    def __init__(self, program: str | None = None, program_id: str = "", *, prompt: str = "",
                 count_blank: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.add_class("crlhf-line-annotator")
        self.count_blank = bool(count_blank)
        if program is not None:
            self.load(program, program_id, prompt=prompt)

    # ------------------------------------------------------------------ loading
    def load(self, program: str, program_id: str = "", *, prompt: str = "", header: str | None = None) -> None:
        """Show a new program: every label cleared, the cursor on its first counted line."""
        lines = program_lines(program)
        counted = [bool(x) for x in counted_lines(program, self.count_blank)]
        first = next((i for i, c in enumerate(counted) if c), 0)
        with self.hold_sync():
            self.lines = lines
            self.counted = counted
            self.labels = [0] * len(lines)
            self.cursor = first
            self.undo_stack = []
            self.feedback = []
            self.submitted = False
            self.next_requested = False
            self.program_id = str(program_id)
            self.prompt = prompt or ""
            self.message, self.message_kind = "", "info"
            self.disabled = False
            if header is not None:
                self.header = header

    def clear(self, message: str = "", header: str | None = None) -> None:
        """No program (e.g. the queue is empty): disabled, with a message."""
        with self.hold_sync():
            self.lines, self.counted, self.labels, self.undo_stack, self.feedback = [], [], [], [], []
            self.program_id, self.prompt, self.cursor = "", "", 0
            self.submitted = self.next_requested = False
            self.message, self.message_kind = message, "info"
            self.disabled = True
            if header is not None:
                self.header = header

    # ------------------------------------------------------------------ reading
    @property
    def n_counted(self) -> int:
        """Lines to label."""
        return sum(self._counted())

    @property
    def n_labelled(self) -> int:
        """Lines to label that have a label."""
        return sum(1 for c, lab in zip(self._counted(), self.labels, strict=False) if c and lab)

    def labelled(self) -> list[tuple[int, int]]:
        """``(line, label)`` of every labelled line (0-based lines)."""
        return [(i, lab) for i, lab in enumerate(self.labels) if lab in (1, -1)]

    def _counted(self) -> list[bool]:
        return [bool(self.counted[i]) if i < len(self.counted) else True for i in range(len(self.lines))]

    # ------------------------------------------------------------------ actions (mirror annotator.js)
    def _locked(self) -> bool:
        return self.disabled or self.submitted

    def _step(self, start: int, delta: int) -> int:
        c = self._counted()
        i = start + delta
        while 0 <= i < len(c):
            if c[i]:
                return i
            i += delta
        return start

    def label(self, value: int, line: int | None = None) -> None:
        """Label ``line`` (default: the cursor's) +1 correct or -1 wrong, as the buttons do."""
        if value not in (1, -1):
            raise ValueError(f"label must be +1 (correct) or -1 (wrong), got {value!r} (field 'label')")
        if self._locked():
            return
        line = self.cursor if line is None else int(line)
        c = self._counted()
        if not (0 <= line < len(c)):
            raise ValueError(f"line {line} is out of range for a program of {len(c)} lines (field 'line')")
        if not c[line]:
            return
        labels = list(self.labels) + [0] * (len(c) - len(self.labels))
        stack = [*self.undo_stack, [line, labels[line], self.cursor]]
        labels[line] = value
        with self.hold_sync():
            self.labels = labels
            self.undo_stack = stack
            self.cursor = self._step(line, 1) if self.advance else line
            self.message, self.message_kind = "", "info"

    def undo(self) -> None:
        """Take back the last label."""
        if self._locked():
            return
        if not self.undo_stack:
            self.message, self.message_kind = "Nothing to undo.", "info"
            return
        *stack, (line, prev, _) = self.undo_stack
        labels = list(self.labels)
        labels[line] = prev
        with self.hold_sync():
            self.labels, self.undo_stack, self.cursor = labels, stack, line
            self.message, self.message_kind = "", "info"

    def move(self, delta: int) -> None:
        """Move the cursor to the next (``+1``) or previous (``-1``) line to label."""
        if self.disabled:
            return
        c = self._counted()
        cur = self.cursor
        if not (0 <= cur < len(c)) or not c[cur]:
            cur = self._step(-1, 1)
        self.cursor = self._step(cur, 1 if delta > 0 else -1)

    def submit(self) -> None:
        """Submit (Enter): sets ``submitted`` when at least one line is labelled (every line
        with ``require_all``); after feedback it asks for the next program instead."""
        if self.disabled:
            return
        if self.submitted:
            if self.feedback:
                self.next_requested = True
            return
        need, done = self.n_counted, self.n_labelled
        if not done:
            self.message, self.message_kind = "Label at least one line first (c = correct, w = wrong).", "error"
            return
        if self.require_all and done < need:
            self.message, self.message_kind = f"Label every line first: {need - done} left.", "error"
            return
        with self.hold_sync():
            self.message, self.message_kind = "Saving\u2026", "info"
            self.submitted = True

    def press(self, *keys: str) -> None:
        """Act on keys as the front end does (``KEYS``), e.g. ``press("c", "c", "w", "Enter")``."""
        for key in keys:
            action = KEYS.get(key)
            if action is None:
                raise ValueError(f"unknown key {key!r}; keys: {sorted(KEYS)}")
            if action == "down":
                self.move(1)
            elif action == "up":
                self.move(-1)
            elif action == "correct":
                self.label(1)
            elif action == "wrong":
                self.label(-1)
            elif action == "undo":
                self.undo()
            elif action == "submit" or (action == "next" and self.submitted):
                self.submit()
