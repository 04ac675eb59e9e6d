"""The store: migrations, SQLite settings, one transaction per write, de-duplication, stats.

Everything here runs against a real store: a SQLite file in a temporary JARVIS_HOME, and
again a PostgreSQL database (``test_x[sqlite]``, ``test_x[postgresql]``).
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from jarvis import Jarvis, Settings, Store, TeacherError, render_answer
from jarvis.core.errors import StoreError
from jarvis.core.split import split_for
from jarvis.rpg import Level, create_next_level, create_next_map, oracle_level
from jarvis.store import AttemptRecord, CallRecord, ExampleRecord, TaskInfo, schema
from jarvis.store.migrations import MIGRATIONS
from jarvis.store.store import _redact, _switch_to_wal

if TYPE_CHECKING:
    from jarvis.testing import ScriptedStudent


def level_json(difficulty: int, last_levels: list[Level] | None = None) -> dict[str, Any]:
    """A valid create_next_level answer, in its JSON form."""
    level = oracle_level(last_levels or [], difficulty, random.Random(0))
    return level.model_dump(mode="json")


def level_inputs(difficulty: int) -> dict[str, Any]:
    return {"last_levels": [], "difficulty": difficulty}


def count_rows(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def attempt(number: int, source: str = "teacher", valid: bool = True) -> AttemptRecord:
    return AttemptRecord(
        number=number,
        source=source,
        version=None,
        model="oracle:create_next_level",
        raw_text="{}",
        output=None,
        valid=valid,
        stage="ok" if valid else "format",
        reason=None if valid else "bad",
        temperature=None,
        top_p=None,
        seed=None,
        latency_ms=1.0,
        tokens_in=None,
        tokens_out=None,
    )


# --- migrations and connection settings --------------------------------------------------------


def test_migrations_are_recorded_and_applying_them_again_is_a_no_op(store: Store) -> None:
    with store.engine.connect() as conn:
        recorded = conn.exec_driver_sql("SELECT name FROM schema_migrations").scalars().all()
    assert sorted(recorded) == sorted(name for name, _ in MIGRATIONS)
    assert "m001_initial" in recorded

    assert store.migrate() == []
    assert count_rows(store, "schema_migrations") == len(MIGRATIONS)


def test_a_new_database_gets_every_migration_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fresh = Store(url, create=False)
    try:
        assert fresh.migrate() == [name for name, _ in MIGRATIONS]
        assert fresh.migrate() == []
    finally:
        fresh.close()


# The columns and tables that migrations after m001 add to a database made by m001.
ADDED_LATER = {
    ("versions", "promoted_at"),
    ("training_runs", "pid"),
    ("training_runs", "reason"),
    ("tasks", "origin"),
}
M001_TABLES = ("tasks", "calls", "attempts", "examples", "training_runs", "versions", "events")


def test_a_database_made_by_the_first_migration_is_upgraded_in_place(empty_url: str) -> None:
    """The ALTER TABLE … ADD COLUMN migrations, on a database that already holds rows."""
    old = sa.MetaData()
    for name in M001_TABLES:
        table = schema.metadata.tables[name]
        columns = [c._copy() for c in table.columns if (name, c.name) not in ADDED_LATER]
        sa.Table(name, old, *columns)
    engine = sa.create_engine(empty_url)
    try:
        with engine.begin() as conn:
            schema.schema_migrations.create(conn)
            old.create_all(conn)
            conn.execute(
                sa.insert(schema.schema_migrations).values(name="m001_initial", applied_at=1.0)
            )
            conn.execute(
                sa.insert(old.tables["tasks"]).values(
                    name="create_next_level", kind="typed", instructions="", params="[]",
                    created_at=1.0, updated_at=1.0,
                )
            )  # fmt: skip
            conn.execute(
                sa.insert(old.tables["versions"]).values(
                    task="create_next_level", name="v0001", status="candidate", card_json="{}",
                    created_at=1.0,
                )
            )  # fmt: skip
    finally:
        engine.dispose()

    store = Store(empty_url, create=False)
    try:
        assert store.migrate() == [name for name, _ in MIGRATIONS[1:]]
        assert store.migrate() == []
        row = store.task_row("create_next_level")
        assert row is not None and row["origin"] == "python"  # the new column's default
        store.versions.promote("create_next_level", "v0001")
        version = store.versions.get("create_next_level", "v0001")
        assert version is not None and version["promoted_at"] > 1.0
        run_id = store.runs.enqueue("create_next_level", {}, "upgraded")
        assert run_id is not None and store.runs.claim(run_id, pid=1234)
        assert (store.runs.get(run_id) or {})["reason"] == "upgraded"
    finally:
        store.close()


def test_a_second_store_on_the_same_file_opens_and_sees_the_data(store: Store) -> None:
    store.ensure_task(TaskInfo.of(create_next_level))
    second = Store(store.url)
    try:
        assert second.migrate() == []
        assert second.task_names() == ["create_next_level"]
    finally:
        second.close()


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode(store: Store) -> None:
    with store.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        foreign_keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    assert str(mode).lower() == "wal"
    assert foreign_keys == 1


class _LockedCursor:
    """A cursor whose first ``locked`` executions fail the way SQLite fails a WAL switch
    that another process is making at the same moment."""

    def __init__(self, locked: int, error: str = "database is locked") -> None:
        self.locked = locked
        self.error = error
        self.executed = 0

    def execute(self, sql: str) -> None:
        self.executed += 1
        if self.executed <= self.locked:
            raise sqlite3.OperationalError(self.error)


def test_switching_to_wal_waits_out_another_process_switching_it() -> None:
    # SQLite reports this lock at once, without its busy handler: the store has to retry.
    cursor = _LockedCursor(locked=3)
    _switch_to_wal(cursor, patience_s=5)
    assert cursor.executed == 4


def test_switching_to_wal_gives_up_after_its_patience() -> None:
    cursor = _LockedCursor(locked=10**6)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _switch_to_wal(cursor, patience_s=0.05)


def test_switching_to_wal_does_not_retry_other_errors() -> None:
    cursor = _LockedCursor(locked=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _switch_to_wal(cursor, patience_s=5)
    assert cursor.executed == 1


# --- record_call: all or nothing ------------------------------------------------------------


def test_record_call_stores_the_call_its_attempts_and_its_example(store: Store) -> None:
    store.ensure_task(TaskInfo.of(create_next_level))
    inputs, output = level_inputs(1), level_json(1)
    call_id = store.record_call(
        CallRecord(
            task="create_next_level",
            input=inputs,
            output=output,
            source="teacher",
            version=None,
            model="oracle:create_next_level",
            valid=True,
            reason=None,
            fallback=False,
            latency_ms=2.0,
            attempts=[attempt(0, valid=False), attempt(1)],
            example=ExampleRecord(input=inputs, output=output, split="train"),
        )
    )
    [call] = store.recent_calls("create_next_level")
    assert call["id"] == call_id
    assert call["attempts"] == 2
    assert [a["number"] for a in store.call_attempts(call_id)] == [0, 1]
    [example] = store.iter_examples("create_next_level")
    assert example["call_id"] == call_id
    assert (example["input"], example["output"], example["split"]) == (inputs, output, "train")


@pytest.mark.parametrize(
    "broken_example",
    [
        pytest.param(
            ExampleRecord(input=level_inputs(1), output=object(), split="train"),
            id="output-not-json-serialisable",
        ),
        pytest.param(
            ExampleRecord(input=level_inputs(1), output=level_json(1), split=None),  # type: ignore[arg-type]
            id="split-violates-not-null",
        ),
    ],
)
def test_a_failure_after_the_call_row_leaves_nothing_behind(
    store: Store, broken_example: ExampleRecord
) -> None:
    """The example is written last; when it fails, the call and its attempts roll back."""
    store.ensure_task(TaskInfo.of(create_next_level))
    record = CallRecord(
        task="create_next_level",
        input=level_inputs(1),
        output=level_json(1),
        source="teacher",
        version=None,
        model="oracle:create_next_level",
        valid=True,
        reason=None,
        fallback=False,
        latency_ms=2.0,
        attempts=[attempt(0), attempt(1)],
        example=broken_example,
    )
    with pytest.raises(StoreError, match="cannot log call of task 'create_next_level'"):
        store.record_call(record)
    assert count_rows(store, "calls") == 0
    assert count_rows(store, "attempts") == 0
    assert count_rows(store, "examples") == 0
    assert store.recent_calls() == []


# --- examples: de-duplication -----------------------------------------------------------------


def test_exact_duplicate_examples_are_skipped_and_counted(store: Store) -> None:
    store.ensure_task(TaskInfo.of(create_next_level))
    examples = [
        ExampleRecord(input=level_inputs(d), output=level_json(d), split="train", origin="import")
        for d in (1, 2, 3)
    ]
    first = store.add_examples("create_next_level", examples)
    assert (first.added, first.duplicates) == (3, 0)

    again = store.add_examples("create_next_level", examples)
    assert (again.added, again.duplicates) == (0, 3)
    assert len(list(store.iter_examples("create_next_level"))) == 3


def test_duplicates_are_recognised_whatever_the_key_order(store: Store) -> None:
    store.ensure_task(TaskInfo.of(create_next_level))
    output = level_json(1)
    reordered = dict(reversed(list(output.items())))
    store.add_examples(
        "create_next_level", [ExampleRecord(input=level_inputs(1), output=output, split="train")]
    )
    result = store.add_examples(
        "create_next_level",
        [
            ExampleRecord(
                input={"difficulty": 1, "last_levels": []}, output=reordered, split="train"
            )
        ],
    )
    assert (result.added, result.duplicates) == (0, 1)


def test_the_same_input_with_a_different_output_is_a_new_example(store: Store) -> None:
    store.ensure_task(TaskInfo.of(create_next_level))
    output = level_json(1)
    other_output = {**output, "time": output["time"] + 50}
    store.add_examples(
        "create_next_level", [ExampleRecord(input=level_inputs(1), output=output, split="train")]
    )
    result = store.add_examples(
        "create_next_level",
        [ExampleRecord(input=level_inputs(1), output=other_output, split="train")],
    )
    assert (result.added, result.duplicates) == (1, 0)
    outputs = [e["output"] for e in store.iter_examples("create_next_level")]
    assert outputs == [output, other_output]


def test_the_same_example_under_another_task_is_not_a_duplicate(store: Store) -> None:
    store.ensure_task_name("task_a")
    store.ensure_task_name("task_b")
    example = ExampleRecord(input={"x": 1}, output="one", split="train")
    assert store.add_examples("task_a", [example]).added == 1
    assert store.add_examples("task_b", [example]).added == 1


# --- task_stats -------------------------------------------------------------------------------


def test_task_stats_count_calls_by_their_final_source(
    runtime_with_student: Jarvis, student: ScriptedStudent, store: Store
) -> None:
    """One call counts once however many attempts it took; its source is who answered last."""
    good = render_answer(create_next_level, oracle_level([], 1, random.Random(0)))
    bad = '{"name": 1}'
    student.answers = [
        good,  # call 1: the student answers at once
        bad,
        good,  # call 2: the student answers on its retry
        bad,
        bad,
        bad,  # call 3: the student fails 3 times, the teacher takes over
    ]  # call 4 (a map): the last answer repeats, bad again
    first = runtime_with_student.call("create_next_level", level_inputs(1))
    second = runtime_with_student.call("create_next_level", level_inputs(1))
    third = runtime_with_student.call("create_next_level", level_inputs(2))
    assert [r.source for r in (first, second, third)] == ["student", "student", "teacher"]
    assert [len(r.attempts) for r in (first, second, third)] == [1, 2, 4]

    # The oracle cannot build a map for a level that breaks the rules: the teacher fails,
    # and the call is logged as invalid before the error is raised.
    unplayable = Level(name=1, difficulty=1, time=300, width=2, height=2, num_wall=0, num_enemies=1)
    with pytest.raises(TeacherError):
        runtime_with_student.call("create_next_map", {"level": unplayable})

    stats = {s.name: s for s in store.task_stats()}
    level_stats = stats["create_next_level"]
    assert (level_stats.calls, level_stats.teacher_calls, level_stats.student_calls) == (3, 1, 2)
    assert (level_stats.fallbacks, level_stats.invalid_calls) == (1, 0)
    # Only the teacher's answer became a training example, on the split its input decides.
    expected_split = split_for("create_next_level", level_inputs(2), 0.15)
    assert (level_stats.examples_train, level_stats.examples_heldout) == (
        (1, 0) if expected_split == "train" else (0, 1)
    )

    map_stats = stats["create_next_map"]
    assert (map_stats.calls, map_stats.teacher_calls, map_stats.student_calls) == (1, 1, 0)
    assert (map_stats.fallbacks, map_stats.invalid_calls) == (1, 1)
    assert (map_stats.examples_train, map_stats.examples_heldout) == (0, 0)
    assert map_stats.active_version is None  # the store's column; the student is separate


def test_task_stats_count_examples_per_split(store: Store) -> None:
    store.ensure_task(TaskInfo.of(create_next_level))
    store.ensure_task(TaskInfo.of(create_next_map))
    store.add_examples(
        "create_next_level",
        [
            ExampleRecord(input=level_inputs(1), output=level_json(1), split="train"),
            ExampleRecord(input=level_inputs(2), output=level_json(2), split="train"),
            ExampleRecord(input=level_inputs(3), output=level_json(3), split="heldout"),
        ],
    )
    stats = {s.name: s.as_dict() for s in store.task_stats()}
    assert stats["create_next_level"]["examples_train"] == 2
    assert stats["create_next_level"]["examples_heldout"] == 1
    assert stats["create_next_level"]["calls"] == 0
    assert stats["create_next_map"] == {
        "name": "create_next_map",
        "calls": 0,
        "teacher_calls": 0,
        "student_calls": 0,
        "fallbacks": 0,
        "escalations": 0,
        "invalid_calls": 0,
        "examples_train": 0,
        "examples_heldout": 0,
        "threshold": None,
        "active_version": None,
    }


def test_task_stats_of_calls_made_through_the_runtime(runtime: Jarvis, store: Store) -> None:
    for difficulty in (1, 2, 3):
        runtime.call("create_next_level", level_inputs(difficulty))
    [level_stats] = [s for s in store.task_stats() if s.name == "create_next_level"]
    assert (level_stats.calls, level_stats.teacher_calls, level_stats.student_calls) == (3, 3, 0)
    assert level_stats.examples_train + level_stats.examples_heldout == 3


# --- unusable URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////nonexistent-dir/x/y.db", "unable to open database file"),
        ("nosuchdb://x", "nosuchdb"),
        ("this is not a url", "unparseable database URL"),
    ],
)
def test_an_unusable_url_gives_a_clear_store_error(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match=r"cannot (open|migrate) store") as info:
        Store(url)
    assert expected in str(info.value)


def test_a_database_password_is_never_printed() -> None:
    url = "postgresql://bob:s3cr3t-pw@localhost:1/jarvis"
    assert _redact(url) == "postgresql://bob:***@localhost:1/jarvis"
    # Whether or not a PostgreSQL driver is installed, opening this URL fails (nothing listens
    # on port 1), and the message must name the server without the password.
    with pytest.raises(StoreError) as info:
        Store(url)
    assert "s3cr3t-pw" not in str(info.value)
    assert "bob:***@localhost" in str(info.value)


@pytest.mark.sqlite_only  # the URL of a SQLite file: the test needs no other database
def test_a_runtime_with_a_database_url_uses_it(tmp_path: Path, home: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    rt = Jarvis(Settings(home=home, database_url=url, teacher_seed=1))
    try:
        rt.call("create_next_level", level_inputs(1))
        assert rt.store.url == url
        assert (tmp_path / "elsewhere.db").exists()
        assert not (home / "jarvis.db").exists()
    finally:
        rt.close()
