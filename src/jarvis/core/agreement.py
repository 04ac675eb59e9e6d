"""How close a student's answer is to the teacher's: the measure behind the gate, the
confidence threshold and the shadow checks.

A valid answer that differs from the teacher's is a quality failure, so every comparison gives
a *score* (0..1, how close) and a yes/no *agrees* (would a user accept it in place of the
teacher's). The task says how (:data:`jarvis.core.tasks.Compare`):

* ``fields`` (typed tasks): the score is the share of the teacher's leaf fields (and list
  lengths) that the answer matches; it agrees when all of them do (exact match);
* ``exact``: the same JSON, or not;
* ``text`` (free text): **chrF** (character n-gram F-score, Popović 2015, computed by
  sacrebleu) on a 0..1 scale; it agrees from :data:`TEXT_AGREES_AT`;
* ``valid``: any valid answer agrees (the teacher is itself random: the RPG maps);
* ``scorer``: the task's own ``@task.scorer``; it agrees at 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jarvis.core.errors import ConfigError
from jarvis.core.tasks import Task

__all__ = [
    "TEXT_AGREES_AT",
    "TEXT_METRIC",
    "Comparison",
    "agreement",
    "compare_answers",
    "field_agreement",
    "text_scorer",
]

TEXT_METRIC = "chrF"
"""The free-text similarity: sacrebleu's chrF (char n-grams 1..6, beta 2), divided by 100."""

TEXT_AGREES_AT = 0.7
"""chrF from which a free-text answer counts as saying the same as the teacher's (a reworded
sentence with the same content scores about 0.6-0.8; an unrelated one below 0.3)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    score: float  # 0..1: how close to the teacher's answer
    agrees: bool  # would it do in place of the teacher's answer
    metric: str  # what measured it: "fields", "exact", "chrF", "valid", "scorer"


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        out = {f"{prefix}.#": len(value)}
        for i, v in enumerate(value):
            out.update(_leaves(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def field_agreement(answer: Any, reference: Any) -> float:
    """Share of the reference's leaf fields (and list lengths) that the answer matches."""
    ref, got = _leaves(reference), _leaves(answer)
    if not ref:
        return 1.0 if answer == reference else 0.0
    return sum(1 for k, v in ref.items() if got.get(k) == v) / len(ref)


def text_scorer() -> Callable[[str, str], float]:
    """``(answer, reference) -> chrF in 0..1``: 1 for the same text, near 0 for unrelated."""
    try:
        # lazy: the train extra brings sacrebleu; only free-text comparisons need it
        from sacrebleu.metrics.chrf import CHRF
    except ImportError as exc:
        raise ConfigError(
            "free-text answers are compared with sacrebleu's chrF: "
            "pip install 'jarvis-mtllm[train]'"
        ) from exc

    chrf = CHRF()

    def score(answer: str, reference: str) -> float:
        return float(chrf.sentence_score(answer, [reference]).score) / 100.0

    return score


def compare_answers(
    task: Task[Any],
    answer_json: Any,
    teacher_json: Any,
    inputs: Mapping[str, Any] | None = None,
    *,
    valid: bool = True,
    chrf: Callable[[str, str], float] | None = None,
) -> Comparison:
    """Compare a (valid, unless ``valid`` is false) answer with the teacher's, the task's way.

    An invalid answer never agrees. ``chrf`` reuses a scorer across many comparisons."""
    mode = task.compare
    if not valid or answer_json is None:
        return Comparison(0.0, False, _metric(mode))
    if mode == "valid":
        return Comparison(1.0, True, "valid")
    if mode == "text":
        score = (chrf or text_scorer())(str(answer_json).strip(), str(teacher_json).strip())
        return Comparison(score, score >= TEXT_AGREES_AT, TEXT_METRIC)
    if mode == "scorer":
        assert task.scorer_fn is not None
        out = task.output_adapter.validate_python(answer_json)
        ref = task.output_adapter.validate_python(teacher_json)
        score = min(1.0, max(0.0, float(task.scorer_fn(out, ref, inputs or {}))))
        return Comparison(score, score >= 1.0, "scorer")
    same = answer_json == teacher_json
    if mode == "exact":
        return Comparison(float(same), same, "exact")
    return Comparison(field_agreement(answer_json, teacher_json), same, "fields")


def _metric(mode: str) -> str:
    return TEXT_METRIC if mode == "text" else mode


def agreement(task: Task[Any], student_json: Any, teacher_json: Any) -> tuple[float, str]:
    """How close the student's answer is to the teacher's: (score in 0..1, metric name)."""
    c = compare_answers(task, student_json, teacher_json)
    return c.score, c.metric
