"""The procedural oracle as a teacher, and how a teacher is picked for a task."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import jarvis
from jarvis import GenerationRequest, OpenAITeacher, OracleTeacher, Settings, TeacherError
from jarvis.core.prompts import render_messages
from jarvis.core.tasks import Task
from jarvis.core.validate import validate_answer
from jarvis.rpg import Level, Map, create_next_level, create_next_map, oracle_level
from jarvis.runtime.teachers import TeacherResolver

LEVEL = oracle_level([], 1, random.Random(0))


@jarvis.task
def no_oracle_task(x: int) -> int:
    """A task nobody can answer offline."""


@jarvis.task
def broken_oracle_task(x: int) -> int:
    """A task whose oracle crashes."""


@broken_oracle_task.oracle
def _crash(x: int, rng: random.Random) -> int:
    raise RuntimeError("grid generator exploded")


def request(task: Task[Any], **inputs: Any) -> GenerationRequest:
    loaded = task.load_inputs(inputs)
    return GenerationRequest(task, loaded, render_messages(task, loaded))


def layout(text: str) -> tuple[Any, ...]:
    """Everything a map generator chooses, i.e. all but the level it was given."""
    game_map = Map.model_validate_json(text)
    return game_map.walls, game_map.small_obstacles, game_map.enemies, game_map.player_pos


# -- answers ------------------------------------------------------------------------------


def test_the_oracle_answers_are_valid_and_labelled_as_the_oracle() -> None:
    teacher = OracleTeacher(seed=1)
    generation = teacher.generate(request(create_next_map, level=LEVEL))

    assert generation.model == "oracle:create_next_map"
    assert teacher.name == "oracle"
    assert validate_answer(create_next_map, {"level": LEVEL}, generation.text).valid


def test_with_a_seed_the_same_input_gives_the_same_answer() -> None:
    first = OracleTeacher(seed=42).generate(request(create_next_map, level=LEVEL)).text
    again = OracleTeacher(seed=42).generate(request(create_next_map, level=LEVEL)).text
    teacher = OracleTeacher(seed=42)
    twice = [teacher.generate(request(create_next_map, level=LEVEL)).text for _ in range(2)]

    assert first == again == twice[0] == twice[1]


def test_with_a_seed_different_inputs_get_different_layouts() -> None:
    teacher = OracleTeacher(seed=42)
    other_level = LEVEL.model_copy(update={"name": 2})  # same grid, another level

    a = teacher.generate(request(create_next_map, level=LEVEL)).text
    b = teacher.generate(request(create_next_map, level=other_level)).text

    assert layout(a) != layout(b)


def test_different_seeds_give_different_layouts() -> None:
    a = OracleTeacher(seed=1).generate(request(create_next_map, level=LEVEL)).text
    b = OracleTeacher(seed=2).generate(request(create_next_map, level=LEVEL)).text
    assert layout(a) != layout(b)


def test_without_a_seed_each_call_draws_a_fresh_map() -> None:
    teacher = OracleTeacher()
    maps = [teacher.generate(request(create_next_map, level=LEVEL)).text for _ in range(2)]

    assert layout(maps[0]) != layout(maps[1])
    assert all(validate_answer(create_next_map, {"level": LEVEL}, m).valid for m in maps)


def test_levels_follow_the_inputs() -> None:
    teacher = OracleTeacher(seed=3)
    one = Level.model_validate_json(
        teacher.generate(request(create_next_level, last_levels=[], difficulty=1)).text
    )
    two = Level.model_validate_json(
        teacher.generate(request(create_next_level, last_levels=[one], difficulty=2)).text
    )
    assert (one.name, one.difficulty) == (1, 1)
    assert (two.name, two.difficulty) == (2, 2)
    assert two.width > one.width


# -- failures -----------------------------------------------------------------------------


def test_a_task_without_an_oracle_says_how_to_get_an_llm_teacher() -> None:
    with pytest.raises(TeacherError) as info:
        OracleTeacher().generate(request(no_oracle_task, x=1))
    assert "no_oracle_task" in str(info.value)
    assert "JARVIS_TEACHER_BASE_URL" in str(info.value)


def test_a_crashing_oracle_is_a_teacher_error_with_the_cause() -> None:
    with pytest.raises(TeacherError, match="grid generator exploded"):
        OracleTeacher().generate(request(broken_oracle_task, x=1))


# -- choosing a teacher -------------------------------------------------------------------


def test_the_oracle_teaches_by_default(home: Path) -> None:
    resolver = TeacherResolver(Settings(home=home, teacher_seed=9))
    teacher = resolver.for_task(create_next_level)

    assert isinstance(teacher, OracleTeacher)
    assert teacher.seed == 9
    assert resolver.for_task(create_next_map) is teacher
    assert "oracle" in resolver.describe()


def test_a_base_url_selects_the_openai_teacher(home: Path) -> None:
    url = "http://127.0.0.1:9/v1"
    resolver = TeacherResolver(Settings(home=home, teacher_base_url=url, teacher_model="m"))
    teacher = resolver.for_task(create_next_level)

    assert isinstance(teacher, OpenAITeacher)
    assert teacher.base_url == url
    assert teacher.model == "m"
    assert resolver.for_task(no_oracle_task) is teacher  # one client, built once
    assert resolver.describe().startswith(teacher.name)
    assert "structured output: json_schema" in resolver.describe()


def test_teacher_oracle_mode_ignores_the_base_url(home: Path) -> None:
    settings = Settings(home=home, teacher="oracle", teacher_base_url="http://127.0.0.1:9/v1")
    assert isinstance(TeacherResolver(settings).for_task(create_next_level), OracleTeacher)


def test_no_oracle_and_no_base_url_means_no_teacher(home: Path) -> None:
    resolver = TeacherResolver(Settings(home=home))
    with pytest.raises(TeacherError, match="JARVIS_TEACHER_BASE_URL"):
        resolver.for_task(no_oracle_task)
