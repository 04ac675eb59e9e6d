"""The runtime a task uses when it is called directly: the one ``using`` set in this context,
else the process default, built from the environment on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jarvis.core import context
from jarvis.runtime.jarvis import Jarvis

__all__ = ["get_default", "set_default", "using"]

context.set_default_provider(Jarvis)


def get_default() -> Jarvis:
    """The runtime of this thread / asyncio task (:func:`using`), else the process default."""
    rt = context.current()
    if not isinstance(rt, Jarvis):
        raise TypeError(f"the runtime in use is a {type(rt).__name__}, not a Jarvis")
    return rt


def set_default(runtime: Jarvis | None) -> Jarvis | None:
    """Install ``runtime`` as the process default; return the previous one."""
    previous = context.set_default(runtime)
    return previous if isinstance(previous, Jarvis) else None


@contextmanager
def using(runtime: Jarvis) -> Iterator[Jarvis]:
    """Route direct task calls through ``runtime`` inside the block (this thread or asyncio
    task only: other threads keep theirs)."""
    with context.using(runtime):
        yield runtime
