"""MBPP (Austin et al. 2021): 974 problems, from a local JSONL file or the Hugging Face Hub.

Splits of the literature (by ``task_id``): prompt 1-10, test 11-510, validation 511-600,
train 601-974. Tests always run as ``program + test_setup_code + asserts`` (``test_style
"asserts"``); ``entry_point`` names the function the tests call. Two prompt styles:

- ``"docstring"`` (HumanEval-like): code before the tested function (imports, helpers),
  then its signature and a docstring with the problem text and the first test as an
  example. The completion is the function body (plus any code after the function); the
  program is ``prompt + completion``.
- ``"3shot"`` (Austin et al.): three solved problems (task_ids 2, 3, 4 by default) in the
  ``[BEGIN]/[DONE]`` format, then the problem; the completion is the whole program, which
  ends at ``[DONE]``; the program is the completion alone.
"""

from __future__ import annotations

import ast
import os

from .base import (HUMANEVAL_STOP, Task, TaskFormatError, normalise_code, parse, read_jsonl, require,
                   require_str_list)

__all__ = ["split_of", "read_rows", "hf_rows", "load_mbpp", "asserts_of", "tested_function", "fewshot_block",
           "docstring"]

SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
HF_NAME = "google-research-datasets/mbpp"
STYLES = ("docstring", "3shot")


def split_of(task_id: int) -> str | None:
    """The literature's split of an MBPP ``task_id`` (None outside 1-974)."""
    for name, (lo, hi) in SPLITS.items():
        if lo <= task_id <= hi:
            return name
    return None


def read_rows(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """Validated ``(line, row)`` pairs of an MBPP JSONL file in the original release format."""
    path = os.fspath(path)
    rows: list[tuple[int, dict]] = []
    seen: dict[str, int] = {}
    for line, row in read_jsonl(path):
        rows.append((line, _check_row(row, path, line, seen)))
    if not rows:
        raise TaskFormatError(path, None, None, "no problems in file")
    return rows


def _check_row(row: dict, path, line, seen: dict) -> dict:
    tid = require(row, "task_id", int, path, line)
    if tid in seen:
        raise TaskFormatError(path, line, "task_id", f"duplicate {tid} (first on line {seen[tid]})")
    seen[tid] = line
    out = {
        "task_id": tid,
        "text": require(row, "text", str, path, line),
        "code": require(row, "code", str, path, line),
        "test_list": require_str_list(row, "test_list", path, line),
        "test_setup_code": require(row, "test_setup_code", str, path, line),
    }
    if not out["test_list"]:
        raise TaskFormatError(path, line, "test_list", "empty")
    try:
        parse(normalise_code(out["code"]))
    except SyntaxError as exc:
        raise TaskFormatError(path, line, "code", f"not valid Python ({exc.msg}, line {exc.lineno})") from None
    return out


def hf_rows() -> list[tuple[int, dict]]:
    """All 974 problems from the Hugging Face dataset (needs a network or a warm cache)."""
    try:
        import datasets
    except ImportError as exc:
        raise ImportError("loading MBPP from the Hub needs 'datasets'; or pass path=... to a JSONL file") from exc
    try:
        dd = datasets.load_dataset(HF_NAME, "full")
    except Exception as exc:  # network, hub or cache failure: say what to do instead
        raise RuntimeError(
            f"could not load {HF_NAME!r} from the Hugging Face Hub ({type(exc).__name__}: {exc}); "
            "pass path=... to a local MBPP JSONL file (e.g. ../shared/data/mbpp.jsonl)"
        ) from exc
    seen: dict = {}
    rows = []
    for split in dd:
        for i, row in enumerate(dd[split]):
            where = f"hf:{HF_NAME}[{split}]"
            rows.append((i, _check_row(dict(row), where, i, seen)))
    rows.sort(key=lambda r: r[1]["task_id"])
    return rows


def load_mbpp(path: str | os.PathLike | None = None, split: str = "test", prompt_style: str = "docstring",
              shots: tuple[int, ...] = (2, 3, 4)) -> list[Task]:
    """MBPP tasks of one split (``"prompt"``, ``"test"``, ``"validation"``, ``"train"`` or ``"all"``).

    ``path``: a JSONL file in the original release format; None loads the Hub dataset.
    ``prompt_style``: ``"docstring"`` or ``"3shot"`` (see the module docstring).
    """
    if split != "all" and split not in SPLITS:
        raise ValueError(f"split must be 'all' or one of {tuple(SPLITS)}, got {split!r}")
    if prompt_style not in STYLES:
        raise ValueError(f"prompt_style must be one of {STYLES}, got {prompt_style!r}")
    rows = read_rows(path) if path is not None else hf_rows()
    where = os.fspath(path) if path is not None else f"hf:{HF_NAME}"
    by_id = {row["task_id"]: row for _, row in rows}
    prefix = ""
    if prompt_style == "3shot":
        missing = [s for s in shots if s not in by_id]
        if missing:
            raise ValueError(f"shots {missing} are not task_ids of {where}")
        prefix = "".join(fewshot_block(by_id[s], with_solution=True) for s in shots)
    tasks = []
    for line, row in rows:
        name = split_of(row["task_id"])
        if split != "all" and name != split:
            continue
        make = _docstring_task if prompt_style == "docstring" else _fewshot_task
        try:
            task = make(row, prefix)
        except ValueError as exc:
            raise TaskFormatError(where, line, "code", str(exc)) from None
        task.metadata.update(split=name, path=where, line=line)
        tasks.append(task)
    return tasks


def asserts_of(row: dict) -> str:
    """``test_setup_code`` then the asserts: the order in which all 974 references pass."""
    parts = [row["test_setup_code"].replace("\r\n", "\n")] + row["test_list"]
    return "\n".join(p for p in parts if p.strip()) + "\n"


def tested_function(code: str, tests: list[str]) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The top-level function of ``code`` that the tests call."""
    called = set()
    for t in tests:
        try:
            tree = parse(t)
        except SyntaxError:
            continue
        called |= {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    defs = [n for n in parse(code).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    hits = [d for d in defs if d.name in called]
    if not hits:
        names = [d.name for d in defs]
        raise ValueError(f"no top-level function of the code is called by the tests (defined: {names})")
    return hits[-1]


def _meta(row: dict, fn: str) -> dict:
    return {"mbpp_task_id": row["task_id"], "text": row["text"], "code": row["code"], "function": fn,
            "test_list": list(row["test_list"]), "test_setup_code": row["test_setup_code"]}


def fewshot_block(row: dict, with_solution: bool) -> str:
    """One problem in the Austin et al. format, solved (``[BEGIN] code [DONE]``) or open."""
    head = (f"You are an expert Python programmer, and here is your task: {row['text']} "
            f"Your code should pass these tests:\n\n" + "\n".join(row["test_list"]) + "\n[BEGIN]\n")
    return head + normalise_code(row["code"]) + "[DONE]\n" if with_solution else head


def _fewshot_task(row: dict, prefix: str) -> Task:
    code = normalise_code(row["code"])
    fn = tested_function(code, row["test_list"])
    return Task(task_id=f"mbpp/{row['task_id']}", prompt=prefix + fewshot_block(row, with_solution=False),
                entry_point=fn.name, test=asserts_of(row), reference=code, source="mbpp",
                metadata=_meta(row, fn.name), prompt_in_program=False, test_style="asserts", stop=("[DONE]",))


def _docstring_task(row: dict, _prefix: str = "") -> Task:
    code = normalise_code(row["code"])
    lines = code.splitlines()
    fn = tested_function(code, row["test_list"])
    start = min([fn.lineno] + [d.lineno for d in fn.decorator_list]) - 1
    first = fn.body[0]
    if first.lineno == fn.lineno:  # one-line function: rebuild it in block form
        header = lines[start:fn.lineno - 1] + [f"def {fn.name}({ast.unparse(fn.args)}):"]
        body = ["    " + s for stmt in fn.body for s in ast.unparse(stmt).splitlines()]
        indent = "    "
    else:
        header = lines[start:first.lineno - 1]
        body = lines[first.lineno - 1:fn.end_lineno]
        indent = body[0][: len(body[0]) - len(body[0].lstrip())]
    before, after = lines[:start], lines[fn.end_lineno:]
    prompt = "\n".join(before + header) + "\n" + docstring(row, indent)
    completion = "\n".join(body + after).rstrip("\n") + "\n"
    return Task(task_id=f"mbpp/{row['task_id']}", prompt=prompt, entry_point=fn.name,
                test=asserts_of(row), reference=completion, source="mbpp", metadata=_meta(row, fn.name),
                test_style="asserts", stop=HUMANEVAL_STOP)


def docstring(row: dict, indent: str) -> str:
    """The problem text and the first test, as a doctest-style example, in a docstring."""
    example = _example(row["test_list"][0])
    text = " ".join(row["text"].split())
    body = [text] + [f">>> {example[0]}"] + ([example[1]] if example[1] else [])
    escaped = [s.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') for s in body]
    if escaped[-1].endswith('"'):
        escaped[-1] += " "
    inner = ("\n" + indent).join(escaped)
    return f'{indent}"""{inner}\n{indent}"""\n'


def _example(test: str) -> tuple[str, str]:
    """``assert f(x) == y`` -> (``f(x)``, ``y``); other asserts are shown whole."""
    try:
        node = parse(test.strip()).body[0]
    except (SyntaxError, IndexError):
        return test.strip(), ""
    if isinstance(node, ast.Assert):
        t = node.test
        if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
            return ast.unparse(t.left), ast.unparse(t.comparators[0])
        return ast.unparse(t), "True"
    return test.strip(), ""
