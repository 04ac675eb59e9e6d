"""Semantic steering for maps: what a grammar cannot say, checked while the map is written.

A JSON grammar can bound coordinates and count items (:mod:`jarvis.rpg.bounds`) but cannot
say "on a free cell", "straight" or "reachable". :class:`MapSteer` can: the decoder asks it,
for each candidate token, whether the answer written so far can still become a playable map
(:meth:`MapSteer.allows`), and skips the candidates that cannot. So the student chooses the
layout, from its own distribution, among the moves that keep the map playable:

* a wall's end shares its start's row or column (walls are straight);
* obstacles avoid walls; enemies avoid walls, obstacles and each other;
* every enemy, and then the player, lies in one open region that has room for them all
  (so every enemy is reachable from the player).

It reads the student's positional text (``[level, walls, obstacles, enemies, player]``),
checks only the position being written (earlier ones were checked when they were written),
and caches what it derives from the finished part of the map (wall cells, open regions).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from jarvis.rpg.models import Level

__all__ = ["MapSteer"]

Cell = tuple[int, int]
_WALLS, _OBSTACLES, _ENEMIES, _PLAYER = 1, 2, 3, 4


def _parse(text: str) -> tuple[list[Any] | None, list[list[Any]], str, dict[int, int]]:
    """Nested lists of the ints written so far, the open lists, a trailing partial number,
    and where each list starts in the text (by ``id``)."""
    root: list[Any] | None = None
    stack: list[list[Any]] = []
    number = ""
    starts: dict[int, int] = {}
    for i, ch in enumerate(text):
        if ch == "[":
            new: list[Any] = []
            starts[id(new)] = i
            if stack:
                stack[-1].append(new)
            else:
                root = new
            stack.append(new)
        elif ch.isdigit() or ch == "-":
            number += ch
        elif ch in ",]":
            if number and stack:
                stack[-1].append(int(number))
            number = ""
            if ch == "]" and stack:
                stack.pop()
    return root, stack, number, starts


def _matching(partial: str, size: int) -> range | list[int]:
    if not partial:
        return range(size)
    return [v for v in range(size) if str(v).startswith(partial)]


class MapSteer:
    def __init__(self, level: Level) -> None:
        self.width = level.width
        self.height = level.height
        self.enemies = level.num_enemies
        self._regions: dict[str, tuple[dict[Cell, int], dict[int, int], frozenset[Cell]]] = {}
        self._allowed: dict[str, tuple[frozenset[int], dict[int, frozenset[int]]]] = {}

    def allows(self, text: str) -> bool:
        root, stack, partial, starts = _parse(text)
        if root is None or len(root) <= _WALLS:
            return True
        section = len(root) - 1
        current = root[section]
        if not isinstance(current, list):
            return True
        if section == _PLAYER:
            pos: Any = current
        elif not current:
            return True
        else:
            pos = current[-1]
        if section == _WALLS:
            if not isinstance(pos, list) or len(pos) < 2:
                return True  # a wall's start may be anywhere
            start, pos = pos[0], pos[1]
            if not isinstance(start, list) or len(start) < 2:
                return True
            x0, y0 = int(start[0]), int(start[1])
            cells = self._straight(x0, y0)
        else:
            if not isinstance(pos, list):
                return True
            cells = self._cells(section, root, text[: starts[id(pos)]])
        coords = [v for v in pos if isinstance(v, int)]
        if not (stack and stack[-1] is pos):
            partial = ""  # the position is closed: its numbers are final
        xs, by_x = cells
        if len(coords) >= 2:
            return coords[1] in by_x.get(coords[0], ())
        if len(coords) == 1:
            return any(str(y).startswith(partial) for y in by_x.get(coords[0], ()))
        return any(str(x).startswith(partial) for x in xs)

    def _straight(self, x0: int, y0: int) -> tuple[frozenset[int], dict[int, frozenset[int]]]:
        """Wall ends that make the wall horizontal or vertical."""
        column = frozenset(range(self.height))
        by_x = {x: column if x == x0 else frozenset({y0}) for x in range(self.width)}
        return frozenset(by_x), by_x

    def _cells(
        self, section: int, root: list[Any], before: str
    ) -> tuple[frozenset[int], dict[int, frozenset[int]]]:
        """Where the position being written may go, given everything written before it."""
        key = f"{section}|{before}"
        hit = self._allowed.get(key)
        if hit is not None:
            return hit
        rule = self._rule(section, root, before)
        by_x: dict[int, frozenset[int]] = {}
        for x in range(self.width):
            ys = frozenset(y for y in range(self.height) if rule(x, y))
            if ys:
                by_x[x] = ys
        result = (frozenset(by_x), by_x)
        if len(self._allowed) > 4096:
            self._allowed.clear()
        self._allowed[key] = result
        return result

    def _rule(self, section: int, root: list[Any], text: str) -> Callable[[int, int], bool]:
        walls = self._wall_cells(root[_WALLS])
        if section == _OBSTACLES:
            return lambda x, y: (x, y) not in walls
        obstacles = root[_OBSTACLES] if len(root) > _OBSTACLES else []
        key = text[: _section_end(text, _OBSTACLES)]
        region_of, sizes, blocked = self._open_regions(key, walls, obstacles)
        written = root[_ENEMIES] if isinstance(root[_ENEMIES], list) else []
        if section == _ENEMIES:
            written = written[:-1]  # the last one is the position being written
        done = [(int(p[0]), int(p[1])) for p in written if isinstance(p, list) and len(p) == 2]
        taken = set(done)
        if done:
            home = region_of.get(done[0])
            return lambda x, y: (
                (x, y) not in taken and ((x, y) not in blocked and region_of.get((x, y)) == home)
            )
        # the first enemy: a region with room for every enemy and the player
        need = self.enemies + 1
        return lambda x, y: (
            (x, y) not in blocked and sizes.get(region_of.get((x, y), -1), 0) >= need
        )

    def _wall_cells(self, walls: Any) -> set[Cell]:
        cells: set[Cell] = set()
        if not isinstance(walls, list):
            return cells
        for wall in walls:
            if not (isinstance(wall, list) and len(wall) == 2):
                continue
            (a, b) = wall
            if not (isinstance(a, list) and isinstance(b, list) and len(a) == 2 and len(b) == 2):
                continue
            for x in range(min(a[0], b[0]), max(a[0], b[0]) + 1):
                for y in range(min(a[1], b[1]), max(a[1], b[1]) + 1):
                    cells.add((x, y))
        return cells

    def _open_regions(
        self, key: str, walls: set[Cell], obstacles: Any
    ) -> tuple[dict[Cell, int], dict[int, int], frozenset[Cell]]:
        """Open region of every free cell (after walls and obstacles), cached per layout."""
        hit = self._regions.get(key)
        if hit is not None:
            return hit
        blocked = set(walls)
        if isinstance(obstacles, list):
            blocked |= {
                (int(p[0]), int(p[1])) for p in obstacles if isinstance(p, list) and len(p) == 2
            }
        region_of: dict[Cell, int] = {}
        sizes: dict[int, int] = {}
        for sx in range(self.width):
            for sy in range(self.height):
                if (sx, sy) in blocked or (sx, sy) in region_of:
                    continue
                label = len(sizes)
                region_of[(sx, sy)] = label
                queue = deque([(sx, sy)])
                count = 0
                while queue:
                    x, y = queue.popleft()
                    count += 1
                    for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                        if (
                            0 <= nx < self.width
                            and 0 <= ny < self.height
                            and (nx, ny) not in blocked
                            and (nx, ny) not in region_of
                        ):
                            region_of[(nx, ny)] = label
                            queue.append((nx, ny))
                sizes[label] = count
        result = (region_of, sizes, frozenset(blocked))
        if len(self._regions) > 64:
            self._regions.clear()
        self._regions[key] = result
        return result


def _section_end(text: str, section: int) -> int:
    """Index just past the ``section``-th top-level element (0-based) of the answer text."""
    depth = 0
    index = -1
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth == 2:
                index += 1
        elif ch == "]":
            depth -= 1
            if depth == 1 and index == section:
                return i + 1
    return len(text)
