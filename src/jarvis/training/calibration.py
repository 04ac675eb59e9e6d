"""The confidence threshold of a version: below it, the student's answer goes to the teacher.

Each held-out answer has a confidence (the lowest probability of a token the student chose)
and agrees with the teacher's or not. Sorting by confidence, keeping the answers at or above a
threshold and sending the rest to the teacher, the kept answers agree at some rate and the
student keeps some share of calls (its *coverage*). The threshold is the lowest one at which
the kept answers agree at the task's target (``JARVIS_TARGET_AGREEMENT``): the most coverage
that still meets the target. The whole curve goes in the card for the dashboard's plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Calibration", "calibrate"]


@dataclass(frozen=True)
class Calibration:
    target: float  # the agreement the kept answers must reach
    threshold: float | None  # None: no threshold reaches the target (every answer escalates)
    coverage: float  # share of held-out calls the student keeps at the threshold
    agreement: float | None  # agreement of the kept answers at the threshold
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    """(threshold, coverage, agreement of the kept answers), from the most to the least kept."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(confidences: Sequence[float], agrees: Sequence[bool], target: float) -> Calibration:
    """The lowest confidence threshold whose kept answers agree at ``target`` or better."""
    n = len(confidences)
    if n == 0:
        return Calibration(target, None, 0.0, None)
    order = sorted(zip(confidences, agrees, strict=True), key=lambda p: -p[0])
    curve: list[tuple[float, float, float]] = []
    kept = right = 0
    best: tuple[float, float, float] | None = None
    for i, (conf, ok) in enumerate(order):
        kept += 1
        right += ok
        if i + 1 < n and order[i + 1][0] == conf:
            continue  # ties: a threshold keeps all answers of the same confidence or none
        point = (round(conf, 6), kept / n, right / kept)
        curve.append(point)
        if point[2] >= target:
            best = point  # lower thresholds keep more: the last one that meets the target
    if best is None:
        return Calibration(target, None, 0.0, None, curve[::-1])
    return Calibration(target, best[0], best[1], best[2], curve[::-1])
