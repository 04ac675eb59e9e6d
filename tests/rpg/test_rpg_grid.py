"""The ASCII tile grid is what the game loads: ``.`` floor, ``B`` wall or obstacle, ``E`` enemy,
``P`` player, with a ``B`` border drawn *outside* the width x height grid."""

from __future__ import annotations

from jarvis.rpg import Level, Map, Position, Wall, map_to_tiles, render_ascii


def at(x: int, y: int) -> Position:
    return Position(x=x, y=y)


def small_map(walls: list[Wall], **changes: object) -> Map:
    level = Level(name=1, difficulty=1, time=300, width=5, height=4, num_wall=1, num_enemies=1)
    fields: dict[str, object] = {
        "level": level,
        "walls": walls,
        "small_obstacles": [at(4, 0)],
        "enemies": [at(4, 3)],
        "player_pos": at(0, 0),
    }
    fields.update(changes)
    return Map.model_validate(fields)


def test_exact_rendering_of_a_small_map() -> None:
    map_ = small_map([Wall(start_pos=at(1, 1), end_pos=at(3, 1))])
    assert map_to_tiles(map_) == [
        "BBBBBBB",
        "BP...BB",
        "B.BBB.B",
        "B.....B",
        "B....EB",
        "BBBBBBB",
    ]


def test_border_lies_outside_the_grid() -> None:
    tiles = map_to_tiles(small_map([]))
    assert len(tiles) == 4 + 2
    assert all(len(row) == 5 + 2 for row in tiles)
    assert tiles[0] == tiles[-1] == "B" * 7
    assert all(row[0] == row[-1] == "B" for row in tiles)


def test_reversed_wall_is_drawn() -> None:
    forward = small_map([Wall(start_pos=at(2, 0), end_pos=at(2, 3))])
    backward = small_map([Wall(start_pos=at(2, 3), end_pos=at(2, 0))])
    assert map_to_tiles(backward) == map_to_tiles(forward)
    assert [row[3] for row in map_to_tiles(backward)[1:-1]] == ["B"] * 4


def test_render_ascii_joins_rows_with_newlines() -> None:
    map_ = small_map([])
    assert render_ascii(map_) == "BBBBBBB\nBP...BB\nB.....B\nB.....B\nB....EB\nBBBBBBB"


def test_player_is_drawn_over_enemy_and_enemy_over_obstacle() -> None:
    map_ = small_map([], small_obstacles=[at(2, 2)], enemies=[at(2, 2), at(0, 0)])
    tiles = map_to_tiles(map_)
    assert tiles[3][3] == "E"
    assert tiles[1][1] == "P"


def test_out_of_grid_items_are_skipped() -> None:
    map_ = small_map(
        [Wall(start_pos=at(-3, 2), end_pos=at(10**9, 2))],
        small_obstacles=[at(-1, 0)],
        enemies=[at(5, 0)],
        player_pos=at(0, 4),
    )
    assert map_to_tiles(map_) == [
        "BBBBBBB",
        "B.....B",
        "B.....B",
        "BBBBBBB",
        "B.....B",
        "BBBBBBB",
    ]
