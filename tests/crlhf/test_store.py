"""LabelStore on SQLite and on a real PostgreSQL server (the ``postgres_url`` fixture)."""

import json
import multiprocessing
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from crlhf.crowd import CrowdModel
from crlhf.simulate import noisy_crowd, random_truths
from crlhf.store import Ack, LabelStore, Program, SchemaVersionError, SCHEMA_VERSION, database_url, program_name
from crlhf.tasks.base import Task

PROG = "def f(xs):\n    total = 0\n\n    for x in xs:\n        total += x\n    return total\n"  # 6 lines
GOLD = "def g(a, b):\n    c = a + b\n    return c\n"  # 3 lines


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def open_store(backend, tmp_path, request):
    """A factory of LabelStores on one fresh SQLite file or one fresh PostgreSQL schema."""
    if backend == "sqlite":
        where = {"url": str(tmp_path / "labels.db")}
    else:
        where = {"url": request.getfixturevalue("postgres_url"), "schema": "t_" + uuid.uuid4().hex[:16]}
    opened = []

    def make(**kwargs):
        store = LabelStore(**{**where, **kwargs})
        opened.append(store)
        return store

    make.where = where
    yield make
    for store in opened:
        store.close()
    if backend == "postgresql":
        engine = sa.create_engine(where["url"])
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{where["schema"]}" CASCADE')
        engine.dispose()


@pytest.fixture
def store(open_store):
    return open_store()


def raw_engine(store):
    """A plain engine on the store's database (bypasses the store's checks)."""
    args = {"options": f"-csearch_path={store.schema}"} if store.schema else {}
    return sa.create_engine(store.url, connect_args=args)


# ------------------------------------------------------------------------------------ set-up
def test_tasks_programs_gold_round_trip(store):
    task = Task(task_id="T/0", prompt="def f(xs):\n", entry_point="f", test="def check(c): pass",
                reference="    return sum(xs)\n", source="test")
    assert store.add_tasks([task]) == ["T/0"]
    assert store.add_tasks([task]) == ["T/0"]  # same prompt again: nothing new
    with pytest.raises(ValueError, match="field 'task_id'"):
        store.add_task("T/0", "another prompt")
    r = store.new_round("first")
    pid = store.add_program(PROG, task_id="T/0", program_id="p0", round_id=r)
    auto = store.add_programs([PROG, "x = 1"], task_id="T/0")
    assert pid == "p0" and len(auto) == 2 and len(set(auto)) == 2
    assert store.add_program(PROG, task_id="T/0", program_id="p0", round_id=r) == "p0"  # idempotent
    with pytest.raises(ValueError, match="field 'program_id'"):
        store.add_program("other text", program_id="p0")
    with pytest.raises(ValueError, match="field 'program_id'"):
        store.add_program(PROG, task_id="T/0", program_id="p0")  # same text, another round
    framed = store.add_programs(pd.DataFrame({"program": ["y = 1", "z = 2"], "task_id": ["T/0", None]}))
    assert [store.program(f).task_id for f in framed] == ["T/0", None]
    g = store.add_gold(GOLD, [1, -1, 1], program_id="g0")

    p = store.program("p0")
    assert p == Program("p0", PROG, "T/0", "def f(xs):\n", r)
    assert p.lines == PROG.splitlines() and p.n_lines == 6
    progs = store.programs()
    assert progs["program_id"].tolist() == ["p0", *auto, *framed, "g0"]
    assert progs["n_lines"].tolist() == [6, 6, 1, 1, 1, 3]
    assert progs["gold"].tolist() == [False] * 5 + [True]
    assert progs["round_id"].tolist()[0] == r and pd.isna(progs["round_id"].iloc[1])
    assert store.programs(round_id=r)["program_id"].tolist() == ["p0"]
    assert store.programs(gold=True, text=True)["program"].tolist() == [GOLD]
    assert store.gold().values.tolist() == [[g, 0, 1], [g, 1, -1], [g, 2, 1]]
    assert store.gold_truth("g0").tolist() == [1, -1, 1]
    assert store.gold_truth("p0") is None
    rounds = store.rounds()
    assert rounds[["round_id", "note", "n_programs"]].values.tolist() == [[r, "first", 1]]
    assert store.tasks().values.tolist() == [["T/0", "def f(xs):\n", "test"]]
    assert store.check_integrity() == []


def test_labels_latest_wins_and_log_is_append_only(store):
    store.add_programs([{"program": PROG, "program_id": "p"}])
    tok = store.register_annotators(["alice", "bob"])
    a1 = store.add_labels(tok["alice"], [("p", 0, 1), ("p", 1, 1)])
    store.add_label(tok["bob"], "p", 1, -1)
    a2 = store.add_label(tok["alice"], "p", 1, -1)  # alice changes her mind on line 1
    assert isinstance(a1, Ack) and a1.annotator == "alice" and a1.stored == 2 and a1.duplicates == 0
    assert a2.time >= a1.time

    log = store.labels(latest=False)
    assert log[["line", "annotator", "label"]].values.tolist() == [
        [0, "alice", 1], [1, "alice", 1], [1, "bob", -1], [1, "alice", -1]]
    assert log["order"].is_monotonic_increasing and log["order"].is_unique
    assert str(log["time"].dtype).startswith("datetime64") and log["time"].dt.tz is not None
    latest = store.labels()
    assert latest[["line", "annotator", "label"]].values.tolist() == [[0, "alice", 1], [1, "bob", -1],
                                                                     [1, "alice", -1]]
    assert list(latest.columns) == ["program_id", "line", "annotator", "label", "time", "order"]
    assert store.labels(annotators="bob")["label"].tolist() == [-1]
    assert store.counts().values.tolist() == [["p", 2, 3]]

    engine = raw_engine(store)
    for sql in ("UPDATE labels SET label = 1", "DELETE FROM labels"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(sql)
    engine.dispose()
    assert len(store.labels(latest=False)) == 4


def test_incremental_refresh_with_since(store):
    store.add_programs([{"program": PROG, "program_id": "p"}])
    tok = store.register_annotator("a")
    store.add_labels(tok, [("p", 0, 1), ("p", 1, 1)])
    seen = store.labels()
    mark = int(seen["order"].max())
    store.add_labels(tok, [("p", 1, -1), ("p", 2, 1)])
    new = store.labels(since=mark)
    assert new[["line", "label"]].values.tolist() == [[1, -1], [2, 1]]
    merged = pd.concat([seen, new]).drop_duplicates(["program_id", "line", "annotator"], keep="last")
    pd.testing.assert_frame_equal(merged.reset_index(drop=True), store.labels())


def test_client_label_id_makes_retries_safe(store):
    store.add_programs([{"program": PROG, "program_id": "p"}])
    tok = store.register_annotator("alice")
    first = store.add_labels(tok, [("p", 0, 1, "c0"), ("p", 1, -1, "c1")])
    retry = store.add_labels(tok, [("p", 0, 1, "c0"), ("p", 1, -1, "c1"), ("p", 2, 1, "c2")])
    assert (first.stored, first.duplicates) == (2, 0)
    assert (retry.stored, retry.duplicates) == (1, 2)
    assert retry.client_label_ids == ("c0", "c1", "c2")
    assert store.add_labels(tok, [("p", 3, 1, "c3"), ("p", 3, 1, "c3")]).stored == 1  # repeated in one batch
    assert len(store.labels(latest=False)) == 4
    # another annotator may use the same client ids: they are per annotator
    assert store.add_label(store.register_annotator("bob"), "p", 0, -1, "c0").stored == 1
    # the same id for a different label is refused, and nothing of that batch is written
    with pytest.raises(ValueError, match="field 'client_label_id'"):
        store.add_labels(tok, [("p", 4, 1, "c4"), ("p", 0, -1, "c0")])
    assert len(store.labels(latest=False)) == 5
    assert "c4" not in store.labels(latest=False).to_string()


def test_token_identifies_the_annotator(store):
    store.add_programs([{"program": PROG, "program_id": "p"}])
    alice = store.register_annotator("alice")
    bob = store.register_annotator("bob")
    assert alice != bob and store.annotator_of(alice) == "alice"
    store.add_label(alice, "p", 0, 1)
    assert store.labels()["annotator"].tolist() == ["alice"]
    with pytest.raises(ValueError, match="field 'annotator'"):  # bob's name with alice's token
        store.add_labels(alice, pd.DataFrame({"program_id": ["p"], "line": [1], "label": [1],
                                              "annotator": ["bob"]}))
    with pytest.raises(ValueError, match="field 'annotator'"):  # a name is taken once
        store.register_annotator("alice")
    with pytest.raises(ValueError, match="field 'token'"):
        store.add_label("not-a-token", "p", 0, 1)
    with pytest.raises(ValueError, match="field 'token'"):
        store.add_label("alice", "p", 0, 1)  # a name is not a token
    new = store.reset_token("alice")
    with pytest.raises(ValueError, match="field 'token'"):
        store.add_label(alice, "p", 0, 1)
    store.add_label(new, "p", 1, -1)
    ann = store.annotators()
    assert ann[["annotator", "n_labels", "n_programs"]].values.tolist() == [["alice", 2, 1], ["bob", 0, 0]]
    assert not any("token" in c for c in ann.columns)
    stored_hashes = pd.read_sql("SELECT token_hash FROM annotators", raw_engine(store))["token_hash"].tolist()
    assert new not in stored_hashes and bob not in stored_hashes  # only hashes are kept


@pytest.mark.parametrize("row, field", [
    (("nope", 0, 1), "program_id"),
    ((7, 0, 1), "program_id"),
    (("p", 6, 1), "line"),  # PROG has lines 0..5
    (("p", -1, 1), "line"),
    (("p", 1.5, 1), "line"),
    (("p", 0, 0), "label"),
    (("p", 0, 2), "label"),
    (("p", 0, True), "label"),
    (("p", 0, "1"), "label"),
    (("p", 0, 1, 42), "client_label_id"),
])
def test_bad_labels_name_the_field_and_write_nothing(store, row, field):
    store.add_programs([{"program": PROG, "program_id": "p"}])
    tok = store.register_annotator("alice")
    with pytest.raises(ValueError, match=f"field '{field}'"):
        store.add_labels(tok, [("p", 2, 1), row])
    assert store.labels(latest=False).empty


def test_bad_set_up_names_the_field(store):
    with pytest.raises(ValueError, match="field 'task_id'"):
        store.add_program(PROG, task_id="missing")
    with pytest.raises(ValueError, match="field 'round_id'"):
        store.add_program(PROG, round_id=99)
    with pytest.raises(ValueError, match="field 'truth'"):
        store.add_gold(GOLD, [1, -1])  # 3 lines
    with pytest.raises(ValueError, match="field 'truth'"):
        store.add_gold(GOLD, [1, 0, 1])
    with pytest.raises(ValueError, match="field 'program'"):
        store.add_programs([{"program": 5}])
    with pytest.raises(ValueError, match="field 'annotator'"):
        store.register_annotator(" alice")
    with pytest.raises(ValueError, match="field 'annotator'"):
        store.next_program("nobody")
    with pytest.raises(ValueError, match="field 'program_id'"):
        store.program("nope")
    with pytest.raises(ValueError, match="field 'program_id'"):
        store.labels_complete(["nope"])
    assert store.programs().empty


def test_schema_version_is_checked(open_store, backend):
    store = open_store()
    engine = raw_engine(store)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE crlhf_schema SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError,
                       match=f"schema version {SCHEMA_VERSION + 1}.*reads version {SCHEMA_VERSION}"):
        open_store()
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE crlhf_schema")
    with pytest.raises(SchemaVersionError, match="not a crlhf label store"):
        open_store()
    engine.dispose()


def test_empty_database_without_create_is_an_error(tmp_path):
    with pytest.raises(SchemaVersionError, match="create=True"):
        LabelStore(tmp_path / "empty.db", create=False)
    with pytest.raises(ValueError, match="field 'schema'"):
        LabelStore(tmp_path / "x.db", schema="s")


def test_integrity_check_finds_bad_rows(store):
    store.add_programs([{"program": "a\nb", "program_id": "p"}])
    store.add_label(store.register_annotator("alice"), "p", 1, 1)
    assert store.check_integrity() == []
    engine = raw_engine(store)
    with engine.begin() as conn:  # a row written behind the store's back, line 5 of a 2-line program
        conn.exec_driver_sql("INSERT INTO labels (program_id, line, annotator, label, time, client_label_id) "
                             "VALUES ('p', 5, 'alice', 1, 0, 'x')")
    engine.dispose()
    assert any("out of range" in p for p in store.check_integrity())


# ------------------------------------------------------------------------------------ the queue
def _label_all(store, token, program_id, labels):
    store.add_labels(token, [(program_id, i, v) for i, v in enumerate(labels)])


def test_queue_serves_gold_first_then_fewest_labels(store):
    store.add_gold_programs([{"program": GOLD, "truth": [1, 1, 1], "program_id": f"g{i}"} for i in range(3)])
    r1, r2 = store.new_round(), store.new_round()
    store.add_programs([{"program": "a\nb", "program_id": f"p{i}"} for i in range(4)], round_id=r1)
    store.add_programs([{"program": "a\nb", "program_id": "q0"}], round_id=r2)
    tok = store.register_annotators(["a", "b", "c"])

    assert store.next_program("a").program_id == "g0"
    _label_all(store, tok["a"], "g0", [1, 1, 1])
    assert store.next_program("a").program_id == "g1"
    assert store.next_program("a", n_gold=1).program_id == "p0"  # quota met: no more gold
    assert store.next_program("a", n_gold=0).program_id == "p0"
    _label_all(store, tok["a"], "g1", [1, 1, 1])
    _label_all(store, tok["a"], "g2", [1, 1, 1])
    assert store.next_program("a", n_gold=None).program_id == "p0"  # all gold done

    # fewest annotators first, oldest first on ties; a program is done once labelled at all
    _label_all(store, tok["b"], "p0", [1, 1])
    _label_all(store, tok["b"], "p1", [1, 1])
    _label_all(store, tok["c"], "p1", [1, 1])
    store.add_label(tok["c"], "p2", 0, 1)  # one line is enough to count
    assert store.next_program("a", n_gold=0).program_id == "p3"  # nobody yet
    _label_all(store, tok["a"], "p3", [1, 1])
    assert store.next_program("a", n_gold=0).program_id == "q0"
    assert store.next_program("a", n_gold=0, round_id=r1).program_id == "p0"  # 1 annotator, older than p2
    _label_all(store, tok["a"], "p0", [1, 1])
    assert store.next_program("a", n_gold=0, round_id=r1).program_id == "p2"
    assert store.next_program("a", n_gold=0, round_id=r1, max_annotators=1) is None  # p1 has 2, p2 has 1
    store.add_label(tok["a"], "p2", 0, 1)
    assert store.next_program("a", n_gold=0, round_id=r1).program_id == "p1"
    store.add_label(tok["a"], "p1", 0, 1)
    assert store.next_program("a", n_gold=0, round_id=r1) is None
    assert store.next_program("c", n_gold=0, round_id=r1).program_id == "p3"


def test_queue_never_reveals_gold(store):
    store.add_gold(GOLD, [1, -1, 1], program_id="g")
    store.register_annotator("a")
    p = store.next_program("a")
    assert p.program_id == "g"
    assert set(vars(p)) == {"program_id", "program", "task_id", "prompt", "round_id"}


def test_active_queue_routes_to_least_certain_lines(store):
    store.add_programs([{"program": "a\nb", "program_id": p} for p in ("sure", "torn", "fresh")])
    tok = store.register_annotators(["a", "b", "c", "d"])
    for who in ("a", "b"):
        _label_all(store, tok[who], "sure", [1, 1])
    _label_all(store, tok["a"], "torn", [1, 1])
    _label_all(store, tok["b"], "torn", [1, -1])  # equal reliabilities: line 1 at exactly 1/2
    # fresh has no labels: every line at the prior, and no annotator: first either way
    assert store.next_program("c", n_gold=0).program_id == "fresh"
    assert store.next_program("c", n_gold=0, active=True).program_id == "fresh"
    _label_all(store, tok["d"], "fresh", [1, 1])
    _label_all(store, tok["a"], "fresh", [-1, -1])
    _label_all(store, tok["b"], "fresh", [-1, -1])  # fresh: 3 annotators, 2 against 1: fairly certain
    assert store.next_program("c", n_gold=0).program_id == "sure"  # fewest annotators, oldest
    assert store.next_program("c", n_gold=0, active=True).program_id == "torn"
    # the model's posteriors decide: a model that trusts a and d alike and b barely
    model = CrowdModel(nu=0.7, lam=0.5, reliability="eq8").add_annotators(["a", "b", "c", "d"])
    model.calibrate({"a": [1] * 10, "d": [1] * 10, "b": [1] * 5 + [-1] * 5}, truth=[1] * 10)
    # fresh: d (+1) against a and b (-1) = -logit(p_b), the least certain line now
    assert store.next_program("c", n_gold=0, active=True, model=model).program_id == "fresh"
    with pytest.raises(TypeError):
        store.next_program("c", active=True, model=model, lam=0.1)


@pytest.mark.parametrize("reliability", ["eq8", "beta", "two_coin"])
def test_active_queue_agrees_with_assess_and_leaves_the_model_alone(store, reliability):
    _fill_simulated(store, n_programs=25)
    store.register_annotator("new")
    model, _ = store.replay(reliability=reliability)
    before, n_hist = model.reliabilities.copy(), len(model.history)
    labels = store.labels()
    # the rule (the least certain counted line first) is worked by hand in the test above; here the
    # queue's posteriors must be CrowdModel.assess's, the public view, under each reliability model
    certainty = {}
    for pid in store.programs(gold=False)["program_id"]:  # all have 4 annotators: ties go to the oldest
        res = model.assess(labels[labels["program_id"] == pid], program=store.program(pid).program)
        certainty.setdefault(min(abs(res.posteriors[res.counted] - 0.5)), pid)
    want = certainty[min(certainty)]
    assert store.next_program("new", n_gold=0, active=True, model=model).program_id == want
    pd.testing.assert_series_equal(model.reliabilities, before)
    assert len(model.history) == n_hist


# ------------------------------------------------------------------------------------ crowd model
def _fill_simulated(store, n_programs=40, n_lines=6, seed=3):
    """A simulated crowd of 8 labels 3 gold programs, then n_programs (4 annotators each), through
    the store, program by program; returns the label frame it wrote, the gold truth, the text."""
    crowd = noisy_crowd(8, seed=seed)
    gold_log, gold = crowd.gold_log(n_gold=3, lines=n_lines)
    truths = random_truths(n_programs, n_lines, seed=seed)
    log = crowd.label_programs(truths, k=4)
    text = "\n".join(f"x{i} = {i}" for i in range(n_lines))
    store.add_tasks([{"task_id": "T", "prompt": "# add\n"}])
    store.add_gold_programs([{"program": text, "truth": list(gold[g]), "program_id": g} for g in gold])
    store.add_programs([{"program": text, "program_id": str(p), "task_id": "T"} for p in range(n_programs)])
    tokens = store.register_annotators([str(a) for a in crowd.names])
    full = pd.concat([gold_log, log.assign(program_id=log["program_id"].astype(str))], ignore_index=True)
    full["annotator"] = full["annotator"].astype(str)
    for _pid, frame in full.groupby("program_id", sort=False):  # program by program, as the crowd works
        for who, rows in frame.groupby("annotator", sort=False):
            store.add_labels(tokens[who], rows[["program_id", "line", "label"]])
    return full, gold, text, tokens


def test_replay_equals_crowd_model_on_the_same_log(store):
    full, gold, text, tokens = _fill_simulated(store)
    # second thoughts of one annotator on an early program: only the latest label counts
    who, pid = full["annotator"].iloc[-1], "0"
    extra = pd.DataFrame({"program_id": pid, "line": [0, 0, 1], "annotator": who, "label": [1, -1, -1]})
    store.add_labels(tokens[who], extra[["program_id", "line", "label"]])
    log = pd.concat([full, extra], ignore_index=True)
    for kwargs in ({}, {"reliability": "beta", "lam": 0.1}):
        model, result = store.replay(**kwargs)
        expect = CrowdModel(**kwargs)
        expect.add_annotators(list(tokens))
        want = expect.replay(log, gold=gold, programs={p: text for p in log["program_id"]})
        pd.testing.assert_series_equal(model.reliabilities, expect.reliabilities)
        pd.testing.assert_frame_equal(result.scores, want.scores)
        pd.testing.assert_frame_equal(result.lines, want.lines)
        assert result.scores["gold"].sum() == len(gold) == 3
    # the model is the one given, updated in place
    mine = CrowdModel(tau=0.6)
    assert store.replay(mine)[0] is mine and len(mine.history) > 0
    with pytest.raises(TypeError):
        store.replay(mine, tau=0.5)


def test_dataset_export_jsonl_parquet_and_hf(store, tmp_path):
    _fill_simulated(store, n_programs=12)
    r = store.new_round()
    store.add_program("y = 2", program_id="unlabelled", round_id=r)
    data = store.dataset()
    assert list(data.columns[:3]) == ["prompt", "program", "score"]
    assert len(data) == 12 and not data["gold"].any() and (data["prompt"] == "# add\n").all()
    _, result = store.replay()
    scores = result.scores.set_index("program_id")["score"]
    assert data["score"].tolist() == scores.loc[data["program_id"]].tolist()
    assert (data["n_annotators"] == 4).all()
    assert len(store.dataset(include_gold=True)) == 15
    assert store.dataset(min_annotators=5).empty
    assert store.dataset(round_id=r).empty  # its program has no labels

    path = store.export_dataset(tmp_path / "s.jsonl")
    back = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["score"] for r in back] == data["score"].tolist()  # exact floats
    assert [r["program"] for r in back] == data["program"].tolist()
    assert back[0]["round_id"] is None and back[0]["k"] == 6 and back[0]["gold"] is False
    pytest.importorskip("pyarrow")
    pq = pd.read_parquet(store.export_dataset(tmp_path / "s.parquet"))
    assert pq["prompt"].tolist() == data["prompt"].tolist() and pq["program"].tolist() == data["program"].tolist()
    assert pq["score"].tolist() == data["score"].tolist() and pq["round_id"].isna().all()
    with pytest.raises(ValueError, match="field 'format'"):
        store.export_dataset(tmp_path / "s.csv")
    pytest.importorskip("datasets")
    ds = store.to_dataset()
    assert ds.num_rows == 12 and ds["score"] == data["score"].tolist() and ds["prompt"][0] == "# add\n"


def test_rounds_wait_for_labels(open_store):
    store = open_store()
    r = store.new_round("round 1")
    pids = store.add_programs(["a\nb", "c"], round_id=r)
    tok = store.register_annotators(["a", "b"])
    status = store.labels_complete(pids, min_annotators=2)
    assert status.values.tolist() == [[pids[0], 0, False], [pids[1], 0, False]]
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="2 of 2 programs"):
        store.wait_for_labels(pids, min_annotators=2, timeout=0.3, poll=0.05, progress=False)
    assert 0.25 < time.monotonic() - t0 < 10  # gave up, did not hang

    def crowd():  # another kernel, with its own store object
        other = open_store()
        for who in ("a", "b"):
            time.sleep(0.1)
            other.add_labels(tok[who], [(pids[0], 0, 1), (pids[1], 0, -1)])

    worker = threading.Thread(target=crowd)
    worker.start()
    labels = store.wait_for_labels(pids, min_annotators=2, timeout=30, poll=0.05, progress=True)
    worker.join()
    assert len(labels) == 4 and set(labels["program_id"]) == set(pids)
    assert store.labels_complete(pids, 2)["complete"].all()
    assert store.dataset(round_id=r)["n_annotators"].tolist() == [2, 2]


def test_head_and_progress_follow_rounds_as_the_loop_opens_them(open_store):
    """What a waiting page polls (head), a student's queue progress and a round's progress
    (labels per program against the target), on both backends."""
    store = open_store()
    assert store.head() == (None, 0)
    store.add_task("t/1", "def f():\n")
    store.add_gold(GOLD, [1, 1, -1], program_id="g0", task_id="t/1")
    store.add_programs(["x = 1\n"], task_id="t/1")  # before any round
    assert store.head() == (None, 2)
    r1 = store.new_round("round 1")
    assert store.head() == (r1, 2)  # a round opened: the head moves before its programs come
    store.add_programs([{"program_id": f"run-r1-p0-s{j}", "program": PROG} for j in range(3)], task_id="t/1",
                       round_id=r1)
    assert store.head() == (r1, 5)
    tok = store.register_annotators(["a", "b"])
    store.add_labels(tok["a"], [("g0", 0, 1), ("run-r1-p0-s0", 0, 1), ("run-r1-p0-s1", 1, -1)])
    store.add_labels(tok["b"], [("run-r1-p0-s0", 2, 1)])
    assert store.queue_progress("a", n_gold=1, round_id=r1) == (3, 4)  # 1 gold + 2 of the round's 3
    assert store.queue_progress("a", n_gold=0, round_id=r1) == (2, 3)
    assert store.queue_progress("b", n_gold=5) == (1, 5)  # every round and the early program; 1 gold
    prog = store.round_progress(r1, min_annotators=2)
    assert prog["program_id"].tolist() == [f"run-r1-p0-s{j}" for j in range(3)]
    assert prog["n_annotators"].tolist() == [2, 1, 0] and prog["complete"].tolist() == [True, False, False]
    assert prog["name"].tolist() == [f"t/1 · sample {j + 1} · round 1" for j in range(3)]
    # the loop's test
    assert prog["complete"].tolist() == store.labels_complete(prog["program_id"], 2)["complete"].tolist()
    assert len(store.round_progress(None, min_annotators=1)) == 4  # every ordinary program
    assert store.next_program("b", n_gold=0, round_id=r1).name == "t/1 · sample 3 · round 1"  # fewest first
    with pytest.raises(ValueError, match="min_annotators"):
        store.round_progress(r1, min_annotators=0)


def test_program_names_are_task_and_sample():
    assert program_name("c7f84685-r1-p0-s0", "HumanEval/3", 1) == "HumanEval/3 · sample 1 · round 1"
    assert program_name("r2-minicode/0/train/4-s3", "minicode/0/train/4",
                        2) == "minicode/0/train/4 · sample 4 · round 2"
    assert program_name("gold-c7f84685-0", "HumanEval/3", gold=True) == "gold · HumanEval/3"
    assert program_name("ea3470b5a1", None) == "ea3470b5a1" and program_name("g0", gold=True) == "gold · g0"
    # a Program never tells a student it is gold (calibration stays blind)
    assert Program("gold-run-0", "a = 1", task_id="t/1").name == "t/1"


def test_database_url_is_what_every_process_opens(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = database_url("labels.db")  # relative: absolute, so kernels elsewhere open the same file
    assert url == f"sqlite:///{tmp_path / 'labels.db'}"
    assert LabelStore(url).url == LabelStore("labels.db").url
    # the password is kept (the URL is handed on, not shown); psycopg 3 is the driver
    assert database_url("postgresql://u:s3cret@db/labels") == "postgresql+psycopg://u:s3cret@db/labels"
    with pytest.raises(ValueError, match="field 'url'"):
        database_url("mysql://u@db/labels")


def test_sqlite_writers_queue_on_a_lock_that_times_out(tmp_path):
    import fcntl

    store = LabelStore(tmp_path / "labels.db", busy_timeout=0.3)
    with store._db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 300
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    full = LabelStore(tmp_path / "full.db", sqlite_synchronous="FULL")
    with full._db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    full.close()
    store.add_program("a", program_id="p")
    tok = store.register_annotator("a")
    fd = os.open(str(tmp_path / "labels.db-writelock"), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another writer holds the queue
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="write lock"):
        store.add_label(tok, "p", 0, 1)
    assert 0.25 < time.monotonic() - t0 < 10  # gave up on the lock, did not hang
    os.close(fd)  # it lets go: the abandoned wait must not keep the lock
    assert store.add_label(tok, "p", 0, -1).stored == 1
    done = threading.Event()
    fd = os.open(str(tmp_path / "labels.db-writelock"), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.1, lambda: (done.set(), os.close(fd))).start()  # set before release
    assert store.add_label(tok, "p", 0, 1).stored == 1  # waits for the holder, then writes
    assert done.is_set()
    assert store.labels(latest=False)["label"].tolist() == [-1, 1]


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite writers always take turns
def test_postgres_appends_take_turns_so_order_is_commit_order(open_store):
    store = open_store()
    store.add_program("a\nb", program_id="p")
    tok = store.register_annotator("a")
    engine = raw_engine(store)
    with engine.connect() as holder:  # another append, not yet committed, holds the turn
        holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": store._db.pg_keys["labels"]})
        writer = threading.Thread(target=store.add_label, args=(tok, "p", 0, 1))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and store.labels().empty  # waits for its turn
        holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": store._db.pg_keys["labels"]})
        writer.join(30)
    engine.dispose()
    assert not writer.is_alive() and store.labels()["label"].tolist() == [1]


def test_in_memory_store():
    store = LabelStore("sqlite://")
    store.add_program("a\nb", program_id="p")
    store.add_label(store.register_annotator("a"), "p", 0, 1)
    assert store.labels()["label"].tolist() == [1]
    assert store.check_integrity() == []


# ------------------------------------------------------------------------------------ concurrency
N_WRITERS, PER_WRITER, N_KILLED = 30, 200, 6


def _expected(writer: int, j: int):
    """The label writer ``writer`` writes in slot ``j``: (program_id, line, label, client_label_id)."""
    return f"p{j // 10}", j % 10, 1 if (writer * 7 + j * 3) % 5 else -1, f"w{writer}-{j}"


def _writer(where, token, writer, ack_path, slow, go=None):
    """Write PER_WRITER labels in batches of 1-10, retrying some batches; record each ack after commit."""
    store = LabelStore(**where)
    if go is not None:
        go.wait(60)
    rng = random.Random(writer)
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    j, previous = 0, None
    while j < PER_WRITER:
        n = rng.randint(1, 10)
        batch = [_expected(writer, k) for k in range(j, min(j + n, PER_WRITER))]
        ack = store.add_labels(token, batch)
        os.write(fd, "".join(f"{c}\n" for c in ack.client_label_ids).encode())
        if previous is not None and rng.random() < 0.2:  # a client that lost an ack sends again
            store.add_labels(token, previous)
        previous, j = batch, j + n
        if slow:
            time.sleep(0.02)
    os.close(fd)
    os._exit(0)


def _acked(path):
    if not os.path.exists(path):
        return set()
    text = Path(path).read_text()
    return set(text[: text.rfind("\n") + 1].split())  # complete lines only


def _check_log(store, acked_by_writer, complete):
    log = store.labels(latest=False)
    engine = raw_engine(store)
    with engine.connect() as conn:
        raw = pd.read_sql("SELECT annotator, client_label_id, program_id, line, label FROM labels", conn)
    engine.dispose()
    assert not raw.duplicated(["annotator", "client_label_id"]).any()
    assert len(log) == len(raw)
    stored = {(a, c): (p, li, lb) for a, c, p, li, lb in raw.itertuples(index=False)}
    for writer, acked in acked_by_writer.items():
        for cid in acked:
            j = int(cid.split("-")[1])
            assert stored.get((f"w{writer}", cid)) == _expected(writer, j)[:3], (writer, cid)
    for writer in complete:
        assert sum(1 for a, _ in stored if a == f"w{writer}") == PER_WRITER
    assert store.check_integrity() == []


def test_30_writers_some_killed_keep_every_acknowledged_label(open_store, tmp_path):
    store = open_store()
    store.add_programs([{"program": "\n".join(f"x{i} = {i}" for i in range(10)), "program_id": f"p{k}"}
                        for k in range(PER_WRITER // 10)])
    tokens = store.register_annotators([f"w{i}" for i in range(N_WRITERS)])
    store.close()  # no pooled connection crosses the fork
    ctx = multiprocessing.get_context("fork")
    victims = set(range(N_KILLED))
    rng = random.Random(0)
    kill_at = {v: rng.randint(10, 150) for v in victims}
    acks = {i: str(tmp_path / f"ack{i}.txt") for i in range(N_WRITERS)}
    go = ctx.Event()  # all writers start together, once all are up
    procs = {i: ctx.Process(target=_writer, args=(open_store.where, tokens[f"w{i}"], i, acks[i], i in victims, go))
             for i in range(N_WRITERS)}
    for p in procs.values():
        p.start()
    go.set()
    deadline = time.monotonic() + 120
    alive = set(victims)
    while alive and time.monotonic() < deadline:
        for v in list(alive):
            if not procs[v].is_alive():  # ended before its kill: reported below
                alive.discard(v)
            elif len(_acked(acks[v])) >= kill_at[v]:
                os.kill(procs[v].pid, signal.SIGKILL)
                alive.discard(v)
        time.sleep(0.002)
    for p in procs.values():
        p.join(120)
    for i, p in procs.items():
        if i in victims:
            assert p.exitcode == -signal.SIGKILL, f"writer {i} was not killed mid-way ({p.exitcode})"
            assert len(_acked(acks[i])) < PER_WRITER
        else:
            assert p.exitcode == 0, f"writer {i} failed ({p.exitcode})"
    survivors = set(range(N_WRITERS)) - victims
    _check_log(store, {i: _acked(acks[i]) for i in range(N_WRITERS)}, complete=survivors)

    # the killed writers start again from scratch: their retries are stored once
    store.close()
    again = [ctx.Process(target=_writer, args=(open_store.where, tokens[f"w{v}"], v, acks[v], False))
             for v in sorted(victims)]
    for p in again:
        p.start()
    for p in again:
        p.join(120)
        assert p.exitcode == 0
    _check_log(store, {i: _acked(acks[i]) for i in range(N_WRITERS)}, complete=range(N_WRITERS))
    assert len(store.labels(latest=False)) == N_WRITERS * PER_WRITER
    assert len(store.labels()) == N_WRITERS * PER_WRITER  # every slot is a distinct line


def _open_and_write(where, n, out):
    store = LabelStore(**where)
    tok = store.register_annotator(f"opener{n}")
    store.add_program("a", program_id="shared")
    store.add_label(tok, "shared", 0, 1)
    out.put(n)  # a normal return: the queue is flushed before the process exits


def test_processes_creating_one_store_at_once(open_store):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_open_and_write, args=(open_store.where, n, out)) for n in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(out.get(timeout=5) for _ in procs) == list(range(8))
    store = open_store()
    assert len(store.labels()) == 8 and store.check_integrity() == []


def test_forked_child_uses_a_store_opened_by_its_parent(open_store):
    store = open_store()
    store.add_program("a\nb", program_id="p")
    tok = store.register_annotator("a")
    store.add_label(tok, "p", 0, 1)  # the parent holds a pooled connection now
    ctx = multiprocessing.get_context("fork")

    def child():
        store.add_label(tok, "p", 1, -1)
        os._exit(0)

    p = ctx.Process(target=child)
    p.start()
    p.join(60)
    assert p.exitcode == 0
    store.add_label(tok, "p", 0, -1)  # the parent's connections still work
    assert store.labels()[["line", "label"]].values.tolist() == [[1, -1], [0, -1]]
