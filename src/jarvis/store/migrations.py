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


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", m001_initial),
    ("m002_training_bookkeeping", m002_training_bookkeeping),
    ("m003_task_origin", m003_task_origin),
]


def migrate(engine: sa.Engine) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    schema.metadata.create_all(engine, tables=[schema.schema_migrations])
    applied_now: list[str] = []
    for name, step in MIGRATIONS:
        with engine.begin() as conn:
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
