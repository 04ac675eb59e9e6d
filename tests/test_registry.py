"""The model registry: version directories on disk, and which version is active in the store.

Versions are written into a hidden staging directory and renamed into place in one step, and
never overwritten. Which version is active lives in the store, changed in one transaction, so
a crash at any point leaves exactly one active version or none. Everything here runs against a
real SQLite store in a temporary JARVIS_HOME; the "adapter" is a small fake file, because the
registry only checks that it is there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jarvis import Settings, Store
from jarvis.core.errors import ConfigError, StoreError, TaskError
from jarvis.registry import (
    ADAPTER,
    CARD,
    Registry,
    adapter_path,
    publish,
    read_card,
    staging_dir,
    version_dir,
)
from jarvis.store.versions import check_version_name

TASK = "create_next_level"


# -- helpers ----------------------------------------------------------------------------------


def write_fake_adapter(directory: Path) -> None:
    """What ``save_pretrained`` leaves behind, as far as the registry cares."""
    (directory / ADAPTER).mkdir(parents=True, exist_ok=True)
    (directory / ADAPTER / "adapter_config.json").write_text('{"r": 4}')


def build_version(store: Store, models_dir: Path, task: str = TASK) -> str:
    """Allocate, stage and publish a version with an adapter; leave it a ``candidate``."""
    name = store.versions.allocate(task)
    staging = staging_dir(models_dir, task, name)
    write_fake_adapter(staging)
    publish(staging, models_dir, task, name, {"version": name})
    store.versions.set_status(task, name, "candidate")
    return name


def statuses(store: Store, task: str = TASK) -> dict[str, str]:
    return {row["name"]: row["status"] for row in store.versions.of_task(task)}


def active_names(store: Store, task: str = TASK) -> list[str]:
    return [name for name, status in statuses(store, task).items() if status == "active"]


def events(store: Store, kind: str | None = None) -> list[dict[str, Any]]:
    query = "SELECT kind, task, message, data_json FROM events ORDER BY id"
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.exec_driver_sql(query)]
    for row in rows:
        row["data"] = json.loads(row.pop("data_json"))
    return [r for r in rows if kind is None or r["kind"] == kind]


@pytest.fixture
def models_dir(settings: Settings) -> Path:
    return settings.models_dir


@pytest.fixture
def registry(store: Store, models_dir: Path) -> Registry:
    store.ensure_task_name(TASK)  # versions belong to a task row (foreign key)
    return Registry(store, models_dir)


# -- version directories ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "version"),
    [
        ("../x", "v0001"),
        ("..", "v0001"),
        ("/etc", "v0001"),
        ("a/../../b", "v0001"),
        (TASK, "../x"),
        (TASK, "v0001/../../etc"),
        (TASK, ".."),
        (TASK, "/etc/passwd"),
        (TASK, "v1"),
        (TASK, "latest"),
        (TASK, ""),
        (TASK, "v0001\n"),
    ],
)
def test_version_dir_refuses_names_that_are_not_plain_directory_names(
    tmp_path: Path, task: str, version: str
) -> None:
    with pytest.raises((ConfigError, TaskError)):
        version_dir(tmp_path / "models", task, version)


def test_version_dir_is_the_task_and_version_under_the_models_directory(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert version_dir(models, TASK, "v0001") == (models / TASK / "v0001").resolve()
    assert check_version_name("v0042") == "v0042"


def test_staged_version_is_published_under_its_name_with_its_card(models_dir: Path) -> None:
    staging = staging_dir(models_dir, TASK, "v0001")
    assert staging.parent == (models_dir / TASK).resolve()
    assert staging.name.startswith(".v0001-"), "staging is hidden from listings"
    write_fake_adapter(staging)

    target = publish(staging, models_dir, TASK, "v0001", {"version": "v0001", "steps": 3})

    assert target == (models_dir / TASK / "v0001").resolve()
    assert (target / ADAPTER / "adapter_config.json").read_text() == '{"r": 4}'
    assert json.loads((target / CARD).read_text()) == {"version": "v0001", "steps": 3}
    assert read_card(models_dir, TASK, "v0001")["steps"] == 3
    assert adapter_path(models_dir, TASK, "v0001") == target / ADAPTER
    assert not staging.exists()
    assert [p.name for p in (models_dir / TASK).iterdir()] == ["v0001"], "no leftovers"


def test_publishing_a_version_without_an_adapter_fails_and_writes_nothing(
    models_dir: Path,
) -> None:
    staging = staging_dir(models_dir, TASK, "v0001")
    (staging / "notes.txt").write_text("training died before saving the adapter")

    with pytest.raises(ConfigError, match="no adapter"):
        publish(staging, models_dir, TASK, "v0001", {})

    assert not (models_dir / TASK / "v0001").exists()


def test_publishing_onto_an_existing_version_fails_and_overwrites_nothing(
    models_dir: Path,
) -> None:
    first = staging_dir(models_dir, TASK, "v0001")
    write_fake_adapter(first)
    publish(first, models_dir, TASK, "v0001", {"which": "first"})
    second = staging_dir(models_dir, TASK, "v0001")
    write_fake_adapter(second)
    (second / ADAPTER / "adapter_config.json").write_text('{"r": 99}')

    with pytest.raises(ConfigError, match="already exists"):
        publish(second, models_dir, TASK, "v0001", {"which": "second"})

    assert read_card(models_dir, TASK, "v0001") == {"which": "first"}
    adapter = adapter_path(models_dir, TASK, "v0001") / "adapter_config.json"
    assert adapter.read_text() == '{"r": 4}'


def test_a_version_without_an_adapter_on_disk_has_no_adapter_path(models_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no adapter"):
        adapter_path(models_dir, TASK, "v0001")
    with pytest.raises(ConfigError, match="cannot read the card"):
        read_card(models_dir, TASK, "v0001")


# -- versions in the store --------------------------------------------------------------------


def test_version_names_are_allocated_in_order_per_task(store: Store) -> None:
    store.ensure_task_name(TASK)
    store.ensure_task_name("other")

    assert [store.versions.allocate(TASK) for _ in range(3)] == ["v0001", "v0002", "v0003"]
    assert store.versions.allocate("other") == "v0001"
    assert statuses(store) == {"v0001": "building", "v0002": "building", "v0003": "building"}


def test_set_status_stores_the_card_with_the_version(store: Store) -> None:
    store.ensure_task_name(TASK)
    name = store.versions.allocate(TASK)

    store.versions.set_status(TASK, name, "candidate", {"gate": {"semantic_pass": 0.95}})

    row = store.versions.get(TASK, name)
    assert row is not None
    assert row["status"] == "candidate"
    assert row["card"] == {"gate": {"semantic_pass": 0.95}}
    assert store.versions.get(TASK, "v0099") is None


def test_promote_refuses_a_version_the_store_does_not_know(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    staging = staging_dir(models_dir, TASK, "v0001")  # on disk, but never allocated
    write_fake_adapter(staging)
    publish(staging, models_dir, TASK, "v0001", {})

    with pytest.raises(ConfigError, match="no version"):
        registry.promote(TASK, "v0001")
    assert registry.active(TASK) is None


def test_promote_refuses_a_version_that_is_still_building(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    name = store.versions.allocate(TASK)
    staging = staging_dir(models_dir, TASK, name)
    write_fake_adapter(staging)
    publish(staging, models_dir, TASK, name, {})  # on disk, but its run has not finished

    with pytest.raises(ConfigError, match="building"):
        registry.promote(TASK, name)
    assert registry.active(TASK) is None
    assert statuses(store) == {name: "building"}


def test_promote_refuses_a_version_without_an_adapter_on_disk(
    registry: Registry, store: Store
) -> None:
    name = store.versions.allocate(TASK)
    store.versions.set_status(TASK, name, "candidate")

    with pytest.raises(ConfigError, match="no adapter"):
        registry.promote(TASK, name)
    assert registry.active(TASK) is None
    assert statuses(store) == {name: "candidate"}


def test_promote_makes_exactly_one_version_active_and_records_an_event(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    v1 = build_version(store, models_dir)
    v2 = build_version(store, models_dir)

    registry.promote(TASK, v1)

    assert registry.active(TASK) == v1 == store.versions.active(TASK)
    assert statuses(store) == {v1: "active", v2: "candidate"}
    assert [(e["task"], e["data"]) for e in events(store, "promoted")] == [(TASK, {"version": v1})]


def test_promoting_a_newer_version_retires_the_active_one(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    v1 = build_version(store, models_dir)
    v2 = build_version(store, models_dir)

    registry.promote(TASK, v1)
    registry.promote(TASK, v2)

    assert store.versions.active(TASK) == v2
    assert statuses(store) == {v1: "retired", v2: "active"}
    assert active_names(store) == [v2]


def test_promoting_the_active_version_again_keeps_it_the_only_active_one(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    v1 = build_version(store, models_dir)
    registry.promote(TASK, v1)
    registry.promote(TASK, v1)

    assert store.versions.active(TASK) == v1
    assert active_names(store) == [v1]


def test_rollback_restores_the_previous_version_then_the_teacher(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    v1 = build_version(store, models_dir)
    v2 = build_version(store, models_dir)
    registry.promote(TASK, v1)
    registry.promote(TASK, v2)

    assert registry.rollback(TASK) == v1
    assert store.versions.active(TASK) == v1
    assert statuses(store) == {v1: "active", v2: "rolled_back"}

    assert registry.rollback(TASK) is None, "nothing left: the teacher answers again"
    assert store.versions.active(TASK) is None
    assert active_names(store) == []
    assert statuses(store) == {v1: "rolled_back", v2: "rolled_back"}

    rolled = events(store, "rolled_back")
    assert [e["data"] for e in rolled] == [{"version": v1}, {"version": None}]
    assert "the teacher" in rolled[-1]["message"]


def test_rollback_after_a_rollback_and_a_new_promotion_returns_to_the_last_one_served(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    v1, v2, v3 = (build_version(store, models_dir) for _ in range(3))
    registry.promote(TASK, v1)
    registry.promote(TASK, v2)
    registry.rollback(TASK)  # back to v1
    registry.promote(TASK, v3)

    assert registry.rollback(TASK) == v1, "v1 served just before v3; v2 was rolled back"
    assert statuses(store) == {v1: "active", v2: "rolled_back", v3: "rolled_back"}


def test_rollback_with_no_active_version_is_an_error(registry: Registry, store: Store) -> None:
    with pytest.raises(ConfigError, match="no active version"):
        registry.rollback(TASK)
    assert events(store, "rolled_back") == []


class SimulatedCrash(Exception):
    """Stands for the process dying between two statements of a transaction."""


class CrashOnTasksUpdate:
    """Once armed, make every ``UPDATE tasks`` statement (the last step of a promotion) blow up.

    ``statements`` records what ran while armed, so a test can check the crash really came
    after the ``versions`` rows had already been changed inside the same transaction.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.armed = False

    def arm(self) -> None:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        self.armed = True

    def disarm(self) -> None:
        if self.armed:
            sa.event.remove(self.engine, "before_cursor_execute", self._before)
            self.armed = False

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)
        if statement.lstrip().upper().startswith("UPDATE TASKS"):
            raise SimulatedCrash(statement)


@pytest.fixture
def crash_on_tasks_update(store: Store) -> Iterator[CrashOnTasksUpdate]:
    crash = CrashOnTasksUpdate(store.engine)
    yield crash
    crash.disarm()


def test_a_crash_in_the_middle_of_a_promotion_leaves_the_old_version_the_only_active_one(
    registry: Registry, store: Store, models_dir: Path, crash_on_tasks_update: CrashOnTasksUpdate
) -> None:
    v1 = build_version(store, models_dir)
    v2 = build_version(store, models_dir)
    registry.promote(TASK, v1)
    crash_on_tasks_update.arm()

    with pytest.raises(SimulatedCrash):
        store.versions.promote(TASK, v2)
    crash_on_tasks_update.disarm()

    ran = crash_on_tasks_update.statements
    updates = [s for s in ran if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 4, "the crash came after the versions rows were updated"
    assert store.versions.active(TASK) == v1
    assert statuses(store) == {v1: "active", v2: "candidate"}


def test_a_database_error_during_a_promotion_is_a_store_error_and_changes_nothing(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    v1 = build_version(store, models_dir)
    v2 = build_version(store, models_dir)
    registry.promote(TASK, v1)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE TASKS"):
            raise sa.exc.OperationalError(statement, None, Exception("disk I/O error"))

    sa.event.listen(store.engine, "before_cursor_execute", before)
    try:
        with pytest.raises(StoreError, match="cannot promote"):
            registry.promote(TASK, v2)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", before)

    assert store.versions.active(TASK) == v1
    assert active_names(store) == [v1]
    assert [e["data"]["version"] for e in events(store, "promoted")] == [v1]


def test_fail_if_building_fails_only_a_half_built_version(
    registry: Registry, store: Store, models_dir: Path
) -> None:
    v1 = build_version(store, models_dir)
    registry.promote(TASK, v1)
    v2 = store.versions.allocate(TASK)

    assert store.versions.fail_if_building(TASK, v2) is True
    assert store.versions.fail_if_building(TASK, v2) is False, "already failed"
    assert store.versions.fail_if_building(TASK, v1) is False, "an active version stays"
    assert statuses(store) == {v1: "active", v2: "failed"}
    with pytest.raises(ConfigError, match="failed"):
        store.versions.promote(TASK, v2)


# -- canary releases --------------------------------------------------------------------------


def test_the_first_version_released_is_promoted_at_once(registry: Registry, store: Store) -> None:
    v1 = build_version(store, registry.models_dir)
    assert registry.release(TASK, v1, 0.2) == "promoted"
    assert registry.active(TASK) == v1 and store.versions.canary(TASK) is None


def test_a_canary_serves_its_share_of_the_calls_and_the_active_version_the_rest(
    registry: Registry, store: Store
) -> None:
    v1 = build_version(store, registry.models_dir)
    registry.promote(TASK, v1)
    v2 = build_version(store, registry.models_dir)

    assert registry.release(TASK, v2, 0.25) == "canary"

    assert registry.active(TASK) == v1
    assert statuses(store) == {v1: "active", v2: "canary"}
    draws = [i / 100 for i in range(100)]
    served = [registry.serving_version(TASK, d) for d in draws]
    assert served.count(v2) == 25 and served.count(v1) == 75
    assert events(store, "canary")[0]["data"] == {"version": v2, "share": 0.25}


def test_a_canary_ramps_by_doubling_and_is_promoted_at_a_full_share(
    registry: Registry, store: Store
) -> None:
    v1 = build_version(store, registry.models_dir)
    registry.promote(TASK, v1)
    v2 = build_version(store, registry.models_dir)
    registry.release(TASK, v2, 0.25)

    registry.ramp(TASK, "agrees")
    canary = store.versions.canary(TASK)
    assert canary is not None and canary["share"] == 0.5
    registry.ramp(TASK, "agrees")

    assert registry.active(TASK) == v2 and store.versions.canary(TASK) is None
    assert statuses(store) == {v1: "retired", v2: "active"}
    assert [e["kind"] for e in events(store)][-3:] == ["canary", "canary_ramped", "promoted"]
    assert registry.rollback(TASK) == v1  # the canary's predecessor is one rollback away


def test_a_rolled_back_canary_leaves_the_active_version_serving_everything(
    registry: Registry, store: Store
) -> None:
    v1 = build_version(store, registry.models_dir)
    registry.promote(TASK, v1)
    v2 = build_version(store, registry.models_dir)
    registry.release(TASK, v2, 0.5)

    assert registry.abort_canary(TASK, "disagrees") == v2

    assert statuses(store) == {v1: "active", v2: "rolled_back"}
    assert {registry.serving_version(TASK, d / 10) for d in range(10)} == {v1}
    assert "disagrees" in events(store, "canary_rolled_back")[0]["message"]


# -- migrations -------------------------------------------------------------------------------


def applied_migrations(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name FROM schema_migrations ORDER BY name")
        return [r[0] for r in rows]


def columns(store: Store, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(store.engine).get_columns(table)}


ALL_MIGRATIONS = [
    "m001_initial",
    "m002_training_bookkeeping",
    "m003_task_origin",
    "m004_shadows",
    "m005_examples_seen",
    "m006_agreement",
]


def test_a_new_store_records_the_training_migration_and_migrating_again_does_nothing(
    store: Store,
) -> None:
    assert applied_migrations(store) == ALL_MIGRATIONS
    assert store.migrate() == []
    assert applied_migrations(store) == ALL_MIGRATIONS


def test_a_store_from_before_the_training_migration_gains_its_columns(
    settings: Settings,
) -> None:
    settings.ensure_home()
    url = settings.resolved_database_url
    old = Store(url)
    with old.engine.begin() as conn:  # turn it back into a store that only had m001
        conn.exec_driver_sql("ALTER TABLE versions DROP COLUMN promoted_at")
        conn.exec_driver_sql("ALTER TABLE training_runs DROP COLUMN pid")
        conn.exec_driver_sql("ALTER TABLE training_runs DROP COLUMN reason")
        conn.exec_driver_sql("ALTER TABLE tasks DROP COLUMN origin")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN escalated")
        conn.exec_driver_sql("ALTER TABLE tasks DROP COLUMN canary_share")
        conn.exec_driver_sql("DROP TABLE feedback")
        conn.exec_driver_sql("DELETE FROM schema_migrations WHERE name != 'm001_initial'")
    assert "promoted_at" not in columns(old, "versions")
    old.close()

    upgraded = Store(url)
    try:
        assert applied_migrations(upgraded) == ALL_MIGRATIONS
        assert {"promoted_at"} <= columns(upgraded, "versions")
        assert {"origin"} <= columns(upgraded, "tasks")
        assert {"pid", "reason"} <= columns(upgraded, "training_runs")
        assert {"escalated", "confidence"} <= columns(upgraded, "calls")
        assert {"canary_version", "canary_share", "canary_since"} <= columns(upgraded, "tasks")
        assert "score" in columns(upgraded, "feedback")
        assert upgraded.migrate() == []
    finally:
        upgraded.close()
