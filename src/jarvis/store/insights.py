"""Read-only views of the store for the dashboard: time series, latencies, token totals.

Each query reads one task's columns it needs and aggregates in Python, which keeps it
portable between SQLite and PostgreSQL (no dialect-specific date functions) and bounded: the
time series look at the most recent ``window`` calls, not the whole history.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import sqlalchemy as sa

from jarvis.store import schema

__all__ = ["Insights"]


class Insights:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def changes(self) -> dict[str, Any]:
        """A cheap fingerprint of everything the dashboard shows; it changes when they do."""
        c, r, v, e = schema.calls, schema.training_runs, schema.versions, schema.events
        with self.engine.connect() as conn:
            last_call = conn.execute(sa.select(sa.func.max(c.c.id))).scalar()
            last_event = conn.execute(sa.select(sa.func.max(e.c.id))).scalar()
            runs = conn.execute(
                sa.select(r.c.id, r.c.status, r.c.progress_json).order_by(r.c.id.desc()).limit(5)
            ).all()
            versions = conn.execute(sa.select(v.c.task, v.c.name, v.c.status)).all()
            actives = conn.execute(
                sa.select(schema.tasks.c.name, schema.tasks.c.active_version)
            ).all()
        return {
            "call": last_call or 0,
            "event": last_event or 0,
            "runs": hash(tuple(tuple(row) for row in runs)),
            "versions": hash(tuple(sorted(tuple(row) for row in versions))),
            "active": hash(tuple(sorted(tuple(row) for row in actives))),
        }

    def call_series(
        self, task: str, *, window: int = 2000, buckets: int = 40
    ) -> list[dict[str, Any]]:
        """Calls of the last ``window`` in at most ``buckets`` equal time slices.

        Each point: ``t`` (slice end, UNIX s), ``calls``, ``student`` (answered by the student),
        ``fallbacks`` (the student slipped, the teacher answered).
        """
        c = schema.calls.c
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(
                    sa.select(c.created_at, c.source, c.fallback)
                    .where(c.task == task)
                    .order_by(c.id.desc())
                    .limit(window)
                ).all()
            )
        if not rows:
            return []
        rows.reverse()
        start, end = rows[0][0], rows[-1][0]
        span = max(end - start, 1e-6)
        n = max(1, min(buckets, len(rows)))
        points = [
            {"t": start + span * (i + 1) / n, "calls": 0, "student": 0, "fallbacks": 0}
            for i in range(n)
        ]
        for created, source, fallback in rows:
            p = points[min(n - 1, int((created - start) / span * n))]
            p["calls"] += 1
            p["student"] += source == "student"
            p["fallbacks"] += bool(fallback)
        return points

    def example_growth(self, task: str, *, points: int = 60) -> list[dict[str, Any]]:
        """Cumulative examples by split, sampled at up to ``points`` moments."""
        e = schema.examples.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.created_at, e.split).where(e.task == task).order_by(e.id)
            ).all()
        if not rows:
            return []
        stride = max(1, len(rows) // points)
        train = heldout = 0
        out = []
        for i, (created, split) in enumerate(rows):
            if split == "train":
                train += 1
            else:
                heldout += 1
            if (i + 1) % stride == 0 or i == len(rows) - 1:
                out.append({"t": created, "train": train, "heldout": heldout})
        return out

    def latency_p50(self, task: str, *, window: int = 500) -> dict[str, float | None]:
        """Median latency (ms) of the last ``window`` calls answered by each source."""
        c = schema.calls.c
        result: dict[str, float | None] = {}
        with self.engine.connect() as conn:
            for source in ("teacher", "student"):
                values = conn.execute(
                    sa.select(c.latency_ms)
                    .where(c.task == task, c.source == source)
                    .order_by(c.id.desc())
                    .limit(window)
                ).scalars()
                found = list(values)
                result[source] = round(statistics.median(found), 2) if found else None
        return result

    def student_tokens(self, task: str) -> tuple[int, int, int]:
        """(calls, prompt tokens, answer tokens) of valid student answers: the teacher's work
        they saved."""
        c = schema.calls.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(c.tokens_in), 0),
                    sa.func.coalesce(sa.func.sum(c.tokens_out), 0),
                ).where(c.task == task, c.source == "student", c.valid == sa.true())
            ).one()
        return int(row[0]), int(row[1]), int(row[2])

    def last_event_data(self, kind: str, **match: Any) -> dict[str, Any] | None:
        """The data of the newest ``kind`` event whose data has the ``match`` values."""
        e = schema.events.c
        query = sa.select(e.data_json).where(e.kind == kind).order_by(e.id.desc()).limit(500)
        with self.engine.connect() as conn:
            for (data_json,) in conn.execute(query):
                data = json.loads(data_json or "{}")
                if all(data.get(k) == v for k, v in match.items()):
                    return dict(data)
        return None

    def events(self, task: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        e = schema.events.c
        query = sa.select(e.id, e.task, e.kind, e.message, e.created_at).order_by(e.id.desc())
        if task is not None:
            query = query.where(e.task == task)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [dict(r._mapping) for r in rows]
