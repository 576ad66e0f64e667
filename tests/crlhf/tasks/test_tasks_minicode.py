"""minicode: determinism, kinds, the held-out split, prompt shape, and references that pass."""

import ast
import collections

import pytest

from crlhf.sandbox import check_many
from crlhf.tasks import load_tasks
from crlhf.tasks.minicode import HOLDOUTS, KINDS, held_out, kinds


@pytest.fixture(scope="module")
def train():
    return load_tasks("minicode", split="train", n=1500, seed=0)


@pytest.fixture(scope="module")
def test_split():
    return load_tasks("minicode", split="test", n=1500, seed=0)


def _combos(task):
    m = task.metadata
    return {("variant", m["kind"], m["variant"]), ("wording", m["kind"], m["template"]),
            ("param", m["kind"], repr(m["param"]))}


def test_deterministic_by_seed_and_prefix_stable():
    a = load_tasks("minicode", split="test", n=50, seed=3)
    assert a == load_tasks("minicode", split="test", n=50, seed=3)
    assert load_tasks("minicode", split="test", n=20, seed=3) == a[:20]
    other = load_tasks("minicode", split="test", n=50, seed=4)
    assert sum(x.prompt + x.test == y.prompt + y.test for x, y in zip(a, other, strict=True)) < 10
    assert len({t.task_id for t in a + other}) == 100


def test_at_least_ten_kinds_all_generated(train, test_split):
    assert len(kinds()) >= 10
    assert set(kinds()) == {t.metadata["kind"] for t in train} == {t.metadata["kind"] for t in test_split}


def test_train_contains_no_held_out_combination(train):
    rule = held_out()
    for task in train:
        m = task.metadata
        assert m["held_out"] == ()
        assert m["variant"] != rule[m["kind"]]["variant"]
        assert m["template"] != rule[m["kind"]]["wording"]
        assert rule[m["kind"]]["param"] is None or m["param"] != rule[m["kind"]]["param"]


def test_every_test_task_holds_out_something_and_all_holdouts_occur(train, test_split):
    seen = collections.Counter(h for t in test_split for h in t.metadata["held_out"])
    assert all(t.metadata["held_out"] for t in test_split)
    assert set(seen) == set(HOLDOUTS) and min(seen.values()) > 150
    train_combos = set().union(*map(_combos, train))
    for task in test_split:
        held = {c for c in _combos(task) if c[0] in task.metadata["held_out"]}
        assert held and not held & train_combos, task.task_id


def test_held_out_shared_conditions_are_seen_with_other_kinds(train):
    seen = collections.defaultdict(set)
    for t in train:
        seen[t.metadata["variant"]].add(t.metadata["kind"])
    shared = [name for name, kind in KINDS.items()
              if any(other.variants is kind.variants for o, other in KINDS.items() if o != name)]
    assert len(shared) >= 10
    for name in shared:
        variant = held_out()[name]["variant"]
        assert name not in seen[variant] and len(seen[variant]) >= 2, name


def test_splits_share_no_prompt(train, test_split):
    assert not {t.prompt for t in train} & {t.prompt for t in test_split}


def test_prompt_signature_docstring_and_short_regular_bodies(train):
    for task in train[:300]:
        lines = task.prompt.splitlines()
        assert len(lines) == 2 and lines[0] == f"def {task.entry_point}({lines[0].split('(')[1]}"
        assert lines[1].startswith('    """') and lines[1].endswith('."""')
        assert len(task.prompt.split()) <= 30 and len(task.prompt) <= 160
        body = task.reference.splitlines()
        assert 3 <= len(body) <= 8 and all(line.startswith("    ") for line in body)
        tree = ast.parse(task.reference_program)
        assert [type(n).__name__ for n in tree.body] == ["FunctionDef"]
        checks = ast.parse(task.test).body[0]
        assert checks.name == "check" and len(checks.body) == 5


def test_cases_are_distinct_and_not_constant(train):
    for task in train:
        cases = task.metadata["cases"]
        assert len({repr(i) for i, _ in cases}) == 5
        assert len({repr(o) for _, o in cases}) >= 2


def test_every_reference_passes_its_tests_in_the_sandbox(train, test_split):
    tasks = train[:1000] + test_split[:1000]
    results = check_many([t.check_item(t.reference) for t in tasks], timeout=5.0, progress=False)
    failed = [(t.task_id, r.status, r.detail) for t, r in zip(tasks, results, strict=True) if not r.passed]
    assert failed == []


def test_a_wrong_body_fails(train):
    tasks = train[:40]
    results = check_many([t.check_item("    return None\n") for t in tasks], progress=False)
    assert not any(r.passed for r in results)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        load_tasks("minicode", split="validation")
    with pytest.raises(ValueError, match="n must be"):
        load_tasks("minicode", n=-1)
    assert len(KINDS) == len(kinds())


def test_split_rule_table_matches_the_documentation():
    rule = held_out()
    assert {k for k, r in rule.items() if r["variant"] is None} == {"minmax", "map"}
    assert {k for k, r in rule.items() if r["param"] is None} == {"minmax", "adjacent"}
    assert all(r["wording"] == 2 for r in rule.values())
    for name, r in rule.items():
        if r["variant"] is not None:
            assert r["variant"] in KINDS[name].variants
