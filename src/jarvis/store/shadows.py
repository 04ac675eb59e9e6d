"""Shadow checks in the store: how far live student answers agree with the teacher's."""

from __future__ import annotations

import statistics
import time
from typing import Any

import sqlalchemy as sa

from jarvis.store import schema

__all__ = ["Shadows"]


class Shadows:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        task: str,
        version: str,
        agreement: float | None,
        metric: str,
        *,
        call_id: int | None = None,
        error: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(schema.shadows).values(
                    task=task,
                    call_id=call_id,
                    version=version,
                    agreement=agreement,
                    metric=metric,
                    error=error,
                    created_at=time.time(),
                )
            )

    def agreements(self, task: str, version: str, limit: int, since: float = 0.0) -> list[float]:
        """The last ``limit`` agreements of ``version`` since ``since`` (teacher failures
        left out)."""
        s = schema.shadows.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s.agreement)
                .where(
                    s.task == task,
                    s.version == version,
                    s.agreement.is_not(None),
                    s.created_at >= since,
                )
                .order_by(s.id.desc())
                .limit(limit)
            ).scalars()
            return [float(x) for x in rows]

    def summary(self, task: str, window: int = 500) -> dict[str, Any]:
        """Recent points (time, version, agreement) and the mean per version, for charts."""
        s = schema.shadows.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s.created_at, s.version, s.agreement, s.metric)
                .where(s.task == task, s.agreement.is_not(None))
                .order_by(s.id.desc())
                .limit(window)
            ).all()
        rows = list(reversed(rows))
        by_version: dict[str, list[float]] = {}
        for _, version, agreement, _ in rows:
            by_version.setdefault(version, []).append(agreement)
        return {
            "metric": rows[-1][3] if rows else None,
            "points": [{"t": t, "version": v, "agreement": a} for t, v, a, _ in rows],
            "by_version": {
                v: {"n": len(xs), "mean": round(statistics.fmean(xs), 4)}
                for v, xs in by_version.items()
            },
        }
