"""Rendering a map as the original game's ASCII tile grid.

The tile grid is what the game actually loads, and what people read when judging a map, so it
reproduces the original Jac drawing code: ``.`` floor, ``B`` wall or obstacle, ``E`` enemy,
``P`` player, later layers drawn over earlier ones, and a ``B`` border added *around* the
``width x height`` grid. Unlike the original, reversed wall endpoints still draw. Out-of-grid
items are skipped silently: reporting them is :mod:`jarvis.rpg.rules`' job, and drawing an
invalid map must still work so it can be shown.
"""

from __future__ import annotations

from jarvis.rpg.models import Map, Position

__all__ = ["map_to_tiles", "render_ascii"]


def map_to_tiles(map: Map) -> list[str]:
    """Return the bordered tile rows, top row first (``height + 2`` rows of ``width + 2``)."""
    width, height = max(map.level.width, 0), max(map.level.height, 0)
    tiles = [["." for _ in range(width)] for _ in range(height)]

    def put(pos: Position, tile: str) -> None:
        if 0 <= pos.x < width and 0 <= pos.y < height:
            tiles[pos.y][pos.x] = tile

    for wall in map.walls:
        a, b = wall.start_pos, wall.end_pos
        # Clipping the ranges to the grid draws the same tiles as testing each cell, but stays
        # fast for absurd coordinates.
        for x in range(max(min(a.x, b.x), 0), min(max(a.x, b.x), width - 1) + 1):
            for y in range(max(min(a.y, b.y), 0), min(max(a.y, b.y), height - 1) + 1):
                tiles[y][x] = "B"
    for obstacle in map.small_obstacles:
        put(obstacle, "B")
    for enemy in map.enemies:
        put(enemy, "E")
    put(map.player_pos, "P")

    edge = "B" * (width + 2)
    return [edge, *("B" + "".join(row) + "B" for row in tiles), edge]


def render_ascii(map: Map) -> str:
    """Return the tile grid as one newline-separated string (no trailing newline)."""
    return "\n".join(map_to_tiles(map))
