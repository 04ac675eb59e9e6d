"""Row locks that serialize writers of one task, where the database has row locks.

PostgreSQL runs several transactions at once (READ COMMITTED): two processes promoting two
versions of one task, or queueing a run for it, could each check the state before the other
committed and both go ahead. Each such transaction therefore locks the task's row first
(``SELECT … FOR UPDATE``), so they take turns and each one sees what the previous committed.
SQLite has one writer at a time anyway, and SQLAlchemy renders no ``FOR UPDATE`` for it.
"""

from __future__ import annotations

import sqlalchemy as sa

from jarvis.store import schema


def lock_task(conn: sa.Connection, task: str) -> None:
    """Hold the row of ``task`` until this transaction ends (no-op if there is no row)."""
    t = schema.tasks
    conn.execute(sa.select(t.c.name).where(t.c.name == task).with_for_update())
