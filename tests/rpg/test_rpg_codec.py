"""The student's positional answers: shorter than keyed JSON, and exactly reversible."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import BaseModel

import jarvis
from jarvis.core.codec import (
    CodecError,
    decode,
    encode,
    from_student,
    student_answer,
    supports_positional,
)
from jarvis.core.prompts import render_answer
from jarvis.rpg import Level, Map, create_next_level, create_next_map, oracle_level, oracle_map


def test_a_level_is_written_as_its_values_in_field_order() -> None:
    level = Level(name=3, difficulty=1, time=300, width=10, height=10, num_wall=5, num_enemies=2)
    assert student_answer(create_next_level, level) == "[3,1,300,10,10,5,2]"


def test_maps_round_trip_and_get_much_shorter() -> None:
    rng = random.Random(4)
    for d in (1, 7, 20):
        game_map = oracle_map(oracle_level([], d, rng), rng)
        compact = student_answer(create_next_map, game_map)
        keyed = render_answer(create_next_map, game_map)
        assert len(compact) < len(keyed) / 2
        assert Map.model_validate_json(from_student(create_next_map, compact)) == game_map


def test_decode_rejects_a_layout_that_does_not_fit() -> None:
    with pytest.raises(CodecError, match="7 values for Level"):
        decode(Level, [1, 2, 3])
    with pytest.raises(CodecError, match=r"answer\.walls: expected a list"):
        decode(Map, [[1, 1, 300, 10, 10, 5, 2], 5, [], [], [0, 0]])


def test_undecodable_student_text_is_passed_on_for_the_validator_to_reject() -> None:
    assert from_student(create_next_level, "not json") == "not json"
    assert from_student(create_next_level, "[1,2]") == "[1,2]"
    verdict = jarvis.validate_answer(create_next_level, create_next_level.bind([], 1), "[1,2]")
    assert not verdict.valid and verdict.stage == "format"


class Item(BaseModel):
    name: str
    tags: list[str]
    price: float | None = None


def test_optional_fields_lists_dicts_and_tuples() -> None:
    tp: Any = dict[str, tuple[Item, int]]
    value = {"a": ({"name": "x", "tags": ["t"], "price": None}, 2)}
    encoded = encode(tp, value)
    assert encoded == {"a": [["x", ["t"], None], 2]}
    assert decode(tp, json.loads(json.dumps(encoded))) == {
        "a": [{"name": "x", "tags": ["t"], "price": None}, 2]
    }


def test_unions_of_objects_and_free_text_keep_their_ordinary_form() -> None:
    assert not supports_positional(Item | Level)
    assert not supports_positional(Any)
    assert supports_positional(list[Level])

    @jarvis.task
    def pick(x: int) -> Item | Level:
        """Pick one."""

    item = Item(name="x", tags=[])
    assert student_answer(pick, item) == render_answer(pick, item)

    @jarvis.task
    def shout(text: str) -> str:
        """Shout."""

    assert student_answer(shout, "HI") == "HI" and from_student(shout, "HI") == "HI"
