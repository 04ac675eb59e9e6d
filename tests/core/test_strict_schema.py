"""A schema as strict as the program's own type: enums as ``enum``, ranges from the notes.

byLLM describes an enum only in prose, so by its schema ``{"category": "Billing"}`` is a
valid answer that the program itself then crashes on. JARVIS's schema comes from the type.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import jsonschema
import pytest

from jarvis.core.schema_tasks import SchemaTask
from jarvis.core.strict_schema import WRAPPER, add_ranges, enums_from_prose, strict_schema
from jarvis.core.validate import validate_answer


class Category(enum.Enum):
    BILLING = "billing"
    TECHNICAL = "technical"
    OTHER = "other"


@dataclass
class Triage:  # what a Jac `obj` is: a dataclass
    category: Category
    priority: int


# byLLM's own schema for `def triage(ticket: str) -> Triage by llm();` (0.4.20), as logged
BYLLM = {
    "title": "Triage",
    "type": "object",
    "properties": {
        "category": {
            "description": "\nThe value *should* be one in this list: ['billing', 'technical', "
            "'other'] where the names are [BILLING, TECHNICAL, OTHER].",
            "type": "string",
        },
        "priority": {
            "type": "integer",
            "description": "How urgent the ticket is, from 1 (low) to 5 (critical).",
        },
    },
    "required": ["category", "priority"],
    "additionalProperties": False,
}


def valid(schema: dict[str, object], answer: object) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(answer)


def test_byllm_s_schema_alone_accepts_what_the_program_rejects() -> None:
    assert valid(BYLLM, {"category": "Billing", "priority": 5_000_000_000_000})


def test_the_type_makes_the_enum_an_enum_and_the_note_makes_the_range() -> None:
    strict = strict_schema(BYLLM, Triage)
    assert valid(strict, {"category": "billing", "priority": 3})
    assert not valid(strict, {"category": "Billing", "priority": 3})
    assert not valid(strict, {"category": "billing", "priority": 5_000_000_000_000})
    assert not valid(strict, {"category": "billing", "priority": 0})
    assert "from 1 (low) to 5" in str(strict)  # the note is kept for the teacher


def test_without_the_type_the_prose_still_gives_the_enum() -> None:
    strict = strict_schema(BYLLM)
    assert strict["properties"]["category"]["enum"] == ["billing", "technical", "other"]
    assert (
        strict["properties"]["priority"]["minimum"],
        strict["properties"]["priority"]["maximum"],
    ) == (1, 5)


def test_an_answer_byllm_wraps_stays_wrapped() -> None:
    wrapped = {
        "type": "object",
        "properties": {
            WRAPPER: {"type": "string", "description": "should be one in this list: ['a']"}
        },
        "required": [WRAPPER],
    }
    strict = strict_schema(wrapped, Category)
    assert valid(strict, {WRAPPER: "billing"})
    assert not valid(strict, {WRAPPER: "Billing"})
    assert not valid(strict, "billing")


@pytest.mark.parametrize(
    ("note", "bounds"),
    [
        ("from 1 (low) to 5 (critical)", (1, 5)),
        ("between 0 and 100", (0, 100)),
        ("a score 1-10", (1, 10)),
        ("at least 2 items", (2, None)),
        ("no more than 7", (None, 7)),
        ("the year it was founded", (None, None)),
    ],
)
def test_ranges_stated_in_notes(note: str, bounds: tuple[int | None, int | None]) -> None:
    schema = add_ranges({"type": "integer", "description": note})
    assert (schema.get("minimum"), schema.get("maximum")) == bounds


def test_a_prose_list_that_is_not_a_list_of_strings_is_left_alone() -> None:
    schema = enums_from_prose(
        {"type": "string", "description": "should be one in this list: [1, 2]"}
    )
    assert "enum" not in schema


def test_a_schema_task_with_the_program_type_rejects_what_the_program_would() -> None:
    task = SchemaTask(
        "prog.triage", ["ticket"], strict_schema(BYLLM, Triage), "Triage.", program_type=Triage
    )
    ok = validate_answer(task, {"ticket": "x"}, '{"category": "billing", "priority": 2}')
    bad = validate_answer(task, {"ticket": "x"}, '{"category": "Billing", "priority": 9}')
    assert ok.valid
    assert not bad.valid and bad.stage == "semantic"
    assert len(bad.problems) == 2  # both broken rules, not only the first
    assert any("'Billing' is not one of" in p for p in bad.problems)
    assert any("9 is greater than the maximum of 5" in p for p in bad.problems)


def test_references_are_written_out_for_servers_that_do_not_follow_them() -> None:
    strict = strict_schema(BYLLM, Triage)
    assert "$defs" not in strict and "$ref" not in str(strict)
    assert strict["properties"]["category"]["enum"] == ["billing", "technical", "other"]
