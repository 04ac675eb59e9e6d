"""The exceptions JARVIS raises, in one place.

::

    JarvisError
    ├── ConfigError            a setting or argument is wrong (bad URL, unknown task, bad name)
    │   └── MissingExtra       an optional part is not installed (names the pip extra)
    ├── ConflictError          the request does not fit the current state (a run is queued)
    ├── TaskError              a task declaration or a call's inputs are wrong
    ├── BackendError           a model could not produce an answer at all
    │   └── TeacherError       the teacher failed (names the endpoint and the cause)
    ├── AllAttemptsFailed      every attempt produced an invalid answer (carries the attempts)
    ├── StoreError             the database refused or could not be reached
    └── ImportFileError        an import file could not be read at all

Invalid *model output* is not an exception: it is a :class:`jarvis.core.validate.Verdict`. Only when
every attempt of a call has failed does the router raise :class:`AllAttemptsFailed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class _Verdict(Protocol):
    @property
    def output(self) -> Any: ...
    @property
    def reason(self) -> str | None: ...


class _Attempt(Protocol):
    """What :class:`AllAttemptsFailed` reads of an attempt (:class:`jarvis.core.results.Attempt`);
    a protocol, so the bottom of the package depends on nothing above it."""

    @property
    def text(self) -> str | None: ...
    @property
    def verdict(self) -> _Verdict: ...


class JarvisError(Exception):
    """Base class of every error JARVIS raises on purpose."""


class ConfigError(JarvisError):
    """A setting, a name or a command-line argument is not usable."""


class MissingExtra(ConfigError):
    """What was asked for needs an optional part of JARVIS that is not installed."""

    def __init__(self, needed_for: str, extra: str) -> None:
        super().__init__(
            f"{needed_for} needs the {extra!r} extra: pip install 'jarvis-mtllm[{extra}]'"
        )
        self.extra = extra


class ConflictError(JarvisError):
    """The request is well formed but the current state refuses it (``code`` says why, for
    an API: ``busy``, ``no_examples``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class NotFoundError(JarvisError):
    """What the request names (a call, a version) does not exist."""


class TaskError(JarvisError):
    """A task is declared wrongly, or a call's inputs do not fit its signature."""


class BackendError(JarvisError):
    """A model backend (teacher or student) could not produce any answer."""


class Cancelled(JarvisError):
    """The caller went away (a stream's client disconnected): the work stops early."""


class TeacherError(BackendError):
    """The teacher could not answer; the message names the endpoint and the cause."""


class StoreError(JarvisError):
    """The store could not read or write."""


class ImportFileError(JarvisError):
    """An import file could not be opened or read at all (bad lines are reported, not raised)."""


class AllAttemptsFailed(JarvisError):
    """No attempt of a call produced a valid answer.

    The caller can still use the last answer: ``last_output`` is the raw text and
    ``last_parsed`` the parsed value when the answer at least had the right format.
    """

    def __init__(self, task: str, attempts: Sequence[_Attempt], call_id: int | None = None) -> None:
        self.task = task
        self.attempts = list(attempts)
        self.call_id = call_id
        last = attempts[-1] if attempts else None
        self.last_output: str | None = last.text if last else None
        self.last_parsed: Any = last.verdict.output if last else None
        self.reason: str | None = last.verdict.reason if last else "no attempt was made"
        super().__init__(
            f"task {task!r}: all {len(attempts)} attempts failed; last reason: {self.reason}"
        )
