"""Which runtime answers a task that is called directly (``create_next_level([], 1)``).

A task is a plain object low in the package; the runtime that routes its calls sits at the top.
This module is the seam between them: the runtime in use is a context variable, so
``jarvis.using(rt)`` holds for the current thread or asyncio task only, and when none is set
the process default is built by the provider the runtime layer registers
(:func:`set_default_provider`), on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

__all__ = ["Caller", "current", "default", "set_default", "set_default_provider", "using"]


class Answer(Protocol):
    @property
    def output(self) -> Any: ...


class Caller(Protocol):
    """Anything that answers a task's call: a configured runtime (:class:`jarvis.Jarvis`)."""

    def call(
        self, task: Any, inputs: Mapping[str, Any], *, raise_on_invalid: bool = True
    ) -> Answer: ...


_CURRENT: ContextVar[Caller | None] = ContextVar("jarvis_runtime", default=None)


class _Default:
    """The process-wide runtime, built lazily by the registered provider."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.caller: Caller | None = None
        self.provider: Callable[[], Caller] | None = None


_DEFAULT = _Default()


def set_default_provider(provider: Callable[[], Caller]) -> None:
    """How to build the default runtime (the runtime layer registers this on import)."""
    _DEFAULT.provider = provider


def default() -> Caller:
    """The process default, built on first use."""
    with _DEFAULT.lock:
        if _DEFAULT.caller is None:
            if _DEFAULT.provider is None:
                raise RuntimeError("no JARVIS runtime: import jarvis (or jarvis.runtime) first")
            _DEFAULT.caller = _DEFAULT.provider()
        return _DEFAULT.caller


def set_default(caller: Caller | None) -> Caller | None:
    """Replace the process default (``None``: build it again on next use); return the old."""
    with _DEFAULT.lock:
        previous, _DEFAULT.caller = _DEFAULT.caller, caller
        return previous


def current() -> Caller:
    """The runtime of this thread / asyncio task (:func:`using`), else the process default."""
    return _CURRENT.get() or default()


@contextmanager
def using(caller: Caller) -> Iterator[Caller]:
    """Route direct task calls through ``caller`` inside the block, in this context only."""
    token = _CURRENT.set(caller)
    try:
        yield caller
    finally:
        _CURRENT.reset(token)
