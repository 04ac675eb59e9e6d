"""The semantic rules of the RPG domain: what makes a parsed level or map *playable*.

Every check returns ``None`` when the data is fine, or a short reason naming the first problem
found (object, index and coordinates). Bad data never raises: these reasons are fed back to
models on retry and stored next to rejected answers, so they must be readable and specific.

Coordinates are 0-based (``0 <= x < width``, ``0 <= y < height``); the border drawn by
:mod:`jarvis.rpg.grid` lies outside the grid. Objects are numbered from 1 in reasons.
"""

from __future__ import annotations

from collections import deque

from jarvis.rpg.models import Level, Map, Position, Wall

__all__ = [
    "MAX_SIZE",
    "MIN_SIZE",
    "blocked_cells",
    "check_level",
    "check_map",
    "reachable_from",
    "wall_cells",
]

Cell = tuple[int, int]

MIN_SIZE = 4
"""Smallest width/height: anything smaller leaves no room for walls and enemies."""

MAX_SIZE = 100
"""Largest width/height: keeps rendered prompts and BFS checks small."""

_STEPS: tuple[Cell, ...] = ((1, 0), (-1, 0), (0, 1), (0, -1))


def _at(pos: Position) -> str:
    return f"({pos.x}, {pos.y})"


def _grid(level: Level) -> str:
    return f"{level.width}x{level.height} grid"


def _inside(pos: Position, level: Level) -> bool:
    return 0 <= pos.x < level.width and 0 <= pos.y < level.height


def check_level(level: Level, *, difficulty: int | None = None) -> str | None:
    """Check that a level is playable and, if asked, has the requested difficulty."""
    if level.name < 1:
        return f"level name {level.name} must be at least 1"
    if level.difficulty < 1:
        return f"level difficulty {level.difficulty} must be at least 1"
    if level.time <= 0:
        return f"level time {level.time} must be positive"
    for field, size in (("width", level.width), ("height", level.height)):
        if not MIN_SIZE <= size <= MAX_SIZE:
            return f"level {field} {size} must be between {MIN_SIZE} and {MAX_SIZE}"
    if level.num_wall < 0:
        return f"level num_wall {level.num_wall} must not be negative"
    if level.num_enemies < 1:
        return f"level num_enemies {level.num_enemies} must be at least 1"
    if difficulty is not None and level.difficulty != difficulty:
        return f"level difficulty is {level.difficulty}, expected {difficulty}"
    needed = level.num_wall + level.num_enemies + 1
    room = (level.width * level.height) // 4
    if needed > room:
        return (
            f"num_wall + num_enemies + 1 = {needed} does not fit the {_grid(level)} "
            f"(at most {room})"
        )
    return None


def _wall_span(wall: Wall) -> tuple[int, int, int, int]:
    """Return ``(x0, x1, y0, y1)`` with endpoints normalised so reversed walls count."""
    a, b = wall.start_pos, wall.end_pos
    return min(a.x, b.x), max(a.x, b.x), min(a.y, b.y), max(a.y, b.y)


def wall_cells(map: Map) -> set[Cell]:
    """Return the in-grid cells covered by the map's walls.

    Diagonal walls cover their bounding box (as the original game drew them); cells outside the
    grid are dropped, so this is safe to call on unvalidated maps.
    """
    width, height = map.level.width, map.level.height
    cells: set[Cell] = set()
    for wall in map.walls:
        x0, x1, y0, y1 = _wall_span(wall)
        for x in range(max(x0, 0), min(x1, width - 1) + 1):
            for y in range(max(y0, 0), min(y1, height - 1) + 1):
                cells.add((x, y))
    return cells


def blocked_cells(map: Map) -> set[Cell]:
    """Return the cells nobody can walk through: walls and small obstacles."""
    return wall_cells(map) | {(p.x, p.y) for p in map.small_obstacles}


def reachable_from(map: Map, start: Cell) -> set[Cell]:
    """Return the in-grid cells reachable from ``start`` by 4-way moves through free cells.

    Enemy cells count as free. A blocked or out-of-grid start reaches nothing.
    """
    width, height = map.level.width, map.level.height
    blocked = blocked_cells(map)
    sx, sy = start
    if not (0 <= sx < width and 0 <= sy < height) or start in blocked:
        return set()
    seen: set[Cell] = {start}
    queue: deque[Cell] = deque([start])
    while queue:
        x, y = queue.popleft()
        for dx, dy in _STEPS:
            nxt = (x + dx, y + dy)
            nx, ny = nxt
            if 0 <= nx < width and 0 <= ny < height and nxt not in blocked and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _level_difference(got: Level, want: Level) -> str | None:
    for field in Level.model_fields:
        a, b = getattr(got, field), getattr(want, field)
        if a != b:
            return f"map level {field} is {a}, expected {b}"
    return None


def check_map(map: Map, level: Level | None = None) -> str | None:
    """Check that a map is playable and, if given, built for the requested ``level``."""
    problem = check_level(map.level)
    if problem is not None:
        return f"map level is invalid: {problem}"
    if level is not None:
        problem = _level_difference(map.level, level)
        if problem is not None:
            return problem
    lvl = map.level
    grid = _grid(lvl)

    for i, wall in enumerate(map.walls, 1):
        for end, pos in (("start", wall.start_pos), ("end", wall.end_pos)):
            if not _inside(pos, lvl):
                return f"wall {i} {end} {_at(pos)} is outside the {grid}"
        if wall.start_pos.x != wall.end_pos.x and wall.start_pos.y != wall.end_pos.y:
            return (
                f"wall {i} from {_at(wall.start_pos)} to {_at(wall.end_pos)} is diagonal; "
                "walls must be horizontal or vertical"
            )
    walls = wall_cells(map)

    def placement(kind: str, i: int | None, pos: Position) -> str | None:
        name = kind if i is None else f"{kind} {i}"
        if not _inside(pos, lvl):
            return f"{name} at {_at(pos)} is outside the {grid}"
        if (pos.x, pos.y) in walls:
            return f"{name} at {_at(pos)} is on a wall"
        return None

    for i, pos in enumerate(map.small_obstacles, 1):
        problem = placement("obstacle", i, pos)
        if problem is not None:
            return problem
    for i, pos in enumerate(map.enemies, 1):
        problem = placement("enemy", i, pos)
        if problem is not None:
            return problem
    problem = placement("player", None, map.player_pos)
    if problem is not None:
        return problem

    if len(map.enemies) < lvl.num_enemies:
        return f"map has {len(map.enemies)} enemies, level needs at least {lvl.num_enemies}"
    first_enemy: dict[Cell, int] = {}
    for i, pos in enumerate(map.enemies, 1):
        cell = (pos.x, pos.y)
        if cell in first_enemy:
            return f"enemy {i} at {_at(pos)} is on the same cell as enemy {first_enemy[cell]}"
        first_enemy[cell] = i
    player = (map.player_pos.x, map.player_pos.y)
    if player in first_enemy:
        return f"player at {_at(map.player_pos)} is on enemy {first_enemy[player]}"
    for i, pos in enumerate(map.small_obstacles, 1):
        cell = (pos.x, pos.y)
        if cell in first_enemy:
            return f"obstacle {i} at {_at(pos)} is on enemy {first_enemy[cell]}"
        if cell == player:
            return f"obstacle {i} at {_at(pos)} is on the player"

    reachable = reachable_from(map, player)
    for i, pos in enumerate(map.enemies, 1):
        if (pos.x, pos.y) not in reachable:
            return (
                f"enemy {i} at {_at(pos)} cannot be reached from the player "
                f"at {_at(map.player_pos)}"
            )
    return None
