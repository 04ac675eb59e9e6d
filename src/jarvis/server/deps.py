"""What the routes share: the runtime behind the app, the admission gate, task look-up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request

from jarvis.core.errors import ConfigError, TaskError
from jarvis.core.tasks import Task, check_task_name
from jarvis.runtime import Jarvis
from jarvis.server.errors import ApiError

__all__ = ["admitted", "find_task", "runtime"]


def runtime(request: Request) -> Jarvis:
    rt: Jarvis = request.app.state.rt
    return rt


def admitted(request: Request) -> Iterator[None]:
    """A FastAPI dependency: inside the admission limit for the request's lifetime, or 503."""
    yield from request.app.state.admission()


def find_task(rt: Jarvis, name: str) -> Task[Any]:
    """The task named in a URL or a model name, or a 404 naming it."""
    try:
        check_task_name(name)
        return rt.task(name)
    except (ConfigError, TaskError) as exc:
        raise ApiError(404, str(exc), param="task", code="unknown_task") from None
