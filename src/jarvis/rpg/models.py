"""The RPG game's data types, ported field for field from the original Jac game.

These models are the *format* of a level and a map: names, order and types appear verbatim in
prompts and training data, so they must not drift. They are strict (no coercion of ``"3"`` to
``3``, no unknown keys) so that a malformed model answer is rejected at parse time; semantic
rules (bounds, reachability) live in :mod:`jarvis.rpg.rules` so a parsed-but-wrong answer can be
reported with a reason instead of an exception.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Level", "Map", "Position", "Wall"]


class Position(BaseModel):
    """A tile coordinate, 0-based, with ``y`` counting rows downwards."""

    model_config = ConfigDict(extra="forbid", strict=True)

    x: int
    y: int


class Wall(BaseModel):
    """A straight run of wall tiles between two inclusive endpoints."""

    model_config = ConfigDict(extra="forbid", strict=True)

    start_pos: Position
    end_pos: Position


class Level(BaseModel):
    """The parameters of one level, from which a map is then generated."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: int
    difficulty: int
    time: int
    width: int
    height: int
    num_wall: int
    num_enemies: int


class Map(BaseModel):
    """A concrete layout for a level: where walls, obstacles, enemies and the player are."""

    model_config = ConfigDict(extra="forbid", strict=True)

    level: Level
    walls: list[Wall]
    small_obstacles: list[Position]
    enemies: list[Position]
    player_pos: Position
