"""Per-call answer schemas for the RPG tasks: what a call's inputs say about its answer.

Constrained decoding compiles these, so a student *cannot* write a map whose coordinates leave
the level's grid, with the wrong number of walls or enemies, or for another level; only what a
grammar cannot say (free cells, straight walls, reachability) is left to
:func:`jarvis.rpg.rules.check_map`. Any answer these schemas admit still goes through the
validators.
"""

from __future__ import annotations

from typing import Any

from jarvis.rpg.models import Level
from jarvis.rpg.rules import MAX_SIZE, MIN_SIZE

__all__ = ["level_schema", "map_schema"]

ROOM = MAX_SIZE * MAX_SIZE // 4
"""At most this many walls or enemies fit the largest grid (check_level's rule)."""
MAX_TIME = 1_000_000
"""A generous cap on a level's time: without one a runaway ``1000000…`` never ends."""


def _int(low: int, high: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return schema


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _exactly(item: dict[str, Any], count: int) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": count, "maxItems": count}


def level_schema(last_levels: list[Level], difficulty: int) -> dict[str, Any]:
    """The next level: its name follows the last one, at the requested difficulty."""
    name = max(last_levels[-1].name + 1, 1) if last_levels else 1
    return _object(
        name={"const": name},
        difficulty={"const": difficulty},
        time=_int(1, MAX_TIME),
        width=_int(MIN_SIZE, MAX_SIZE),
        height=_int(MIN_SIZE, MAX_SIZE),
        num_wall=_int(0, ROOM),
        num_enemies=_int(1, ROOM),
    )


def map_schema(level: Level) -> dict[str, Any]:
    """A map of exactly this level: coordinates inside its grid, exact wall and enemy counts."""
    position = _object(x=_int(0, level.width - 1), y=_int(0, level.height - 1))
    side = min(level.width, level.height)
    return _object(
        level={"const": level.model_dump()},
        walls=_exactly(_object(start_pos=position, end_pos=position), level.num_wall),
        small_obstacles={"type": "array", "items": position, "maxItems": side},
        enemies=_exactly(position, level.num_enemies),
        player_pos=position,
    )
