"""The gate of a free-text task: how close a candidate's answers come to the teacher's.

Every free-text answer parses, so the share of answers the validator accepts is not enough;
the gate also scores each answer against the teacher's with chrF (sacrebleu's character n-gram
F-score, on a 0..1 scale). A candidate is promoted only if its mean score clears
``text_gate_floor`` and is not below the active version's on the same held-out examples.

Candidates are played by plain functions; the held-out rows come from the real example task
``headline`` and its procedural teacher.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from jarvis.examples.text import headline, sample_sentences
from jarvis.rpg import create_next_level
from jarvis.training.gate import TEXT_METRIC, GateReport, decide, evaluate, text_scorer

# -- helpers ----------------------------------------------------------------------------------


def heldout_headlines(n: int) -> list[dict[str, Any]]:
    """Held-out rows as the store yields them: id, JSON input, the teacher's headline."""
    return [
        {
            "id": i,
            "input": {"sentence": sentence},
            "output": headline.run_oracle({"sentence": sentence}, random.Random(0)),
        }
        for i, sentence in enumerate(sample_sentences(n, seed=5), start=1)
    ]


def candidate(reply: Callable[[str], str], tokens: int = 12) -> Any:
    """A fake model: answers each sentence with ``reply(sentence)``."""

    def answer(batch: Sequence[dict[str, Any]]) -> list[tuple[str, int, float | None]]:
        return [(reply(inputs["sentence"]), tokens, None) for inputs in batch]

    return answer


def like_the_teacher(sentence: str) -> str:
    return str(headline.run_oracle({"sentence": sentence}, random.Random(0)))


def lower_case(sentence: str) -> str:
    """Keeps the words and drops the period (valid), but never capitalises (worse)."""
    return sentence.rstrip(".")


def text_report(similarity: float | None, semantic_pass: float = 1.0) -> GateReport:
    """A report on 20 examples, each scoring ``similarity`` (the paired tests read them)."""
    answers = [
        {"id": i, "valid": True, "agrees": (similarity or 0) >= 0.7, "score": similarity or 0.0}
        for i in range(20)
    ]
    return GateReport(
        examples=20,
        format_pass=1.0,
        semantic_pass=semantic_pass,
        field_agreement=None,
        exact_match=None,
        tokens_out_mean=12.0,
        seconds=0.0,
        text_similarity=similarity,
        text_metric=None if similarity is None else TEXT_METRIC,
        answers=answers,
    )


# -- the metric -------------------------------------------------------------------------------


def test_the_same_text_scores_one_and_unrelated_text_close_to_zero() -> None:
    score = text_scorer()

    assert score("The City Council Approves", "The City Council Approves") == 1.0
    assert score("zzz qqq xxx", "The City Council Approves") < 0.05
    assert score("", "The City Council Approves") == 0.0


def test_a_near_miss_scores_between_the_two() -> None:
    score = text_scorer()
    reference = "The City Council Approves a Budget for the Harbor"

    near = score("The City Council Approves a Budget For The Harbor", reference)
    far = score("the city council approves a budget for the harbor", reference)

    assert 0.0 < far < near < 1.0  # chrF is case-sensitive: casing is what this task is about


# -- evaluate ---------------------------------------------------------------------------------


def test_a_candidate_that_answers_like_the_teacher_scores_one() -> None:
    rows = heldout_headlines(6)

    report = evaluate(headline, rows, candidate(like_the_teacher), batch_size=4)

    assert report.examples == 6
    assert report.semantic_pass == 1.0
    assert report.text_similarity == 1.0
    assert report.text_metric == "chrF"
    assert report.field_agreement is None and report.exact_match is None  # typed-only figures
    assert report.as_dict()["text_similarity"] == 1.0  # what the card and the dashboard read


def test_a_valid_but_sloppier_candidate_passes_validation_and_scores_lower() -> None:
    rows = heldout_headlines(6)

    report = evaluate(headline, rows, candidate(lower_case))

    assert report.semantic_pass == 1.0
    assert report.text_similarity is not None and 0.2 < report.text_similarity < 0.9


def test_looping_and_cut_off_answers_fail_the_runtime_validation() -> None:
    rows = heldout_headlines(4)
    loops = candidate(lambda s: "Council " * 20)
    fills_its_budget = candidate(like_the_teacher, tokens=32)

    looping = evaluate(headline, rows, loops)
    cut = evaluate(headline, rows, fills_its_budget, budget=32)

    assert looping.semantic_pass == 0.0
    assert looping.failures[0]["reason"] == "repetition loop: 'Council' written 20 times in a row"
    assert cut.semantic_pass == 0.0
    assert cut.failures[0]["reason"].startswith("truncated")
    assert cut.text_similarity == 1.0  # the words were right; the runtime would still refuse


def test_typed_tasks_have_no_text_score() -> None:
    inputs = create_next_level.bind([], 1)
    row = {
        "id": 1,
        "input": create_next_level.dump_inputs(inputs),
        "output": create_next_level.dump_output(
            create_next_level.run_oracle(inputs, random.Random(0))
        ),
    }

    report = evaluate(create_next_level, [row], lambda batch: [("{}", 1, None) for _ in batch])

    assert report.text_similarity is None and report.text_metric is None


# -- decide -----------------------------------------------------------------------------------


def test_a_candidate_below_the_text_floor_is_not_promoted() -> None:
    verdict = decide(text_report(0.41), None, floor=0.9, text_floor=0.5)

    assert verdict.promote is False
    assert verdict.reason == "chrF 0.410 is below the text floor 0.500"


def test_a_candidate_worse_than_the_active_version_is_not_promoted() -> None:
    """Further from the teacher on every one of 20 examples: a sign test says so."""
    verdict = decide(text_report(0.80), text_report(0.85), floor=0.9, text_floor=0.5)

    assert verdict.promote is False
    assert verdict.reason.startswith(
        "worse than the active version: chrF: on 20 shared examples the candidate alone is "
        "right on 0, the active version alone on 20"
    )


def test_a_candidate_at_least_as_good_as_the_active_version_is_promoted() -> None:
    same = decide(text_report(0.85), text_report(0.85), floor=0.9, text_floor=0.5)
    better = decide(text_report(0.90), text_report(0.85), floor=0.9, text_floor=0.5)

    assert same.promote and better.promote
    assert better.reason == (
        "semantic pass 100.0% ≥ floor 90.0%; chrF 0.900 ≥ floor 0.500; not worse than the "
        "active version (McNemar p = 1.000, 20 won / 0 lost)"
    )


def test_a_close_candidate_still_needs_the_validation_floor() -> None:
    verdict = decide(text_report(0.95, semantic_pass=0.5), None, floor=0.9, text_floor=0.5)

    assert verdict.promote is False
    assert "semantic pass 50.0% is below the floor 90.0%" in verdict.reason


def test_real_reports_a_sloppier_candidate_is_refused_against_a_better_active_version() -> None:
    """The must-hold: with both judged on the same held-out rows, the worse one stays out."""
    rows = heldout_headlines(8)
    active = evaluate(headline, rows, candidate(like_the_teacher))
    sloppier = evaluate(headline, rows, candidate(lower_case))

    verdict = decide(sloppier, active, floor=0.9, text_floor=0.1)

    assert sloppier.semantic_pass == active.semantic_pass == 1.0
    assert verdict.promote is False
    assert verdict.reason.startswith("worse than the active version: agreement: on 8 shared")


@pytest.mark.parametrize("text_floor", [0.0, 1.0])
def test_the_text_floor_does_not_touch_typed_tasks(text_floor: float) -> None:
    assert decide(text_report(None), None, floor=0.9, text_floor=text_floor).promote is True
