"""Semantic rules: a parsed level or map is only accepted if the game can be played on it.

Each check returns ``None`` or a short reason naming the first problem, never raising.
"""

from __future__ import annotations

from typing import Any

import pytest

from jarvis.rpg import Level, Map, Position, Wall, check_level, check_map
from jarvis.rpg.rules import blocked_cells, reachable_from, wall_cells


def make_level(**changes: Any) -> Level:
    fields: dict[str, Any] = {
        "name": 1,
        "difficulty": 1,
        "time": 300,
        "width": 10,
        "height": 10,
        "num_wall": 2,
        "num_enemies": 2,
    }
    fields.update(changes)
    return Level(**fields)


def wall(x0: int, y0: int, x1: int, y1: int) -> Wall:
    return Wall(start_pos=Position(x=x0, y=y0), end_pos=Position(x=x1, y=y1))


def at(x: int, y: int) -> Position:
    return Position(x=x, y=y)


def make_map(**changes: Any) -> Map:
    """A small valid 10x10 map: two walls, one obstacle, two enemies, player top-left."""
    fields: dict[str, Any] = {
        "level": make_level(),
        "walls": [wall(3, 0, 3, 5), wall(5, 7, 8, 7)],
        "small_obstacles": [at(6, 2)],
        "enemies": [at(5, 5), at(9, 9)],
        "player_pos": at(1, 1),
    }
    fields.update(changes)
    return Map(**fields)


# --- levels -----------------------------------------------------------------------------------


def test_valid_level_passes() -> None:
    assert check_level(make_level()) is None
    assert check_level(make_level(), difficulty=1) is None


def test_difficulty_mismatch_fails() -> None:
    reason = check_level(make_level(difficulty=2), difficulty=3)
    assert reason is not None and "difficulty" in reason and "3" in reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width", 0),
        ("height", -5),
        ("width", 3),
        ("height", 101),
        ("time", 0),
        ("time", -1),
        ("name", 0),
        ("difficulty", 0),
        ("num_wall", -1),
        ("num_enemies", 0),
    ],
)
def test_out_of_range_level_field_fails(field: str, value: int) -> None:
    reason = check_level(make_level(**{field: value}))
    assert reason is not None and field in reason


def test_counts_that_do_not_fit_fail() -> None:
    # A 4x4 grid has room for (4*4)//4 = 4 things: 2 walls + 1 enemy + the player.
    assert check_level(make_level(width=4, height=4, num_wall=2, num_enemies=1)) is None
    reason = check_level(make_level(width=4, height=4, num_wall=2, num_enemies=2))
    assert reason is not None and "fit" in reason


# --- maps -------------------------------------------------------------------------------------


def test_valid_map_passes() -> None:
    assert check_map(make_map()) is None
    assert check_map(make_map(), make_level()) is None


def test_map_level_must_equal_requested_level() -> None:
    reason = check_map(make_map(), make_level(time=400))
    assert reason == "map level time is 300, expected 400"


def test_map_with_invalid_own_level_fails() -> None:
    reason = check_map(make_map(level=make_level(num_enemies=0), enemies=[]))
    assert reason is not None and "num_enemies" in reason


def test_unreachable_enemy_fails() -> None:
    # Enemy at (8, 8) is boxed in by walls on all four sides.
    boxed = make_map(
        walls=[wall(7, 7, 9, 7), wall(7, 9, 9, 9), wall(7, 8, 7, 8)],
        enemies=[at(5, 5), at(8, 8)],
        small_obstacles=[at(9, 8)],
        level=make_level(num_wall=3),
    )
    reason = check_map(boxed)
    assert reason == "enemy 2 at (8, 8) cannot be reached from the player at (1, 1)"


def test_walled_in_player_fails_on_reachability() -> None:
    # The player in the corner behind an L of walls reaches no enemy.
    reason = check_map(make_map(walls=[wall(2, 0, 2, 2), wall(0, 2, 1, 2)]))
    assert reason is not None and "cannot be reached" in reason


def test_enemy_cells_do_not_block_reachability() -> None:
    # A one-row corridor above a full-width wall: the far enemy is only reachable by walking
    # through the near one.
    corridor = make_map(
        walls=[wall(0, 1, 9, 1)],
        small_obstacles=[],
        player_pos=at(0, 0),
        enemies=[at(2, 0), at(9, 0)],
    )
    assert check_map(corridor) is None


def test_diagonal_wall_fails() -> None:
    reason = check_map(make_map(walls=[wall(3, 0, 5, 2)]))
    assert reason is not None and "diagonal" in reason and "wall 1" in reason


def test_reversed_and_single_cell_walls_are_fine() -> None:
    assert check_map(make_map(walls=[wall(3, 5, 3, 0), wall(8, 7, 5, 7), wall(0, 9, 0, 9)])) is None
    reversed_walls = make_map(walls=[wall(3, 5, 3, 0)])
    assert wall_cells(reversed_walls) == {(3, y) for y in range(6)}


def test_out_of_bounds_wall_end_fails() -> None:
    reason = check_map(make_map(walls=[wall(3, 0, 3, 10)]))
    assert reason == "wall 1 end (3, 10) is outside the 10x10 grid"


def test_negative_wall_start_fails() -> None:
    reason = check_map(make_map(walls=[wall(-1, 4, 2, 4)]))
    assert reason is not None and "wall 1 start (-1, 4)" in reason


def test_out_of_bounds_enemy_fails() -> None:
    reason = check_map(make_map(enemies=[at(5, 5), at(12, 3)]))
    assert reason == "enemy 2 at (12, 3) is outside the 10x10 grid"


def test_out_of_bounds_obstacle_fails() -> None:
    reason = check_map(make_map(small_obstacles=[at(6, 2), at(0, -1)]))
    assert reason == "obstacle 2 at (0, -1) is outside the 10x10 grid"


def test_out_of_bounds_player_fails() -> None:
    reason = check_map(make_map(player_pos=at(10, 0)))
    assert reason == "player at (10, 0) is outside the 10x10 grid"


def test_player_on_wall_fails() -> None:
    reason = check_map(make_map(player_pos=at(3, 2)))
    assert reason == "player at (3, 2) is on a wall"


def test_enemy_and_obstacle_on_wall_fail() -> None:
    assert check_map(make_map(enemies=[at(5, 5), at(6, 7)])) == "enemy 2 at (6, 7) is on a wall"
    assert check_map(make_map(small_obstacles=[at(3, 3)])) == "obstacle 1 at (3, 3) is on a wall"


def test_too_few_enemies_fails() -> None:
    reason = check_map(make_map(enemies=[at(5, 5)]))
    assert reason is not None and "1 enemies" in reason and "2" in reason


def test_more_enemies_than_asked_is_fine() -> None:
    assert check_map(make_map(enemies=[at(5, 5), at(9, 9), at(0, 9)])) is None


def test_two_enemies_on_one_cell_fail() -> None:
    reason = check_map(make_map(enemies=[at(5, 5), at(5, 5)]))
    assert reason == "enemy 2 at (5, 5) is on the same cell as enemy 1"


def test_player_on_enemy_fails() -> None:
    reason = check_map(make_map(player_pos=at(9, 9)))
    assert reason == "player at (9, 9) is on enemy 2"


def test_obstacle_on_enemy_or_player_fails() -> None:
    on_enemy = make_map(small_obstacles=[at(5, 5)])
    assert check_map(on_enemy) == "obstacle 1 at (5, 5) is on enemy 1"
    on_player = make_map(small_obstacles=[at(1, 1)])
    assert check_map(on_player) == "obstacle 1 at (1, 1) is on the player"


def test_huge_coordinates_do_not_hang_or_raise() -> None:
    absurd = make_map(walls=[wall(0, 0, 10**9, 10**9)], enemies=[at(10**12, -(10**12))])
    assert check_map(absurd) is not None


# --- helpers ----------------------------------------------------------------------------------


def test_blocked_cells_are_walls_plus_obstacles() -> None:
    map_ = make_map()
    assert blocked_cells(map_) == wall_cells(map_) | {(6, 2)}
    assert len(wall_cells(map_)) == 6 + 4


def test_reachable_from_a_blocked_or_outside_cell_is_empty() -> None:
    map_ = make_map()
    assert reachable_from(map_, (3, 0)) == set()
    assert reachable_from(map_, (-1, 0)) == set()
    assert len(reachable_from(map_, (1, 1))) == 100 - len(blocked_cells(map_))
