"""A simulated class driving the classroom's real pages (ClassroomApp sign-up, then the
AnnotationSession's line annotator, as a browser would) writes the same labels as one making
the session's store calls directly."""

import time

import pandas as pd
import pytest

from crlhf.simclass import SessionPage, SimulatedClass, truth_table
from crlhf.simulate import make_crowd
from crlhf.store import LabelStore
from widgets.classroom import ClassroomApp

GOLD = ("def g(a, b):\n    c = a + b\n    return c - 1\n", [1, 1, -1])
PROGRAMS = {f"p{j}": (f"def f(xs):\n    total = {j}\n    # add\n    for x in xs:\n        total += x\n"
                      f"    return total\n", [1, 1, 1, 1, -1 if j % 2 else 1, 1]) for j in range(6)}


def run(path, pages):
    store = LabelStore(path)
    store.add_gold(GOLD[0], GOLD[1], program_id="g0")
    crowd = make_crowd([0.9, 0.7, 0.6, 0.8], seed=2)

    def classroom_page(name):
        app = ClassroomApp(LabelStore(path, create=False), n_gold=1, max_annotators=2)
        assert app.sign_up(name)
        return SessionPage(app.session)

    cls = SimulatedClass(store, crowd, truth_table({p: t for p, (_, t) in PROGRAMS.items()}), labels_per_program=2,
                         n_gold=1, seed=5, poll=0.01, open_page=classroom_page if pages == "session" else None)
    cls.start()
    round_id = store.new_round()
    store.add_programs([{"program_id": p, "program": text} for p, (text, _) in PROGRAMS.items()], round_id=round_id)
    deadline = time.monotonic() + 30
    while not cls.swept and time.monotonic() < deadline and cls.error is None:
        time.sleep(0.02)
    cls.stop()
    return store.labels()[["program_id", "line", "annotator", "label"]].reset_index(drop=True), cls


def test_session_pages_write_what_store_pages_write(tmp_path):
    via_widgets, cls = run(tmp_path / "session.db", "session")
    via_store, _ = run(tmp_path / "store.db", "store")
    assert cls.swept == [1] and len(via_widgets)
    pd.testing.assert_frame_equal(via_widgets, via_store)
    assert (via_widgets.groupby("program_id")["annotator"].nunique().drop("g0") == 2).all()
    session = cls.pages[0].session
    assert session.n_done == len(cls.writes[cls.writes["annotator"] == session.annotator])
    assert session.line_annotator.disabled  # all done: nothing left on the student's page


def test_a_page_that_cannot_save_is_an_error(tmp_path):
    store = LabelStore(tmp_path / "x.db")
    store.add_programs([{"program_id": "p", "program": "a = 1\n"}])
    app = ClassroomApp(store, n_gold=0)
    app.sign_up("ann")
    page = SessionPage(app.session)
    assert page.load(None).program_id == "p"
    store.reset_token("ann")  # the page's token no longer works
    with pytest.raises(RuntimeError, match="could not save p"):
        page.submit([1])
