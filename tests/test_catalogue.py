"""The task catalogue: tasks by name, declared in code or rebuilt from what the store knows."""

from __future__ import annotations

import pytest

import jarvis
from helpers.tiny import next_room
from jarvis import ConfigError, Store
from jarvis.catalogue import TaskCatalogue
from jarvis.core.schema_tasks import SchemaTask
from jarvis.store import TaskInfo


def test_a_module_s_tasks_are_registered_by_name(store: Store) -> None:
    catalogue = TaskCatalogue(store)
    found = catalogue.load_module("helpers.tiny")
    assert "next_room" in {t.name for t in found}
    assert catalogue.get("next_room") is next_room


def test_the_entry_points_bring_the_rpg_tasks(store: Store) -> None:
    catalogue = TaskCatalogue(store)
    catalogue.load_plugins()
    assert {"create_next_level", "create_next_map"} <= set(catalogue.tasks)


def test_two_different_tasks_cannot_share_a_name(store: Store) -> None:
    catalogue = TaskCatalogue(store)
    catalogue.register(next_room)

    @jarvis.task(name="next_room")
    def impostor(x: int) -> int:
        """Not the same task."""

    with pytest.raises(ConfigError, match="two different tasks"):
        catalogue.register(impostor)


def test_a_task_known_only_by_its_schema_is_rebuilt_from_the_store(store: Store) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    store.ensure_task(
        TaskInfo(
            name="prog.count",
            instructions="Count.",
            output_schema=schema,
            params=["text"],
            origin="schema",
        )
    )
    catalogue = TaskCatalogue(store)
    task = catalogue.get("prog.count")
    assert isinstance(task, SchemaTask)
    assert task.output_schema == schema and task.param_names == ["text"]
    assert catalogue.declared("prog.count") is task  # registered once rebuilt


def test_an_unknown_task_names_the_known_ones_and_the_fix(store: Store) -> None:
    catalogue = TaskCatalogue(store)
    catalogue.register(next_room)
    with pytest.raises(ConfigError, match=r"unknown task 'nope' \(known: next_room\).*MODULES"):
        catalogue.get("nope")
