"""The task catalogue: every task this process knows, by name.

Tasks come from three places: modules that declare them (the ``jarvis.tasks`` entry point
group, which is how the RPG's two tasks arrive, and ``JARVIS_TASK_MODULES``), programs that
register them as they call them, and the store, which describes a task known only by its JSON
schema (a Jac program's ``by llm()`` function) well enough to rebuild it. The runtime, the
worker and the training job all look tasks up here, so each of them can train and serve a task
that another process declared.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from jarvis.core.errors import ConfigError
from jarvis.core.schema_tasks import from_store_row
from jarvis.core.tasks import Task
from jarvis.store import Store, TaskInfo

__all__ = ["TASKS_ENTRY_POINT", "TaskCatalogue", "tasks_in_module"]

TASKS_ENTRY_POINT = "jarvis.tasks"


def tasks_in_module(module: ModuleType) -> list[Task[Any]]:
    return [value for value in vars(module).values() if isinstance(value, Task)]


class TaskCatalogue:
    """Tasks by name: the declared ones, plus those the store can rebuild."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tasks: dict[str, Task[Any]] = {}

    def load_plugins(self, modules: Iterable[str] = ()) -> None:
        """Register the tasks of every ``jarvis.tasks`` entry point, then of ``modules``."""
        for ep in entry_points(group=TASKS_ENTRY_POINT):
            self.load_module(ep.value)
        for name in modules:
            self.load_module(name)

    def load_module(self, module_name: str) -> list[Task[Any]]:
        """Import a module and register every Task it defines."""
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(f"cannot load task module {module_name!r}: {exc}") from exc
        found = tasks_in_module(module)
        for t in found:
            self.register(t)
        return found

    def register(self, task: Task[Any]) -> Task[Any]:
        existing = self.tasks.get(task.name)
        if existing is not None and existing is not task:
            raise ConfigError(f"two different tasks are named {task.name!r}")
        self.tasks[task.name] = task
        return task

    def declared(self, name: str) -> Task[Any] | None:
        """The registered task of that name, without looking in the store."""
        return self.tasks.get(name)

    def get(self, name: str) -> Task[Any]:
        """A registered task, or one the store describes well enough to rebuild (a Jac
        program's ``by llm()`` function: its schema and parameters were logged with it)."""
        found = self.tasks.get(name)
        if found is not None:
            return found
        row = self.store.task_row(name)
        rebuilt = from_store_row(row) if row is not None else None
        if rebuilt is not None:
            return self.register(rebuilt)
        known = ", ".join(sorted(self.tasks)) or "none"
        raise ConfigError(
            f"unknown task {name!r} (known: {known}); load its module with JARVIS_TASK_MODULES"
        )

    def sync(self) -> None:
        """Record every registered task in the store (so status lists tasks never called)."""
        for t in self.tasks.values():
            self.store.ensure_task(TaskInfo.of(t))

    def __iter__(self) -> Iterator[Task[Any]]:
        return iter(list(self.tasks.values()))
