"""Line truth for simulated annotators: which lines of a generated program are wrong.

Heuristic (``line_truth``):

1. A program that passes its tests is correct on every line (+1).
2. Otherwise its lines are aligned (``difflib.SequenceMatcher``) to each known-correct
   solution - the task's reference program first, then ``known_correct`` - and the solution
   with the most matched lines is used. Lines are compared normalised: comments and
   surrounding spaces dropped, spacing between tokens unified, ``"`` read as ``'``, and the
   indentation depth (block level, not width) kept, so a line moved into a loop differs.
3. Matched lines are correct (+1). Program lines with no counterpart (replaced or extra)
   are wrong (-1). Where solution lines are missing from the program, the program line
   that takes their place is wrong (the next non-blank line; at the end, the last one).
4. Blank and comment-only lines are +1 (they are not labelled), and so are the prompt's
   lines when the program starts with the task's prompt (they are given, not generated).
5. A failing program in which nothing was blamed has every generated line marked -1.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from .base import Task

__all__ = ["strip_comment", "normalise_line", "meaningful", "keys", "blame_gap", "line_truth"]

_TOKEN = re.compile(r"\w+|\S")


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (quote-aware, single line)."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif line.startswith(quote, i):
                i += len(quote) - 1
                quote = None
        elif ch in "'\"":
            quote = line[i:i + 3] if line[i:i + 3] in ("'''", '"""') else ch
            i += len(quote) - 1
        elif ch == "#":
            return line[:i]
        i += 1
    return line


def normalise_line(line: str) -> str:
    """Comparable form of a line's content: no comment, unified spacing and quotes."""
    return " ".join(_TOKEN.findall(strip_comment(line).replace('"', "'")))


def meaningful(lines: Sequence[str]) -> list[int]:
    """Indices of the lines that are neither blank nor comment-only."""
    return [i for i, line in enumerate(lines) if normalise_line(line)]


def keys(lines: Sequence[str]) -> tuple[list[int], list[tuple[int, str]]]:
    """Meaningful line indices and their ``(depth, normalised content)`` keys."""
    idx = meaningful(lines)
    stack, out = [0], []
    for i in idx:
        line = lines[i].expandtabs(8)
        width = len(line) - len(line.lstrip())
        while len(stack) > 1 and width < stack[-1]:
            stack.pop()
        if width > stack[-1]:
            stack.append(width)
        out.append((len(stack) - 1, normalise_line(line)))
    return idx, out


def blame_gap(lines: Sequence[str], gap: int) -> int | None:
    """The line blamed for code missing before line ``gap``: the next meaningful line, else the last one."""
    idx = meaningful(lines)
    after = [i for i in idx if i >= gap]
    if after:
        return after[0]
    return idx[-1] if idx else None


def _verdict(program: str, task: Task, timeout: float) -> bool:
    if task.test_style == "none":
        raise ValueError(f"task {task.task_id} has no tests: pass passed=True/False to line_truth")
    from crlhf.sandbox import check_program

    return bool(check_program(*task.item_for_program(program), timeout=timeout).passed)


def line_truth(program: str, task: Task, known_correct: Sequence[str] = (), passed: bool | None = None,
               timeout: float = 3.0) -> list[int]:
    """Per-line truth (+1 correct, -1 wrong) of ``program``, lines as ``program.splitlines()``.

    ``passed`` is the program's sandbox verdict; None runs the sandbox. ``known_correct``
    are further full programs known to pass. See the module docstring for the heuristic.
    """
    if not isinstance(program, str):
        raise TypeError(f"program must be a str, got {type(program).__name__}")
    lines = program.splitlines()
    if passed is None:
        passed = _verdict(program, task, timeout)
    if passed:
        return [1] * len(lines)
    truth = [1] * len(lines)
    idx, prog_keys = keys(lines)
    best = None
    for solution in [task.reference_program, *known_correct]:
        matcher = difflib.SequenceMatcher(None, prog_keys, keys(solution.splitlines())[1], autojunk=False)
        matched = sum(block.size for block in matcher.get_matching_blocks())
        if best is None or matched > best[0]:
            best = (matched, matcher)
    assert best is not None  # the reference program is always compared
    for tag, a1, a2, _b1, _b2 in best[1].get_opcodes():
        if tag in ("replace", "delete"):
            for k in range(a1, a2):
                truth[idx[k]] = -1
        elif tag == "insert" and idx:
            truth[idx[a1] if a1 < len(idx) else idx[-1]] = -1
    start = task.given_lines(program)
    truth[:start] = [1] * min(start, len(truth))
    generated = [i for i in idx if i >= start]
    if -1 not in truth:
        for i in generated:
            truth[i] = -1
    return truth
