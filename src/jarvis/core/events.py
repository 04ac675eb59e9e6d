"""Events the router emits, and a small typed bus to subscribe to them.

The router is the hot path and knows nothing of what watches it: shadow checks (and any other
observer: metrics, canaries) subscribe to these events instead of the router calling them and
them calling back into the router. A handler runs in the caller's thread, after the call is
logged; it must be quick (hand long work to a thread of its own), and an exception in it is
logged, never raised into the call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from jarvis.core.backends import GenerationRequest
from jarvis.core.tasks import Task

__all__ = ["Events", "FellBack", "StudentAnswered"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StudentAnswered:
    """The student's answer to a call was valid and served."""

    request: GenerationRequest
    output_json: Any
    version: str
    call_id: int | None


@dataclass(frozen=True, slots=True)
class FellBack:
    """The student was asked first, failed, and the teacher answered (validly or not)."""

    task: Task[Any]
    inputs: dict[str, Any]
    version: str
    reason: str | None
    call_id: int | None


E = TypeVar("E")


class Events:
    """Subscribers by event type; :meth:`emit` calls each in the order they subscribed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[type[Any], list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        with self._lock:
            self._handlers.setdefault(kind, []).append(handler)

    def emit(self, event: object) -> None:
        with self._lock:
            handlers = list(self._handlers.get(type(event), ()))
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # an observer must never break a call
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
