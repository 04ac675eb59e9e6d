"""How close a student's answer is to the teacher's: the measure behind the gate and the
shadow checks.

* typed answers: **field agreement**, the share of the teacher's leaf fields (and list
  lengths) that the student's answer matches, and **exact match**;
* free text: **chrF** (character n-gram F-score, Popović 2015, computed by sacrebleu) on a 0..1
  scale: 1 for the same text, near 0 for unrelated text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jarvis.core.errors import ConfigError
from jarvis.core.tasks import Task

__all__ = ["TEXT_METRIC", "agreement", "field_agreement", "text_scorer"]

TEXT_METRIC = "chrF"
"""The free-text similarity: sacrebleu's chrF (char n-grams 1..6, beta 2), divided by 100."""


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


def agreement(task: Task[Any], student_json: Any, teacher_json: Any) -> tuple[float, str]:
    """How close the student's answer is to the teacher's: (score in 0..1, metric name)."""
    if task.is_free_text:
        return text_scorer()(str(student_json), str(teacher_json)), TEXT_METRIC
    return field_agreement(student_json, teacher_json), "fields"
