"""Training runs in the store: queued, claimed by exactly one worker, progress, outcome.

queued ─▶ running ─▶ succeeded (a version was built; promoted or not)
              └────▶ failed (error, crash, or killed: the active version is untouched)
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from jarvis.store import schema
from jarvis.store.locks import lock_task

ACTIVE_STATES = ("queued", "running")


class Runs:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def enqueue(self, task: str, params: dict[str, Any], reason: str) -> int | None:
        """Queue a run for ``task`` unless one is already queued or running (then None).

        One ``INSERT … SELECT … WHERE NOT EXISTS`` statement, so two processes queueing at
        the same moment (the worker and ``jarvis train``) cannot both succeed: SQLite runs
        one writer at a time, and on PostgreSQL the task's row is locked first, so the second
        statement runs after the first committed and sees its run.
        """
        r = schema.training_runs
        busy = sa.exists().where(r.c.task == task, r.c.status.in_(ACTIVE_STATES))
        row = sa.select(
            sa.literal(task),
            sa.literal("queued"),
            sa.literal(time.time()),
            sa.literal(json.dumps(params)),
            sa.literal("{}"),
            sa.literal(reason),
        ).where(~busy)
        columns = ["task", "status", "created_at", "params_json", "progress_json", "reason"]
        insert = sa.insert(r).from_select(columns, row)
        with self.engine.begin() as conn:
            lock_task(conn, task)
            result = conn.execute(insert.execution_options(preserve_rowcount=True))
            if result.rowcount != 1:
                return None
            run_id = conn.execute(
                sa.select(r.c.id)
                .where(r.c.task == task, r.c.status == "queued")
                .order_by(r.c.id.desc())
                .limit(1)
            ).scalar_one()
        return int(run_id)

    def claim(self, run_id: int, pid: int) -> bool:
        """Move a queued run to running for process ``pid``; False if someone else did."""
        r = schema.training_runs
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(r)
                .where(r.c.id == run_id, r.c.status == "queued")
                .values(status="running", pid=pid, started_at=time.time())
            )
        return bool(result.rowcount)

    def next_queued(self) -> dict[str, Any] | None:
        r = schema.training_runs
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(r).where(r.c.status == "queued").order_by(r.c.id).limit(1)
            ).first()
        return _row(row) if row else None

    def progress(self, run_id: int, **progress: Any) -> None:
        r = schema.training_runs
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(r).where(r.c.id == run_id).values(progress_json=json.dumps(progress))
            )

    def set_version(self, run_id: int, version: str) -> None:
        r = schema.training_runs
        with self.engine.begin() as conn:
            conn.execute(sa.update(r).where(r.c.id == run_id).values(version=version))

    def finish(self, run_id: int, status: str, error: str | None = None) -> None:
        r = schema.training_runs
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(r)
                .where(r.c.id == run_id, r.c.status.in_(ACTIVE_STATES))
                .values(status=status, error=error, finished_at=time.time())
            )

    def get(self, run_id: int) -> dict[str, Any] | None:
        r = schema.training_runs
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(r).where(r.c.id == run_id)).first()
        return _row(row) if row else None

    def recent(self, task: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        r = schema.training_runs
        query = sa.select(r).order_by(r.c.id.desc()).limit(limit)
        if task is not None:
            query = query.where(r.c.task == task)
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(query).all()]

    def running(self) -> list[dict[str, Any]]:
        r = schema.training_runs
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(r).where(r.c.status == "running")).all()
        return [_row(row) for row in rows]

    def last_finished(self, task: str) -> dict[str, Any] | None:
        r = schema.training_runs
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(r)
                .where(r.c.task == task, r.c.status.in_(("succeeded", "failed")))
                .order_by(r.c.id.desc())
                .limit(1)
            ).first()
        return _row(row) if row else None


def _row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["params"] = json.loads(data.pop("params_json") or "{}")
    data["progress"] = json.loads(data.pop("progress_json") or "{}")
    return data
