"""Fakes for testing programs that use JARVIS, shipped with the library (as httpx ships its
``MockTransport``): a teacher and a student that answer from a script and remember every
request they got, so a test can check what the router really sent (a retry's temperature, the
rejection reason fed back to the teacher) without any model::

    from jarvis.testing import ScriptedStudent, ScriptedTeacher

    student = ScriptedStudent(['{"sentiment": "positve"}', '{"sentiment": "positive"}'])
    rt = jarvis.Jarvis(settings, student=student)
    ...
    assert student.requests[1].sampling.temperature > 0  # the retry really sampled

Both answer in order (the last answer repeats); an exception in the script is raised instead
of answering, to play a failing model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jarvis.core.backends import Generation, GenerationRequest

__all__ = ["ScriptedStudent", "ScriptedTeacher"]


def _next(answers: list[str | Exception], asked: int) -> str:
    if not answers:
        raise AssertionError("the script has no answers")
    answer = answers[min(asked, len(answers)) - 1]
    if isinstance(answer, Exception):
        raise answer
    return answer


@dataclass
class ScriptedStudent:
    """A student that answers from a script and remembers every request.

    ``version`` is what it says is active for every task (``None``: no version, so the
    teacher answers); ``finished=False`` plays an answer cut off at the token budget;
    ``confidence`` is how sure it says it is of every answer (``None``: it cannot tell).
    """

    answers: list[str | Exception] = field(default_factory=list)
    version: str | None = "v0001"
    requests: list[GenerationRequest] = field(default_factory=list)
    finished: bool | None = None
    confidence: float | None = None

    def active_version(self, task: str) -> str | None:
        return self.version

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        self.requests.append(request)
        text = _next(self.answers, len(self.requests))
        return Generation(
            text=text,
            model=f"scripted@{version}",
            tokens_in=10,
            tokens_out=5,
            finished=self.finished,
            confidence=self.confidence,
        )


@dataclass
class ScriptedTeacher:
    """A teacher that answers from a script and remembers every request."""

    answers: list[str | Exception] = field(default_factory=list)
    requests: list[GenerationRequest] = field(default_factory=list)
    model: str = "scripted-teacher"

    @property
    def name(self) -> str:
        return self.model

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation(text=_next(self.answers, len(self.requests)), model=self.model)
