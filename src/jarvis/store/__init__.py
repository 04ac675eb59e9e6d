"""The store: calls, attempts, examples, training runs, versions, events."""

from __future__ import annotations

from jarvis.store.store import (
    AttemptRecord,
    CallRecord,
    ExampleRecord,
    ImportResult,
    Store,
    TaskInfo,
    TaskStats,
)

__all__ = [
    "AttemptRecord",
    "CallRecord",
    "ExampleRecord",
    "ImportResult",
    "Store",
    "TaskInfo",
    "TaskStats",
]
