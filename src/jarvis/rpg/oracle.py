"""A procedural teacher for the RPG tasks: always-valid answers without calling an LLM.

It plays the role of the big model when bootstrapping training data and in tests: levels follow
the original game's synthetic-data scaling exactly (so a small model can learn them), and maps
are random but always pass :func:`jarvis.rpg.rules.check_map`. All randomness comes from the
caller's :class:`random.Random`, so the same seed always gives the same answer.
"""

from __future__ import annotations

import random
from collections import deque

from jarvis.rpg.models import Level, Map, Position, Wall
from jarvis.rpg.rules import MAX_SIZE, check_level, check_map

__all__ = ["oracle_level", "oracle_map"]

_TRIES = 200
"""Random layouts tried per budget before falling back to fewer walls and obstacles."""

_WALL_TRIES = 20
"""Placements tried for one wall before the whole layout is abandoned."""


def oracle_level(last_levels: list[Level], difficulty: int, rng: random.Random) -> Level:
    """Return the next level at ``difficulty``, as the original synthetic data scaled it.

    The result is a pure function of ``last_levels`` and ``difficulty`` (``rng`` is accepted
    only for symmetry with :func:`oracle_map`). Difficulties below 1 count as 1; sizes are
    capped at the largest valid grid and counts are trimmed so the level always validates.
    """
    del rng
    d = max(difficulty, 1)
    name = max(last_levels[-1].name + 1, 1) if last_levels else 1
    size = min(10 + 2 * (d - 1), MAX_SIZE)
    num_wall = 5 + (d - 1)
    num_enemies = 2 + (d - 1)
    budget = (size * size) // 4 - 1
    excess = num_wall + num_enemies - budget
    if excess > 0:
        # Trim both counts about equally so their balance carries on past the size cap.
        num_enemies = max(num_enemies - excess // 2, 1)
        num_wall = max(budget - num_enemies, 0)
    level = Level(
        name=name,
        difficulty=d,
        time=300 + 100 * (d - 1),
        width=size,
        height=size,
        num_wall=num_wall,
        num_enemies=num_enemies,
    )
    assert check_level(level, difficulty=d) is None, check_level(level, difficulty=d)
    return level


def oracle_map(level: Level, rng: random.Random) -> Map:
    """Return a random playable map for ``level``, passing ``check_map(result, level)``.

    Normally it has exactly ``level.num_wall`` straight walls, a few obstacles and exactly
    ``level.num_enemies`` enemies, all on distinct cells. If many random layouts fail, walls get
    shorter and then fewer, so a valid level always gets a map.

    Raises:
        ValueError: if ``level`` itself fails :func:`jarvis.rpg.rules.check_level`; asking
            for a map of an unplayable level is a caller bug, not bad model output.
    """
    problem = check_level(level)
    if problem is not None:
        raise ValueError(f"cannot build a map for an invalid level: {problem}")
    width, height = level.width, level.height
    side = min(width, height)
    max_len = max(2, side // 3)
    if level.num_wall:
        # Only bites on extreme levels: keep walls from covering more than a quarter of the grid.
        max_len = max(1, min(max_len, (width * height) // 4 // level.num_wall))
    num_obstacles = rng.randint(side // 4, side // 2)

    budgets = [(level.num_wall, num_obstacles, max_len), (level.num_wall, num_obstacles, 1)]
    walls, obstacles = level.num_wall, num_obstacles
    while walls or obstacles:
        walls, obstacles = walls // 2, obstacles // 2
        budgets.append((walls, obstacles, 1))
    for num_walls, num_obs, wall_len in budgets:
        # The last budget (no walls, no obstacles) always succeeds on a valid level.
        tries = 1 if num_walls == num_obs == 0 else _TRIES
        for _ in range(tries):
            result = _try_layout(level, rng, num_walls, num_obs, wall_len)
            if result is not None and check_map(result, level) is None:
                return result
    raise AssertionError(f"no layout found for {level!r}")  # pragma: no cover


def _try_layout(
    level: Level, rng: random.Random, num_walls: int, num_obstacles: int, max_len: int
) -> Map | None:
    """Place walls and obstacles at random, then the player and enemies in the largest open
    region, so every enemy is reachable by construction. Returns ``None`` if it gets stuck."""
    width, height = level.width, level.height
    blocked = bytearray(width * height)

    walls: list[Wall] = []
    for _ in range(num_walls):
        for _ in range(_WALL_TRIES):
            length = rng.randint(1, max_len)
            if rng.random() < 0.5:
                length = min(length, width)
                x0, y0 = rng.randrange(width - length + 1), rng.randrange(height)
                cells = [y0 * width + x for x in range(x0, x0 + length)]
                x1, y1 = x0 + length - 1, y0
            else:
                length = min(length, height)
                x0, y0 = rng.randrange(width), rng.randrange(height - length + 1)
                cells = [y * width + x0 for y in range(y0, y0 + length)]
                x1, y1 = x0, y0 + length - 1
            if not any(blocked[c] for c in cells):
                for c in cells:
                    blocked[c] = 1
                walls.append(Wall(start_pos=Position(x=x0, y=y0), end_pos=Position(x=x1, y=y1)))
                break
        else:
            return None

    free = [c for c in range(width * height) if not blocked[c]]
    if len(free) < num_obstacles:
        return None
    obstacle_cells = rng.sample(free, num_obstacles)
    for c in obstacle_cells:
        blocked[c] = 1

    region = _largest_region(blocked, width, height)
    if len(region) < level.num_enemies + 1:
        return None
    player, *enemies = rng.sample(region, level.num_enemies + 1)

    def pos(c: int) -> Position:
        return Position(x=c % width, y=c // width)

    # Lists in reading order (row by row, then column): the game does not care about the
    # order, and a canonical order makes the layout easier to learn and repeats rarer.
    return Map(
        level=level,
        walls=sorted(walls, key=lambda w: (w.start_pos.y, w.start_pos.x)),
        small_obstacles=[pos(c) for c in sorted(obstacle_cells)],
        enemies=[pos(c) for c in sorted(enemies)],
        player_pos=pos(player),
    )


def _largest_region(blocked: bytearray, width: int, height: int) -> list[int]:
    """Return the cells of the largest 4-connected open region, in a deterministic order."""
    seen = bytearray(blocked)
    best: list[int] = []
    for start in range(width * height):
        if seen[start]:
            continue
        seen[start] = 1
        region = [start]
        queue = deque(region)
        while queue:
            c = queue.popleft()
            x = c % width
            for n in (
                c - 1 if x > 0 else -1,
                c + 1 if x < width - 1 else -1,
                c - width,
                c + width if c + width < width * height else -1,
            ):
                if n >= 0 and not seen[n]:
                    seen[n] = 1
                    region.append(n)
                    queue.append(n)
        if len(region) > len(best):
            best = region
    return best
