"""AnnotationSession without a browser: the queue (gold first), writes to the store, gold
feedback only after a submit, safe retries, and names that belong to their owners."""

import time

import pytest

from crlhf.store import LabelStore
from widgets.session import AnnotationSession


def test_gold_first_feedback_after_submit_then_the_queue(store):
    s = AnnotationSession("alice", store, n_gold=1)
    ann = s.line_annotator
    assert s.annotator == "alice" and ann.program_id == "g0"
    assert ann.feedback == [] and "1, 1, -1" not in str(s.get_state())  # no truth before a submit
    assert s.progress.max == 4 and s.progress.value == 0
    ann.press("c", "c", "c", "Enter")
    assert ann.submitted and ann.feedback == [1, 1, -1]
    assert "agreed on 2 of 3" in ann.message and ann.message_kind == "ok"
    got = store.labels(annotators="alice")
    assert got[["program_id", "line", "label"]].values.tolist() == [["g0", 0, 1], ["g0", 1, 1], ["g0", 2, 1]]
    ann.press("c")  # locked while the feedback shows
    ann.press("Enter")  # next
    assert ann.program_id == "p0" and not ann.submitted and ann.feedback == []
    assert s.progress.value == 1
    ann.press("c", "w", "Enter")  # ordinary program: saved, next at once, no feedback
    assert ann.program_id == "p1" and ann.feedback == [] and ann.message == "Saved 2 labels of p0."
    ann.press("w", "Enter", "c", "Enter")
    assert ann.disabled and "All done" in ann.message and s.program is None
    assert s.progress.value == 4
    latest = store.labels(annotators="alice")
    assert latest.groupby("program_id").size().to_dict() == {"g0": 3, "p0": 2, "p1": 1, "p2": 1}
    assert len(s.acks) == 4 and all(a.annotator == "alice" for a in s.acks)


def test_a_front_end_submit_writes_the_labels(store):
    s = AnnotationSession("bob", store, n_gold=0, feedback=False)
    ann = s.line_annotator
    assert ann.program_id == "p0"
    ann.set_state({"labels": [1, -1, 0, 0, 1, 1, -1], "cursor": 6})
    ann.set_state({"submitted": True})
    rows = store.labels(annotators="bob")
    assert rows[["line", "label"]].values.tolist() == [[0, 1], [1, -1], [4, 1], [5, 1], [6, -1]]
    assert ann.program_id == "p1"


class FlakyStore(LabelStore):
    """Commits the first write, then reports a failure (an acknowledgement lost on the way)."""

    fail = 1

    def add_labels(self, token, labels):
        ack = super().add_labels(token, labels)
        if self.fail:
            self.fail -= 1
            raise OSError("connection reset")
        return ack


def test_a_retry_after_an_error_is_stored_once(tmp_path):
    store = FlakyStore(tmp_path / "flaky.db")
    store.add_programs([{"program_id": "p", "program": "a = 1\nb = 2\nc = 3\n"},
                        {"program_id": "q", "program": "d = 4\n"}])
    s = AnnotationSession("carol", store, n_gold=0)
    ann = s.line_annotator
    ann.press("c", "w", "c", "Enter")
    assert not ann.submitted and ann.message_kind == "error" and "try again" in ann.message
    assert ann.program_id == "p" and ann.labels == [1, -1, 1]
    ann.press("Enter")  # the retry: same client label ids
    assert ann.program_id == "q"
    assert s.acks[-1].stored == 0 and s.acks[-1].duplicates == 3
    assert len(store.labels(latest=False)) == 3 and store.check_integrity() == []


def test_labels_changed_after_an_error_are_a_new_write_and_win(tmp_path):
    store = FlakyStore(tmp_path / "flaky.db")
    store.add_programs([{"program_id": "p", "program": "a = 1\nb = 2\n"}])
    s = AnnotationSession("dan", store, n_gold=0)
    ann = s.line_annotator
    ann.press("c", "c", "Enter")  # stored, but reported as failed
    ann.press("u", "w", "Enter")  # the annotator changes line 1 before retrying
    assert s.acks[-1].stored == 2
    assert store.labels()[["line", "label"]].values.tolist() == [[0, 1], [1, -1]]
    assert store.check_integrity() == []


def test_names_belong_to_their_owners(store):
    alice = AnnotationSession("alice", store)
    with pytest.raises(ValueError, match="already exists"):
        AnnotationSession("alice", store)  # a second registration of the name is refused
    again = AnnotationSession(store=store, token=alice.token)  # alice continues with her token
    assert again.annotator == "alice" and again.line_annotator.program_id == "g0"
    bob = AnnotationSession("bob", store)
    with pytest.raises(ValueError, match="belongs to 'bob'"):
        AnnotationSession("alice", store, token=bob.token)
    with pytest.raises(ValueError, match="unknown token"):
        AnnotationSession(store=store, token="not-a-token")
    with pytest.raises(TypeError, match="field 'store'"):
        AnnotationSession("erin", "labels.db")
    bob.line_annotator.press("c", "c", "c", "Enter")
    assert set(store.labels()["annotator"]) == {"bob"}


def test_active_routing_and_round_go_to_the_store(store):
    r = store.new_round("r1")
    store.add_programs([{"program_id": "r1p", "program": "z = 0\n"}], round_id=r)
    s = AnnotationSession("fay", store, n_gold=0, round_id=r)
    assert s.line_annotator.program_id == "r1p" and s.progress.max == 1
    s2 = AnnotationSession("gus", store, n_gold=0, active=True, require_all=True)
    assert s2.line_annotator.program_id in {"p0", "p1", "p2", "r1p"} and s2.line_annotator.require_all


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def _open_round(store, r, n=2):
    rid = store.new_round(f"round {r}")
    return store.add_programs([{"program_id": f"run-r{r}-p0-s{j}", "program": f"a = {r}\nb = {j}\n"}
                               for j in range(n)], task_id="t/1", round_id=rid)


def test_a_waiting_session_shows_the_next_round_by_itself(store):
    """The classroom's queue: the newest round only; when it is done the same session (no
    re-creation, no reload) waits, and shows round 2 with readable names when the loop opens it."""
    store.add_task("t/1", "def f():\n")
    _open_round(store, 1)
    s = AnnotationSession("alice", store, n_gold=1, round_id="newest", poll=0.05)
    ann = s.line_annotator
    try:
        assert ann.program_id == "g0"
        ann.press("c", "c", "c", "Enter", "Enter")
        assert ann.program_id == "run-r1-p0-s0"  # the newest round only: p0-p2 (no round) are not served
        assert ann.header == "Program 2 · t/1 · sample 1 · round 1"
        assert "1 of 3 programs labelled &middot; round 1" in s.progress_text.value  # gold included
        ann.press("c", "Enter")
        assert ann.message == "Saved 1 labels of t/1 · sample 1 · round 1."
        ann.press("w", "Enter")
        assert ann.disabled and "All done for now" in ann.message and ann.header == "Waiting for new programs"
        assert s.waiting and s.program is None
        assert not s.check_for_programs()  # nothing new yet

        new = _open_round(store, 2)  # the loop opens round 2
        assert _wait_for(lambda: ann.program_id == new[0]), "round 2 did not reach the waiting session"
        assert not ann.disabled and ann.message == "New programs to label (round 2): here is the next one."
        assert ann.header == "Program 2 · t/1 · sample 1 · round 2"
        assert "1 of 3 programs labelled &middot; round 2" in s.progress_text.value
        assert s.rounds_seen == [None, 1, 2]
        assert _wait_for(lambda: not s.waiting)
        ann.press("c", "Enter", "c", "Enter")
        assert ann.disabled and s.waiting  # waiting again, for round 3
    finally:
        s.close()
    assert not s.waiting
    _open_round(store, 3)
    time.sleep(0.3)
    assert ann.disabled and s.program is None  # a closed session checks no more
    assert set(store.labels(annotators="alice")["program_id"]) == {"g0", "run-r1-p0-s0", "run-r1-p0-s1",
                                                                    "run-r2-p0-s0", "run-r2-p0-s1"}


def test_waiting_without_a_thread_and_the_end_of_a_fixed_queue(store):
    s = AnnotationSession("bo", store, n_gold=0, round_id="newest", poll=None)  # no round yet: every program
    ann = s.line_annotator
    assert ann.program_id == "p0" and s.current_round() is None
    ann.press("c", "Enter", "c", "Enter", "c", "Enter")
    assert "Thank you!" in ann.message and ann.header == "Nothing left to label" and not s.waiting
    store.add_task("t/1", "def f():\n")
    new = _open_round(store, 1, n=1)
    assert s.check_for_programs() and ann.program_id == new[0]  # by hand, as the thread would
    with pytest.raises(ValueError, match="field 'round_id'"):
        AnnotationSession("cy", store, round_id="latest")
    with pytest.raises(ValueError, match="field 'poll'"):
        AnnotationSession("cy", store, poll=0)
