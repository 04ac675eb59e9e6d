"""Which teacher answers a task: the configured LLM endpoint, or the task's oracle."""

from __future__ import annotations

from typing import Any

from jarvis.core.backends import Backend
from jarvis.core.errors import ConfigError, TeacherError
from jarvis.core.tasks import Task
from jarvis.runtime.settings import Settings
from jarvis.teachers.openai_compat import OpenAITeacher
from jarvis.teachers.oracle import OracleTeacher


class TeacherResolver:
    """Picks a teacher per task from the settings; one client per kind, built lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._openai: OpenAITeacher | None = None
        self._oracle = OracleTeacher(seed=settings.teacher_seed)

    def _llm(self) -> OpenAITeacher:
        if self._openai is None:
            s = self.settings
            key = s.teacher_api_key.get_secret_value() if s.teacher_api_key else None
            self._openai = OpenAITeacher(
                base_url=s.teacher_base_url,
                model=s.teacher_model,
                api_key=key,
                timeout_s=s.teacher_timeout_s,
                max_retries=s.teacher_max_retries,
                response_format=s.teacher_response_format,
            )
        return self._openai

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
        mode = self.settings.teacher
        if mode == "openai" or (mode == "auto" and self.settings.teacher_base_url):
            return self._llm().name
        if mode not in ("auto", "oracle", "openai"):
            raise ConfigError(f"unknown teacher mode {mode!r}")
        return "procedural oracle (offline)"
