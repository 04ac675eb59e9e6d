"""One renderer for the teacher, training and the student, on a tiny task: the user message is
the task name, a blank line and one ``name = repr(value)`` line per argument, and it reads back
to the same inputs without evaluating anything."""

from __future__ import annotations

import json

from helpers.tiny import Room, next_room, oracle_room
from jarvis.core.prompts import (
    JSON_RULE,
    render_answer,
    render_messages,
    student_messages,
    system_message,
    training_conversation,
    user_message,
)
from jarvis.core.pyrepr import parse_call_text

ROOM = Room(number=1, size=3, doors=1, lamps=3)


def inputs() -> dict[str, object]:
    # given out of signature order on purpose: the message follows the signature
    return next_room.load_inputs({"size": 4, "last_rooms": [ROOM]})


def test_the_user_message_is_the_name_a_blank_line_and_a_repr_line_per_argument() -> None:
    assert user_message(next_room, inputs()).split("\n") == [
        "next_room",
        "",
        "last_rooms = [Room(number=1, size=3, doors=1, lamps=3)]",
        "size = 4",
    ]


def test_the_teacher_gets_the_instructions_and_the_compact_schema() -> None:
    system = system_message(next_room)
    assert system.startswith(next_room.instructions)
    assert JSON_RULE in system
    assert json.loads(system.rsplit("\n", 1)[1]) == Room.model_json_schema()
    assert render_messages(next_room, inputs())[1]["content"] == user_message(next_room, inputs())


def test_the_student_gets_the_first_line_of_the_instructions_and_the_call() -> None:
    system, user = student_messages(next_room, inputs())
    assert system["content"] == "Design the next room of a house, of the requested size."
    assert user["content"] == user_message(next_room, inputs())


def test_a_training_example_is_the_messages_plus_the_compact_answer() -> None:
    answer = oracle_room([ROOM], 4)
    conversation = training_conversation(next_room, inputs(), answer)
    assert conversation[:2] == render_messages(next_room, inputs())
    assert conversation[2]["content"] == render_answer(next_room, answer)
    assert " " not in conversation[2]["content"]


def test_a_rendered_call_reads_back_to_the_same_inputs() -> None:
    name, args = parse_call_text(user_message(next_room, inputs()))
    assert name == "next_room"
    assert next_room.load_inputs(args) == inputs()
