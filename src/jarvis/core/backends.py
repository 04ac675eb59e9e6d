"""The one small interface every model sits behind, teacher or student.

A backend turns a :class:`GenerationRequest` (chat messages, optional JSON schema, sampling)
into a :class:`Generation` (text and token counts), or raises
:class:`jarvis.core.errors.BackendError` when it cannot answer at all. Bad *content* is not an error
here: the router's validator judges it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from jarvis.core.errors import BackendError
from jarvis.core.prompts import ChatMessage
from jarvis.core.tasks import Task


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to sample. ``temperature == 0`` means greedy; ``None`` leaves the backend default."""

    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None


GREEDY = Sampling(temperature=0.0)
"""Greedy decoding: top-p does not apply, so it is left unset."""


def retry_sampling(attempt: int, *, seed: int = 0, max_tokens: int | None = None) -> Sampling:
    """Sampling for a student's ``attempt`` (0 = first try).

    The first try is greedy (the most likely answer; top-p does not apply). Each retry samples
    with a higher temperature and top-p than the retry before, and a new seed, so a retry
    really explores a different answer instead of repeating the same mistake (the original
    system computed these values but never passed them to the model).
    """
    if attempt <= 0:
        return Sampling(temperature=0.0, top_p=None, seed=seed, max_tokens=max_tokens)
    return Sampling(
        temperature=round(min(1.5, 0.5 + 0.25 * (attempt - 1)), 3),
        top_p=round(min(1.0, 0.85 + 0.05 * (attempt - 1)), 3),
        seed=seed + attempt,
        max_tokens=max_tokens,
    )


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    task: Task[Any]
    inputs: dict[str, Any]
    messages: list[ChatMessage]
    sampling: Sampling = field(default_factory=Sampling)
    json_schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    model: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    finished: bool | None = None
    """False: the model stopped at the token budget (the text is cut off); None: unknown."""
    confidence: float | None = None
    """How sure a local model was of its answer (the lowest probability of a token it chose,
    forced tokens excluded); None when the backend cannot tell (a teacher, a remote model)."""


@runtime_checkable
class Backend(Protocol):
    """Anything that can answer a request: a teacher or a student."""

    @property
    def name(self) -> str: ...

    def generate(self, request: GenerationRequest) -> Generation: ...


@runtime_checkable
class StudentBackend(Protocol):
    """A local model that serves the tasks that have a promoted version."""

    def active_version(self, task: str) -> str | None:
        """The version that should answer ``task`` now, or ``None`` (then the teacher does)."""
        ...

    def generate(self, request: GenerationRequest, version: str) -> Generation: ...


class NoStudent:
    """The student backend before any model exists: it serves nothing."""

    def active_version(self, task: str) -> str | None:
        return None

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        raise BackendError("no student backend is configured")
