"""The game's two LLM functions, as JARVIS tasks.

They are the original game's ``create_next_level`` and ``create_next_map`` (``by llm()`` in
Jac), with the playability rules as semantic validators and the procedural generator as the
offline teacher.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from jarvis.core.tasks import task
from jarvis.rpg.bounds import level_schema, map_schema
from jarvis.rpg.grid import map_to_tiles
from jarvis.rpg.models import Level, Map
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.rules import check_level, check_map
from jarvis.rpg.steering import MapSteer


@task
def create_next_level(last_levels: list[Level], difficulty: int) -> Level:
    """Create the next level of a tile-based RPG, at the requested difficulty.

    The level's name is the number following the last level's name (1 when there is none).
    Time, grid width and height, the number of walls and of enemies grow with difficulty, in
    line with the previous levels; everything must fit the grid.
    """


@create_next_level.validator
def _level_fits_request(level: Level, inputs: Mapping[str, Any]) -> str | None:
    return check_level(level, difficulty=inputs["difficulty"])


@create_next_level.bounds
def _level_bounds(last_levels: list[Level], difficulty: int) -> dict[str, Any]:
    return level_schema(last_levels, difficulty)


@create_next_level.oracle
def _procedural_level(last_levels: list[Level], difficulty: int, rng: random.Random) -> Level:
    return oracle_level(last_levels, difficulty, rng)


# Maps are long answers whose validity comes from steering, not from memorised layouts: one
# epoch in smaller batches keeps training inside the 10-minute / 6 GiB budget (README). The
# teacher draws its maps at random, so any playable map is as good as the teacher's.
@task(train={"train_epochs": 1, "train_tokens_per_batch": 1024}, compare="valid")
def create_next_map(level: Level) -> Map:
    """Design a playable map for the given level of a tile-based RPG.

    Coordinates are 0-based: 0 <= x < width and 0 <= y < height. Use exactly the given level,
    `num_wall` straight (horizontal or vertical) walls, a few small obstacles, `num_enemies`
    enemies and the player, each on its own free cell. Every enemy must be reachable from the
    player by up/down/left/right moves that avoid walls and obstacles.
    """


@create_next_map.validator
def _map_is_playable(game_map: Map, inputs: Mapping[str, Any]) -> str | None:
    return check_map(game_map, inputs["level"])


@create_next_map.bounds
def _map_bounds(level: Level) -> dict[str, Any]:
    return map_schema(level)


@create_next_map.steering
def _map_steering(level: Level) -> MapSteer:
    return MapSteer(level)


@create_next_map.display
def _map_tiles(game_map: Map) -> dict[str, Any]:
    return {"tiles": map_to_tiles(game_map)}  # the dashboard draws the grid


@create_next_map.oracle
def _procedural_map(level: Level, rng: random.Random) -> Map:
    return oracle_map(level, rng)


__all__ = ["create_next_level", "create_next_map"]
