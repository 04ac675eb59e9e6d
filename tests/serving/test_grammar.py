"""The answer grammar: what a call's schema admits, character by character."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import BaseModel

from jarvis.core.codec import student_answer
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.serving.grammar import State, UnsupportedSchema, accepts, compile_schema, feed


def admits(schema: dict[str, Any], text: str, *, positional: bool = False) -> bool:
    state: State | None = compile_schema(schema, positional=positional).initial
    for ch in text:
        state = feed(state, ch) if state is not None else None
    return state is not None and accepts(state)


def test_integers_respect_their_bounds_digit_by_digit() -> None:
    schema = {"type": "integer", "minimum": 3, "maximum": 42}
    assert [n for n in range(-5, 60) if admits(schema, str(n))] == list(range(3, 43))
    # a prefix survives only if some allowed number starts with it
    state = compile_schema(schema).initial
    assert feed(state, "5") is not None  # 5 itself
    assert feed(state, "0") is None  # no leading zeros, and 0 < 3
    assert feed(feed(state, "4"), "3") is None  # type: ignore[arg-type]  # 43 > 42


def test_negative_and_unbounded_integers() -> None:
    assert admits({"type": "integer"}, "-17")
    assert admits({"type": "integer", "maximum": -2}, "-2")
    assert not admits({"type": "integer", "maximum": -2}, "-1")
    assert not admits({"type": "integer", "minimum": 0}, "-0")
    assert not admits({"type": "integer"}, "007")


def test_arrays_count_their_items() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3}
    assert not admits(schema, "[1]")
    assert admits(schema, "[1,2]")
    assert admits(schema, "[1,2,3]")
    assert not admits(schema, "[1,2,3,4]")
    assert not admits(schema, "[1, 2]")  # no whitespace: the student writes compact JSON


class Point(BaseModel):
    x: int
    y: int | None = None
    tag: str = ""
    ok: bool = True


def test_objects_keyed_and_positional() -> None:
    schema = Point.model_json_schema()
    assert admits(schema, '{"x":1,"y":null,"tag":"a\\"b","ok":false}')
    assert not admits(schema, '{"y":1,"x":1,"tag":"","ok":true}')  # declaration order
    assert admits(schema, '[1,2,"",true]', positional=True)
    assert not admits(schema, '[1,2,""]', positional=True)


def test_const_enum_and_numbers() -> None:
    assert admits({"const": {"a": 1, "b": [2]}}, '{"a":1,"b":[2]}')
    assert admits({"const": {"a": 1, "b": [2]}}, "[1,[2]]", positional=True)
    assert admits({"enum": ["red", "green"]}, '"green"')
    assert not admits({"enum": ["red", "green"]}, '"blue"')
    assert admits({"type": "number"}, "-1.5e3")
    assert not admits({"type": "number"}, "1.")


def test_unsupported_schemas_say_so() -> None:
    with pytest.raises(UnsupportedSchema):
        compile_schema({"type": "object", "additionalProperties": {"type": "integer"}})
    with pytest.raises(UnsupportedSchema):
        compile_schema({"anyOf": [{"type": "integer"}, {"type": "number"}]})


@pytest.mark.parametrize("difficulty", [1, 4, 9, 15, 20])
def test_every_oracle_map_fits_its_own_call_schema(difficulty: int) -> None:
    rng = random.Random(difficulty)
    level = oracle_level([], difficulty, rng)
    inputs = {"level": level}
    schema = create_next_map.call_schema(inputs)
    assert schema is not None
    for _ in range(5):
        answer = student_answer(create_next_map, oracle_map(level, rng))
        assert admits(schema, answer, positional=True), answer


def test_a_map_schema_rejects_another_level_and_coordinates_off_the_grid() -> None:
    rng = random.Random(0)
    level = oracle_level([], 2, rng)  # 12 x 12
    schema = create_next_map.call_schema({"level": level})
    assert schema is not None
    good = json.loads(student_answer(create_next_map, oracle_map(level, rng)))
    other_level = [good[0][0] + 1, *good[0][1:]]
    assert not admits(
        schema, json.dumps([other_level, *good[1:]], separators=(",", ":")), positional=True
    )
    off_grid = [*good[:4], [level.width, 0]]  # the player at x = width
    assert not admits(schema, json.dumps(off_grid, separators=(",", ":")), positional=True)
    too_few_enemies = [*good[:3], good[3][:-1], good[4]]
    assert not admits(schema, json.dumps(too_few_enemies, separators=(",", ":")), positional=True)


def test_a_level_schema_fixes_the_name_and_difficulty() -> None:
    last = oracle_level([], 3, random.Random(0))
    schema = create_next_level.call_schema({"last_levels": [last], "difficulty": 4})
    assert schema is not None
    level = oracle_level([last], 4, random.Random(0))
    assert admits(schema, student_answer(create_next_level, level), positional=True)
    wrong = level.model_copy(update={"difficulty": 5})
    assert not admits(schema, student_answer(create_next_level, wrong), positional=True)
