"""Ordered schema migrations, each recorded in ``schema_migrations`` once applied.

Add a migration by appending a function to ``MIGRATIONS``; never edit or reorder old ones.
Each runs in its own transaction with the record of it, so a crash leaves it applied or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from jarvis.store import schema

Migration = Callable[[sa.Connection], None]


def m001_initial(conn: sa.Connection) -> None:
    """Tasks, calls, attempts, examples, training runs, versions, events."""
    tables = [
        schema.tasks,
        schema.calls,
        schema.attempts,
        schema.examples,
        schema.training_runs,
        schema.versions,
        schema.events,
    ]
    schema.metadata.create_all(conn, tables=tables)


def _add_column(conn: sa.Connection, table: str, column: sa.Column[Any]) -> None:
    """ALTER TABLE ADD COLUMN, skipped when the column exists (m001 creates today's schema)."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(table)}
    if column.name not in present:
        ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {ddl}"))


def m002_training_bookkeeping(conn: sa.Connection) -> None:
    """When a version was last promoted (for rollback), and the process of a training run."""
    _add_column(conn, "versions", sa.Column("promoted_at", sa.Float, nullable=True))
    _add_column(conn, "training_runs", sa.Column("pid", sa.Integer, nullable=True))
    _add_column(conn, "training_runs", sa.Column("reason", sa.Text, nullable=True))


def m003_task_origin(conn: sa.Connection) -> None:
    """Where a task is declared: "python" code, or only a "schema" (a Jac function)."""
    _add_column(
        conn, "tasks", sa.Column("origin", sa.String(16), nullable=False, server_default="python")
    )


def m004_shadows(conn: sa.Connection) -> None:
    """Shadow checks: live student answers compared with the teacher's (drift)."""
    schema.shadows.create(conn, checkfirst=True)


def m005_examples_seen(conn: sa.Connection) -> None:
    """How often the teacher gave each example: recurring inputs move to training and
    weigh more in it (see :mod:`jarvis.core.split`)."""
    _add_column(conn, "examples", sa.Column("seen", sa.Integer, nullable=False, server_default="1"))


def m006_agreement(conn: sa.Connection) -> None:
    """Escalations and confidences of student answers; feedback on served answers; canary
    releases."""
    _add_column(
        conn,
        "calls",
        sa.Column("escalated", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    _add_column(conn, "calls", sa.Column("confidence", sa.Float, nullable=True))
    _add_column(conn, "attempts", sa.Column("confidence", sa.Float, nullable=True))
    schema.feedback.create(conn, checkfirst=True)
    _add_column(conn, "tasks", sa.Column("canary_version", sa.String(64), nullable=True))
    _add_column(conn, "tasks", sa.Column("canary_share", sa.Float, nullable=True))
    _add_column(conn, "tasks", sa.Column("canary_since", sa.Float, nullable=True))


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", m001_initial),
    ("m002_training_bookkeeping", m002_training_bookkeeping),
    ("m003_task_origin", m003_task_origin),
    ("m004_shadows", m004_shadows),
    ("m005_examples_seen", m005_examples_seen),
    ("m006_agreement", m006_agreement),
]


# pg_advisory_xact_lock's key for migrations: any constant of our own ("JARVISMG").
_MIGRATION_LOCK = 0x4A41525649534D47


def _lock(conn: sa.Connection) -> None:
    """Make processes that migrate the same database at once take turns, until this
    transaction ends, and create the table of applied migrations if it is missing.

    Without the lock, two processes starting together would both find a migration missing
    and both apply it (a duplicate table or column, then a duplicate record).
    """
    if conn.dialect.name == "postgresql":  # no table lock is portable; this one is PG's
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    sm = schema.schema_migrations
    conn.execute(sa.schema.CreateTable(sm, if_not_exists=True))
    # SQLite: a write, even of no row, takes the database's one write lock (waiting for it up
    # to busy_timeout) and opens the transaction, which now holds it. PostgreSQL: a no-op.
    conn.execute(sa.update(sm).where(sm.c.name == "").values(applied_at=0.0))


def migrate(engine: sa.Engine) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now.

    Safe when several processes open a new database at the same moment: each migration's
    transaction starts with :func:`_lock`, so exactly one of them applies it.
    """
    with engine.connect() as conn:  # the usual case, without taking any lock
        if sa.inspect(conn).has_table(schema.schema_migrations.name):
            recorded = set(conn.execute(sa.select(schema.schema_migrations.c.name)).scalars())
            if all(name in recorded for name, _ in MIGRATIONS):
                return []
    applied_now: list[str] = []
    for name, step in MIGRATIONS:
        with engine.begin() as conn:
            _lock(conn)
            done = conn.execute(
                sa.select(schema.schema_migrations.c.name).where(
                    schema.schema_migrations.c.name == name
                )
            ).first()
            if done:
                continue
            step(conn)
            conn.execute(
                sa.insert(schema.schema_migrations).values(name=name, applied_at=time.time())
            )
            applied_now.append(name)
    return applied_now
