"""The label store's tables, their version, and the checks of a database's layout.

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
  :class:`SchemaVersionError` (:func:`check_schema`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as _pg
from sqlalchemy.dialects import sqlite as _sqlite

__all__ = ["SCHEMA_VERSION", "SchemaVersionError", "check_schema", "create_schema", "integrity_problems",
           "program_query", "schema_table", "tasks_table", "rounds_table", "programs_table", "gold_table",
           "annotators_table", "labels_table", "APPEND_ONLY", "TOKEN_QUERY", "LABEL_INSERT", "LABEL_COLUMNS",
           "MAX_ID", "MAX_NAME"]

SCHEMA_VERSION = 1
"""Version of the table layout below; bump it (and say how to migrate) whenever it changes."""

MAX_ID = 200  # longest program_id / task_id / client_label_id
MAX_NAME = 100  # longest annotator name

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

APPEND_ONLY = {
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
TOKEN_QUERY = sa.select(annotators_table.c.annotator).where(annotators_table.c.token_hash == sa.bindparam("h"))
LABEL_INSERT = {  # a retried client_label_id is skipped, on both dialects
    name: dialect.insert(labels_table).on_conflict_do_nothing(index_elements=["annotator", "client_label_id"])
    .returning(labels_table.c.client_label_id)
    for name, dialect in (("sqlite", _sqlite), ("postgresql", _pg))
}
LABEL_COLUMNS = ("program_id", "line", "annotator", "label")


def program_query() -> sa.Select:
    """The columns of a :class:`crlhf.store.values.Program` (its task's prompt joined), to filter."""
    p, t_ = programs_table, tasks_table
    return (sa.select(p.c.program_id, p.c.program, p.c.task_id, t_.c.prompt, p.c.round_id)
            .select_from(p.outerjoin(t_, t_.c.task_id == p.c.task_id)))


class SchemaVersionError(RuntimeError):
    """The database holds another version of the store's tables (or foreign tables)."""



def check_schema(conn: sa.Connection, where: str) -> bool:
    """Whether ``conn``'s database holds this version of the tables (``False``: none of them);
    :class:`SchemaVersionError` for another version or foreign tables of the same names."""
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


def create_schema(conn: sa.Connection, dialect: str) -> None:
    """Create the tables, the append-only triggers and the version row (in ``conn``'s transaction)."""
    metadata.create_all(conn)
    for ddl in APPEND_ONLY[dialect]:
        conn.exec_driver_sql(ddl)
    conn.execute(schema_table.insert().values(version=SCHEMA_VERSION))


def integrity_problems(conn: sa.Connection, dialect: str) -> list[str]:
    """What :meth:`crlhf.store.LabelStore.check_integrity` reports, read through ``conn``."""
    problems = []
    lab, p, a, g = labels_table, programs_table, annotators_table, gold_table
    if dialect == "sqlite":
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
