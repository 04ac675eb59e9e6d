"""A student that answers from a script: for router tests that need no model."""

from __future__ import annotations

from dataclasses import dataclass, field

from jarvis import Generation, GenerationRequest


@dataclass
class ScriptedStudent:
    """A student that answers from a script and remembers every request.

    ``answers`` are returned in order (the last one repeats); an ``Exception`` in the script
    is raised instead, to play an engine failure.
    """

    answers: list[str | Exception] = field(default_factory=list)
    version: str | None = "v0001"
    requests: list[GenerationRequest] = field(default_factory=list)
    finished: bool | None = None  # False plays an answer cut off at the token budget

    def active_version(self, task: str) -> str | None:
        return self.version

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return Generation(
            text=answer,
            model=f"scripted@{version}",
            tokens_in=10,
            tokens_out=5,
            finished=self.finished,
        )
