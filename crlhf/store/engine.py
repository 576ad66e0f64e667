"""The label store's database plumbing: URLs, engines (SQLite pragmas, PostgreSQL schemas) and
the write queue of SQLite writers on one machine.

SQLite runs in WAL mode with a busy timeout (30 s); writes take ``BEGIN IMMEDIATE``, and the
writers of one machine queue on an ``flock`` of ``<db>-writelock`` beside the database
(:class:`WriteLock`), so they wait their turn instead of failing or polling. Readers
(dashboards) never wait for writers. ``synchronous=NORMAL`` (the default) keeps every
acknowledged label through a crash of any process; ``sqlite_synchronous="FULL"`` keeps them
through a power loss as well (about 5x slower writes). PostgreSQL runs under READ COMMITTED;
advisory locks serialise schema creation, set-up writes and label appends (:func:`pg_lock_keys`).
"""

from __future__ import annotations

import importlib
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

try:
    fcntl: ModuleType | None = importlib.import_module("fcntl")
except ImportError:  # not POSIX: SQLite's busy timeout alone queues the writers
    fcntl = None

import sqlalchemy as sa
from sqlalchemy import event

from .schema import SchemaVersionError, check_schema, create_schema

__all__ = ["parse_url", "database_url", "make_engine", "write_lock_for", "pg_lock_keys", "WriteLock",
           "Database", "PG_LOCK_KEY", "PG_XACT_LOCK"]

PG_LOCK_KEY = 0x63726C6866  # "crlhf": serialises schema creation between processes
PG_XACT_LOCK = sa.text("SELECT pg_advisory_xact_lock(:k)")


def parse_url(url) -> sa.engine.URL:
    """``url`` (a database URL, a ``sqlalchemy.URL`` or a SQLite file path) as a ``sqlalchemy.URL``:
    a path becomes an absolute ``sqlite:///`` URL, ``postgresql://`` uses psycopg 3; any other
    backend is a ``ValueError``."""
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


def database_url(db) -> str:
    """The URL string of ``db`` (a SQLite path or a database URL), password included, as
    :func:`parse_url` reads it: the same store from any process or working directory (e.g. the
    classroom's kernels)."""
    return parse_url(db).render_as_string(hide_password=False)


def write_lock_for(u: sa.engine.URL, timeout: float) -> WriteLock | None:
    """The :class:`WriteLock` of a SQLite file's writers, ``None`` where there is none to take
    (PostgreSQL, an in-memory database, a system without ``flock``)."""
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:") or fcntl is None:
        return None
    return WriteLock(u.database + "-writelock", float(timeout))


def pg_lock_keys(schema: str | None) -> dict[str, int]:
    """The advisory lock keys of the store in ``schema``: ``setup`` (serial set-up writes) and
    ``labels`` (label appends)."""
    return {k: zlib.crc32(f"crlhf:{k}:{schema}".encode()) for k in ("setup", "labels")}


def make_engine(u: sa.engine.URL, schema: str | None, busy_timeout: float, synchronous: str,
                echo: bool) -> sa.Engine:
    """The engine of a store: on SQLite, WAL mode, ``busy_timeout`` (s), ``synchronous``, foreign
    keys and ``BEGIN IMMEDIATE`` for connections with the ``crlhf_write`` execution option; on
    PostgreSQL, ``schema`` as the search path."""
    if u.get_backend_name() == "sqlite":
        memory = u.database in (None, "", ":memory:")
        kw: dict[str, Any] = {"connect_args": {"timeout": busy_timeout, "check_same_thread": False}}
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
class WriteLock:
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
        assert fcntl is not None  # write_lock_for makes a WriteLock only where flock exists
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
        state: dict[str, Any] = {"abandoned": False, "error": None}
        got, mutex = threading.Event(), threading.Lock()

        def wait():
            assert fcntl is not None
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



# ----------------------------------------------------------------------------- connections
class Database:
    """One store's connections: read and write transactions on the engine of :func:`make_engine`
    (re-opened in a forked child), SQLite's write queue and PostgreSQL's advisory locks."""

    def __init__(self, url: sa.engine.URL, schema: str | None, busy_timeout: float, synchronous: str,
                 echo: bool):
        self.url, self.schema, self.dialect = url, schema, url.get_backend_name()
        self.engine = make_engine(url, schema, busy_timeout, synchronous, echo)
        self.write_lock = write_lock_for(url, busy_timeout)
        self.pg_keys = pg_lock_keys(schema)
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not share its parent's connections
            self.engine.dispose(close=False)
            self._pid = os.getpid()

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection for reads (never waits for writers)."""
        self._check_fork()
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self, serial: bool = False) -> Iterator[sa.Connection]:
        """A write transaction, committed when the block ends. SQLite runs one at a time
        (``BEGIN IMMEDIATE``); on PostgreSQL ``serial`` ones (checks, then inserts of tasks,
        programs, annotators) take an advisory lock, so two processes adding the same
        program at once cannot both find it missing."""
        self._check_fork()
        fd = self.write_lock.acquire() if self.write_lock is not None else None
        try:
            with self.engine.connect() as conn:
                conn.execution_options(crlhf_write=True)
                with conn.begin():
                    if serial and self.dialect == "postgresql":
                        conn.execute(PG_XACT_LOCK, {"k": self.pg_keys["setup"]})
                    yield conn
        finally:
            if fd is not None and self.write_lock is not None:
                self.write_lock.release(fd)

    def ensure_schema(self, create: bool) -> None:
        """Check the tables' version (:func:`~crlhf.store.schema.check_schema`); create them in an
        empty database if ``create``, else :class:`~crlhf.store.schema.SchemaVersionError`."""
        where = self.url.render_as_string(hide_password=True)
        with self.read() as conn:
            if check_schema(conn, where):
                return
        if not create:
            raise SchemaVersionError(f"{where} holds no crlhf label store; open it with create=True")
        with self.write() as conn:
            if self.dialect == "postgresql":
                conn.execute(PG_XACT_LOCK, {"k": PG_LOCK_KEY})
                if self.schema:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            if check_schema(conn, where):  # another process created it meanwhile
                return
            create_schema(conn, self.dialect)
