"""Prompts: what the teacher, the training data and the student all see, and reading it back.

The user message keeps the original Jac/byLLM log format (task name, a blank line, one
``name = repr(value)`` line per argument), so :mod:`jarvis.core.pyrepr` can read both our messages
and the original system's logs back into inputs, without ever evaluating them.
"""

from __future__ import annotations

import json
import random

import pytest

import jarvis
from jarvis.core.prompts import (
    JSON_RULE,
    TEXT_RULE,
    render_answer,
    render_messages,
    retry_feedback,
    system_message,
    training_conversation,
    user_message,
)
from jarvis.core.pyrepr import ReprError, parse_call_text, parse_value
from jarvis.core.validate import validate_answer
from jarvis.rpg import Level, Map, create_next_level, create_next_map, oracle_map

LEVEL_1 = Level(name=1, difficulty=1, time=300, width=10, height=10, num_wall=5, num_enemies=2)


@jarvis.task
def summarize(text: str, max_words: int = 12) -> str:
    """Summarize the text in one sentence."""


def level_inputs() -> dict[str, object]:
    # Given out of signature order on purpose: the message must follow the signature.
    return create_next_level.load_inputs({"difficulty": 2, "last_levels": [LEVEL_1]})


# -- the user message ---------------------------------------------------------------------


def test_the_user_message_is_the_task_name_a_blank_line_and_one_repr_line_per_argument() -> None:
    message = user_message(create_next_level, level_inputs())

    assert message.split("\n") == [
        "create_next_level",
        "",
        "last_levels = [Level(name=1, difficulty=1, time=300, width=10, height=10, "
        "num_wall=5, num_enemies=2)]",
        "difficulty = 2",
    ]


def test_the_user_message_follows_the_signature_order_not_the_dict_order() -> None:
    inputs = summarize.load_inputs({"max_words": 5, "text": "a long story"})
    assert user_message(summarize, inputs) == "summarize\n\ntext = 'a long story'\nmax_words = 5"


# -- the system message -------------------------------------------------------------------


def test_the_system_message_holds_the_instructions_and_the_compact_schema() -> None:
    system = system_message(create_next_level)
    schema_text = create_next_level.output_schema_text

    assert system.startswith(create_next_level.instructions)
    assert JSON_RULE in system
    assert system.endswith(schema_text)
    assert json.loads(schema_text) == create_next_level.output_schema == Level.model_json_schema()
    assert schema_text == json.dumps(Level.model_json_schema(), separators=(",", ":"))  # compact
    assert '": ' not in schema_text


def test_render_messages_is_a_system_then_a_user_message() -> None:
    inputs = level_inputs()
    messages = render_messages(create_next_level, inputs)
    assert messages == [
        {"role": "system", "content": system_message(create_next_level)},
        {"role": "user", "content": user_message(create_next_level, inputs)},
    ]


# -- the answer ---------------------------------------------------------------------------


def test_an_answer_is_compact_json_that_parses_back_to_the_same_value() -> None:
    text = render_answer(create_next_level, LEVEL_1)
    assert " " not in text and "\n" not in text
    assert Level.model_validate_json(text) == LEVEL_1

    game_map = oracle_map(LEVEL_1, random.Random(3))
    map_text = render_answer(create_next_map, game_map)
    assert " " not in map_text
    assert Map.model_validate_json(map_text) == game_map
    assert validate_answer(create_next_map, {"level": LEVEL_1}, map_text).valid


def test_a_training_example_is_the_messages_plus_the_rendered_answer() -> None:
    inputs = level_inputs()
    conversation = training_conversation(create_next_level, inputs, LEVEL_1)
    assert conversation[:2] == render_messages(create_next_level, inputs)
    assert conversation[2] == {
        "role": "assistant",
        "content": render_answer(create_next_level, LEVEL_1),
    }


def test_a_free_text_task_has_no_schema_and_its_answer_is_the_text() -> None:
    assert summarize.is_free_text
    assert summarize.output_schema is None
    system = system_message(summarize)
    assert system == f"Summarize the text in one sentence.\n\n{TEXT_RULE}"
    assert "schema" not in system.lower()
    assert render_answer(summarize, "A short story.") == "A short story."


def test_retry_feedback_names_the_reason() -> None:
    feedback = retry_feedback("enemy 1 at (5, 5) cannot be reached")
    assert feedback["role"] == "user"
    assert "enemy 1 at (5, 5) cannot be reached" in feedback["content"]


# -- reading calls back (pyrepr) ----------------------------------------------------------


def test_a_rendered_user_message_reads_back_to_the_same_inputs() -> None:
    inputs = level_inputs()
    name, args = parse_call_text(user_message(create_next_level, inputs))
    assert name == "create_next_level"
    assert create_next_level.load_inputs(args) == inputs

    map_inputs = create_next_map.load_inputs({"level": LEVEL_1})
    name, args = parse_call_text(user_message(create_next_map, map_inputs))
    assert name == "create_next_map"
    assert create_next_map.load_inputs(args) == map_inputs


def test_the_original_systems_call_format_is_read() -> None:
    text = (
        "create_next_level\n\n"
        "self = LevelManager(current_level=2, current_difficulty=1, prev_levels=[], "
        "prev_level_maps=[])\n"
        "last_levels = []\n"
        "difficulty = 1"
    )
    name, args = parse_call_text(text)
    assert name == "create_next_level"
    assert args == {
        "self": {
            "current_level": 2,
            "current_difficulty": 1,
            "prev_levels": [],
            "prev_level_maps": [],
        },
        "last_levels": [],
        "difficulty": 1,
    }


def test_a_multi_line_argument_continues_on_the_next_lines() -> None:
    name, args = parse_call_text("f\n\nitems = [1,\n  2,\n  3]\nflag = True")
    assert (name, args) == ("f", {"items": [1, 2, 3], "flag": True})


def test_the_original_systems_map_output_is_read_into_a_valid_map() -> None:
    text = (
        "Map_tiles(level=Level(name=3, difficulty=1, time=300, width=10, height=10, num_wall=5, "
        "num_enemies=2), walls=[Wall(start_pos=Position(x=0, y=0), end_pos=Position(x=0, y=9))], "
        "small_obstacles=[Position(x=3, y=4)], enemies=[Position(x=5, y=5), Position(x=7, y=-0)], "
        "player_pos=Position(x=1, y=1))"
    )
    data = parse_value(text)
    assert data["walls"] == [{"start_pos": {"x": 0, "y": 0}, "end_pos": {"x": 0, "y": 9}}]
    game_map = Map.model_validate(data)
    assert game_map.level.name == 3
    assert game_map.enemies[1].x == 7
    level = game_map.level
    assert validate_answer(create_next_map, {"level": level}, game_map.model_dump_json()).valid


@pytest.mark.parametrize(
    ("text", "message_part"),
    [
        ("Level(3, 1)", "keyword arguments only"),
        ("x", "Name"),
        ("os.path", "Attribute"),
        ("__import__('os')", "keyword arguments only"),
        ("__import__('os').system('echo hacked')", "plain class name"),
        ("(lambda: 1)()", "plain class name"),
        ("a.b(x=1)", "plain class name"),
        ("[1, 2][0]", "Subscript"),
        ("1 + 2", "BinOp"),
        ("lambda: 1", "Lambda"),
        ("Level(**kwargs)", "'**'"),
        ("-'a'", "non-number"),
        ("Level(name=", "not a Python literal"),
    ],
)
def test_pyrepr_refuses_anything_but_literals_and_keyword_constructors(
    text: str, message_part: str
) -> None:
    with pytest.raises(ReprError, match=message_part.replace("*", r"\*")):
        parse_value(text)


def test_pyrepr_never_evaluates_its_input() -> None:
    """A call text that would run code if evaluated is refused, naming the argument."""
    evil = "create_next_level\n\ndifficulty = __import__('os').system('touch /tmp/jarvis_pwned')"
    with pytest.raises(ReprError, match="argument 'difficulty'"):
        parse_call_text(evil)


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "not a name!\n\nx = 1", "f\nthis is not an argument line"],
    ids=["empty", "blank", "bad-name", "bad-line"],
)
def test_malformed_call_texts_are_refused(text: str) -> None:
    with pytest.raises(ReprError):
        parse_call_text(text)
