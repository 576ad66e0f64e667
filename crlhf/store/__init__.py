"""LabelStore: the crowd's labels in a database (SQLite file by default, PostgreSQL by URL).

Who writes: ``register_annotator(name)`` returns a secret token (only its SHA-256 is stored);
every label write takes the token, and the annotator is the token's owner, never a name the
caller passes. A classroom kernel keeps its student's token in memory, so one student cannot
write under another's name through this API (anyone who can open the database file itself is
trusted: give students the app, not the file). A lost token is replaced with
``reset_token(name)``.

On PostgreSQL the same API runs under READ COMMITTED, and several classes can share one
database with ``schema=``; on SQLite, writers take turns and readers (dashboards) never wait
(:mod:`crlhf.store.engine`). The RL loop writes a round's programs, then polls
:meth:`LabelStore.labels_complete` or blocks in :meth:`LabelStore.wait_for_labels`.

The package: the tables (:mod:`~crlhf.store.schema`), URLs, engines and SQLite's write queue
(:mod:`~crlhf.store.engine`), :class:`~crlhf.store.values.Program`,
:class:`~crlhf.store.values.Ack`, :func:`~crlhf.store.values.program_name` and the checks of
what is written (:mod:`~crlhf.store.values`), the annotators' queue and progress
(:mod:`~crlhf.store.routing`), the replay and dataset export (:mod:`~crlhf.store.export`);
all public names are importable from ``crlhf.store``. A throwaway PostgreSQL server for tests
is :class:`crlhf.testing.TemporaryPostgres`.
"""

from __future__ import annotations

import numbers
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..crowd import CrowdModel, ReplayResult
from . import export, routing
from .._deprecation import moved_names
from .engine import PG_XACT_LOCK, Database, parse_url
from .schema import (LABEL_INSERT, TOKEN_QUERY, annotators_table, gold_table, integrity_problems, labels_table,
                     program_query, programs_table, rounds_table, tasks_table)
from .values import (_as_int, _check_name, _check_str, _chunks, _hash_token, _label_frame, _label_rows,
                     _program_rows, _rows, _task_rows)

# the public names of the package's modules, importable from crlhf.store
from .engine import database_url as database_url
from .schema import SCHEMA_VERSION as SCHEMA_VERSION, SchemaVersionError as SchemaVersionError
from .values import NEWEST as NEWEST, Ack as Ack, Program as Program, program_name as program_name

__all__ = ["LabelStore", "Program", "Ack", "NEWEST", "program_name", "database_url", "SCHEMA_VERSION",
           "SchemaVersionError"]

__getattr__ = moved_names(__name__, {"TemporaryPostgres": "crlhf.testing", "find_postgres_bindir": "crlhf.testing"})


class LabelStore:
    """The crowd's programs, annotators and append-only label log in one database.

    ``url``: ``sqlite:///labels.db`` (the default; a plain path also works), ``sqlite://`` (in
    memory), or ``postgresql+psycopg://user:password@host/db`` for a lab beyond one machine.
    ``schema``: PostgreSQL only, a schema to keep this store in (created if missing), so that
    several classes can share one database. ``create``: create the tables in an empty
    database; otherwise an empty database is an error. ``busy_timeout``: seconds a SQLite
    writer waits for the write lock. ``sqlite_synchronous``: ``NORMAL`` or ``FULL``.
    """

    def __init__(self, url="sqlite:///labels.db", *, schema: str | None = None, create: bool = True,
                 busy_timeout: float = 30.0, sqlite_synchronous: str = "NORMAL", echo: bool = False):
        self.url = parse_url(url)
        self.dialect = self.url.get_backend_name()
        if schema is not None:
            if self.dialect != "postgresql":
                raise ValueError("schema is supported on PostgreSQL only (field 'schema')")
            if not isinstance(schema, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
                raise ValueError(f"schema must be a lower-case SQL identifier, got {schema!r} "
                                 "(field 'schema')")
        self.schema = schema
        sync = str(sqlite_synchronous).upper()
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"sqlite_synchronous must be NORMAL, FULL, EXTRA or OFF, got {sqlite_synchronous!r} "
                             "(field 'sqlite_synchronous')")
        if not (isinstance(busy_timeout, numbers.Real) and busy_timeout >= 0):
            raise ValueError(f"busy_timeout must be a number of seconds >= 0, got {busy_timeout!r}")
        self._db: Database = Database(self.url, schema, float(busy_timeout), sync, echo)
        self._read: Callable[[], AbstractContextManager[sa.Connection]] = self._db.read
        self._write: Callable[..., AbstractContextManager[sa.Connection]] = self._db.write
        self._n_lines: dict[str, int] = {}  # programs never change: their line counts are cached
        self._db.ensure_schema(create)

    def __repr__(self) -> str:
        where = self.url.render_as_string(hide_password=True)
        return f"LabelStore({where!r}{f', schema={self.schema!r}' if self.schema else ''})"

    def close(self) -> None:
        """Close every pooled connection."""
        self._db.engine.dispose()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ annotators
    def register_annotator(self, annotator: str) -> str:
        """Add an annotator; returns its secret token, which every label write needs."""
        return self.register_annotators([annotator])[annotator]

    def register_annotators(self, annotators: Iterable[str]) -> dict[str, str]:
        """Add several annotators at once; returns ``{annotator: token}``. Names must be new."""
        if isinstance(annotators, str):
            annotators = [annotators]
        names = [_check_name(a) for a in annotators]
        if len(set(names)) != len(names):
            raise ValueError("annotator names repeat (field 'annotator')")
        tokens = {n: secrets.token_urlsafe(18) for n in names}
        now = time.time()
        a = annotators_table
        with self._write(serial=True) as conn:
            taken: list[str] = []
            for chunk in _chunks(names):
                taken += conn.execute(sa.select(a.c.annotator).where(a.c.annotator.in_(chunk))).scalars().all()
            if taken:
                raise ValueError(f"annotator {taken[0]!r} already exists (field 'annotator'); sign in with "
                                 "its token, or ask the instructor for reset_token")
            if names:
                conn.execute(a.insert(), [{"annotator": n, "token_hash": _hash_token(t), "created": now}
                                          for n, t in tokens.items()])
        return tokens

    def reset_token(self, annotator: str) -> str:
        """Give an annotator a new token (the old one stops working); for the instructor."""
        name = _check_name(annotator)
        token = secrets.token_urlsafe(18)
        a = annotators_table
        with self._write() as conn:
            done = conn.execute(a.update().where(a.c.annotator == name).values(token_hash=_hash_token(token)))
            if done.rowcount != 1:
                raise ValueError(f"unknown annotator {name!r} (field 'annotator')")
        return token

    def annotator_of(self, token: str) -> str:
        """The annotator a token belongs to; ``ValueError`` for an unknown token."""
        with self._read() as conn:
            return self._annotator_of(conn, token)

    @staticmethod
    def _annotator_of(conn, token) -> str:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be the str that register_annotator returned (field 'token')")
        name = conn.execute(TOKEN_QUERY, {"h": _hash_token(token)}).scalar()
        if name is None:
            raise ValueError("unknown token (field 'token'): register the annotator, or ask for reset_token")
        return name

    def _require_annotator(self, conn, annotator) -> str:
        name = _check_name(annotator)
        a = annotators_table
        if conn.execute(sa.select(a.c.annotator).where(a.c.annotator == name)).scalar() is None:
            raise ValueError(f"unknown annotator {name!r} (field 'annotator')")
        return name

    def annotators(self) -> pd.DataFrame:
        """Registered annotators: ``annotator, created, n_labels, n_programs`` (never tokens)."""
        a, lab = annotators_table, labels_table
        counts = (sa.select(lab.c.annotator, sa.func.count().label("n_labels"),
                            sa.func.count(sa.distinct(lab.c.program_id)).label("n_programs"))
                  .group_by(lab.c.annotator).subquery())
        q = (sa.select(a.c.annotator, a.c.created, sa.func.coalesce(counts.c.n_labels, 0),
                       sa.func.coalesce(counts.c.n_programs, 0))
             .select_from(a.outerjoin(counts, counts.c.annotator == a.c.annotator))
             .order_by(a.c.created, a.c.annotator))
        with self._read() as conn:
            rows = conn.execute(q).all()
        frame = pd.DataFrame(rows, columns=["annotator", "created", "n_labels", "n_programs"])
        frame["created"] = pd.to_datetime(frame["created"].astype(float), unit="s", utc=True)
        return frame.astype({"annotator": object, "n_labels": np.int64, "n_programs": np.int64})

    # ------------------------------------------------------------------ tasks, rounds, programs
    def add_tasks(self, tasks) -> list[str]:
        """Add tasks: ``crlhf.tasks.Task`` objects or mappings with ``task_id, prompt[, source]``.

        Adding a task again with the same prompt does nothing; with another prompt it is an error.
        """
        if hasattr(tasks, "task_id") and hasattr(tasks, "prompt"):
            tasks = [tasks]
        rows = _task_rows(tasks)
        by_id = {r["task_id"]: r for r in rows}
        t_ = tasks_table
        now = time.time()
        with self._write(serial=True) as conn:
            known: dict[str, str] = {}
            for chunk in _chunks(list(by_id)):
                known.update(conn.execute(sa.select(t_.c.task_id, t_.c.prompt)
                                          .where(t_.c.task_id.in_(chunk))).all())
            for tid, prompt in known.items():
                if by_id[tid]["prompt"] != prompt:
                    raise ValueError(f"task {tid!r} is already stored with another prompt (field 'task_id')")
            new = [dict(r, created=now) for tid, r in by_id.items() if tid not in known]
            if new:
                conn.execute(t_.insert(), new)
        return [r["task_id"] for r in rows]

    def add_task(self, task_id: str, prompt: str, source: str | None = None) -> str:
        """Add one task (see :meth:`add_tasks`)."""
        return self.add_tasks([{"task_id": task_id, "prompt": prompt, "source": source}])[0]

    def tasks(self) -> pd.DataFrame:
        """All tasks: ``task_id, prompt, source``."""
        t_ = tasks_table
        with self._read() as conn:
            rows = conn.execute(sa.select(t_.c.task_id, t_.c.prompt, t_.c.source).order_by(t_.c.created,
                                                                                              t_.c.task_id)).all()
        return pd.DataFrame(rows, columns=["task_id", "prompt", "source"], dtype=object)

    def new_round(self, note: str = "") -> int:
        """Open a round of Algorithm 1; returns its ``round_id`` (1, 2, ...)."""
        if not isinstance(note, str):
            raise ValueError(f"note must be a str, got {note!r} (field 'note')")
        with self._write() as conn:
            return int(conn.execute(rounds_table.insert().values(note=note, created=time.time())
                                    .returning(rounds_table.c.round_id)).scalar_one())

    def rounds(self) -> pd.DataFrame:
        """All rounds: ``round_id, note, created, n_programs``."""
        r, p = rounds_table, programs_table
        q = (sa.select(r.c.round_id, r.c.note, r.c.created, sa.func.count(p.c.program_id))
             .select_from(r.outerjoin(p, p.c.round_id == r.c.round_id))
             .group_by(r.c.round_id, r.c.note, r.c.created).order_by(r.c.round_id))
        with self._read() as conn:
            rows = conn.execute(q).all()
        frame = pd.DataFrame(rows, columns=["round_id", "note", "created", "n_programs"])
        frame["created"] = pd.to_datetime(frame["created"].astype(float), unit="s", utc=True)
        return frame.astype({"round_id": np.int64, "n_programs": np.int64})

    def head(self) -> tuple[int | None, int]:
        """``(round_id, seq)``: the newest round (``None`` before the first) and the insertion
        number of the newest program (0 when there is none). It changes whenever a round opens
        or programs are added: one cheap query, for waiting pages to poll."""
        with self._read() as conn:
            r, s = conn.execute(sa.select(sa.select(sa.func.max(rounds_table.c.round_id)).scalar_subquery(),
                                          sa.select(sa.func.max(programs_table.c.seq)).scalar_subquery())).one()
        return (None if r is None else int(r)), int(s or 0)

    def add_program(self, program: str, *, task_id: str | None = None, program_id: str | None = None,
                    round_id: int | None = None) -> str:
        """Add one program to be labelled; returns its ``program_id`` (generated if not given)."""
        return self.add_programs([{"program": program, "program_id": program_id}], task_id=task_id,
                                 round_id=round_id)[0]

    def add_programs(self, programs, *, task_id: str | None = None, round_id: int | None = None) -> list[str]:
        """Add programs to be labelled; returns their ids in order.

        ``programs``: program texts, or mappings / a frame with ``program`` and optionally
        ``program_id`` and ``task_id`` (which override the ``task_id`` argument). Adding a
        program again with the same text and task does nothing; anything else is an error.
        """
        if isinstance(programs, str):
            programs = [programs]
        if not isinstance(programs, (pd.DataFrame, Mapping)) and isinstance(programs, Iterable):
            programs = [{"program": x} if isinstance(x, str) else x for x in programs]
        items = _rows(programs, ("program", "program_id", "task_id"), "programs")
        return self._add_programs(items, task_id, round_id, gold=False)

    def add_gold(self, program: str, truth, *, task_id: str | None = None, program_id: str | None = None) -> str:
        """Add one gold program with its line truth (+1 correct / -1 wrong, one per line)."""
        return self.add_gold_programs([{"program": program, "truth": truth, "program_id": program_id}],
                                      task_id=task_id)[0]

    def add_gold_programs(self, golds, *, task_id: str | None = None) -> list[str]:
        """Add gold programs: ``crlhf.tasks.GoldProgram`` objects (their task must be stored:
        :meth:`add_tasks` first) or mappings with ``program, truth[, program_id, task_id]``."""
        items = []
        for g in ([golds] if hasattr(golds, "truth") else golds):
            if isinstance(g, Mapping):
                items.append(dict(g))
            elif hasattr(g, "program") and hasattr(g, "truth"):
                items.append({"program": g.program, "truth": g.truth, "task_id": getattr(g, "task_id", None)})
            else:
                raise TypeError(f"a gold program must be a GoldProgram or a mapping, got {g!r}")
        return self._add_programs(items, task_id, None, gold=True)

    def _add_programs(self, items: list[dict], task_id, round_id, gold: bool) -> list[str]:
        if round_id is not None:
            round_id = _as_int(round_id, "round_id")
        rows, truths, seen = _program_rows(items, task_id, round_id, gold)
        p, t_ = programs_table, tasks_table
        now = time.time()
        with self._write(serial=True) as conn:
            if round_id is not None and conn.execute(
                    sa.select(rounds_table.c.round_id).where(rounds_table.c.round_id == round_id)).scalar() is None:
                raise ValueError(f"unknown round_id {round_id!r} (field 'round_id'); call new_round first")
            tids = sorted({r["task_id"] for r in rows if r["task_id"] is not None})
            known_tasks = set()
            for chunk in _chunks(tids):
                known_tasks |= set(conn.execute(sa.select(t_.c.task_id).where(t_.c.task_id.in_(chunk))).scalars())
            missing = [t for t in tids if t not in known_tasks]
            if missing:
                raise ValueError(f"unknown task_id {missing[0]!r} (field 'task_id'); call add_tasks first")
            known = {}
            for chunk in _chunks(list(seen)):
                for row in conn.execute(sa.select(p.c.program_id, p.c.task_id, p.c.round_id, p.c.program,
                                                  p.c.gold).where(p.c.program_id.in_(chunk))).mappings():
                    known[row["program_id"]] = row
            for pid, row in known.items():
                mine = seen[pid]
                if ((row["program"], row["task_id"], row["round_id"], bool(row["gold"]))
                        != (mine["program"], mine["task_id"], mine["round_id"], gold)):
                    raise ValueError(f"program {pid!r} is already stored with another text, task, round or "
                                     "gold flag (field 'program_id')")
            new = [dict(r, created=now) for pid, r in seen.items() if pid not in known]
            if new:
                conn.execute(p.insert(), new)
                gold_rows = [{"program_id": r["program_id"], "line": j, "label": v}
                             for r in new if r["gold"] for j, v in enumerate(truths[r["program_id"]])]
                if gold_rows:
                    conn.execute(gold_table.insert(), gold_rows)
        for r in rows:
            self._n_lines[r["program_id"]] = r["n_lines"]
        return [r["program_id"] for r in rows]

    def program(self, program_id: str) -> Program:
        """One program as an annotator sees it."""
        pid = _check_str(program_id, "program_id")
        with self._read() as conn:
            row = conn.execute(program_query().where(programs_table.c.program_id == pid)).first()
        if row is None:
            raise ValueError(f"unknown program_id {pid!r} (field 'program_id')")
        return Program(*row)

    def programs(self, *, round_id: int | None = None, gold: bool | None = None, text: bool = False
                 ) -> pd.DataFrame:
        """Programs in insertion order: ``program_id, task_id, round_id, gold, n_lines, created``
        (+ ``program`` with ``text=True``)."""
        p = programs_table
        cols = [p.c.program_id, p.c.task_id, p.c.round_id, p.c.gold, p.c.n_lines, p.c.created]
        if text:
            cols.append(p.c.program)
        q = sa.select(*cols).order_by(p.c.seq)
        if round_id is not None:
            q = q.where(p.c.round_id == _as_int(round_id, "round_id"))
        if gold is not None:
            q = q.where(p.c.gold == bool(gold))
        with self._read() as conn:
            rows = conn.execute(q).all()
        frame = pd.DataFrame(rows, columns=[c.name for c in cols])
        frame["round_id"] = frame["round_id"].astype("Int64")
        frame["created"] = pd.to_datetime(frame["created"].astype(float), unit="s", utc=True)
        return frame.astype({"program_id": object, "gold": bool, "n_lines": np.int64})

    def gold(self) -> pd.DataFrame:
        """The line truth of every gold program: ``program_id, line, label``."""
        g = gold_table
        with self._read() as conn:
            rows = conn.execute(sa.select(g.c.program_id, g.c.line, g.c.label)
                                .order_by(g.c.program_id, g.c.line)).all()
        return pd.DataFrame(rows, columns=["program_id", "line", "label"]).astype(
            {"program_id": object, "line": np.int64, "label": np.int64})

    def gold_truth(self, program_id: str) -> np.ndarray | None:
        """The line truth of a gold program (+1/-1 per line), ``None`` for an ordinary one.
        For feedback *after* an annotator submitted; never put it in a widget before."""
        pid = _check_str(program_id, "program_id")
        g = gold_table
        with self._read() as conn:
            self._lines_of(conn, [pid])
            vals = conn.execute(sa.select(g.c.label).where(g.c.program_id == pid).order_by(g.c.line)).scalars().all()
        return np.asarray(vals, dtype=np.int64) if vals else None

    def _lines_of(self, conn, program_ids) -> dict[str, int]:
        """``n_lines`` of each program (cached); ``ValueError`` naming the first unknown one."""
        need = [pid for pid in dict.fromkeys(program_ids) if pid not in self._n_lines]
        p = programs_table
        for chunk in _chunks(need):
            self._n_lines.update(conn.execute(sa.select(p.c.program_id, p.c.n_lines)
                                              .where(p.c.program_id.in_(chunk))).all())
        for pid in need:
            if pid not in self._n_lines:
                raise ValueError(f"unknown program_id {pid!r} (field 'program_id')")
        return self._n_lines

    # ------------------------------------------------------------------ labels in
    def add_label(self, token: str, program_id: str, line: int, label: int,
                  client_label_id: str | None = None) -> Ack:
        """Append one label (+1 correct / -1 wrong) of the token's annotator; see :meth:`add_labels`."""
        return self.add_labels(token, [{"program_id": program_id, "line": line, "label": label,
                                        "client_label_id": client_label_id}])

    def add_labels(self, token: str, labels) -> Ack:
        """Append labels of the annotator who owns ``token``, in one transaction.

        ``labels``: a frame or an iterable of mappings / tuples ``(program_id, line, label[,
        client_label_id])``; ``line`` is 0-based, ``label`` +1 (correct) or -1 (wrong). A
        ``client_label_id`` (a str the client makes up, e.g. a UUID) makes retries safe: a label
        whose id this annotator already used is stored once (reusing an id for a different
        label is an error). An ``annotator`` column, if present, must name the token's owner;
        ``time`` and ``order`` columns (of a :meth:`labels` frame) are ignored: the store stamps
        its own. Returns only after the commit: an :class:`Ack` means the labels are stored.
        """
        rows = _rows(labels, ("program_id", "line", "label", "client_label_id"), "labels")
        pids, lines, labs, cids, claimed = _label_rows(rows)
        now = time.time()
        with self._write() as conn:
            annotator = self._annotator_of(conn, token)
            others = claimed - {annotator}
            if others:
                raise ValueError(f"labels name annotator {sorted(map(str, others))[0]!r}, but the token belongs "
                                 f"to {annotator!r} (field 'annotator'): write with your own token")
            n_lines = self._lines_of(conn, pids)
            for i, (pid, line) in enumerate(zip(pids, lines, strict=True)):
                if not 0 <= line < n_lines[pid]:
                    raise ValueError(f"labels[{i}]: line {line} is out of range for program {pid!r} of "
                                     f"{n_lines[pid]} lines (field 'line')")
            if not rows:
                return Ack(annotator, (), 0, 0, now)
            values = [{"program_id": p, "line": li, "annotator": annotator, "label": lb, "time": now,
                       "client_label_id": c} for p, li, lb, c in zip(pids, lines, labs, cids, strict=True)]
            if self.dialect == "postgresql":
                # Appends take turns until commit, so label_id order is commit order, as on
                # SQLite: a reader that saw label_id k never later finds a new label below k,
                # which incremental readers (labels(since=k)) rely on.
                conn.execute(PG_XACT_LOCK, {"k": self._db.pg_keys["labels"]})
            new = conn.execute(LABEL_INSERT[self.dialect], values).scalars().all()
            if len(new) < len(values):
                self._check_retries(conn, annotator, values, set(new))
        return Ack(annotator, tuple(cids), len(new), len(values) - len(new), now)

    @staticmethod
    def _check_retries(conn, annotator, values, new) -> None:
        """A repeated client_label_id must repeat the same label; otherwise roll back and say so."""
        lab_t = labels_table
        dup = sorted({v["client_label_id"] for v in values} - new)
        stored = {}
        for chunk in _chunks(dup):
            for cid, pid, line, lab in conn.execute(
                    sa.select(lab_t.c.client_label_id, lab_t.c.program_id, lab_t.c.line, lab_t.c.label)
                    .where(lab_t.c.annotator == annotator, lab_t.c.client_label_id.in_(chunk))):
                stored[cid] = (pid, line, lab)
        for v in values:
            old = stored.get(v["client_label_id"])
            if old is not None and old != (v["program_id"], v["line"], v["label"]):
                raise ValueError(f"client_label_id {v['client_label_id']!r} was already used by {annotator!r} "
                                 f"for label {old[2]:+d} on line {old[1]} of program {old[0]!r} "
                                 "(field 'client_label_id'); nothing was written")

    # ------------------------------------------------------------------ labels out
    def labels(self, *, latest: bool = True, program_ids: Iterable[str] | None = None,
               annotators: Iterable[str] | None = None, round_id: int | None = None,
               since: int | None = None) -> pd.DataFrame:
        """Labels as a frame ``program_id, line, annotator, label, time, order``, in log order.

        ``latest``: only the latest label of each annotator for each line (the ones that count);
        otherwise the whole log. ``order`` is the log position (``label_id``); ``since=k`` keeps
        rows with ``order > k``, for incremental refreshes (with ``latest``, the latest labels
        written after ``k``: merge them into an earlier frame, later rows winning).
        """
        lab, p = labels_table, programs_table
        cols = [lab.c.program_id, lab.c.line, lab.c.annotator, lab.c.label, lab.c.time, lab.c.label_id]
        conds: list[sa.ColumnElement[bool]] = []
        if program_ids is not None:
            pids = [program_ids] if isinstance(program_ids, str) else list(program_ids)
            conds.append(lab.c.program_id.in_(pids))
        if annotators is not None:
            names = [annotators] if isinstance(annotators, str) else list(annotators)
            conds.append(lab.c.annotator.in_(names))
        if round_id is not None:
            conds.append(lab.c.program_id.in_(sa.select(p.c.program_id).where(
                p.c.round_id == _as_int(round_id, "round_id"))))
        if since is not None:  # a label newer than `since` is only superseded by a newer one still
            conds.append(lab.c.label_id > _as_int(since, "since"))
        q = sa.select(*cols).where(*conds)
        if latest:
            newest = sa.select(sa.func.max(lab.c.label_id)).where(*conds).group_by(
                lab.c.program_id, lab.c.annotator, lab.c.line)
            q = q.where(lab.c.label_id.in_(newest))
        with self._read() as conn:
            rows = conn.execute(q.order_by(lab.c.label_id)).all()
        return _label_frame(rows)

    def counts(self, program_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Per program: ``program_id, n_annotators`` (who labelled any of its lines), ``n_labels``
        (latest labels). Programs without labels have zeros; unknown ids are an error."""
        return routing.counts(self, program_ids)

    def labels_complete(self, program_ids: Iterable[str], min_annotators: int = 3) -> pd.DataFrame:
        """``program_id, n_annotators, complete``: whether each program has labels from at least
        ``min_annotators`` annotators (for the RL loop to poll)."""
        m = routing.check_min_annotators(min_annotators)
        frame = self.counts(program_ids)[["program_id", "n_annotators"]]
        return frame.assign(complete=frame["n_annotators"] >= m)

    def round_progress(self, round_id: int | None = None, *, min_annotators: int = 3) -> pd.DataFrame:
        """How far a round is (what :meth:`wait_for_labels` waits for): per program of round
        ``round_id`` (every ordinary program when ``None``), in insertion order: ``program_id,
        name`` (:func:`~crlhf.store.values.program_name`), ``n_annotators, complete`` (at least
        ``min_annotators``)."""
        return routing.round_progress(self, round_id, min_annotators)

    def wait_for_labels(self, program_ids: Iterable[str], *, min_annotators: int = 3,
                        timeout: float | None = None, poll: float = 1.0, progress: bool = True
                        ) -> pd.DataFrame:
        """Block until every program has labels from ``min_annotators`` annotators (Algorithm 1:
        the loop waits for the crowd), with a progress bar; returns their latest labels.
        ``TimeoutError`` after ``timeout`` seconds (``None``: wait for ever)."""
        return routing.wait_for_labels(self, program_ids, min_annotators, timeout, poll, progress)

    # ------------------------------------------------------------------ the queue
    def next_program(self, annotator: str, *, n_gold: int | None = 5, round_id: int | None = None,
                     max_annotators: int | None = None, active: bool = False, model: CrowdModel | None = None,
                     **model_kwargs) -> Program | None:
        """The next program for ``annotator`` to label, or ``None`` when none is left.

        Gold first: until the annotator has labelled ``n_gold`` gold programs (``None``: all of
        them), the first gold program it has not labelled (in insertion order, so everyone is
        calibrated on the same ones). Then ordinary programs it has not labelled (any label on
        any line counts), of round ``round_id`` if given, with fewer than ``max_annotators``
        annotators if given: the one with the fewest annotators, oldest first. With ``active``,
        the one whose least certain counted line has the posterior closest to 1/2 (the crowd
        model's posteriors under the current reliabilities: ``model`` if given, else a replay of
        the store with ``model_kwargs``); ties go to fewest annotators, then oldest.
        """
        return routing.next_program(self, annotator, n_gold, round_id, max_annotators, active, model, model_kwargs)

    def queue_progress(self, annotator: str, *, n_gold: int | None = 5, round_id: int | None = None
                       ) -> tuple[int, int]:
        """``(done, total)`` of the queue :meth:`next_program` serves ``annotator`` with the same
        ``n_gold`` and ``round_id``: gold programs (up to ``n_gold``) and the ordinary programs
        (of that round if given), and how many of them the annotator has labelled."""
        return routing.queue_progress(self, annotator, n_gold, round_id)

    # ------------------------------------------------------------------ crowd model and dataset
    def replay(self, model: CrowdModel | None = None, **model_kwargs) -> tuple[CrowdModel, ReplayResult]:
        """Replay the latest labels, in log order, into a crowd model (Algorithm 1, lines 10-23;
        gold programs calibrate with their truth). ``model``: a fresh ``CrowdModel`` (it is
        updated in place), or ``None`` for ``CrowdModel(**model_kwargs)``. Every registered
        annotator is added to the model first, in registration order (by name within one
        ``register_annotators`` call)."""
        model, result, _ = export.replay(self, model, model_kwargs)
        return model, result

    def dataset(self, *, model: CrowdModel | None = None, round_id: int | None = None, min_annotators: int = 1,
                include_gold: bool = False, shape: str = "share", **model_kwargs) -> pd.DataFrame:
        """The dataset S = (x, y, s): ``prompt, program, score`` of every labelled program, with
        ``program_id, task_id, round_id, k, n_annotators, gold``. ``score`` is the reward of
        :mod:`crlhf.reward` (``shape``, default ``s = c/k``) over the program's scored lines, the
        counted lines it generated after its task's prompt (``k`` of them; an empty completion
        scores 0), from the posteriors of :meth:`replay` (each program assessed when its labels
        were ingested, as in Algorithm 1): the score the loop trains on, given the same labels."""
        return export.dataset(self, model, round_id, min_annotators, include_gold, shape, model_kwargs)

    def program_prompts(self) -> dict:
        """``program_id -> prompt`` of every program whose task is stored (for the scored lines
        of :mod:`crlhf.reward`: the prompt's own lines are not scored)."""
        p, t_ = programs_table, tasks_table
        with self._read() as conn:
            rows = conn.execute(sa.select(p.c.program_id, t_.c.prompt)
                                .select_from(p.join(t_, t_.c.task_id == p.c.task_id))).all()
        return dict(rows)

    def export_dataset(self, path, *, format: str | None = None, **dataset_kwargs) -> Path:
        """Write :meth:`dataset` to ``path`` as JSON Lines (``.jsonl``) or Parquet (``.parquet``,
        needs pyarrow); ``format`` overrides the suffix. Returns the path."""
        return export.export_dataset(self, path, format, dataset_kwargs)

    def to_dataset(self, **dataset_kwargs):
        """:meth:`dataset` as a Hugging Face ``datasets.Dataset`` (columns prompt, program, score, ...)."""
        return export.to_dataset(self, dataset_kwargs)

    # ------------------------------------------------------------------ checks
    def check_integrity(self) -> list[str]:
        """Problems found in the database (an empty list when it is sound): SQLite's
        ``integrity_check`` and ``foreign_key_check``, then on every backend: repeated client
        label ids, labels out of range or of unknown programs/annotators, incomplete gold truth."""
        with self._read() as conn:
            return integrity_problems(conn, self.dialect)
