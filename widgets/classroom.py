"""The classroom app that ``crlhf classroom`` serves with Voila (one kernel per student).

A student enters a name and labels: the name is registered in the store and its secret token
stays in the student's kernel, so labels are written under that name only. A name already
taken is refused (no one can label as someone else); a student who closed the page continues
with the code shown after signing up (the token itself).

The server passes its settings to every kernel in the environment: ``CRLHF_CLASSROOM_DB``
(a path or database URL) and ``CRLHF_CLASSROOM_OPTIONS`` (JSON keyword arguments for
``AnnotationSession``: ``n_gold``, ``feedback``, ``active``, ``round_id`` (``"newest"``: follow
the store's newest round, so a new round of the RL loop reaches every open page by itself),
``max_annotators``, ``require_all``, ``poll``).
"""

from __future__ import annotations

import html
import json
import os

import ipywidgets as W

from crlhf.classroom import ENV_DB, ENV_OPTIONS
from crlhf.store import LabelStore

from .session import AnnotationSession
SESSION_OPTIONS = ("n_gold", "feedback", "active", "round_id", "max_annotators", "require_all", "count_blank",
                   "poll")


class ClassroomApp(W.VBox):
    """Sign up (a new name) or continue (with a code), then label with an :class:`AnnotationSession`."""

    def __init__(self, store: LabelStore, **session_options):
        unknown = set(session_options) - set(SESSION_OPTIONS)
        if unknown:
            raise ValueError(f"unknown session option(s) {sorted(unknown)}; expected some of {SESSION_OPTIONS}")
        self.store, self.session_options = store, session_options
        self.session: AnnotationSession | None = None
        self.name = W.Text(placeholder="your name", description="Name", layout=W.Layout(width="320px"))
        self.name.add_class("crlhf-classroom-name")
        self.start_button = W.Button(description="Start labelling", button_style="primary",
                                     tooltip="register this name and start labelling")
        self.start_button.add_class("crlhf-classroom-start")
        self.code = W.Text(placeholder="the code you were given", description="Code", layout=W.Layout(width="320px"))
        self.code.add_class("crlhf-classroom-code")
        self.continue_button = W.Button(description="Continue", tooltip="continue labelling with your code")
        self.continue_button.add_class("crlhf-classroom-continue")
        self.status = W.HTML()
        self.status.add_class("crlhf-classroom-status")
        self.start_button.on_click(lambda _: self.sign_up(self.name.value))
        self.continue_button.on_click(lambda _: self.sign_in(self.code.value))
        intro = W.HTML("<h3 style='margin:4px 0'>Label lines of code</h3>"
                       "<p style='margin:2px 0'>Enter your name to start. Mark every line of each program "
                       "<b>correct</b> or <b>wrong</b>; the first programs check how labelling works.</p>")
        self.form = W.VBox([intro, W.HBox([self.name, self.start_button]),
                            W.HTML("<small>Been here before? Continue with your code:</small>"),
                            W.HBox([self.code, self.continue_button]), self.status])
        super().__init__([self.form])
        self.add_class("crlhf-classroom")

    @classmethod
    def from_env(cls) -> ClassroomApp:
        """The app as the classroom server configures it (``CRLHF_CLASSROOM_DB``, ``..._OPTIONS``)."""
        url = os.environ.get(ENV_DB)
        if not url:
            raise RuntimeError(f"{ENV_DB} is not set: start the app with `crlhf classroom --db PATH`")
        options = json.loads(os.environ.get(ENV_OPTIONS) or "{}")
        return cls(LabelStore(url, create=False), **options)

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#d32f2f" if error else "inherit"
        self.status.value = f"<span style='color:{colour}'>{text}</span>"

    def sign_up(self, name: str) -> bool:
        """Register ``name`` and start labelling; a name already taken is refused."""
        name = (name or "").strip()
        if not name:
            self._say("Please enter your name.", error=True)
            return False
        try:
            token = self.store.register_annotator(name)
        except ValueError as exc:
            if "already exists" in str(exc):
                self._say(f"The name <b>{html.escape(name)}</b> is taken. Pick another name, or continue "
                          "with your code.", error=True)
            else:
                self._say(html.escape(str(exc)), error=True)
            return False
        self._start(token, new=True)
        return True

    def sign_in(self, code: str) -> bool:
        """Continue as the owner of ``code`` (the token shown at sign-up)."""
        code = (code or "").strip()
        try:
            self.store.annotator_of(code)
        except ValueError:
            self._say("That code is not known. Check it, or ask the instructor.", error=True)
            return False
        self._start(code, new=False)
        return True

    def _start(self, token: str, new: bool) -> None:
        self.session = AnnotationSession(store=self.store, token=token, autofocus=True, **self.session_options)
        who = html.escape(self.session.annotator)
        note = (f"Signed in as <b>{who}</b>. Your code to continue later: "
                f"<code class='crlhf-classroom-token'>{html.escape(token)}</code> (keep it to yourself)."
                if new else f"Welcome back, <b>{who}</b>.")
        self.children = [W.HTML(note), self.session]
