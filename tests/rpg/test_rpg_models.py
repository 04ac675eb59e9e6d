"""The RPG models are the *format*: strict types, no unknown keys, and a stable repr."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from jarvis.rpg import Level, Map, Position, Wall

LEVEL_JSON = (
    '{"name": 3, "difficulty": 1, "time": 300, "width": 10, "height": 10,'
    ' "num_wall": 5, "num_enemies": 2}'
)


def make_map_dict() -> dict[str, object]:
    return {
        "level": json.loads(LEVEL_JSON),
        "walls": [{"start_pos": {"x": 2, "y": 2}, "end_pos": {"x": 2, "y": 4}}],
        "small_obstacles": [{"x": 5, "y": 5}],
        "enemies": [{"x": 7, "y": 7}, {"x": 8, "y": 1}],
        "player_pos": {"x": 0, "y": 0},
    }


def test_level_parses_from_json_numbers() -> None:
    level = Level.model_validate_json(LEVEL_JSON)
    assert level.width == 10 and level.num_enemies == 2


def test_repr_matches_the_prompt_rendering() -> None:
    level = Level.model_validate_json(LEVEL_JSON)
    assert repr(level) == (
        "Level(name=3, difficulty=1, time=300, width=10, height=10, num_wall=5, num_enemies=2)"
    )
    assert repr(Wall(start_pos=Position(x=1, y=2), end_pos=Position(x=1, y=4))) == (
        "Wall(start_pos=Position(x=1, y=2), end_pos=Position(x=1, y=4))"
    )


def test_field_order_is_the_original_games() -> None:
    assert list(Position.model_fields) == ["x", "y"]
    assert list(Wall.model_fields) == ["start_pos", "end_pos"]
    assert list(Level.model_fields) == [
        "name",
        "difficulty",
        "time",
        "width",
        "height",
        "num_wall",
        "num_enemies",
    ]
    assert list(Map.model_fields) == ["level", "walls", "small_obstacles", "enemies", "player_pos"]


def test_map_round_trips_through_json() -> None:
    map_ = Map.model_validate_json(json.dumps(make_map_dict()))
    assert Map.model_validate_json(map_.model_dump_json()) == map_
    assert Map.model_validate(make_map_dict()) == map_


def test_string_number_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Level.model_validate_json(LEVEL_JSON.replace('"width": 10', '"width": "10"'))


@pytest.mark.parametrize("bad", ["3.5", "true", "null"])
def test_non_integer_number_is_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        Position.model_validate_json(f'{{"x": {bad}, "y": 1}}')


def test_missing_key_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Level.model_validate_json(LEVEL_JSON.replace(', "num_enemies": 2', ""))


def test_unknown_key_is_rejected() -> None:
    data = make_map_dict()
    data["player"] = {"x": 0, "y": 0}
    with pytest.raises(ValidationError):
        Map.model_validate_json(json.dumps(data))


def test_misspelled_nested_key_is_rejected() -> None:
    data = make_map_dict()
    data["walls"] = [{"start": {"x": 2, "y": 2}, "end": {"x": 2, "y": 4}}]
    with pytest.raises(ValidationError):
        Map.model_validate_json(json.dumps(data))


def test_wrong_container_type_is_rejected() -> None:
    data = make_map_dict()
    data["enemies"] = {"x": 7, "y": 7}
    with pytest.raises(ValidationError):
        Map.model_validate_json(json.dumps(data))
