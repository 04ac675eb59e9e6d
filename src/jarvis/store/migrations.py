"""Ordered schema migrations, each recorded in ``schema_migrations`` once applied.

Add a migration by appending a function to ``MIGRATIONS``; never edit or reorder old ones.
Each runs in its own transaction with the record of it, so a crash leaves it applied or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", m001_initial),
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
