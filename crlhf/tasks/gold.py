"""Gold programs for annotator calibration: mutants of reference solutions with known wrong lines.

Mutations (found with ``ast`` in the generated part of the reference program, applied as a
one-line text edit so every other line is unchanged):

- ``comparison_flip``: ``>`` <-> ``<``, ``>=`` <-> ``<=``, ``==`` <-> ``!=``, ``in`` <-> ``not in``,
  and ``not c`` -> ``c``;
- ``off_by_one``: an integer constant +-1, or a comparison's boundary (``>`` <-> ``>=``, ``<`` <-> ``<=``);
- ``wrong_operator``: ``+`` <-> ``-``, ``*`` -> ``+``, ``//`` <-> ``%``, ``/`` -> ``*``, ``and`` <-> ``or``
  (also in augmented assignments);
- ``wrong_variable``: a variable read replaced by another variable of the same function;
- ``wrong_return``: a returned value replaced by another variable, ``None``, or the other bool;
- ``dropped_line``: a simple statement deleted (never the only one of its block).

The wrong line is the edited one; for a dropped line it is the line that takes its place
(``truth.blame_gap``), as ``line_truth`` blames it. A mutant that still passes its tests is
discarded: only programs that the sandbox fails become gold.
"""

from __future__ import annotations

import ast
import copy
import random
import warnings
from dataclasses import dataclass
from collections.abc import Iterable, Sequence

from .base import Task, parse
from .truth import blame_gap

__all__ = ["MUTATIONS", "GoldProgram", "mutants", "make_gold_many", "make_gold"]

MUTATIONS = ("comparison_flip", "off_by_one", "wrong_operator", "wrong_variable", "wrong_return", "dropped_line")

_FLIP = {ast.Gt: ast.Lt, ast.Lt: ast.Gt, ast.GtE: ast.LtE, ast.LtE: ast.GtE, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BOUNDARY = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt}
_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mod, ast.Mod: ast.FloorDiv,
          ast.Div: ast.Mult}
_BOOLOP = {ast.And: ast.Or, ast.Or: ast.And}


@dataclass(frozen=True)
class GoldProgram:
    """A program with known per-line truth (+1/-1 for each line of ``program.splitlines()``)."""

    task_id: str
    program: str
    truth: tuple[int, ...]
    mutation: str

    @property
    def wrong_lines(self) -> list[int]:
        """0-based indices of the wrong lines."""
        return [i for i, t in enumerate(self.truth) if t < 0]


def _int_value(node) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int):
        return -node.operand.value
    return None


def _with(node, **changes):
    new = copy.deepcopy(node)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def _scopes(tree: ast.AST) -> dict[int, set[str]]:
    """For each node id, the variable names of its innermost function (or of the module)."""
    owner: dict[int, set[str]] = {}

    def visit(node, names: set[str]):
        owner[id(node)] = names
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = child.args
                visit(child, {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs})
            else:
                visit(child, names)

    visit(tree, set())
    return owner


def _edits(tree: ast.AST, scopes: dict[int, set[str]]) -> Iterable[tuple[str, ast.AST, ast.AST | None]]:
    """``(mutation, node, replacement)``; replacement None means: delete the statement."""
    skip = {id(n) for f in ast.walk(tree) if isinstance(f, ast.JoinedStr) for n in ast.walk(f)}  # f-strings
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for table, name in ((_FLIP, "comparison_flip"), (_BOUNDARY, "off_by_one")):
                    if type(op) in table:
                        ops = list(node.ops)
                        ops[i] = table[type(op)]()
                        yield name, node, _with(node, ops=ops)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield "comparison_flip", node, node.operand
        value = _int_value(node)
        if value is not None:
            if isinstance(node, ast.UnaryOp):
                skip.add(id(node.operand))
            for delta in (1, -1):
                yield "off_by_one", node, ast.parse(repr(value + delta), mode="eval").body
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BINOP:
            yield "wrong_operator", node, _with(node, op=_BINOP[type(node.op)]())
        if isinstance(node, ast.BoolOp):
            yield "wrong_operator", node, _with(node, op=_BOOLOP[type(node.op)]())
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            for other in sorted(scopes.get(id(node), set()) - {node.id}):
                yield "wrong_variable", node, ast.Name(id=other, ctx=ast.Load())
        if isinstance(node, ast.Return) and node.value is not None:
            yield from _wrong_returns(node, scopes)
        for body in _blocks(node):
            if sum(not _is_docstring(stmt) for stmt in body) > 1:
                for stmt in body:
                    if _droppable(stmt):
                        yield "dropped_line", stmt, None


def _wrong_returns(node: ast.Return, scopes):
    v = node.value
    if isinstance(v, ast.Constant) and isinstance(v.value, bool):
        yield "wrong_return", v, ast.Constant(not v.value)
        return
    current = v.id if isinstance(v, ast.Name) else None
    for other in sorted(scopes.get(id(node), set()) - {current}):
        yield "wrong_return", v, ast.Name(id=other, ctx=ast.Load())
    if not (isinstance(v, ast.Constant) and v.value is None):
        yield "wrong_return", v, ast.Constant(None)


def _blocks(node) -> list[list]:
    return [getattr(node, f) for f in ("body", "orelse", "finalbody") if isinstance(getattr(node, f, None), list)
            and getattr(node, f) and isinstance(getattr(node, f)[0], ast.stmt)]


def _is_docstring(stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _droppable(stmt) -> bool:
    simple = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Break, ast.Continue)
    return isinstance(stmt, simple) and not _is_docstring(stmt) and stmt.lineno == stmt.end_lineno


def _apply(lines: list[str], node, replacement) -> tuple[list[str], int | None] | None:
    """The edited lines and the wrong line's index; None if the edit is not a one-line edit."""
    if node.lineno != node.end_lineno:
        return None
    row = node.lineno - 1
    if replacement is None:
        new = lines[:row] + lines[row + 1:]
        return new, blame_gap(new, row)
    raw = lines[row].encode("utf-8")
    text = ast.unparse(replacement).encode("utf-8")
    edited = (raw[:node.col_offset] + text + raw[node.end_col_offset:]).decode("utf-8")
    return lines[:row] + [edited] + lines[row + 1:], row


def _compiles(text: str) -> bool:
    """Whether ``text`` compiles (a syntax check: nothing runs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError):
            return False
    return True


def mutants(task: Task, seed: int = 0) -> list[GoldProgram]:
    """Every distinct one-line mutant of the task's reference program (not yet run).

    Only the generated part is mutated (never the prompt). Order: the mutation kinds take
    turns, each in a seeded random order, so the first few mutants are varied.
    """
    program = task.reference_program
    start = task.prompt.count("\n") if task.prompt_in_program else 0
    tree = parse(program)
    lines = program.splitlines()
    scopes = _scopes(tree)
    seen = {program}
    by_kind: dict[str, list] = {m: [] for m in MUTATIONS}
    for mutation, node, replacement in _edits(tree, scopes):
        if getattr(node, "lineno", 0) - 1 < start:
            continue
        applied = _apply(lines, node, replacement)
        if applied is None:
            continue
        new_lines, wrong = applied
        text = "\n".join(new_lines) + "\n"
        if text in seen or wrong is None or wrong < start:
            continue
        if not _compiles(text):
            continue
        seen.add(text)
        truth = tuple(-1 if i == wrong else 1 for i in range(len(new_lines)))
        by_kind[mutation].append(GoldProgram(task.task_id, text, truth, mutation))
    rng = random.Random(f"gold:{seed}:{task.task_id}")
    order = list(MUTATIONS)
    rng.shuffle(order)
    for kind in order:
        rng.shuffle(by_kind[kind])
    out = []
    while any(by_kind.values()):
        for kind in order:
            if by_kind[kind]:
                out.append(by_kind[kind].pop(0))
    return out


def make_gold_many(tasks: Sequence[Task], n: int = 5, seed: int = 0, timeout: float = 3.0,
                   progress: bool = False) -> list[list[GoldProgram]]:
    """Up to ``n`` failing mutants per task, screened in the sandbox in batches.

    A task gets fewer when fewer of its mutants fail, and none when its own reference does not
    pass (a failure would then say nothing about the mutation).
    """
    from crlhf.sandbox import check_many

    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    refs = check_many([t.check_item(t.reference) for t in tasks], timeout=timeout, progress=progress)
    pending = [mutants(t, seed) if r.passed else [] for t, r in zip(tasks, refs, strict=True)]
    gold: list[list[GoldProgram]] = [[] for _ in tasks]
    while True:
        batch = []
        for i, queue in enumerate(pending):
            need = max(n - len(gold[i]), 0)
            batch += [(i, m) for m in queue[:2 * need]]
            pending[i] = queue[2 * need:]
        if not batch:
            return gold
        results = check_many([tasks[i].item_for_program(m.program) for i, m in batch], timeout=timeout,
                             progress=progress)
        for (i, m), result in zip(batch, results, strict=True):
            if not result.passed and len(gold[i]) < n:
                gold[i].append(m)


def make_gold(task: Task, n: int = 5, seed: int = 0, timeout: float = 3.0) -> list[GoldProgram]:
    """Up to ``n`` gold programs for one task: mutants of its reference that fail its tests."""
    return make_gold_many([task], n=n, seed=seed, timeout=timeout)[0]
