"""The ``Task`` record shared by every task family, and strict readers for task files.

Conventions (one per test style):

- ``test_style="check"`` (HumanEval, minicode): ``test`` defines ``check(candidate)``; the
  sandbox calls it with the function ``entry_point`` of the program.
- ``test_style="asserts"`` (MBPP): ``test`` is ``test_setup_code`` followed by assert
  statements, run after the program (that order passes 974/974 MBPP references).
- ``test_style="none"`` (XLCoST): text-to-code pairs for SFT, no tests.

A program is ``prompt + completion`` when ``prompt_in_program`` (docstring-style prompts), or
the completion alone (few-shot prompts such as MBPP's ``[BEGIN]/[DONE]`` format).
``reference`` is always a *completion*: ``task.program(task.reference)`` is the reference
program, and its ``check_item`` passes.
"""

from __future__ import annotations

import ast
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

TEST_STYLES = ("check", "asserts", "none")

HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
"""Stop sequences of the Codex paper for function-completion prompts."""


class TaskFormatError(ValueError):
    """A malformed task file: the message names the file, the line and the field."""

    def __init__(self, path: str, line: int | None, field_name: str | None, problem: str):
        self.path, self.line, self.field = str(path), line, field_name
        where = self.path if line is None else f"{self.path}, line {line}"
        what = f"field {field_name!r}: " if field_name else ""
        super().__init__(f"{where}: {what}{problem}")


@dataclass(frozen=True)
class Task:
    """One programming problem: what the model sees, how a completion is checked.

    ``metadata`` holds source-specific extras (split, kind, original code ...); treat it as
    read-only. ``stop`` lists the sequences at which a sampled completion ends.
    """

    task_id: str
    prompt: str
    entry_point: str | None
    test: str
    reference: str
    source: str
    metadata: dict = field(default_factory=dict, compare=False, hash=False)
    prompt_in_program: bool = True
    test_style: str = "check"
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("task_id", "prompt", "test", "reference", "source"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Task.{name} must be a str, got {type(getattr(self, name)).__name__}")
        if self.test_style not in TEST_STYLES:
            raise ValueError(f"Task.test_style must be one of {TEST_STYLES}, got {self.test_style!r}")
        if self.test_style == "check" and not self.entry_point:
            raise ValueError(f"Task {self.task_id}: test_style 'check' needs an entry_point")
        object.__setattr__(self, "stop", tuple(self.stop))

    def program(self, completion: str) -> str:
        """The full program for a completion: ``prompt + completion`` or the completion alone."""
        return self.prompt + completion if self.prompt_in_program else completion

    def truncate(self, completion: str) -> str:
        """Cut a sampled completion at its first stop sequence."""
        cut = len(completion)
        for s in self.stop:
            i = completion.find(s)
            if i != -1:
                cut = min(cut, i)
        return completion[:cut]

    def item_for_program(self, program: str) -> tuple[str, str, str | None]:
        """The ``(program, test, entry_point)`` triple that ``crlhf.sandbox`` runs."""
        if self.test_style == "none":
            raise ValueError(f"Task {self.task_id} ({self.source}) has no tests to run")
        entry = self.entry_point if self.test_style == "check" else None
        return program, self.test, entry

    def check_item(self, completion: str) -> tuple[str, str, str | None]:
        """The sandbox triple for a completion (see the module docstring for conventions)."""
        return self.item_for_program(self.program(completion))

    @property
    def reference_program(self) -> str:
        """The full reference program."""
        return self.program(self.reference)


def read_jsonl(path: str | os.PathLike, opener=open) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for every non-blank line; bad JSON names file and line."""
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskFormatError(path, n, None, f"invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise TaskFormatError(path, n, None, f"expected a JSON object, got {type(obj).__name__}")
            yield n, obj


def require(row: dict, name: str, kind: type | tuple[type, ...], path, line) -> Any:
    """``row[name]``, checked to be of ``kind``; otherwise a ``TaskFormatError``."""
    if name not in row:
        raise TaskFormatError(path, line, name, "missing")
    value = row[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        value_ok = False
    else:
        value_ok = isinstance(value, kind)
    if not value_ok:
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TaskFormatError(path, line, name, f"expected {want}, got {type(value).__name__}")
    return value


def require_str_list(row: dict, name: str, path, line) -> list[str]:
    """``row[name]`` as a list of strings; otherwise a ``TaskFormatError``."""
    value = require(row, name, list, path, line)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TaskFormatError(path, line, f"{name}[{i}]", f"expected str, got {type(item).__name__}")
    return value


def normalise_code(code: str) -> str:
    """Unix newlines, leading tabs expanded as Python reads them (tab stops of 8), no trailing blanks."""
    out = []
    for line in code.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        body = line.lstrip(" \t")
        out.append(line[: len(line) - len(body)].expandtabs(8) + body.rstrip())
    return "\n".join(out).strip("\n") + "\n"


def parse(code: str, mode: str = "exec") -> ast.AST:
    """``ast.parse`` without the warnings old code gives (invalid escape sequences)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(code, mode=mode)
