"""The student's positional answers, on a tiny nested type: objects are written as the list
of their values, and read back into the ordinary keyed answer before anything judges it."""

from __future__ import annotations

import json
import random

import pytest

from helpers.tiny import Furniture, Room, furnish, next_room, oracle_furniture, oracle_room
from jarvis.core.codec import (
    CodecError,
    decode,
    from_student,
    positional_schema,
    student_answer,
    uses_positional,
)
from jarvis.core.prompts import render_answer
from jarvis.core.validate import validate_answer


def test_an_object_is_the_list_of_its_values_in_declaration_order() -> None:
    room = Room(number=2, size=3, doors=1, lamps=3)
    assert student_answer(next_room, room) == "[2,3,1,3]"
    assert uses_positional(next_room)


def test_nested_objects_and_lists_round_trip_to_the_keyed_answer() -> None:
    furniture = oracle_furniture(oracle_room([], 4), random.Random(1))
    compact = student_answer(furnish, furniture)
    keyed = render_answer(furnish, furniture)
    assert len(compact) < len(keyed)
    assert Furniture.model_validate_json(from_student(furnish, compact)) == furniture
    assert validate_answer(furnish, {"room": furniture.room}, from_student(furnish, compact)).valid


def test_a_positional_answer_of_the_wrong_shape_is_a_codec_error_naming_the_place() -> None:
    with pytest.raises(CodecError, match="4 values for Room"):
        decode(Room, [1, 2])
    with pytest.raises(CodecError, match=r"answer\.chairs"):
        decode(Furniture, [[1, 3, 1, 3], 5, [0, 0]])


def test_text_that_does_not_decode_is_left_for_the_validator_to_reject() -> None:
    assert from_student(next_room, "not json") == "not json"
    verdict = validate_answer(next_room, next_room.bind([], 3), from_student(next_room, "[1,2]"))
    assert verdict.stage == "format"


def test_the_schema_in_positional_form_has_prefix_items_in_field_order() -> None:
    schema = positional_schema(next_room.output_schema)
    assert schema["type"] == "array"
    assert [s["type"] for s in schema["prefixItems"]] == ["integer"] * 4
    assert (schema["minItems"], schema["maxItems"], schema["items"]) == (4, 4, False)
    nested = positional_schema(furnish.output_schema)
    # the furniture, its room, a chair, the table
    assert json.dumps(nested).count("prefixItems") == 4


def test_an_answer_nested_without_end_is_left_for_the_validator_not_a_crash() -> None:
    runaway = "[" * 100_000  # a student that opens brackets until its budget ends
    assert from_student(next_room, runaway) == runaway
    assert validate_answer(next_room, next_room.bind([], 3), runaway).reason == (
        "not valid JSON: nested too deeply"
    )
