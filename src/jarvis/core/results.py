"""What a call produced: its attempts, and the result the caller gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jarvis.core.backends import Sampling
from jarvis.core.validate import Verdict

__all__ = ["Attempt", "CallResult", "Source"]

Source = Literal["teacher", "student"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at answering: who answered, with what sampling, and the verdict."""

    number: int
    source: Source
    version: str | None
    model: str | None
    text: str | None
    verdict: Verdict
    sampling: Sampling
    latency_ms: float
    tokens_in: int | None = None
    tokens_out: int | None = None
    confidence: float | None = None  # a local student's: the least sure token it chose


@dataclass(slots=True)
class CallResult:
    """What a call produced, and how. ``envelope()`` is the JSON the CLI and API return."""

    task: str
    output: Any
    source: Source
    version: str | None
    attempts: list[Attempt]
    fallback: bool
    valid: bool
    reason: str | None
    latency_ms: float
    call_id: int | None = None
    output_json: Any = field(default=None)
    escalated: bool = False  # the student's valid answer was below its confidence threshold

    def envelope(self) -> dict[str, Any]:
        return {
            "output": self.output_json,
            "source": self.source,
            "version": self.version,
            "attempts": len(self.attempts),
            "fallback": self.fallback,
            "escalated": self.escalated,
            "valid": self.valid,
            "reason": self.reason,
            "latency_ms": round(self.latency_ms, 3),
            "call_id": self.call_id,  # the logged call (``jarvis calls``, the dashboard)
        }
