"""XLCoST text-to-code pairs (Zhu et al. 2022) for supervised fine-tuning; no tests.

Accepted inputs (``path``):

- a JSON-lines file with string fields ``text`` and ``code`` (one pair a line; the
  layout of the Hub dataset ``codeparrot/xlcost-text-to-code``, ``data/<config>/<split>.json``);
- a folder of the original release, searched below for the parallel line files
  ``<split>-<Language>-desc-tok.txt`` / ``.py`` (program level, ``pair_data_tok_full_desc*``)
  or ``<split>-<Language>-comment-tok.txt`` / ``.py`` (snippet level);
- a folder holding ``<Language>-<level>-level/<split>.json`` (the Hub dataset's files);
- ``None``: the Hub dataset (needs a network).

The corpus writes code as one line of tokens with ``NEW_LINE``, ``INDENT`` and ``DEDENT``
markers; ``detokenize=True`` rebuilds lines and 4-space indentation (token spacing is kept,
which is valid Python) and turns ``▁`` back into spaces. A task's prompt is the text as a
comment line, its reference the code; ``test_style`` is ``"none"``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import Task, TaskFormatError, read_jsonl, require

__all__ = ["detokenize", "load_xlcost"]

HF_NAME = "codeparrot/xlcost-text-to-code"
LEVELS = {"program": "desc", "snippet": "comment"}
EXTENSIONS = {"Python": "py", "C++": "cpp", "Java": "java", "C#": "cs", "Javascript": "js", "PHP": "php", "C": "c"}
_SPLIT_NAMES = {"train": ("train",), "validation": ("val", "valid", "validation"), "test": ("test",)}


def detokenize(code: str) -> str:
    """XLCoST token stream (``NEW_LINE``/``INDENT``/``DEDENT``) -> Python source lines."""
    lines: list[str] = []
    current: list[str] = []
    depth = 0
    for tok in code.split():
        if tok == "NEW_LINE":
            if current:
                lines.append("    " * depth + " ".join(current))
            current = []
        elif tok == "INDENT":
            depth += 1
        elif tok == "DEDENT":
            depth = max(depth - 1, 0)
        else:
            current.append(tok.replace("\u2581", " "))
    if current:
        lines.append("    " * depth + " ".join(current))
    return "\n".join(lines) + "\n"


def _split_key(split: str) -> str:
    for key, names in _SPLIT_NAMES.items():
        if split in names:
            return key
    raise ValueError(f"split must be one of 'train', 'validation' ('val', 'valid'), 'test'; got {split!r}")


def _pair_rows(txt: Path, code: Path) -> list[tuple[int, dict]]:
    with open(txt, encoding="utf-8") as ft, open(code, encoding="utf-8") as fc:
        texts, codes = ft.read().splitlines(), fc.read().splitlines()
    if len(texts) != len(codes):
        short, n = (txt, len(texts)) if len(texts) < len(codes) else (code, len(codes))
        raise TaskFormatError(short, n + 1, "text" if short == txt else "code",
                              f"missing: {txt.name} has {len(texts)} lines but {code.name} has {len(codes)}")
    rows = []
    for i, (t, c) in enumerate(zip(texts, codes, strict=True), start=1):
        if not t.strip():
            raise TaskFormatError(txt, i, "text", "empty")
        if not c.strip():
            raise TaskFormatError(code, i, "code", "empty")
        rows.append((i, {"text": t.strip(), "code": c.strip(), "_path": str(code)}))
    return rows


def _jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for line, row in read_jsonl(path):
        text, code = require(row, "text", str, path, line), require(row, "code", str, path, line)
        for name, value in (("text", text), ("code", code)):
            if not value.strip():
                raise TaskFormatError(path, line, name, "empty")
        rows.append((line, {"text": text, "code": code, "_path": str(path)}))
    return rows


def _find_in_folder(folder: Path, split: str, language: str, level: str) -> list[tuple[int, dict]]:
    ext = EXTENSIONS.get(language)
    if ext is None:
        raise ValueError(f"language must be one of {tuple(EXTENSIONS)}, got {language!r}")
    for name in _SPLIT_NAMES[split]:
        stem = f"{name}-{language}-{LEVELS[level]}-tok"
        for txt in sorted(folder.rglob(stem + ".txt")):
            code = txt.with_suffix("." + ext)
            if not code.exists():
                raise TaskFormatError(code, None, "code", f"missing: {txt.name} has no parallel code file")
            return _pair_rows(txt, code)
        for js in sorted(folder.rglob(f"{language}-{level}-level/{name}.json")):
            return _jsonl_rows(js)
    raise FileNotFoundError(
        f"no XLCoST {split!r} {level}-level {language} data under {folder}: expected "
        f"<split>-{language}-{LEVELS[level]}-tok.txt/.{ext} or {language}-{level}-level/<split>.json"
    )


def _hf_rows(split: str, language: str, level: str) -> list[tuple[int, dict]]:
    try:
        import datasets
    except ImportError as exc:
        raise ImportError("loading XLCoST from the Hub needs 'datasets'; or pass path=...") from exc
    config = f"{language}-{level}-level"
    try:
        ds = datasets.load_dataset(HF_NAME, config, split=split)
    except Exception as exc:  # network, hub or cache failure: say what to do instead
        raise RuntimeError(
            f"could not load {HF_NAME!r} ({config}, {split}) from the Hugging Face Hub "
            f"({type(exc).__name__}: {exc}); pass path=... to a local copy"
        ) from exc
    where = f"hf:{HF_NAME}[{config}/{split}]"
    rows = []
    for i, row in enumerate(ds):
        text, code = require(row, "text", str, where, i), require(row, "code", str, where, i)
        rows.append((i, {"text": text, "code": code, "_path": where}))
    return rows


def load_xlcost(path: str | os.PathLike | None = None, split: str = "train", language: str = "Python",
                level: str = "program", detokenize_code: bool = True, limit: int | None = None) -> list[Task]:
    """XLCoST text-to-code pairs of one split as tasks without tests (see the module docstring)."""
    split = _split_key(split)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {tuple(LEVELS)}, got {level!r}")
    if path is None:
        rows = _hf_rows(split, language, level)
    else:
        p = Path(path)
        if p.is_dir():
            rows = _find_in_folder(p, split, language, level)
        elif p.exists():
            rows = _jsonl_rows(p)
        else:
            raise FileNotFoundError(f"XLCoST path {p} does not exist")
    if not rows:
        raise TaskFormatError(path or HF_NAME, None, None, "no text-code pairs found")
    tasks = []
    for i, (line, row) in enumerate(rows[:limit] if limit is not None else rows):
        code = detokenize(row["code"]) if detokenize_code else row["code"].rstrip("\n") + "\n"
        text = " ".join(row["text"].split())
        tasks.append(Task(task_id=f"xlcost/{split}/{i}", prompt=f"# {text}\n", entry_point=None, test="",
                          reference=code, source="xlcost", test_style="none",
                          metadata={"text": text, "split": split, "path": row["_path"], "line": line,
                                    "language": language, "level": level}))
    return tasks
