"""The store: every call, every attempt, every training example, per task.

SQLite (WAL) by default, any SQLAlchemy URL (PostgreSQL) otherwise, with the same code. Each
public write is one transaction: a call is logged with all its attempts and its training
example, or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from jarvis.core.errors import MissingExtra, StoreError
from jarvis.core.split import KEEP_HELDOUT, canonical_json, content_hash
from jarvis.core.tasks import Task
from jarvis.store import schema
from jarvis.store.feedback import FeedbackLog
from jarvis.store.insights import Insights
from jarvis.store.migrations import migrate
from jarvis.store.runs import Runs
from jarvis.store.shadows import Shadows
from jarvis.store.versions import Versions


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """What the store keeps about a task's declaration."""

    name: str
    kind: str = "typed"
    instructions: str = ""
    output_schema: dict[str, Any] | None = None
    params: list[str] = field(default_factory=list)
    threshold: int | None = None
    heldout_share: float | None = None
    origin: str = "python"  # or "schema": rebuildable from this row alone

    @classmethod
    def of(cls, task: Task[Any]) -> TaskInfo:
        """What the store keeps of ``task``'s declaration."""
        return cls(
            name=task.name,
            kind="text" if task.is_free_text else "typed",
            instructions=task.instructions,
            output_schema=task.output_schema,
            params=task.param_names,
            threshold=task.threshold,
            heldout_share=task.heldout_share,
            origin=getattr(task, "origin", "python"),
        )


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    number: int
    source: str
    version: str | None
    model: str | None
    raw_text: str | None
    output: Any
    valid: bool
    stage: str
    reason: str | None
    temperature: float | None
    top_p: float | None
    seed: int | None
    latency_ms: float
    tokens_in: int | None
    tokens_out: int | None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class ExampleRecord:
    """A training example: validated input and output, in their JSON forms."""

    input: Any
    output: Any
    split: str
    origin: str = "teacher"
    train_after_seen: int = 0
    """A held-out input the teacher has answered this many times moves to training (0: never;
    see :mod:`jarvis.core.split`)."""


@dataclass(slots=True)
class CallRecord:
    task: str
    input: Any
    output: Any
    source: str
    version: str | None
    model: str | None
    valid: bool
    reason: str | None
    fallback: bool
    latency_ms: float
    attempts: list[AttemptRecord]
    example: ExampleRecord | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    escalated: bool = False  # a valid student answer the router did not trust enough
    confidence: float | None = None  # of the last student answer


@dataclass(frozen=True, slots=True)
class TaskStats:
    name: str
    calls: int
    teacher_calls: int
    student_calls: int
    fallbacks: int
    invalid_calls: int
    examples_train: int
    examples_heldout: int
    threshold: int | None
    active_version: str | None
    escalations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "escalations": self.escalations,
            "name": self.name,
            "calls": self.calls,
            "teacher_calls": self.teacher_calls,
            "student_calls": self.student_calls,
            "fallbacks": self.fallbacks,
            "invalid_calls": self.invalid_calls,
            "examples_train": self.examples_train,
            "examples_heldout": self.examples_heldout,
            "threshold": self.threshold,
            "active_version": self.active_version,
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    duplicates: int


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _switch_to_wal(cur: Any, *, patience_s: float = 10.0) -> None:
    """``PRAGMA journal_mode=WAL`` with retries. Switching a brand-new database needs an
    exclusive lock, and SQLite answers "database is locked" at once, without its busy
    handler, when another process is doing the same switch (seen when several processes
    open a new store together), so the wait is ours."""
    deadline = time.monotonic() + patience_s
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _configure_sqlite(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # busy_timeout: concurrent writers wait, not fail (first: switching a new database to
    # WAL takes a lock too, when several processes open it at once); WAL: readers never
    # block the writer; NORMAL: a commit survives a process crash (kill -9) without an fsync
    # per call.
    cur.execute("PRAGMA busy_timeout=10000")
    _switch_to_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    """Everything JARVIS remembers. Thread-safe; share one per process."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        try:
            self.engine = sa.create_engine(url, future=True)
        except ImportError as exc:
            if sa.engine.make_url(url).get_backend_name() == "postgresql":
                raise MissingExtra("the PostgreSQL store", "postgres") from exc
            raise StoreError(f"cannot open store {_redact(url)}: {exc}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open store {_redact(url)}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _configure_sqlite)
        self._known_tasks: set[str] = set()
        self._lock = threading.Lock()
        self.versions = Versions(self.engine)
        self.runs = Runs(self.engine)
        self.insights = Insights(self.engine)
        self.shadows = Shadows(self.engine)
        self.feedback = FeedbackLog(self.engine)
        if create:
            self.migrate()

    @property
    def safe_url(self) -> str:
        """The database URL without its password, for messages and logs."""
        return _redact(self.url)

    def migrate(self) -> list[str]:
        try:
            return migrate(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate store {_redact(self.url)}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def _begin(self) -> Any:
        return self.engine.begin()

    def _insert_ignore(self, table: sa.Table) -> Any:
        """INSERT that skips rows violating a unique constraint (portable upsert-nothing).

        Its ``rowcount`` is the number of rows really inserted, executemany included
        (SQLAlchemy keeps an INSERT's rowcount only when asked to: on PostgreSQL it is -1
        otherwise).
        """
        stmt: sa.Insert
        if self.engine.dialect.name == "postgresql":
            stmt = postgresql.insert(table).on_conflict_do_nothing()
        elif self.engine.dialect.name == "sqlite":
            stmt = sqlite.insert(table).on_conflict_do_nothing()
        else:
            stmt = sa.insert(table).prefix_with("IGNORE")
        return stmt.execution_options(preserve_rowcount=True)

    # -- tasks ----------------------------------------------------------------------------

    def ensure_task(self, info: TaskInfo) -> None:
        """Record a task's declaration (once per process; updated if it changed)."""
        if info.name in self._known_tasks:
            return
        now = time.time()
        values = {
            "kind": info.kind,
            "instructions": info.instructions,
            "output_schema": None if info.output_schema is None else _dumps(info.output_schema),
            "params": _dumps(info.params),
            "threshold": info.threshold,
            "heldout_share": info.heldout_share,
            "origin": info.origin,
            "updated_at": now,
        }
        t = schema.tasks
        try:
            with self._begin() as conn:
                stmt = self._insert_ignore(t).values(name=info.name, created_at=now, **values)
                result = conn.execute(stmt)
                if result.rowcount == 0:
                    conn.execute(sa.update(t).where(t.c.name == info.name).values(**values))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record task {info.name!r}: {exc}") from exc
        with self._lock:
            self._known_tasks.add(info.name)

    def ensure_task_name(self, name: str, kind: str = "typed") -> None:
        """Make sure a task row exists without overwriting a richer declaration."""
        if name in self._known_tasks:
            return
        now = time.time()
        with self._begin() as conn:
            conn.execute(
                self._insert_ignore(schema.tasks).values(
                    name=name,
                    kind=kind,
                    instructions="",
                    params="[]",
                    created_at=now,
                    updated_at=now,
                )
            )

    def task_names(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.tasks.c.name).order_by(schema.tasks.c.name))
            return [r[0] for r in rows]

    def task_row(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.tasks).where(schema.tasks.c.name == name)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["output_schema"] = _loads(data["output_schema"])
        data["params"] = _loads(data["params"])
        return data

    def fail_run(self, run_id: int, message: str) -> None:
        """Mark a run failed, fail the version it was building (if any), record why.

        The active version is never touched: a half-built version was never promoted.
        """
        run = self.runs.get(run_id)
        if run is None:
            return
        self.runs.finish(run_id, "failed", message)
        if run.get("version"):
            self.versions.fail_if_building(run["task"], run["version"])
        self.add_event(
            "training_failed", f"{run['task']}: run {run_id}: {message}", task=run["task"]
        )

    # -- calls ----------------------------------------------------------------------------

    def record_call(self, rec: CallRecord) -> int:
        """Log a call with all its attempts and (if any) its training example; return its id."""
        try:
            with self._begin() as conn:
                call_id = conn.execute(
                    sa.insert(schema.calls).values(
                        task=rec.task,
                        created_at=rec.created_at,
                        input_json=_dumps(rec.input),
                        output_json=None if rec.output is None else _dumps(rec.output),
                        source=rec.source,
                        version=rec.version,
                        model=rec.model,
                        valid=rec.valid,
                        reason=rec.reason,
                        fallback=rec.fallback,
                        attempts=len(rec.attempts),
                        latency_ms=rec.latency_ms,
                        tokens_in=_sum(a.tokens_in for a in rec.attempts),
                        tokens_out=_sum(a.tokens_out for a in rec.attempts),
                        error=rec.error,
                        escalated=rec.escalated,
                        confidence=rec.confidence,
                    )
                ).inserted_primary_key[0]
                if rec.attempts:
                    conn.execute(
                        sa.insert(schema.attempts),
                        [_attempt_row(call_id, a) for a in rec.attempts],
                    )
                if rec.example is not None:
                    self._log_example(conn, rec.task, rec.example, call_id, rec.created_at)
        except (SQLAlchemyError, TypeError, ValueError) as exc:  # Type/ValueError: not JSON
            raise StoreError(f"cannot log call of task {rec.task!r}: {exc}") from exc
        return int(call_id)

    def _log_example(
        self, conn: sa.Connection, task: str, ex: ExampleRecord, call_id: int, now: float
    ) -> None:
        """Store a teacher call's example once; a repeat only counts as seen again, and an
        input seen often enough leaves the held-out set for training, all its answers with it
        (held-out → train only: no version is ever gated on what it was trained on), as long
        as :data:`~jarvis.split.KEEP_HELDOUT` other held-out examples remain."""
        e = schema.examples.c
        row = _example_row(task, ex, call_id, now)
        same_input = (e.task == task) & (e.input_hash == row["input_hash"])
        if ex.split == "heldout" and ex.train_after_seen > 0:
            moved = conn.execute(
                sa.select(e.id).where(same_input, e.split == "train").limit(1)
            ).first()
            if moved is not None:  # a new answer to an input that has already moved
                row["split"] = "train"
        if conn.execute(self._insert_ignore(schema.examples), [row]).rowcount:
            return
        conn.execute(
            sa.update(schema.examples)
            .where(same_input, e.output_hash == row["output_hash"])
            .values(seen=e.seen + 1)
        )
        if row["split"] != "heldout" or ex.train_after_seen <= 0:
            return
        seen = conn.execute(sa.select(sa.func.sum(e.seen)).where(same_input)).scalar_one()
        if seen < ex.train_after_seen:
            return
        others = conn.execute(  # counted up to the floor only: a hot path, big tables
            sa.select(sa.func.count()).select_from(
                sa.select(e.id)
                .where(e.task == task, e.split == "heldout", e.input_hash != row["input_hash"])
                .limit(KEEP_HELDOUT)
                .subquery()
            )
        ).scalar_one()
        if others >= KEEP_HELDOUT:  # else wait: a later repeat tries again
            conn.execute(
                sa.update(schema.examples)
                .where(same_input, e.split == "heldout")
                .values(split="train")
            )

    def get_call(self, call_id: int) -> dict[str, Any] | None:
        """One logged call (task, input, output, source, version, …), or None."""
        c = schema.calls
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c).where(c.c.id == call_id)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["input"] = _loads(data.pop("input_json"))
        out = data.pop("output_json")
        data["output"] = None if out is None else _loads(out)
        return data

    def recent_calls(self, task: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        c = schema.calls.c
        query = sa.select(schema.calls).order_by(c.id.desc()).limit(limit)
        if task is not None:
            query = query.where(c.task == task)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            data = dict(row._mapping)
            data["input"] = _loads(data.pop("input_json"))
            data["output"] = _loads(data.pop("output_json"))
            out.append(data)
        return out

    def call_attempts(self, call_id: int) -> list[dict[str, Any]]:
        a = schema.attempts
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(a).where(a.c.call_id == call_id).order_by(a.c.number))
            return [dict(r._mapping) for r in rows]

    # -- examples ---------------------------------------------------------------------------

    def add_examples(self, task: str, examples: Sequence[ExampleRecord]) -> ImportResult:
        """Insert examples in one transaction; exact duplicates are skipped and counted."""
        return self.add_examples_many({task: examples})[task]

    def add_examples_many(
        self, by_task: Mapping[str, Sequence[ExampleRecord]]
    ) -> dict[str, ImportResult]:
        """Insert examples of several tasks in ONE transaction: all of them, or none."""
        now = time.time()
        results: dict[str, ImportResult] = {}
        try:
            with self._begin() as conn:
                for task, examples in by_task.items():
                    rows = [_example_row(task, ex, None, now) for ex in examples]
                    added = 0
                    for start in range(0, len(rows), 500):
                        # The rows really inserted, not a count before and after: another
                        # process may add examples of this task at the same time.
                        added += conn.execute(
                            self._insert_ignore(schema.examples), rows[start : start + 500]
                        ).rowcount
                    results[task] = ImportResult(added=added, duplicates=len(rows) - added)
        except (SQLAlchemyError, TypeError, ValueError) as exc:  # Type/ValueError: not JSON
            raise StoreError(f"cannot add examples: {exc}") from exc
        return results

    def example_count(self, task: str, split: str | None = None) -> int:
        e = schema.examples
        query = sa.select(sa.func.count()).select_from(e).where(e.c.task == task)
        if split is not None:
            query = query.where(e.c.split == split)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def student_routed_calls(self, task: str, since: float, limit: int) -> tuple[int, int]:
        """(calls, fallbacks) among the last ``limit`` calls since ``since`` a student tried
        (escalations count as calls, not as fallbacks: the student's answer was valid)."""
        c = schema.calls.c
        recent = (
            sa.select(c.fallback)
            .where(
                c.task == task,
                c.created_at >= since,
                sa.or_(c.source == "student", c.fallback == sa.true(), c.escalated == sa.true()),
            )
            .order_by(c.id.desc())
            .limit(limit)
            .subquery()
        )
        query = sa.select(
            sa.func.count(), sa.func.sum(sa.case((recent.c.fallback == sa.true(), 1), else_=0))
        )
        with self.engine.connect() as conn:
            n, fallbacks = conn.execute(query).one()
        return int(n or 0), int(fallbacks or 0)

    def iter_examples(self, task: str, split: str | None = None) -> Iterator[dict[str, Any]]:
        e = schema.examples
        query = sa.select(e).where(e.c.task == task).order_by(e.c.id)
        if split is not None:
            query = query.where(e.c.split == split)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                data = dict(row._mapping)
                data["input"] = _loads(data.pop("input_json"))
                data["output"] = _loads(data.pop("output_json"))
                yield data

    # -- status -----------------------------------------------------------------------------

    def task_stats(self) -> list[TaskStats]:
        c, e, t = schema.calls, schema.examples, schema.tasks
        with self.engine.connect() as conn:
            call_rows = conn.execute(
                sa.select(
                    c.c.task,
                    sa.func.count(),
                    sa.func.sum(sa.case((c.c.source == "teacher", 1), else_=0)),
                    sa.func.sum(sa.case((c.c.source == "student", 1), else_=0)),
                    sa.func.sum(sa.case((c.c.fallback == sa.true(), 1), else_=0)),
                    sa.func.sum(sa.case((c.c.valid == sa.false(), 1), else_=0)),
                    sa.func.sum(sa.case((c.c.escalated == sa.true(), 1), else_=0)),
                ).group_by(c.c.task)
            ).all()
            ex_rows = conn.execute(
                sa.select(e.c.task, e.c.split, sa.func.count()).group_by(e.c.task, e.c.split)
            ).all()
            task_rows = conn.execute(
                sa.select(t.c.name, t.c.threshold, t.c.active_version).order_by(t.c.name)
            ).all()
        calls_by = {r[0]: [int(x or 0) for x in r[1:]] for r in call_rows}
        ex_by: dict[tuple[str, str], int] = {(r[0], r[1]): int(r[2]) for r in ex_rows}
        stats = []
        for name, threshold, active in task_rows:
            n, teacher, student, fallbacks, invalid, escalated = calls_by.get(name, [0] * 6)
            stats.append(
                TaskStats(
                    name=name,
                    calls=n,
                    teacher_calls=teacher,
                    student_calls=student,
                    fallbacks=fallbacks,
                    invalid_calls=invalid,
                    examples_train=ex_by.get((name, "train"), 0),
                    examples_heldout=ex_by.get((name, "heldout"), 0),
                    threshold=threshold,
                    active_version=active,
                    escalations=escalated,
                )
            )
        return stats

    def add_event(self, kind: str, message: str, task: str | None = None, **data: Any) -> None:
        with self._begin() as conn:
            conn.execute(
                sa.insert(schema.events).values(
                    task=task,
                    kind=kind,
                    message=message,
                    data_json=_dumps(data),
                    created_at=time.time(),
                )
            )


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _attempt_row(call_id: int, a: AttemptRecord) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "number": a.number,
        "source": a.source,
        "version": a.version,
        "model": a.model,
        "raw_text": a.raw_text,
        "output_json": None if a.output is None else _dumps(a.output),
        "valid": a.valid,
        "stage": a.stage,
        "reason": a.reason,
        "temperature": a.temperature,
        "top_p": a.top_p,
        "seed": a.seed,
        "latency_ms": a.latency_ms,
        "tokens_in": a.tokens_in,
        "tokens_out": a.tokens_out,
        "confidence": a.confidence,
    }


def _example_row(task: str, ex: ExampleRecord, call_id: int | None, now: float) -> dict[str, Any]:
    return {
        "task": task,
        "call_id": call_id,
        "origin": ex.origin,
        "input_json": canonical_json(ex.input),
        "output_json": canonical_json(ex.output),
        "input_hash": content_hash(ex.input),
        "output_hash": content_hash(ex.output),
        "split": ex.split,
        "created_at": now,
    }


def _redact(url: str) -> str:
    """Never print a database password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"
