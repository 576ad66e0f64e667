"""LabelStore: the crowd's labels in a database (SQLite file by default, PostgreSQL by URL).

Tables (SQLAlchemy Core; column names are the project's words):

- ``tasks(task_id, prompt, source, created)``
- ``rounds(round_id, note, created)``: a round of Algorithm 1 groups the programs the RL loop
  wrote in it.
- ``programs(seq, program_id, task_id, round_id, program, n_lines, gold, created)``: the
  program text; its lines are ``crlhf.crowd.program_lines(program)`` (0-based,
  ``program.splitlines()``), ``n_lines`` of them. ``seq`` is the insertion order.
- ``gold_lines(program_id, line, label)``: the line truth (+1/-1) of gold programs.
- ``annotators(annotator, token_hash, created)``
- ``labels(label_id, program_id, line, annotator, label, time, client_label_id)``: the
  **append-only label log**. Rows are never updated or deleted (a trigger refuses it); the
  latest label (highest ``label_id``) of an annotator for a line wins. ``client_label_id`` is
  unique per annotator, so a retried write is stored once.
- ``crlhf_schema(version)``: opening a store of another schema version raises
  :class:`SchemaVersionError`.

Who writes: ``register_annotator(name)`` returns a secret token (only its SHA-256 is stored);
every label write takes the token, and the annotator is the token's owner, never a name the
caller passes. A classroom kernel keeps its student's token in memory, so one student cannot
write under another's name through this API (anyone who can open the database file itself is
trusted: give students the app, not the file). A lost token is replaced with
``reset_token(name)``.

SQLite runs in WAL mode with a busy timeout (30 s); writes take ``BEGIN IMMEDIATE``, and the
writers of one machine queue on an ``flock`` of ``<db>-writelock`` beside the database, so they
wait their turn instead of failing or polling. Readers (dashboards) never wait for writers.
``synchronous=NORMAL`` (the default) keeps every acknowledged label through a crash of any
process; pass ``sqlite_synchronous="FULL"`` to keep them through a power loss as well (about
5x slower writes). On PostgreSQL the same API runs under READ COMMITTED; several classes can
share one database with ``schema=``. The RL loop writes a round's programs, then polls
:meth:`LabelStore.labels_complete` or blocks in :meth:`LabelStore.wait_for_labels`.
"""

from __future__ import annotations

import atexit
import copy
import glob
import hashlib
import importlib.util
import json
import numbers
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's busy timeout alone queues the writers
    fcntl = None

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as _pg
from sqlalchemy.dialects import sqlite as _sqlite

from .crowd import CrowdModel, ReplayResult, counted_lines, program_lines, replay_log

SCHEMA_VERSION = 1
"""Version of the table layout below; bump it (and say how to migrate) whenever it changes."""

MAX_ID = 200  # longest program_id / task_id / client_label_id
MAX_NAME = 100  # longest annotator name
_CHUNK = 900  # ids per IN (...) list

metadata = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY = rowid on SQLite

schema_table = sa.Table("crlhf_schema", metadata, sa.Column("version", sa.Integer, nullable=False))
tasks_table = sa.Table(
    "tasks", metadata,
    sa.Column("task_id", sa.String(MAX_ID), primary_key=True),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("source", sa.String(100)),
    sa.Column("created", sa.Double, nullable=False),
)
rounds_table = sa.Table(
    "rounds", metadata,
    sa.Column("round_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created", sa.Double, nullable=False),
)
programs_table = sa.Table(
    "programs", metadata,
    sa.Column("seq", _ID, primary_key=True, autoincrement=True),
    sa.Column("program_id", sa.String(MAX_ID), nullable=False, unique=True),
    sa.Column("task_id", sa.String(MAX_ID), sa.ForeignKey("tasks.task_id")),
    sa.Column("round_id", _ID, sa.ForeignKey("rounds.round_id")),
    sa.Column("program", sa.Text, nullable=False),
    sa.Column("n_lines", sa.Integer, nullable=False),
    sa.Column("gold", sa.Boolean, nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Index("ix_programs_round", "round_id"),
)
gold_table = sa.Table(
    "gold_lines", metadata,
    sa.Column("program_id", sa.String(MAX_ID), sa.ForeignKey("programs.program_id"), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("label", sa.SmallInteger, nullable=False),
    sa.CheckConstraint("label IN (1, -1)", name="ck_gold_label"),
    sa.CheckConstraint("line >= 0", name="ck_gold_line"),
)
annotators_table = sa.Table(
    "annotators", metadata,
    sa.Column("annotator", sa.String(MAX_NAME), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.Double, nullable=False),
)
labels_table = sa.Table(
    "labels", metadata,
    sa.Column("label_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("program_id", sa.String(MAX_ID), sa.ForeignKey("programs.program_id"), nullable=False),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("annotator", sa.String(MAX_NAME), sa.ForeignKey("annotators.annotator"), nullable=False),
    sa.Column("label", sa.SmallInteger, nullable=False),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("client_label_id", sa.String(MAX_ID), nullable=False),
    sa.CheckConstraint("label IN (1, -1)", name="ck_labels_label"),
    sa.CheckConstraint("line >= 0", name="ck_labels_line"),
    sa.UniqueConstraint("annotator", "client_label_id", name="uq_labels_client"),
    sa.Index("ix_labels_program", "program_id", "annotator", "line"),
)

_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER labels_no_update BEFORE UPDATE ON labels "
        "BEGIN SELECT RAISE(ABORT, 'the label log is append-only'); END",
        "CREATE TRIGGER labels_no_delete BEFORE DELETE ON labels "
        "BEGIN SELECT RAISE(ABORT, 'the label log is append-only'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION crlhf_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the label log is append-only'; END $$",
        "CREATE TRIGGER labels_append_only BEFORE UPDATE OR DELETE ON labels "
        "FOR EACH ROW EXECUTE FUNCTION crlhf_append_only()",
    ],
}
# statements of the hot path, built once (building them per call cost a third of a write)
_TOKEN_QUERY = sa.select(annotators_table.c.annotator).where(annotators_table.c.token_hash == sa.bindparam("h"))
_LABEL_INSERT = {  # a retried client_label_id is skipped, on both dialects
    name: dialect.insert(labels_table).on_conflict_do_nothing(index_elements=["annotator", "client_label_id"])
    .returning(labels_table.c.client_label_id)
    for name, dialect in (("sqlite", _sqlite), ("postgresql", _pg))
}
_PG_LOCK_KEY = 0x63726C6866  # "crlhf": serialises schema creation between processes
_PG_XACT_LOCK = sa.text("SELECT pg_advisory_xact_lock(:k)")
LABEL_COLUMNS = ("program_id", "line", "annotator", "label")


class SchemaVersionError(RuntimeError):
    """The database holds another version of the store's tables (or foreign tables)."""


NEWEST = "newest"
"""A queue's ``round_id`` that follows the store's newest round (:meth:`LabelStore.head`)."""
_SAMPLE_SUFFIX = re.compile(r"-s(\d+)$")


def program_name(program_id: str, task_id: str | None = None, round_id: int | None = None,
                 gold: bool = False) -> str:
    """A program's name for people (the annotation session, the dashboard): its task and sample
    number, e.g. ``minicode/0/train/3 · sample 2 · round 1`` for the loop's
    ``<run>-r1-p0-s1`` or ``crlhf round``'s ``r1-minicode/0/train/3-s1`` (samples counted
    from 1); ``gold · <task>`` for a calibration program; the id itself without a task."""
    m = _SAMPLE_SUFFIX.search(program_id)
    if task_id is None:
        return f"gold · {program_id}" if gold else program_id
    if gold:
        return f"gold · {task_id}"
    parts = [task_id]
    if m:
        parts.append(f"sample {int(m.group(1)) + 1}")
    if round_id is not None:
        parts.append(f"round {int(round_id)}")
    return " · ".join(parts)


@dataclass(frozen=True)
class Program:
    """One program as an annotator sees it (no gold flag, no truth: those come after submit)."""

    program_id: str
    program: str
    task_id: str | None = None
    prompt: str | None = None
    round_id: int | None = None

    @property
    def name(self) -> str:
        """Its readable name (:func:`program_name`; never says "gold": calibration is blind)."""
        return program_name(self.program_id, self.task_id, self.round_id)

    @property
    def lines(self) -> list[str]:
        """The lines the annotator labels, numbered from 0."""
        return program_lines(self.program)

    @property
    def n_lines(self) -> int:
        """How many lines there are to label."""
        return len(self.lines)


@dataclass(frozen=True)
class Ack:
    """Acknowledgement of a committed label write.

    ``client_label_ids``: one per label written, in order (generated where not given);
    ``stored``: labels new to the log; ``duplicates``: retries of labels already stored.
    """

    annotator: str
    client_label_ids: tuple[str, ...]
    stored: int
    duplicates: int
    time: float


# ----------------------------------------------------------------------------- validation
def _check_str(value, field: str, max_len: int = MAX_ID) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a str, got {value!r} (field {field!r})")
    if not value or len(value) > max_len:
        raise ValueError(f"{field} must have 1 to {max_len} characters, got {value!r} (field {field!r})")
    return value


def _check_name(name) -> str:
    name = _check_str(name, "annotator", MAX_NAME)
    if name != name.strip() or any(not ch.isprintable() for ch in name):
        raise ValueError(f"annotator name {name!r} has surrounding spaces or unprintable characters "
                         "(field 'annotator')")
    return name


def _as_int(value, field: str, where: str = "") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}{field} must be an integer, got {value!r} (field {field!r})")
    if isinstance(value, numbers.Integral):
        return int(value)
    f = float(value)
    if not f.is_integer():
        raise ValueError(f"{where}{field} must be an integer, got {value!r} (field {field!r})")
    return int(f)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _chunks(seq: Sequence, n: int = _CHUNK):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _rows(items, columns: Sequence[str], what: str) -> list[dict]:
    """Frames, mappings or tuples as a list of dicts with (at most) ``columns``."""
    if isinstance(items, pd.DataFrame):  # missing values (NaN, NA) become None
        return items.astype(object).where(items.notna(), None).to_dict("records")
    if isinstance(items, Mapping):
        return [dict(items)]
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"{what} must be a DataFrame or an iterable of mappings/tuples, got {items!r}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            out.append(dict(item))
        elif isinstance(item, (tuple, list)) and not isinstance(item, str):
            if len(item) > len(columns):
                raise ValueError(f"{what}[{i}] has {len(item)} fields; expected at most {list(columns)}")
            out.append(dict(zip(columns, item)))
        else:
            raise TypeError(f"{what}[{i}] must be a mapping or a tuple {tuple(columns)}, got {item!r}")
    return out


def _normalise_url(url) -> sa.engine.URL:
    if isinstance(url, sa.engine.URL):
        u = url
    elif isinstance(url, os.PathLike) or (isinstance(url, str) and "://" not in url):
        u = sa.engine.URL.create("sqlite", database=str(Path(url).expanduser().resolve()))
    elif isinstance(url, str):
        u = sa.engine.make_url(url)
    else:
        raise TypeError(f"url must be a database URL or a file path, got {url!r}")
    if u.drivername == "postgresql":  # SQLAlchemy would pick psycopg2; psycopg 3 is the tested driver
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"url {u.render_as_string(hide_password=True)!r}: only sqlite and "
                         "postgresql are supported (field 'url')")
    return u


def _make_engine(u: sa.engine.URL, schema: str | None, busy_timeout: float, synchronous: str,
                 echo: bool) -> sa.Engine:
    if u.get_backend_name() == "sqlite":
        memory = u.database in (None, "", ":memory:")
        kw = {"connect_args": {"timeout": busy_timeout, "check_same_thread": False}}
        if memory:
            kw["poolclass"] = sa.pool.StaticPool
        engine = sa.create_engine(u, echo=echo, **kw)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, record):  # the SQLAlchemy recipe for real SQLite transactions
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            write = conn.get_execution_options().get("crlhf_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    connect_args = {}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return sa.create_engine(u, echo=echo, connect_args=connect_args)


# ----------------------------------------------------------------------------- the write queue
class _WriteLock:
    """Queues the SQLite writers of one machine on an ``flock`` of ``<db>-writelock``.

    SQLite's busy handler polls with sleeps of 1-100 ms, so with many writers the write lock
    often sits idle while they sleep; a blocked ``flock`` is woken by the kernel the moment
    the holder lets go (3x the labels/s with 30 writers here). Every acquisition opens its
    own file description, so threads exclude each other too, and a killed holder's lock is
    released by the kernel. A wait longer than ``timeout`` raises ``TimeoutError``. If the
    lock file cannot be created, writers fall back on SQLite's busy timeout alone.
    """

    def __init__(self, path: str, timeout: float):
        self.path, self.timeout = path, timeout

    def acquire(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        # contended: a helper thread blocks in flock, so that this wait can time out
        got, state, mutex = threading.Event(), {"abandoned": False, "error": None}, threading.Lock()

        def wait():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                state["error"] = exc
            with mutex:
                if state["abandoned"]:
                    os.close(fd)  # closing the description releases the lock
                    return
            got.set()

        threading.Thread(target=wait, name="crlhf-store-writelock", daemon=True).start()
        if not got.wait(self.timeout):
            with mutex:
                if not got.is_set():
                    state["abandoned"] = True
                    raise TimeoutError(f"waited {self.timeout} s for the write lock {self.path}: another "
                                       "process holds it (see busy_timeout)")
        if state["error"] is not None:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)  # releases the flock with the description


# ----------------------------------------------------------------------------- the store
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
        self.url = _normalise_url(url)
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
        self._engine = _make_engine(self.url, schema, float(busy_timeout), sync, echo)
        self._write_lock = None
        if self.dialect == "sqlite" and self.url.database not in (None, "", ":memory:") and fcntl is not None:
            self._write_lock = _WriteLock(self.url.database + "-writelock", float(busy_timeout))
        # advisory lock keys of this store (per schema): set-up writes, label appends
        self._pg_keys = {k: zlib.crc32(f"crlhf:{k}:{schema}".encode()) for k in ("setup", "labels")}
        self._pid = os.getpid()
        self._n_lines: dict[str, int] = {}  # programs never change: their line counts are cached
        self._ensure_schema(create)

    def __repr__(self) -> str:
        where = self.url.render_as_string(hide_password=True)
        return f"LabelStore({where!r}{f', schema={self.schema!r}' if self.schema else ''})"

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ connections
    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not share its parent's connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()

    @contextmanager
    def _read(self):
        self._check_fork()
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, serial: bool = False):
        """A write transaction, committed when the block ends. SQLite runs one at a time
        (``BEGIN IMMEDIATE``); on PostgreSQL ``serial`` ones (checks, then inserts of tasks,
        programs, annotators) take an advisory lock, so two processes adding the same
        program at once cannot both find it missing."""
        self._check_fork()
        fd = self._write_lock.acquire() if self._write_lock is not None else None
        try:
            with self._engine.connect() as conn:
                conn.execution_options(crlhf_write=True)
                with conn.begin():
                    if serial and self.dialect == "postgresql":
                        conn.execute(_PG_XACT_LOCK, {"k": self._pg_keys["setup"]})
                    yield conn
        finally:
            if fd is not None:
                self._write_lock.release(fd)

    def _ensure_schema(self, create: bool) -> None:
        where = self.url.render_as_string(hide_password=True)
        with self._read() as conn:
            if self._schema_ok(conn, where):
                return
        if not create:
            raise SchemaVersionError(f"{where} holds no crlhf label store; open it with create=True")
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(_PG_XACT_LOCK, {"k": _PG_LOCK_KEY})
                if self.schema:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            if self._schema_ok(conn, where):  # another process created it meanwhile
                return
            metadata.create_all(conn)
            for ddl in _APPEND_ONLY[self.dialect]:
                conn.exec_driver_sql(ddl)
            conn.execute(schema_table.insert().values(version=SCHEMA_VERSION))

    def _schema_ok(self, conn, where: str) -> bool:
        names = set(sa.inspect(conn).get_table_names())
        if schema_table.name in names:
            versions = conn.execute(sa.select(schema_table.c.version)).scalars().all()
            if versions != [SCHEMA_VERSION]:
                found = versions[0] if len(versions) == 1 else versions
                raise SchemaVersionError(
                    f"{where} holds a crlhf label store of schema version {found}, but this crlhf "
                    f"reads version {SCHEMA_VERSION}; use the crlhf version that wrote it, or export "
                    "its labels and start a new store")
            return True
        ours = sorted(names & set(metadata.tables))
        if ours:
            raise SchemaVersionError(f"{where} has table(s) {ours} but no crlhf_schema table: it is not "
                                     "a crlhf label store (or one from before schema versions)")
        return False

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
            taken = []
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
        name = conn.execute(_TOKEN_QUERY, {"h": _hash_token(token)}).scalar()
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
        rows = []
        for i, t in enumerate(tasks.to_dict("records") if isinstance(tasks, pd.DataFrame) else tasks):
            get = t.get if isinstance(t, Mapping) else (lambda k, d=None, t=t: getattr(t, k, d))
            task_id = _check_str(get("task_id"), "task_id")
            prompt = get("prompt")
            if not isinstance(prompt, str):
                raise ValueError(f"tasks[{i}]: prompt must be a str, got {prompt!r} (field 'prompt')")
            source = get("source")
            if source is not None and not isinstance(source, str):
                raise ValueError(f"tasks[{i}]: source must be a str, got {source!r} (field 'source')")
            rows.append({"task_id": task_id, "prompt": prompt, "source": source})
        by_id = {}
        for r in rows:
            if r["task_id"] in by_id and by_id[r["task_id"]]["prompt"] != r["prompt"]:
                raise ValueError(f"task_id {r['task_id']!r} appears twice with different prompts (field 'task_id')")
            by_id[r["task_id"]] = r
        t_ = tasks_table
        now = time.time()
        with self._write(serial=True) as conn:
            known = {}
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
        rows, truths = [], {}
        for i, it in enumerate(items):
            text = it.get("program")
            if not isinstance(text, str):
                raise ValueError(f"programs[{i}]: program must be a str, got {text!r} (field 'program')")
            pid = it.get("program_id")
            pid = uuid.uuid4().hex if pid is None else _check_str(pid, "program_id")
            tid = it.get("task_id", None)
            tid = task_id if tid is None else tid
            if tid is not None:
                _check_str(tid, "task_id")
            n = len(program_lines(text))
            if gold:
                truth = it.get("truth")
                arr = np.asarray(truth if truth is not None else [], dtype=object).ravel()
                try:
                    vals = [_as_int(v, "truth", f"gold program {pid!r}: ") for v in arr]
                except ValueError:
                    vals = [0]
                if len(vals) != n or any(v not in (1, -1) for v in vals):
                    raise ValueError(f"gold program {pid!r}: truth must be +1/-1 for each of its {n} lines, "
                                     f"got {truth!r} (field 'truth')")
                truths[pid] = vals
            rows.append({"program_id": pid, "task_id": tid, "round_id": round_id, "program": text,
                         "n_lines": n, "gold": gold})
        seen = {}
        for r in rows:
            if r["program_id"] in seen and seen[r["program_id"]] != r:
                raise ValueError(f"program_id {r['program_id']!r} appears twice with different content "
                                 "(field 'program_id')")
            seen[r["program_id"]] = r
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
            row = conn.execute(self._program_query().where(programs_table.c.program_id == pid)).first()
        if row is None:
            raise ValueError(f"unknown program_id {pid!r} (field 'program_id')")
        return Program(*row)

    @staticmethod
    def _program_query():
        p, t_ = programs_table, tasks_table
        return (sa.select(p.c.program_id, p.c.program, p.c.task_id, t_.c.prompt, p.c.round_id)
                .select_from(p.outerjoin(t_, t_.c.task_id == p.c.task_id)))

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
        pids, lines, labs, cids, claimed = [], [], [], [], set()
        for i, r in enumerate(rows):
            where = f"labels[{i}]: "
            unknown = set(r) - {"program_id", "line", "label", "client_label_id", "annotator", "time", "order"}
            if unknown:
                raise ValueError(f"{where}unknown field(s) {sorted(unknown)}; expected program_id, line, label, "
                                 "client_label_id")
            for field in ("program_id", "line", "label"):
                if field not in r:
                    raise ValueError(f"{where}missing field {field!r}")
            pid = r["program_id"]
            if not isinstance(pid, str) or not pid:
                raise ValueError(f"{where}program_id must be a non-empty str, got {pid!r} (field 'program_id')")
            line = _as_int(r["line"], "line", where)
            try:
                lab = _as_int(r["label"], "label", where)
            except ValueError:
                lab = None
            if lab not in (1, -1):
                raise ValueError(f"{where}label must be +1 (correct) or -1 (wrong), got {r['label']!r} "
                                 "(field 'label')")
            cid = r.get("client_label_id")
            if cid is None or (isinstance(cid, float) and np.isnan(cid)):
                cid = uuid.uuid4().hex
            else:
                _check_str(cid, "client_label_id")
            if "annotator" in r:
                claimed.add(r["annotator"])
            pids.append(pid)
            lines.append(line)
            labs.append(lab)
            cids.append(cid)
        now = time.time()
        with self._write() as conn:
            annotator = self._annotator_of(conn, token)
            others = claimed - {annotator}
            if others:
                raise ValueError(f"labels name annotator {sorted(map(str, others))[0]!r}, but the token belongs "
                                 f"to {annotator!r} (field 'annotator'): write with your own token")
            n_lines = self._lines_of(conn, pids)
            for i, (pid, line) in enumerate(zip(pids, lines)):
                if not 0 <= line < n_lines[pid]:
                    raise ValueError(f"labels[{i}]: line {line} is out of range for program {pid!r} of "
                                     f"{n_lines[pid]} lines (field 'line')")
            if not rows:
                return Ack(annotator, (), 0, 0, now)
            values = [{"program_id": p, "line": li, "annotator": annotator, "label": lb, "time": now,
                       "client_label_id": c} for p, li, lb, c in zip(pids, lines, labs, cids)]
            if self.dialect == "postgresql":
                # Appends take turns until commit, so label_id order is commit order, as on
                # SQLite: a reader that saw label_id k never later finds a new label below k,
                # which incremental readers (labels(since=k)) rely on.
                conn.execute(_PG_XACT_LOCK, {"k": self._pg_keys["labels"]})
            new = conn.execute(_LABEL_INSERT[self.dialect], values).scalars().all()
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
        conds = []
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
        lab = labels_table

        def query(cond=None):
            lines = sa.select(lab.c.program_id, lab.c.annotator, lab.c.line)
            if cond is not None:
                lines = lines.where(cond)
            lines = lines.group_by(lab.c.program_id, lab.c.annotator, lab.c.line).subquery()
            return (sa.select(lines.c.program_id, sa.func.count(sa.distinct(lines.c.annotator)), sa.func.count())
                    .group_by(lines.c.program_id))

        with self._read() as conn:
            if program_ids is None:
                pids = conn.execute(sa.select(programs_table.c.program_id).order_by(
                    programs_table.c.seq)).scalars().all()
                rows = conn.execute(query()).all()
            else:
                pids = [program_ids] if isinstance(program_ids, str) else list(program_ids)
                for pid in pids:
                    _check_str(pid, "program_id")
                self._lines_of(conn, pids)
                rows = []
                for chunk in _chunks(list(dict.fromkeys(pids))):
                    rows += conn.execute(query(lab.c.program_id.in_(chunk))).all()
        got = {pid: (na, nl) for pid, na, nl in rows}
        return pd.DataFrame({"program_id": pd.Series(pids, dtype=object),
                             "n_annotators": np.array([got.get(p, (0, 0))[0] for p in pids], dtype=np.int64),
                             "n_labels": np.array([got.get(p, (0, 0))[1] for p in pids], dtype=np.int64)})

    def labels_complete(self, program_ids: Iterable[str], min_annotators: int = 3) -> pd.DataFrame:
        """``program_id, n_annotators, complete``: whether each program has labels from at least
        ``min_annotators`` annotators (for the RL loop to poll)."""
        m = _as_int(min_annotators, "min_annotators")
        if m < 1:
            raise ValueError(f"min_annotators must be >= 1, got {min_annotators!r} (field 'min_annotators')")
        frame = self.counts(program_ids)[["program_id", "n_annotators"]]
        return frame.assign(complete=frame["n_annotators"] >= m)

    def round_progress(self, round_id: int | None = None, *, min_annotators: int = 3) -> pd.DataFrame:
        """How far a round is (what :meth:`wait_for_labels` waits for): per program of round
        ``round_id`` (every ordinary program when ``None``), in insertion order: ``program_id,
        name`` (:func:`program_name`), ``n_annotators, complete`` (at least ``min_annotators``)."""
        m = _as_int(min_annotators, "min_annotators")
        if m < 1:
            raise ValueError(f"min_annotators must be >= 1, got {min_annotators!r} (field 'min_annotators')")
        p, lab = programs_table, labels_table
        n = (sa.select(sa.func.count(sa.distinct(lab.c.annotator))).where(lab.c.program_id == p.c.program_id)
             .scalar_subquery())  # one index range per program (ix_labels_program)
        q = sa.select(p.c.program_id, p.c.task_id, p.c.round_id, n).where(p.c.gold == sa.false()).order_by(p.c.seq)
        if round_id is not None:
            q = q.where(p.c.round_id == _as_int(round_id, "round_id"))
        with self._read() as conn:
            rows = conn.execute(q).all()
        counts = np.array([r[3] for r in rows], dtype=np.int64)
        return pd.DataFrame({"program_id": pd.Series([r[0] for r in rows], dtype=object),
                             "name": pd.Series([program_name(pid, tid, rid) for pid, tid, rid, _ in rows], dtype=object),
                             "n_annotators": counts, "complete": counts >= m})

    def wait_for_labels(self, program_ids: Iterable[str], *, min_annotators: int = 3,
                        timeout: float | None = None, poll: float = 1.0, progress: bool = True
                        ) -> pd.DataFrame:
        """Block until every program has labels from ``min_annotators`` annotators (Algorithm 1:
        the loop waits for the crowd), with a progress bar; returns their latest labels.
        ``TimeoutError`` after ``timeout`` seconds (``None``: wait for ever)."""
        pids = [program_ids] if isinstance(program_ids, str) else list(program_ids)
        if not (isinstance(poll, numbers.Real) and poll > 0):
            raise ValueError(f"poll must be a positive number of seconds, got {poll!r} (field 'poll')")
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(pids), desc="programs labelled", unit="program")
        try:
            while True:
                status = self.labels_complete(pids, min_annotators)
                done = int(status["complete"].sum())
                if bar is not None:
                    bar.n = done
                    bar.refresh()
                if done == len(status):
                    return self.labels(program_ids=pids)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"{len(status) - done} of {len(status)} programs still have labels from "
                                       f"fewer than {min_annotators} annotators after {timeout} s")
                time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
        finally:
            if bar is not None:
                bar.close()

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
        lab, p = labels_table, programs_table
        with self._read() as conn:
            name = self._require_annotator(conn, annotator)
            mine = sa.select(lab.c.program_id).where(lab.c.annotator == name)
            if n_gold is None or _as_int(n_gold, "n_gold") > 0:
                done = conn.execute(
                    sa.select(sa.func.count(sa.distinct(lab.c.program_id)))
                    .select_from(lab.join(p, p.c.program_id == lab.c.program_id))
                    .where(lab.c.annotator == name, p.c.gold == sa.true())).scalar_one()
                if n_gold is None or done < n_gold:
                    row = conn.execute(self._program_query().where(p.c.gold == sa.true(), p.c.program_id.not_in(mine))
                                       .order_by(p.c.seq).limit(1)).first()
                    if row is not None:
                        return Program(*row)
            n = (sa.select(lab.c.program_id, sa.func.count(sa.distinct(lab.c.annotator)).label("n"))
                 .group_by(lab.c.program_id).subquery())
            n_ann = sa.func.coalesce(n.c.n, 0)
            q = (sa.select(p.c.program_id, p.c.program, n_ann)
                 .select_from(p.outerjoin(n, n.c.program_id == p.c.program_id))
                 .where(p.c.gold == sa.false(), p.c.program_id.not_in(mine)))
            if round_id is not None:
                q = q.where(p.c.round_id == _as_int(round_id, "round_id"))
            if max_annotators is not None:
                q = q.where(n_ann < _as_int(max_annotators, "max_annotators"))
            q = q.order_by(n_ann, p.c.seq)
            if not active:
                row = conn.execute(self._program_query().where(p.c.program_id.in_(
                    sa.select(q.limit(1).subquery().c.program_id)))).first()
                return None if row is None else Program(*row)
            candidates = conn.execute(q).all()
        if not candidates:
            return None
        pick = self._least_certain(candidates, model, model_kwargs)
        return self.program(pick)

    def queue_progress(self, annotator: str, *, n_gold: int | None = 5, round_id: int | None = None
                       ) -> tuple[int, int]:
        """``(done, total)`` of the queue :meth:`next_program` serves ``annotator`` with the same
        ``n_gold`` and ``round_id``: gold programs (up to ``n_gold``) and the ordinary programs
        (of that round if given), and how many of them the annotator has labelled."""
        lab, p = labels_table, programs_table
        ordinary = p.c.gold == sa.false()
        if round_id is not None:
            ordinary = sa.and_(ordinary, p.c.round_id == _as_int(round_id, "round_id"))
        mine = sa.select(lab.c.program_id).where(lab.c.annotator == _check_name(annotator)).distinct().subquery()
        q = sa.select(sa.func.count().filter(p.c.gold == sa.true()),
                      sa.func.count(mine.c.program_id).filter(p.c.gold == sa.true()),
                      sa.func.count().filter(ordinary),
                      sa.func.count(mine.c.program_id).filter(ordinary)
                      ).select_from(p.outerjoin(mine, mine.c.program_id == p.c.program_id))
        with self._read() as conn:
            gold_all, gold_done, total, done = (int(x or 0) for x in conn.execute(q).one())
        if n_gold is not None:
            cap = max(_as_int(n_gold, "n_gold"), 0)
            gold_all, gold_done = min(gold_all, cap), min(gold_done, cap)
        return gold_done + done, gold_all + total

    def _least_certain(self, candidates, model, model_kwargs) -> str:
        """Active labelling: the candidate whose least certain counted line is nearest 1/2, under
        the model's current reliabilities. The posteriors come from ``CrowdModel.assess_log``
        (eq 7, or its two-coin form) on a copy of the model that nothing updates, one call for
        all candidates; ``model`` itself is left as it is."""
        if model is None:
            model, _, log = self._replay(None, model_kwargs)
        elif model_kwargs:
            raise TypeError("pass either model or CrowdModel keyword arguments, not both")
        elif not isinstance(model, CrowdModel):
            raise TypeError(f"model must be a crlhf.crowd.CrowdModel, got {type(model).__name__}")
        else:
            log = None
        texts = {pid: text for pid, text, _ in candidates}
        log = self.labels(program_ids=list(texts)) if log is None else log[log["program_id"].isin(texts)]
        frozen = copy.deepcopy(model).add_annotators(list(dict.fromkeys(log["annotator"])))
        labelled = list(dict.fromkeys(log["program_id"]))
        lines = frozen.assess_log(log[[*LABEL_COLUMNS, "order"]], programs={pid: texts[pid] for pid in labelled})
        lines = lines[lines["counted"].to_numpy(dtype=bool)]
        certainty = (lines["posterior"] - 0.5).abs().groupby(lines["program_id"], sort=False).min().to_dict()
        labelled = set(labelled)

        def key(item):
            rank, (pid, text, _) = item  # candidates come fewest annotators first, then oldest
            if pid in certainty:
                return certainty[pid], rank
            if pid not in labelled and counted_lines(text, model.count_blank).any():
                return abs(model.line_prior - 0.5), rank  # no labels: every line at the prior
            return 0.5, rank  # nothing to count

        return candidates[min(enumerate(candidates), key=key)[0]][0]

    # ------------------------------------------------------------------ crowd model and dataset
    def replay(self, model: CrowdModel | None = None, **model_kwargs) -> tuple[CrowdModel, ReplayResult]:
        """Replay the latest labels, in log order, into a crowd model (Algorithm 1, lines 10-23;
        gold programs calibrate with their truth). ``model``: a fresh ``CrowdModel`` (it is
        updated in place), or ``None`` for ``CrowdModel(**model_kwargs)``. Every registered
        annotator is added to the model first, in registration order (by name within one
        ``register_annotators`` call)."""
        model, result, _ = self._replay(model, model_kwargs)
        return model, result

    def _replay(self, model, model_kwargs) -> tuple[CrowdModel, ReplayResult, pd.DataFrame]:
        if model is None:
            CrowdModel(**model_kwargs)  # bad parameters fail before the read
        with self._read() as conn:  # one snapshot for annotators, log, gold and programs
            a = annotators_table
            names = conn.execute(sa.select(a.c.annotator).order_by(a.c.created, a.c.annotator)).scalars().all()
            lab = labels_table
            newest = sa.select(sa.func.max(lab.c.label_id)).group_by(lab.c.program_id, lab.c.annotator, lab.c.line)
            rows = conn.execute(sa.select(lab.c.program_id, lab.c.line, lab.c.annotator, lab.c.label, lab.c.time,
                                          lab.c.label_id).where(lab.c.label_id.in_(newest))
                                .order_by(lab.c.label_id)).all()
            log = _label_frame(rows)
            pids = list(dict.fromkeys(log["program_id"]))
            p, g = programs_table, gold_table
            texts, gold_rows = {}, []
            for chunk in _chunks(pids):
                texts.update(conn.execute(sa.select(p.c.program_id, p.c.program)
                                          .where(p.c.program_id.in_(chunk))).all())
                gold_rows += conn.execute(sa.select(g.c.program_id, g.c.line, g.c.label)
                                          .where(g.c.program_id.in_(chunk))).all()
        gold = pd.DataFrame(gold_rows, columns=["program_id", "line", "label"])
        model, result = replay_log(log[[*LABEL_COLUMNS, "order"]], annotators=names, gold=gold, programs=texts,
                                   model=model, **model_kwargs)
        return model, result, log

    def dataset(self, *, model: CrowdModel | None = None, round_id: int | None = None, min_annotators: int = 1,
                include_gold: bool = False, shape: str = "share", **model_kwargs) -> pd.DataFrame:
        """The dataset S = (x, y, s): ``prompt, program, score`` of every labelled program, with
        ``program_id, task_id, round_id, k, n_annotators, gold``. ``score`` is the reward of
        :mod:`crlhf.reward` (``shape``, default ``s = c/k``) over the program's scored lines, the
        counted lines it generated after its task's prompt (``k`` of them; an empty completion
        scores 0), from the posteriors of :meth:`replay` (each program assessed when its labels
        were ingested, as in Algorithm 1): the score the loop trains on, given the same labels."""
        from .reward import program_scores

        fitted, result = self.replay(model, **model_kwargs)
        p, t_ = programs_table, tasks_table
        with self._read() as conn:
            q = (sa.select(p.c.program_id, p.c.task_id, p.c.round_id, t_.c.prompt, p.c.program)
                 .select_from(p.outerjoin(t_, t_.c.task_id == p.c.task_id)))
            info = {}
            for chunk in _chunks(list(result.scores["program_id"])):
                for row in conn.execute(q.where(p.c.program_id.in_(chunk))):
                    info[row[0]] = row
        scores = program_scores(result.lines, fitted.tau, shape,
                                prompts={x: r[3] for x, r in info.items() if r[3] is not None},
                                programs={x: r[4] for x, r in info.items()})
        gold_of = dict(zip(result.scores["program_id"], result.scores["gold"].to_numpy(dtype=bool)))
        counts = self.labels()[["program_id", "annotator"]].drop_duplicates().groupby("program_id").size()
        pids = scores["program_id"].to_numpy()
        frame = pd.DataFrame({
            "prompt": pd.Series([info[x][3] for x in pids], dtype=object),
            "program": pd.Series([info[x][4] for x in pids], dtype=object),
            "score": scores["score"].to_numpy(dtype=float),
            "program_id": pd.Series(pids, dtype=object),
            "task_id": pd.Series([info[x][1] for x in pids], dtype=object),
            "round_id": pd.array([info[x][2] for x in pids], dtype="Int64"),
            "k": scores["k"].to_numpy(dtype=np.int64),
            "n_annotators": counts.reindex(pids).fillna(0).to_numpy(dtype=np.int64),
            "gold": np.array([gold_of[x] for x in pids], dtype=bool),
        })
        keep = frame["n_annotators"] >= _as_int(min_annotators, "min_annotators")
        if not include_gold:
            keep &= ~frame["gold"]
        if round_id is not None:
            keep &= (frame["round_id"] == _as_int(round_id, "round_id")).fillna(False).astype(bool)
        return frame[keep.to_numpy(dtype=bool)].reset_index(drop=True)

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
        path = Path(path)
        fmt = (format or path.suffix.lstrip(".")).lower()
        if fmt not in ("jsonl", "parquet"):
            raise ValueError(f"format must be 'jsonl' or 'parquet', got {fmt!r} (field 'format')")
        frame = self.dataset(**dataset_kwargs)
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "jsonl":  # json.dumps writes floats exactly (pandas' to_json rounds to 10 digits)
            columns = {c: [None if pd.isna(v) else (v.item() if isinstance(v, np.generic) else v)
                           for v in frame[c].astype(object)] for c in frame.columns}
            with open(path, "w", encoding="utf-8") as fh:
                for values in zip(*columns.values()):
                    fh.write(json.dumps(dict(zip(columns, values)), ensure_ascii=False) + "\n")
        else:
            if importlib.util.find_spec("pyarrow") is None:
                raise ImportError("Parquet export needs pyarrow: pip install pyarrow")
            frame.to_parquet(path, index=False)
        return path

    def to_dataset(self, **dataset_kwargs):
        """:meth:`dataset` as a Hugging Face ``datasets.Dataset`` (columns prompt, program, score, ...)."""
        try:
            import datasets
        except ImportError:
            raise ImportError("to_dataset needs the datasets package: pip install datasets") from None
        frame = self.dataset(**dataset_kwargs)
        frame["round_id"] = frame["round_id"].astype(object).where(frame["round_id"].notna(), None)
        return datasets.Dataset.from_pandas(frame, preserve_index=False)

    # ------------------------------------------------------------------ checks
    def check_integrity(self) -> list[str]:
        """Problems found in the database (an empty list when it is sound): SQLite's
        ``integrity_check`` and ``foreign_key_check``, then on every backend: repeated client
        label ids, labels out of range or of unknown programs/annotators, incomplete gold truth."""
        problems = []
        lab, p, a, g = labels_table, programs_table, annotators_table, gold_table
        with self._read() as conn:
            if self.dialect == "sqlite":
                res = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").all()]
                if res != ["ok"]:
                    problems += [f"integrity_check: {r}" for r in res]
                problems += [f"foreign_key_check: {tuple(r)}" for r in conn.exec_driver_sql("PRAGMA foreign_key_check")]
            dup = conn.execute(sa.select(lab.c.annotator, lab.c.client_label_id, sa.func.count())
                               .group_by(lab.c.annotator, lab.c.client_label_id)
                               .having(sa.func.count() > 1).limit(5)).all()
            problems += [f"client_label_id {c!r} of {an!r} stored {n} times" for an, c, n in dup]
            n_bad = conn.execute(sa.select(sa.func.count()).select_from(
                lab.outerjoin(p, p.c.program_id == lab.c.program_id)).where(
                sa.or_(p.c.program_id.is_(None), lab.c.line < 0, lab.c.line >= p.c.n_lines,
                       lab.c.label.not_in([1, -1])))).scalar_one()
            if n_bad:
                problems.append(f"{n_bad} label(s) of unknown programs, lines out of range or values not +1/-1")
            n_orphan = conn.execute(sa.select(sa.func.count()).select_from(
                lab.outerjoin(a, a.c.annotator == lab.c.annotator)).where(a.c.annotator.is_(None))).scalar_one()
            if n_orphan:
                problems.append(f"{n_orphan} label(s) of unknown annotators")
            gold_n = sa.select(g.c.program_id, sa.func.count().label("n")).group_by(g.c.program_id).subquery()
            n_gold_bad = conn.execute(sa.select(sa.func.count()).select_from(
                p.outerjoin(gold_n, gold_n.c.program_id == p.c.program_id)).where(
                p.c.gold == sa.true(), sa.func.coalesce(gold_n.c.n, -1) != p.c.n_lines)).scalar_one()
            if n_gold_bad:
                problems.append(f"{n_gold_bad} gold program(s) without truth for every line")
            versions = conn.execute(sa.select(schema_table.c.version)).scalars().all()
            if versions != [SCHEMA_VERSION]:
                problems.append(f"crlhf_schema holds {versions}, expected [{SCHEMA_VERSION}]")
        return problems


def _label_frame(rows) -> pd.DataFrame:
    """Rows ``program_id, line, annotator, label, time, label_id`` as a label frame, built column
    by column (5x faster than ``pd.DataFrame(rows)`` on 100k rows)."""
    cols = list(zip(*rows)) if rows else [()] * 6

    def objects(values):
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr

    return pd.DataFrame({
        "program_id": objects(cols[0]),
        "line": np.asarray(cols[1], dtype=np.int64),
        "annotator": objects(cols[2]),
        "label": np.asarray(cols[3], dtype=np.int64),
        "time": pd.to_datetime(np.asarray(cols[4], dtype=float), unit="s", utc=True),
        "order": np.asarray(cols[5], dtype=np.int64),
    })


# ----------------------------------------------------------------------------- a throwaway server
def find_postgres_bindir() -> Path | None:
    """The folder of PostgreSQL's ``initdb`` and ``pg_ctl`` (newest Debian version, else PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda s: [int(x) if x.isdigit() else 0 for x in Path(s).parts[-3].split(".")])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class TemporaryPostgres:
    """A throwaway PostgreSQL cluster in a temporary folder (``initdb`` + ``pg_ctl``), for tests,
    benchmarks and trying the PostgreSQL path on one machine; removed by :meth:`stop` (or at
    exit). It listens on a Unix socket in that folder only, with trust authentication.
    As root the server runs as the ``postgres`` user. ``durable=False`` turns off fsync
    (faster; fine for tests, never for real data).
    """

    def __init__(self, bindir: str | os.PathLike | None = None, *, durable: bool = True, port: int = 5432):
        self.bindir = Path(bindir) if bindir else find_postgres_bindir()
        if self.bindir is None or not (self.bindir / "initdb").exists() or not (self.bindir / "pg_ctl").exists():
            raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found; on Debian: "
                                    "apt-get install postgresql")
        self.durable, self.port = bool(durable), int(port)
        self.dir: Path | None = None
        self.url: str | None = None

    def _run(self, *args: str) -> None:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            log = ""
            if self.dir is not None and (self.dir / "log").exists():
                log = (self.dir / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}{log}")

    def start(self) -> str:
        """Create and start the cluster; returns its SQLAlchemy URL (``postgresql+psycopg://``)."""
        if self.url is not None:
            return self.url
        self.dir = Path(tempfile.mkdtemp(prefix="crlhf-pg-"))
        if os.geteuid() == 0:
            import pwd
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs a 'postgres' user (Debian's postgresql "
                                   "package creates it)") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        atexit.register(self.stop)
        data = self.dir / "data"
        self._run(self.bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        opts = [f"-c listen_addresses='' -c unix_socket_directories='{self.dir}' -p {self.port}",
                "-c max_connections=200"]
        if not self.durable:
            opts.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(self.bindir / "pg_ctl", "-D", data, "-l", self.dir / "log", "-w", "-t", "60",
                  "-o", " ".join(opts), "start")
        self.url = f"postgresql+psycopg://postgres@/postgres?host={self.dir}&port={self.port}"
        return self.url

    def stop(self) -> None:
        """Stop the server and delete its folder (safe to call twice)."""
        if self.dir is None:
            return
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run(self.bindir / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir, self.url = None, None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
