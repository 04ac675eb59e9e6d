"""Declaring tasks: the decorator reads the signature, docstring and return type."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import BaseModel

import jarvis
from jarvis import Jarvis, TaskError


class Point(BaseModel):
    x: int
    y: int


def test_a_decorated_function_becomes_a_task() -> None:
    @jarvis.task
    def midpoint(a: Point, b: Point) -> Point:
        """Return the point halfway between a and b."""

    assert isinstance(midpoint, jarvis.Task)
    assert midpoint.name == "midpoint"
    assert midpoint.param_names == ["a", "b"]
    assert midpoint.instructions == "Return the point halfway between a and b."
    assert midpoint.output_schema is not None
    assert midpoint.output_schema["title"] == "Point"
    assert not midpoint.is_free_text


def test_options_and_free_text() -> None:
    @jarvis.task(name="summarize-v2", threshold=50, heldout_share=0.2)
    def summarize(text: str, words: int = 20) -> str:
        """Summarize."""

    assert summarize.name == "summarize-v2"
    assert summarize.threshold == 50 and summarize.heldout_share == 0.2
    assert summarize.is_free_text and summarize.output_schema is None
    assert summarize.bind("hello") == {"text": "hello", "words": 20}


def test_declaration_errors_are_clear() -> None:
    with pytest.raises(TaskError, match="return type"):

        @jarvis.task
        def no_return(x: int):  # type: ignore[no-untyped-def]
            """No return annotation."""

    with pytest.raises(TaskError, match="needs a type"):

        @jarvis.task
        def untyped(x) -> int:  # type: ignore[no-untyped-def]
            """No type on x."""

    with pytest.raises(TaskError, match="invalid task name"):

        @jarvis.task(name="../etc/passwd")
        def evil() -> int:
            """A name that would escape a directory."""


def test_inputs_are_validated_by_type() -> None:
    @jarvis.task
    def scale(p: Point, factor: int) -> Point:
        """Scale p."""

    assert scale.bind({"x": 1, "y": 2}, 3) == {"p": Point(x=1, y=2), "factor": 3}
    with pytest.raises(TaskError, match="factor"):
        scale.bind(Point(x=1, y=2), "three")
    with pytest.raises(TaskError, match="unexpected keyword"):
        scale.bind(Point(x=1, y=2), 3, colour="red")


def test_a_task_with_its_own_oracle_and_validator_runs_end_to_end(runtime: Jarvis) -> None:
    @jarvis.task
    def add(a: int, b: int) -> int:
        """Add two integers."""

    @add.oracle
    def _add(a: int, b: int, rng: random.Random) -> int:
        return a + b

    @add.validator
    def _non_negative(total: int, inputs: Mapping[str, Any]) -> str | None:
        return None if total >= 0 else "negative total"

    with jarvis.using(runtime):
        assert add(2, 3) == 5
    rows = runtime.store.recent_calls("add")
    assert rows[0]["output"] == 5 and rows[0]["model"] == "oracle:add"
