"""The held-out gate: scoring a candidate's answers, and deciding whether to promote it.

``evaluate`` gets the candidate as a plain function from a batch of inputs to answers, so these
tests play candidates without a model: one that answers like the teacher, one that writes
garbage, one that writes well-formed levels of the wrong difficulty. The held-out rows are made
by the real procedural oracle of the real ``create_next_level`` task.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from jarvis import render_answer
from jarvis.core.split import canonical_json
from jarvis.rpg import Level, create_next_level, create_next_map, oracle_level
from jarvis.training.gate import GateReport, decide, evaluate, field_agreement

# -- helpers ----------------------------------------------------------------------------------


def level(**changes: Any) -> dict[str, Any]:
    """A valid level in its JSON form (7 fields), with some fields changed."""
    base = oracle_level([], 2, random.Random(0)).model_dump(mode="json")
    return {**base, **changes}


def heldout_levels(difficulties: Sequence[int]) -> list[dict[str, Any]]:
    """Held-out rows as the store yields them: id, JSON input, the teacher's JSON output."""
    rows = []
    for i, difficulty in enumerate(difficulties, start=1):
        inputs = create_next_level.bind([], difficulty)
        output = create_next_level.run_oracle(inputs, random.Random(i))
        rows.append(
            {
                "id": i,
                "input": create_next_level.dump_inputs(inputs),
                "output": create_next_level.dump_output(output),
            }
        )
    return rows


def key(inputs: dict[str, Any]) -> str:
    return canonical_json(create_next_level.dump_inputs(inputs))


class Candidate:
    """A fake candidate model: answers every input with ``reply(inputs)``; records batches."""

    def __init__(self, reply: Any, tokens: int = 20) -> None:
        self.reply = reply
        self.tokens = tokens
        self.batches: list[int] = []

    def __call__(self, batch: Sequence[dict[str, Any]]) -> list[tuple[str, int, float | None]]:
        self.batches.append(len(batch))
        return [(self.reply(inputs), self.tokens, None) for inputs in batch]


def like_the_teacher(rows: list[dict[str, Any]]) -> Candidate:
    """Answers each held-out input with exactly the teacher's answer, rendered for a model."""
    answers = {
        key(create_next_level.load_inputs(r["input"])): render_answer(
            create_next_level, Level.model_validate(r["output"])
        )
        for r in rows
    }
    return Candidate(lambda inputs: answers[key(inputs)])


def wrong_difficulty(inputs: dict[str, Any]) -> str:
    """A well-formed, otherwise playable level one difficulty above what was asked."""
    answer = oracle_level([], inputs["difficulty"] + 1, random.Random(0))
    return render_answer(create_next_level, answer)


def report(
    semantic_pass: float,
    examples: int = 40,
    agreement: float | None = None,
    wrong: Sequence[int] | None = None,
) -> GateReport:
    """A report on ``examples`` held-out examples (ids 1..n): the first ones valid, the rest
    not (or exactly the ids in ``wrong`` invalid); ``agreement`` likewise (default: every
    valid answer agrees)."""
    n_valid = round(semantic_pass * examples)
    bad = set(wrong) if wrong is not None else set(range(n_valid + 1, examples + 1))
    n_agree = n_valid if agreement is None else round(agreement * examples)
    answers = [
        {
            "id": i,
            "valid": i not in bad,
            "agrees": i not in bad and i <= n_agree,
            "confidence": None,
        }
        for i in range(1, examples + 1)
    ]
    return GateReport(
        examples=examples,
        format_pass=1.0,
        semantic_pass=semantic_pass,
        field_agreement=None,
        exact_match=None,
        tokens_out_mean=0.0,
        seconds=0.0,
        agreement=n_agree / examples if examples else None,
        answers=answers,
    )


# -- field agreement --------------------------------------------------------------------------


def test_identical_answers_agree_on_every_field() -> None:
    assert field_agreement(level(), level()) == 1.0


def test_one_wrong_field_of_a_level_costs_one_seventh() -> None:
    assert field_agreement(level(time=1), level()) == pytest.approx(6 / 7)


def test_a_missing_field_counts_as_wrong() -> None:
    answer = level()
    del answer["num_enemies"]
    assert field_agreement(answer, level()) == pytest.approx(6 / 7)


def test_list_lengths_count_as_fields_of_their_own() -> None:
    reference = {"items": [1, 2]}  # fields: items.# = 2, items[0] = 1, items[1] = 2
    assert field_agreement({"items": [1]}, reference) == pytest.approx(1 / 3)
    assert field_agreement({"items": [1, 2, 3]}, reference) == pytest.approx(2 / 3)
    assert field_agreement({"items": []}, {"items": []}) == 1.0


def a_map() -> dict[str, Any]:
    """A map in its JSON form: 18 fields (7 of the level, 5 of the one wall with the wall
    count, 1 obstacle count, 3 of the one enemy with the enemy count, 2 of the player)."""
    return {
        "level": level(),
        "walls": [{"start_pos": {"x": 1, "y": 1}, "end_pos": {"x": 1, "y": 4}}],
        "small_obstacles": [],
        "enemies": [{"x": 5, "y": 5}],
        "player_pos": {"x": 0, "y": 0},
    }


def test_fields_of_nested_maps_are_compared_one_by_one() -> None:
    moved_player = a_map()
    moved_player["player_pos"]["x"] = 3
    wall_end = a_map()
    wall_end["walls"][0]["end_pos"]["y"] = 2
    other_level = a_map()
    other_level["level"]["time"] += 1

    assert create_next_map.output_adapter.validate_python(a_map())  # really a Map
    assert field_agreement(a_map(), a_map()) == 1.0
    assert field_agreement(moved_player, a_map()) == pytest.approx(17 / 18)
    assert field_agreement(wall_end, a_map()) == pytest.approx(17 / 18)
    assert field_agreement(other_level, a_map()) == pytest.approx(17 / 18)


def test_an_extra_list_item_costs_only_the_list_length() -> None:
    extra_enemy = a_map()
    extra_enemy["enemies"].append({"x": 6, "y": 6})

    assert field_agreement(extra_enemy, a_map()) == pytest.approx(17 / 18)


def test_answers_of_another_shape_agree_on_nothing() -> None:
    assert field_agreement("not a level", level()) == 0.0
    assert field_agreement(None, level()) == 0.0


# -- evaluate ---------------------------------------------------------------------------------


def test_a_candidate_that_answers_like_the_teacher_passes_everything() -> None:
    rows = heldout_levels([1, 2, 3, 4, 5])
    candidate = like_the_teacher(rows)

    result = evaluate(create_next_level, rows, candidate, batch_size=2)

    assert result.examples == 5
    assert result.format_pass == 1.0
    assert result.semantic_pass == 1.0
    assert result.exact_match == 1.0
    assert result.field_agreement == 1.0
    assert result.tokens_out_mean == 20
    assert result.failures == []
    assert candidate.batches == [2, 2, 1], "every example answered once, in batches"


def test_a_candidate_that_writes_garbage_fails_the_format_check() -> None:
    rows = heldout_levels([1, 2, 3])

    result = evaluate(create_next_level, rows, Candidate(lambda _: "Sure! Here is a level."))

    assert result.format_pass == 0.0
    assert result.semantic_pass == 0.0
    assert result.exact_match == 0.0
    assert result.field_agreement == 0.0
    assert [f["stage"] for f in result.failures] == ["format"] * 3
    assert [f["example_id"] for f in result.failures] == [1, 2, 3]
    assert "not valid JSON" in result.failures[0]["reason"]
    assert result.failures[0]["answer"] == "Sure! Here is a level."


def test_a_wellformed_level_of_the_wrong_difficulty_parses_but_fails_semantically() -> None:
    rows = heldout_levels([1, 2, 3, 4])

    result = evaluate(create_next_level, rows, Candidate(wrong_difficulty))

    assert result.format_pass == 1.0
    assert result.semantic_pass == 0.0
    assert result.exact_match == 0.0
    assert result.field_agreement is not None and 0.0 < result.field_agreement < 1.0
    assert len(result.failures) == 4
    first = result.failures[0]
    assert first["stage"] == "semantic"
    assert first["reason"] == "level difficulty is 2, expected 1"


def test_half_right_answers_give_half_scores() -> None:
    rows = heldout_levels([1, 2, 3, 4])
    teacher = like_the_teacher(rows)

    def candidate_reply(inputs: dict[str, Any]) -> str:
        return teacher.reply(inputs) if inputs["difficulty"] % 2 else "{"

    result = evaluate(create_next_level, rows, Candidate(candidate_reply))

    assert result.format_pass == 0.5
    assert result.semantic_pass == 0.5
    assert result.exact_match == 0.5
    assert [f["example_id"] for f in result.failures] == [2, 4]


def test_only_the_first_ten_failures_are_kept() -> None:
    rows = heldout_levels(range(1, 15))

    result = evaluate(create_next_level, rows, Candidate(lambda _: "nope"))

    assert result.examples == 14
    assert len(result.failures) == 10


def test_a_candidate_that_skips_an_answer_is_an_error_not_a_score() -> None:
    rows = heldout_levels([1, 2])

    def drops_one(batch: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
        return [("{}", 1)] * (len(batch) - 1)

    with pytest.raises(ValueError):
        evaluate(create_next_level, rows, drops_one)


def test_no_heldout_examples_give_an_empty_report() -> None:
    result = evaluate(create_next_level, [], Candidate(lambda _: "unused"))

    assert result.examples == 0
    assert result.semantic_pass == 0.0
    assert result.exact_match is None
    assert result.field_agreement is None
    assert result.as_dict()["examples"] == 0


# -- decide -----------------------------------------------------------------------------------


def test_a_candidate_below_the_floor_is_not_promoted() -> None:
    verdict = decide(report(0.85), None, floor=0.9)

    assert verdict.promote is False
    assert "below the floor 90.0%" in verdict.reason
    assert "85.0%" in verdict.reason


def test_a_candidate_at_the_floor_with_no_active_version_is_promoted() -> None:
    verdict = decide(report(36 / 40), None, floor=0.9)

    assert verdict.promote is True
    assert verdict.as_dict() == {"promote": True, "reason": verdict.reason, "paired": {}}


def test_a_candidate_as_good_as_the_active_version_is_promoted() -> None:
    verdict = decide(report(0.95), report(0.95), floor=0.9)

    assert verdict.promote is True
    assert verdict.paired["valid"]["candidate_only"] == verdict.paired["valid"]["active_only"] == 0


def test_a_candidate_better_than_the_active_version_is_promoted() -> None:
    assert decide(report(1.0), report(0.92), floor=0.9).promote is True


def test_a_candidate_worse_with_confidence_is_not_promoted() -> None:
    """Eight examples lost and none won: by McNemar's exact test that is no accident."""
    verdict = decide(report(0.9, agreement=0.8), report(1.0), floor=0.8, agreement_floor=0.7)

    assert verdict.promote is False
    assert "worse than the active version" in verdict.reason
    assert "McNemar one-sided p = 0.004" in verdict.reason  # 0.5 ** 8
    assert verdict.paired["valid"]["active_only"] == 4


def test_a_candidate_a_little_worse_within_noise_is_promoted() -> None:
    """Two answers out of forty are noise, not a verdict: the bare rates (92.5% vs 97.5%)
    would have refused it."""
    verdict = decide(report(0.925), report(0.975), floor=0.9, agreement_floor=0.9)

    assert verdict.promote is True
    test = verdict.paired["agrees"]
    assert (test["active_only"], test["candidate_only"]) == (2, 0)
    assert test["p_worse"] == pytest.approx(0.25)


def test_the_paired_test_looks_only_at_examples_where_the_versions_differ() -> None:
    """Same rate, different examples: each wins four, loses four: no evidence either way."""
    cand = report(0.9, wrong=[1, 2, 3, 4])
    active = report(0.9, wrong=[5, 6, 7, 8])
    verdict = decide(cand, active, floor=0.9)
    assert verdict.promote
    assert verdict.paired["valid"]["candidate_only"] == verdict.paired["valid"]["active_only"] == 4


def test_a_valid_candidate_that_disagrees_with_the_teacher_is_not_promoted() -> None:
    """Every answer valid, three in ten different from the teacher's: a quality failure."""
    verdict = decide(report(1.0, agreement=0.7), None, floor=0.9, agreement_floor=0.8)

    assert not verdict.promote
    assert "agreement with the teacher (fields) 70.0% is below the floor 80.0%" in verdict.reason
    assert decide(report(1.0, agreement=0.8), None, floor=0.9, agreement_floor=0.8).promote


def test_a_candidate_judged_on_no_examples_is_not_promoted() -> None:
    verdict = decide(report(1.0, examples=0), None, floor=0.0)

    assert verdict.promote is False
    assert "no held-out examples" in verdict.reason


def test_too_few_held_out_examples_judge_nothing() -> None:
    """Four examples, all passing, prove little: the candidate waits for more evidence."""
    verdict = decide(report(1.0, examples=4), None, 0.9, min_examples=20)
    assert not verdict.promote
    assert "only 4 held-out examples" in verdict.reason and "at least 20" in verdict.reason
    assert decide(report(1.0, examples=20), None, 0.9, min_examples=20).promote


# -- agreement and calibration ----------------------------------------------------------------


def test_each_answer_is_compared_with_the_teachers_and_calibrates_a_confidence_threshold() -> None:
    """Sure answers are the teacher's; unsure ones are valid levels with the wrong time. The
    threshold keeps the sure ones: below it the router asks the teacher."""
    rows = heldout_levels(range(1, 11))
    teacher = {key(create_next_level.load_inputs(r["input"])): r["output"] for r in rows}

    def answer(batch: Sequence[dict[str, Any]]) -> list[tuple[str, int, float | None]]:
        out = []
        for inputs in batch:
            right = dict(teacher[key(inputs)])
            if inputs["difficulty"] <= 7:
                out.append((render_answer(create_next_level, Level(**right)), 20, 0.95))
            else:
                off = Level(**{**right, "time": right["time"] * 2})
                out.append((render_answer(create_next_level, off), 20, 0.4))
        return out

    result = evaluate(create_next_level, rows, answer, target_agreement=0.98)

    assert result.semantic_pass == 1.0  # every answer is valid…
    assert result.agreement == 0.7  # …but three say something else than the teacher
    assert [a["agrees"] for a in result.answers] == [True] * 7 + [False] * 3
    assert result.calibration is not None
    assert result.calibration["threshold"] == 0.95
    assert result.calibration["coverage"] == 0.7
    assert result.calibration["agreement"] == 1.0
    assert result.calibration["curve"][0] == (0.4, 1.0, 0.7)  # keep everything: 70%


def test_a_task_compared_on_validity_agrees_whenever_its_answer_is_valid() -> None:
    """The maps' teacher draws at random: a different playable map is as good as its own."""
    assert create_next_map.compare == "valid"
    assert create_next_level.compare == "fields"
