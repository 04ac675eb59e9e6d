"""Feedback in the store: what the program or a person said of an answer that was served.

A score (0 wrong .. 1 right) counts for or against the version that answered; a correction is
stored here as said and, validated, becomes a training example
(:mod:`jarvis.routing.feedback`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from jarvis.core.split import content_hash
from jarvis.store import schema

__all__ = ["FEEDBACK_ORIGIN", "NEGATIVE_BELOW", "FeedbackLog", "outranked"]

NEGATIVE_BELOW = 0.5
"""A score below this is negative feedback."""

FEEDBACK_ORIGIN = "feedback"
"""The origin of a training example that came from a correction."""


def outranked(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Training rows with every answer to a corrected input dropped but the latest correction:
    a person who corrected the teacher knows better."""
    rows = list(rows)
    corrected: dict[str, int] = {}
    for row in rows:
        if row.get("origin") == FEEDBACK_ORIGIN:
            corrected[_key(row)] = row["id"]  # ids grow: the last one wins
    if not corrected:
        return rows
    return [r for r in rows if corrected.get(_key(r), r["id"]) == r["id"]]


def _key(row: dict[str, Any]) -> str:
    return str(row.get("input_hash") or content_hash(row["input"]))


class FeedbackLog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        call_id: int,
        task: str,
        version: str | None,
        *,
        score: float | None,
        correction: Any = None,
        source: str = "api",
    ) -> int:
        with self.engine.begin() as conn:
            key = conn.execute(
                sa.insert(schema.feedback).values(
                    call_id=call_id,
                    task=task,
                    version=version,
                    score=score,
                    correction_json=None if correction is None else json.dumps(correction),
                    source=source,
                    created_at=time.time(),
                )
            ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def negative(self, task: str, version: str, since: float = 0.0) -> int:
        """Negative feedback on ``version`` since ``since``: a low score or a correction."""
        f = schema.feedback.c
        bad = sa.or_(f.score < NEGATIVE_BELOW, f.correction_json.is_not(None))
        with self.engine.connect() as conn:
            n = conn.execute(
                sa.select(sa.func.count()).where(
                    f.task == task, f.version == version, f.created_at >= since, bad
                )
            ).scalar()
        return int(n or 0)

    def by_version(self, task: str) -> dict[str | None, dict[str, Any]]:
        """Per version (None: the teacher answered): how many, negative, mean score."""
        f = schema.feedback.c
        bad = sa.or_(f.score < NEGATIVE_BELOW, f.correction_json.is_not(None))
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    f.version,
                    sa.func.count(),
                    sa.func.sum(sa.case((bad, 1), else_=0)),
                    sa.func.avg(f.score),
                    sa.func.sum(sa.case((f.correction_json.is_not(None), 1), else_=0)),
                )
                .where(f.task == task)
                .group_by(f.version)
            ).all()
        return {
            r[0]: {
                "feedback": int(r[1]),
                "negative": int(r[2] or 0),
                "mean_score": None if r[3] is None else round(float(r[3]), 4),
                "corrections": int(r[4] or 0),
            }
            for r in rows
        }
