"""The JARVIS runtime: settings, store, tasks, teachers, student and router, wired together.

This is the one place that picks concrete classes (which teacher, which student, which
engine) and turns the settings into the small configs the layers below take
(:mod:`.configs`). A program normally uses the default runtime, built lazily from the
environment the first time a task is called; tests and servers build their own and route
calls through it with :func:`jarvis.using` or :meth:`Jarvis.call`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from jarvis.catalogue import TaskCatalogue
from jarvis.core.backends import StudentBackend
from jarvis.core.events import Events
from jarvis.core.results import CallResult
from jarvis.core.tasks import Task
from jarvis.registry import Registry
from jarvis.routing.examples import Examples
from jarvis.routing.feedback import FeedbackResult, give_feedback
from jarvis.routing.router import Router
from jarvis.routing.shadow import ShadowChecker
from jarvis.runtime.configs import (
    base_spec,
    engine_config,
    remote_student_config,
    router_config,
    task_settings_for,
    worker_config,
)
from jarvis.runtime.settings import Settings
from jarvis.runtime.teachers import TeacherResolver
from jarvis.serving.engine import Engine
from jarvis.serving.local import LocalStudent
from jarvis.serving.remote import RemoteStudent
from jarvis.store import Store
from jarvis.training.worker import Worker

__all__ = ["Jarvis"]


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
        s = self.settings = settings or Settings()
        if store is None:
            if s.database_url is None:
                s.ensure_home()
            store = Store(s.resolved_database_url)
        self.store = store
        self.catalogue = TaskCatalogue(store)
        # the settings of one task, by name, what it declared included
        self.task_settings = task_settings_for(s, self.catalogue)
        self.registry = Registry(store, s.models_dir)
        self.base = base_spec(s)  # the student's base model
        self.teachers = TeacherResolver(s, store)
        self.engine: Engine | None = None  # the local student's, when it has one
        self.student = student if student is not None else self._student()
        self.events = Events()
        examples = Examples(self.task_settings)
        self.router = Router(
            store,
            self.teachers.for_task,
            student=self.student,
            config=router_config(s),
            examples=examples,
            events=self.events,
            threshold_for=self.registry.confidence_threshold if s.cascade else None,
        )
        self.shadow = ShadowChecker(
            store, self.teachers.for_task, examples=examples, task_settings=self.task_settings
        ).subscribe(self.events)
        if load_plugins:
            self.catalogue.load_plugins(s.task_modules)

    def _student(self) -> StudentBackend | None:
        s = self.settings
        if s.student == "local":
            self.engine = Engine(engine_config(s))
            return LocalStudent(self.registry, self.engine, max_tokens=s.max_tokens)
        if s.student == "remote":
            return RemoteStudent(remote_student_config(s), self.registry)
        return None

    # -- tasks ------------------------------------------------------------------------------

    @property
    def tasks(self) -> dict[str, Task[Any]]:
        """The registered tasks, by name."""
        return self.catalogue.tasks

    def load_module(self, module_name: str) -> list[Task[Any]]:
        """Import a module and register every Task it defines."""
        return self.catalogue.load_module(module_name)

    def register(self, task: Task[Any]) -> Task[Any]:
        return self.catalogue.register(task)

    def task(self, name: str) -> Task[Any]:
        """A registered task, or one the store can rebuild (see :class:`TaskCatalogue`)."""
        return self.catalogue.get(name)

    def sync_tasks(self) -> None:
        """Record every registered task in the store (so status lists tasks never called)."""
        self.catalogue.sync()

    def local_engine(self) -> Engine:
        """The serving engine of this process: the local student's, else one built for it
        (``jarvis eval``, the OpenAI routes' ``task@version`` models)."""
        if self.engine is None:
            self.engine = Engine(engine_config(self.settings))
        return self.engine

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

    def feedback(
        self,
        call_id: int,
        *,
        score: float | None = None,
        correction: Any = None,
        source: str = "api",
    ) -> FeedbackResult:
        """Feedback on a logged call: a score (0..1) and/or a corrected answer, which becomes
        a training example that outranks the teacher's (:mod:`jarvis.routing.feedback`)."""
        return give_feedback(
            self.store, self.task, call_id, score=score, correction=correction, source=source
        )

    def teacher_answer(self, task: Task[Any] | str, inputs: Mapping[str, Any]) -> Any:
        """What the teacher would answer (JSON form; None if it gave nothing valid), without
        logging it: the reference that agreement is measured against."""
        t = self.task(task) if isinstance(task, str) else self.register(task)
        return self.router.teacher_answer(t, t.load_inputs(inputs))

    # -- training ---------------------------------------------------------------------------

    def worker(self, *, watch: Collection[str] | None = None) -> Worker:
        """A training worker on this runtime's store and tasks (``watch``: only those)."""
        config = worker_config(self.settings, self.task_settings)
        return Worker(self.store, self.catalogue, self.registry, config, watch=watch)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()  # its batcher's thread and llama.cpp context
        self.store.close()
