"""Model versions in the store: each task's candidates, its active version, and its history.

The database is the source of truth for which version is active. Promotion and rollback are
single transactions, so a crash at any point leaves exactly one active version or none.

    building ─▶ candidate ─▶ active ─▶ retired ─▶ active (rollback) …
        │           ├──────▶ canary ─▶ active (its share ramped to 1)
        │           │           └───▶ rolled_back (it agreed less than the active one live)
        │           └──────▶ rejected (failed its gate)
        └──▶ failed (the run died while writing it)

A *canary* serves a share of the task's calls (``tasks.canary_share``) while the active
version serves the rest; there is at most one per task.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from jarvis.core.errors import ConfigError, StoreError
from jarvis.store import schema
from jarvis.store.locks import lock_task

_VERSION = re.compile(r"^v\d{4,6}$")


def check_version_name(name: str) -> str:
    """Version names are directory names: only ``v0001``-style names are accepted."""
    if not _VERSION.fullmatch(name):  # not .match: "$" also matches before a final "\n"
        raise ConfigError(f"invalid version name {name!r}: expected v0001, v0002, …")
    return name


class Versions:
    """Version rows of every task (see the module docstring for the life cycle)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def allocate(self, task: str) -> str:
        """Reserve the next version name of ``task`` (status ``building``)."""
        v = schema.versions
        for _ in range(20):  # concurrent allocators: the unique constraint decides, retry
            with self.engine.begin() as conn:
                lock_task(conn, task)  # PostgreSQL: allocators of one task take turns
                names = conn.execute(sa.select(v.c.name).where(v.c.task == task)).scalars()
                numbers = [int(n[1:]) for n in names if _VERSION.match(n)]
                name = f"v{max(numbers, default=0) + 1:04d}"
                try:
                    conn.execute(
                        sa.insert(v).values(
                            task=task,
                            name=name,
                            status="building",
                            card_json="{}",
                            created_at=time.time(),
                        )
                    )
                except IntegrityError:
                    continue
                return name
        raise StoreError(f"could not allocate a version name for {task!r}")

    def set_status(
        self, task: str, name: str, status: str, card: dict[str, Any] | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status}
        if card is not None:
            values["card_json"] = json.dumps(card)
        v = schema.versions
        with self.engine.begin() as conn:
            conn.execute(sa.update(v).where(v.c.task == task, v.c.name == name).values(**values))

    def get(self, task: str, name: str) -> dict[str, Any] | None:
        v = schema.versions
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(v).where(v.c.task == task, v.c.name == name)).first()
        return _row(row) if row else None

    def of_task(self, task: str) -> list[dict[str, Any]]:
        v = schema.versions
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(v).where(v.c.task == task).order_by(v.c.id)).all()
        return [_row(r) for r in rows]

    def active(self, task: str) -> str | None:
        t = schema.tasks
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(t.c.active_version).where(t.c.name == task)).scalar()
        return value if isinstance(value, str) else None

    def serving(self, task: str) -> tuple[str | None, str | None, float]:
        """(active version, canary version, canary share) in one read: what a call uses."""
        t = schema.tasks
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.active_version, t.c.canary_version, t.c.canary_share).where(
                    t.c.name == task
                )
            ).first()
        if row is None:
            return None, None, 0.0
        return row[0], row[1], float(row[2] or 0.0)

    def canary(self, task: str) -> dict[str, Any] | None:
        """The task's canary: its version, share and when it started, or None."""
        t = schema.tasks
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.canary_version, t.c.canary_share, t.c.canary_since).where(
                    t.c.name == task
                )
            ).first()
        if row is None or row[0] is None:
            return None
        return {"version": row[0], "share": float(row[1] or 0.0), "since": float(row[2] or 0.0)}

    def start_canary(self, task: str, name: str, share: float) -> None:
        """Let ``name`` serve ``share`` of the calls beside the active version (replacing a
        canary already running, which is retired)."""
        check_version_name(name)
        v, t = schema.versions, schema.tasks
        with self.engine.begin() as conn:
            lock_task(conn, task)
            conn.execute(
                sa.update(v)
                .where(v.c.task == task, v.c.status == "canary", v.c.name != name)
                .values(status="retired")
            )
            conn.execute(
                sa.update(v).where(v.c.task == task, v.c.name == name).values(status="canary")
            )
            conn.execute(
                sa.update(t)
                .where(t.c.name == task)
                .values(canary_version=name, canary_share=share, canary_since=time.time())
            )

    def set_canary_share(self, task: str, share: float) -> None:
        """A new share; the canary is judged afresh from now (``since``)."""
        t = schema.tasks
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.name == task)
                .values(canary_share=share, canary_since=time.time())
            )

    def end_canary(self, task: str, status: str) -> str | None:
        """Stop the canary (its version becomes ``status``); return its version."""
        v, t = schema.versions, schema.tasks
        with self.engine.begin() as conn:
            lock_task(conn, task)
            name = conn.execute(sa.select(t.c.canary_version).where(t.c.name == task)).scalar()
            if name is None:
                return None
            conn.execute(
                sa.update(v).where(v.c.task == task, v.c.name == name).values(status=status)
            )
            conn.execute(
                sa.update(t)
                .where(t.c.name == task)
                .values(canary_version=None, canary_share=None, canary_since=None)
            )
        return str(name)

    def promote(self, task: str, name: str) -> None:
        """Make ``name`` the active version of ``task``, atomically (a canary ends: a
        promotion decides what serves)."""
        check_version_name(name)
        v, t = schema.versions, schema.tasks
        try:
            with self.engine.begin() as conn:
                # PostgreSQL: concurrent promotions of one task take turns, or two of them
                # could each retire the versions active before either committed, and leave
                # both of theirs active.
                lock_task(conn, task)
                row = conn.execute(
                    sa.select(v.c.status).where(v.c.task == task, v.c.name == name)
                ).first()
                if row is None:
                    raise ConfigError(f"task {task!r} has no version {name!r}")
                if row[0] in ("building", "failed"):
                    raise ConfigError(f"version {task}/{name} is {row[0]} and cannot be promoted")
                conn.execute(
                    sa.update(v)
                    .where(v.c.task == task, v.c.status == "active", v.c.name != name)
                    .values(status="retired")
                )
                conn.execute(
                    sa.update(v)
                    .where(v.c.task == task, v.c.name == name)
                    .values(status="active", promoted_at=time.time())
                )
                conn.execute(
                    sa.update(v)
                    .where(v.c.task == task, v.c.status == "canary", v.c.name != name)
                    .values(status="retired")
                )
                conn.execute(
                    sa.update(t)
                    .where(t.c.name == task)
                    .values(
                        active_version=name,
                        canary_version=None,
                        canary_share=None,
                        canary_since=None,
                    )
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot promote {task}/{name}: {exc}") from exc

    def rollback(self, task: str) -> str | None:
        """Retire the active version and re-activate the one promoted before it (or none)."""
        v, t = schema.versions, schema.tasks
        with self.engine.begin() as conn:
            lock_task(conn, task)
            current = conn.execute(sa.select(t.c.active_version).where(t.c.name == task)).scalar()
            if current is None:
                raise ConfigError(f"task {task!r} has no active version to roll back")
            previous = conn.execute(
                sa.select(v.c.name)
                .where(v.c.task == task, v.c.status == "retired", v.c.promoted_at.is_not(None))
                .order_by(v.c.promoted_at.desc())
                .limit(1)
            ).scalar()
            conn.execute(
                sa.update(v)
                .where(v.c.task == task, v.c.name == current)
                .values(status="rolled_back")
            )
            if previous is not None:
                conn.execute(
                    sa.update(v)
                    .where(v.c.task == task, v.c.name == previous)
                    .values(status="active", promoted_at=time.time())
                )
            conn.execute(sa.update(t).where(t.c.name == task).values(active_version=previous))
        return previous if isinstance(previous, str) else None

    def fail_if_building(self, task: str, name: str) -> bool:
        """Mark a version left half-built by a dead run as failed; True if it was."""
        v = schema.versions
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(v)
                .where(v.c.task == task, v.c.name == name, v.c.status == "building")
                .values(status="failed")
            )
        return bool(result.rowcount)


def _row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["card"] = json.loads(data.pop("card_json") or "{}")
    return data
