"""The oracle is a procedural teacher: its levels follow the original scaling exactly and its
maps are random but always valid, reproducible from the seed."""

from __future__ import annotations

import random

import pytest

from jarvis.rpg import Level, check_level, check_map, oracle_level, oracle_map

DIFFICULTIES = range(1, 21)
SEEDS = range(5)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_level_follows_the_original_scaling(d: int) -> None:
    level = oracle_level([], d, random.Random(0))
    assert check_level(level, difficulty=d) is None
    assert level == Level(
        name=1,
        difficulty=d,
        time=300 + 100 * (d - 1),
        width=10 + 2 * (d - 1),
        height=10 + 2 * (d - 1),
        num_wall=5 + (d - 1),
        num_enemies=2 + (d - 1),
    )


def test_level_name_continues_from_the_last_level() -> None:
    first = oracle_level([], 1, random.Random(0))
    second = oracle_level([first], 2, random.Random(0))
    third = oracle_level([first, second], 2, random.Random(0))
    assert (first.name, second.name, third.name) == (1, 2, 3)


def test_level_ignores_the_rng() -> None:
    assert oracle_level([], 7, random.Random(1)) == oracle_level([], 7, random.Random(2))


@pytest.mark.parametrize("d", [0, -3, 46, 47, 500, 5000])
def test_extreme_difficulties_are_clamped_to_valid_levels(d: int) -> None:
    level = oracle_level([], d, random.Random(0))
    assert level.difficulty == max(d, 1)
    assert check_level(level, difficulty=max(d, 1)) is None
    assert level.width <= 100


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_map_is_valid_for_every_difficulty_and_seed(d: int) -> None:
    level = oracle_level([], d, random.Random(0))
    for seed in SEEDS:
        map_ = oracle_map(level, random.Random(seed))
        assert check_map(map_, level) is None
        assert map_.level == level
        assert len(map_.walls) == level.num_wall
        assert len(map_.enemies) == level.num_enemies
        cells = [(p.x, p.y) for p in [*map_.small_obstacles, *map_.enemies, map_.player_pos]]
        assert len(set(cells)) == len(cells)


def test_same_seed_gives_the_same_map() -> None:
    level = oracle_level([], 5, random.Random(0))
    assert oracle_map(level, random.Random(42)) == oracle_map(level, random.Random(42))


def test_different_seeds_give_different_maps() -> None:
    level = oracle_level([], 3, random.Random(0))
    maps = [oracle_map(level, random.Random(seed)).model_dump_json() for seed in range(20)]
    assert len(set(maps)) >= 18


def test_maps_for_crowded_and_extreme_levels_are_still_valid() -> None:
    crowded = Level(name=1, difficulty=1, time=10, width=4, height=4, num_wall=2, num_enemies=1)
    huge = oracle_level([], 2000, random.Random(0))
    for level in (crowded, huge):
        for seed in range(3):
            assert check_map(oracle_map(level, random.Random(seed)), level) is None


def test_map_for_an_invalid_level_is_refused() -> None:
    bad = Level(name=1, difficulty=1, time=10, width=2, height=2, num_wall=0, num_enemies=1)
    with pytest.raises(ValueError, match="invalid level"):
        oracle_map(bad, random.Random(0))


def test_large_maps_are_valid_for_many_seeds() -> None:
    level = oracle_level([], 20, random.Random(0))
    for seed in range(30):
        assert check_map(oracle_map(level, random.Random(seed)), level) is None
