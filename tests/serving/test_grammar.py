"""The answer grammar (llguidance): what a call's schema admits, fed to the matcher as tokens."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import BaseModel

from jarvis.core.codec import student_answer
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.serving.grammar import UnsupportedSchema, Vocabulary, compile_schema


def admits(
    vocab: Vocabulary, schema: dict[str, Any], text: str, *, positional: bool = False
) -> bool:
    return compile_schema(schema, vocab, positional=positional).accepts(text)


def test_integers_respect_their_bounds_digit_by_digit(vocab: Vocabulary) -> None:
    schema = {"type": "integer", "minimum": 3, "maximum": 42}
    grammar = compile_schema(schema, vocab)
    assert [n for n in range(-5, 60) if grammar.accepts(str(n))] == list(range(3, 43))
    # a prefix survives only if some allowed number starts with it
    digits = {vocab.texts[t]: t for t in grammar.matcher().allowed() if vocab.texts[t].isdigit()}
    assert "5" in digits and "0" not in digits  # no leading zeros, and 0 < 3
    matcher = grammar.matcher()
    assert matcher.consume(vocab.encode("4"))
    assert "3" not in {vocab.texts[t] for t in matcher.allowed()}  # 43 > 42


def test_negative_and_unbounded_integers(vocab: Vocabulary) -> None:
    assert admits(vocab, {"type": "integer"}, "-17")
    assert admits(vocab, {"type": "integer", "maximum": -2}, "-2")
    assert not admits(vocab, {"type": "integer", "maximum": -2}, "-1")
    assert not admits(vocab, {"type": "integer", "minimum": 0}, "-0")
    assert not admits(vocab, {"type": "integer"}, "007")


def test_arrays_count_their_items(vocab: Vocabulary) -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3}
    assert not admits(vocab, schema, "[1]")
    assert admits(vocab, schema, "[1,2]")
    assert admits(vocab, schema, "[1,2,3]")
    assert not admits(vocab, schema, "[1,2,3,4]")
    assert not admits(vocab, schema, "[1, 2]")  # no whitespace: the student writes compact JSON


class Point(BaseModel):
    x: int
    y: int | None = None
    tag: str = ""
    ok: bool = True


def test_objects_keyed_and_positional(vocab: Vocabulary) -> None:
    schema = Point.model_json_schema()
    assert admits(vocab, schema, '{"x":1,"y":null,"tag":"a\\"b","ok":false}')
    assert admits(vocab, schema, '{"x":1}')  # optional properties may be left out
    assert not admits(vocab, schema, '{"y":1}')  # a required one may not
    assert not admits(vocab, schema, '{"y":1,"x":1,"tag":"","ok":true}')  # declaration order
    assert not admits(vocab, schema, '{"x": 1}')  # compact, as the student is trained
    assert admits(vocab, schema, '[1,2,"",true]', positional=True)
    assert not admits(vocab, schema, '[1,2,""]', positional=True)


def test_const_enum_and_numbers(vocab: Vocabulary) -> None:
    assert admits(vocab, {"const": {"a": 1, "b": [2]}}, '{"a":1,"b":[2]}')
    assert admits(vocab, {"const": {"a": 1, "b": [2]}}, "[1,[2]]", positional=True)
    assert admits(vocab, {"enum": ["red", "green"]}, '"green"')
    assert not admits(vocab, {"enum": ["red", "green"]}, '"blue"')
    assert admits(vocab, {"type": "number"}, "-1.5e3")
    assert not admits(vocab, {"type": "number"}, "1.")


def test_what_the_old_grammar_could_not_enforce(vocab: Vocabulary) -> None:
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert admits(vocab, counts, '{"a":1,"b":2}') and not admits(vocab, counts, '{"a":"x"}')
    either = {"anyOf": [{"type": "integer", "maximum": 3}, {"type": "string"}]}
    assert (
        admits(vocab, either, "2")
        and admits(vocab, either, '"x"')
        and not admits(vocab, either, "4")
    )
    word = {"type": "string", "pattern": "^[a-z]+$"}
    assert admits(vocab, word, '"abc"') and not admits(vocab, word, '"ab1"')
    assert admits(vocab, {"type": "integer", "multipleOf": 3}, "9")
    assert not admits(vocab, {"type": "integer", "multipleOf": 3}, "10")


def test_non_ascii_strings_count_characters_not_bytes_or_tokens(vocab: Vocabulary) -> None:
    short = {"type": "string", "maxLength": 10}
    assert admits(vocab, short, '"日本語テキスト"')  # 7 characters, 21 bytes
    assert not admits(vocab, short, '"日本語テキストです。長い"')  # 12 characters
    assert admits(vocab, {"type": "string", "minLength": 2, "maxLength": 2}, '"é😀"')


def test_unsupported_schemas_name_the_keyword(vocab: Vocabulary) -> None:
    with pytest.raises(UnsupportedSchema, match="propertyNames"):
        compile_schema({"type": "object", "propertyNames": {"pattern": "^a"}}, vocab)


@pytest.mark.parametrize("difficulty", [1, 4, 9, 15, 20])
def test_every_oracle_map_fits_its_own_call_schema(difficulty: int, vocab: Vocabulary) -> None:
    rng = random.Random(difficulty)
    level = oracle_level([], difficulty, rng)
    inputs = {"level": level}
    schema = create_next_map.call_schema(inputs)
    assert schema is not None
    for _ in range(5):
        answer = student_answer(create_next_map, oracle_map(level, rng))
        assert admits(vocab, schema, answer, positional=True), answer


def test_a_map_schema_rejects_another_level_and_coordinates_off_the_grid(vocab: Vocabulary) -> None:
    rng = random.Random(0)
    level = oracle_level([], 2, rng)  # 12 x 12
    schema = create_next_map.call_schema({"level": level})
    assert schema is not None
    good = json.loads(student_answer(create_next_map, oracle_map(level, rng)))
    other_level = [good[0][0] + 1, *good[0][1:]]
    assert not admits(
        vocab, schema, json.dumps([other_level, *good[1:]], separators=(",", ":")), positional=True
    )
    off_grid = [*good[:4], [level.width, 0]]  # the player at x = width
    assert not admits(vocab, schema, json.dumps(off_grid, separators=(",", ":")), positional=True)
    too_few_enemies = [*good[:3], good[3][:-1], good[4]]
    assert not admits(
        vocab, schema, json.dumps(too_few_enemies, separators=(",", ":")), positional=True
    )


def test_a_level_schema_fixes_the_name_and_difficulty(vocab: Vocabulary) -> None:
    last = oracle_level([], 3, random.Random(0))
    schema = create_next_level.call_schema({"last_levels": [last], "difficulty": 4})
    assert schema is not None
    level = oracle_level([last], 4, random.Random(0))
    assert admits(vocab, schema, student_answer(create_next_level, level), positional=True)
    wrong = level.model_copy(update={"difficulty": 5})
    assert not admits(vocab, schema, student_answer(create_next_level, wrong), positional=True)


def test_a_remembered_refusal_is_raised_again_by_name(vocab: Vocabulary) -> None:
    schema = {"type": "object", "propertyNames": {"pattern": "^b"}}
    for _ in range(2):  # the second answer comes from the cache
        with pytest.raises(UnsupportedSchema, match="propertyNames"):
            vocab.compiled(schema, False)
    assert vocab.compiled({"type": "integer"}, False) is vocab.compiled({"type": "integer"}, False)
