"""Which teacher answers a task: the configured LLM endpoint, or the task's oracle.

What the endpoint turned out to accept (its schema form, whether its chat template keeps the
system message) is recorded in the store as a ``teacher_protocol`` event, so the next process
starts from it instead of probing again, and ``jarvis tasks`` shows it.
"""

from __future__ import annotations

from typing import Any

from jarvis.core.backends import Backend
from jarvis.core.errors import ConfigError, TeacherError
from jarvis.core.tasks import Task
from jarvis.runtime.settings import Settings
from jarvis.store import Store
from jarvis.teachers.openai_compat import Decision, OpenAITeacher
from jarvis.teachers.oracle import OracleTeacher

PROTOCOL_EVENT = "teacher_protocol"


class TeacherResolver:
    """Picks a teacher per task from the settings; one client per kind, built lazily."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store
        self._openai: OpenAITeacher | None = None
        self._oracle = OracleTeacher(seed=settings.teacher_seed)

    def _llm(self) -> OpenAITeacher:
        if self._openai is None:
            s = self.settings
            key = s.teacher_api_key.get_secret_value() if s.teacher_api_key else None
            teacher = OpenAITeacher(
                base_url=s.teacher_base_url,
                model=s.teacher_model,
                api_key=key,
                timeout_s=s.teacher_timeout_s,
                max_retries=s.teacher_max_retries,
                response_format=s.teacher_response_format,
                instructions=s.teacher_instructions,
                known=self._recalled(
                    OpenAITeacher.endpoint_name(s.teacher_base_url, s.teacher_model)
                ),
                on_decision=self._record if self.store is not None else None,
            )
            self._openai = teacher
        return self._openai

    def _recalled(self, endpoint: str) -> Decision | None:
        if self.store is None:
            return None
        return self.store.insights.last_event_data(PROTOCOL_EVENT, endpoint=endpoint)

    def _record(self, decision: Decision) -> None:
        assert self.store is not None
        message = f"{decision['endpoint']}: {decision['reason']}"
        self.store.add_event(PROTOCOL_EVENT, message, **decision)

    def for_task(self, task: Task[Any]) -> Backend:
        mode = self.settings.teacher
        if mode == "openai" or (mode == "auto" and self.settings.teacher_base_url):
            return self._llm()
        if mode == "oracle" or task.oracle_fn is not None:
            return self._oracle
        own: Backend | None = getattr(task, "teacher", None)
        if own is not None:  # the model the declaring program named (a Jac `by llm()`)
            return own
        raise TeacherError(
            f"no teacher for task {task.name!r}: it has no procedural oracle and "
            "JARVIS_TEACHER_BASE_URL is not set"
        )

    def describe(self) -> str:
        """The teacher in use; for an endpoint, how it is spoken to (probed or recorded)."""
        mode = self.settings.teacher
        if mode == "openai" or (mode == "auto" and self.settings.teacher_base_url):
            llm = self._llm()
            return f"{llm.name} ({llm.describe()})"
        if mode not in ("auto", "oracle", "openai"):
            raise ConfigError(f"unknown teacher mode {mode!r}")
        return "procedural oracle (offline)"
