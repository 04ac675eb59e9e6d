"""The JARVIS runtime: settings, store, teachers, student and router, wired together.

A program normally uses the default runtime, built lazily from the environment the first
time a task is called. Tests and servers build their own and install it with :func:`using`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from jarvis.backends import StudentBackend
from jarvis.config import Settings
from jarvis.errors import ConfigError
from jarvis.router import CallResult, Router, task_info
from jarvis.shadow import ShadowChecker
from jarvis.store import Store
from jarvis.tasks import Task
from jarvis.teachers import TeacherResolver

TASKS_ENTRY_POINT = "jarvis.tasks"


def tasks_in_module(module: ModuleType) -> list[Task[Any]]:
    return [value for value in vars(module).values() if isinstance(value, Task)]


class Jarvis:
    """One configured JARVIS: call tasks through it, inspect it through its store."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        student: StudentBackend | None = None,
        load_plugins: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        if store is None:
            if self.settings.database_url is None:
                self.settings.ensure_home()
            store = Store(self.settings.resolved_database_url)
        self.store = store
        self.teachers = TeacherResolver(self.settings)
        s = self.settings
        if student is None and s.student == "local":
            from jarvis.training.student import LocalStudent

            student = LocalStudent(s, store)
        elif student is None and s.student == "remote":
            from jarvis.serving.remote import RemoteStudent

            student = RemoteStudent(s, store)
        self.router = Router(
            store,
            self.teachers.for_task,
            student=student,
            student_retries=s.student_retries,
            teacher_attempts=s.teacher_attempts,
            max_tokens=s.max_tokens,
            default_heldout_share=s.heldout_share,
            recurring_to_train=s.recurring_to_train,
            shadow=ShadowChecker(s),
        )
        self.tasks: dict[str, Task[Any]] = {}
        if load_plugins:
            self._load_plugins()

    # -- tasks ------------------------------------------------------------------------------

    def _load_plugins(self) -> None:
        for ep in entry_points(group=TASKS_ENTRY_POINT):
            self.load_module(ep.value)
        for name in self.settings.task_modules:
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

    def task(self, name: str) -> Task[Any]:
        """A registered task, or one the store describes well enough to rebuild (a Jac
        program's ``by llm()`` function: its schema and parameters were logged with it)."""
        found = self.tasks.get(name)
        if found is not None:
            return found
        from jarvis.schema_tasks import from_store_row

        row = self.store.task_row(name)
        rebuilt = from_store_row(row) if row is not None else None
        if rebuilt is not None:
            return self.register(rebuilt)
        known = ", ".join(sorted(self.tasks)) or "none"
        raise ConfigError(
            f"unknown task {name!r} (known: {known}); load its module with JARVIS_TASK_MODULES"
        )

    # -- calling ----------------------------------------------------------------------------

    def call(
        self,
        task: Task[Any] | str,
        inputs: Mapping[str, Any],
        *,
        raise_on_invalid: bool = True,
    ) -> CallResult:
        """Run one call through the router. ``inputs`` may be Python objects or JSON data."""
        t = self.task(task) if isinstance(task, str) else self.register(task)
        return self.router.call(t, t.load_inputs(inputs), raise_on_invalid=raise_on_invalid)

    def sync_tasks(self) -> None:
        """Record every registered task in the store (so status lists tasks never called)."""
        for t in self.tasks.values():
            self.store.ensure_task(task_info(t))

    def close(self) -> None:
        self.store.close()


_default: Jarvis | None = None
_default_lock = threading.Lock()


def get_default() -> Jarvis:
    """The runtime tasks use when called directly; built from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Jarvis()
        return _default


def set_default(runtime: Jarvis | None) -> Jarvis | None:
    """Install ``runtime`` as the default; return the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, runtime
        return previous


@contextmanager
def using(runtime: Jarvis) -> Iterator[Jarvis]:
    """Route direct task calls through ``runtime`` inside the block."""
    previous = set_default(runtime)
    try:
        yield runtime
    finally:
        set_default(previous)
