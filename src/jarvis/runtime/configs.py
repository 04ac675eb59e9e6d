"""The settings, cut into the small configs each layer takes.

Only the runtime (and the apps) see :class:`~jarvis.runtime.settings.Settings`; every layer
below gets the handful of values it uses, built here.
"""

from __future__ import annotations

from typing import Any

from jarvis.catalogue import TaskCatalogue
from jarvis.core.errors import ConfigError
from jarvis.core.task_settings import TaskSettings, TaskSettingsFor
from jarvis.core.tasks import Task
from jarvis.models.base import BaseSpec
from jarvis.routing.router import RouterConfig
from jarvis.runtime.settings import Settings
from jarvis.serving.engine import EngineConfig
from jarvis.serving.remote import RemoteStudentConfig
from jarvis.training.job import JobConfig
from jarvis.training.worker import JobLauncher, WorkerConfig

__all__ = [
    "JOB_MODULE",
    "base_spec",
    "engine_config",
    "job_config",
    "remote_student_config",
    "router_config",
    "task_settings_for",
    "worker_config",
]

JOB_MODULE = "jarvis.runtime.job"
"""The module a training run's process runs (``python -m jarvis.runtime.job RUN``)."""


def task_settings_for(s: Settings, catalogue: TaskCatalogue) -> TaskSettingsFor:
    """Each task's settings, with what the task declared (looked up in ``catalogue``)."""

    def settings_of(name: str) -> TaskSettings:
        try:
            declared: Task[Any] | None = catalogue.get(name)
        except ConfigError:
            declared = None
        return s.for_task(name, declared)

    return settings_of


def base_spec(s: Settings) -> BaseSpec:
    return BaseSpec(s.base_model, s.home)


def engine_config(s: Settings) -> EngineConfig:
    return EngineConfig(
        base=base_spec(s),
        backend=s.engine,
        threads=s.train_threads,
        constrained=s.constrained,
        steering=s.steering,
        batch_size=s.batch_size,
        slot_tokens=s.slot_tokens,
    )


def router_config(s: Settings) -> RouterConfig:
    return RouterConfig(
        student_retries=s.student_retries,
        teacher_attempts=s.teacher_attempts,
        max_tokens=s.max_tokens,
    )


def remote_student_config(s: Settings) -> RemoteStudentConfig:
    key = s.student_api_key.get_secret_value() if s.student_api_key else None
    return RemoteStudentConfig(
        base_url=s.student_base_url, api_key=key, model=s.student_model, max_tokens=s.max_tokens
    )


def job_config(s: Settings, task_settings: TaskSettingsFor) -> JobConfig:
    return JobConfig(models_dir=s.models_dir, engine=engine_config(s), task_settings=task_settings)


def worker_config(s: Settings, task_settings: TaskSettingsFor) -> WorkerConfig:
    # The job gets exactly these settings (minus the secret it does not need).
    job_settings = s.model_dump(mode="json", exclude={"teacher_api_key"})
    return WorkerConfig(
        task_settings=task_settings,
        launcher=JobLauncher(JOB_MODULE, job_settings),
        poll_s=s.worker_poll_s,
    )
