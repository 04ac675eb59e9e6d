"""Map steering: a partial map is refused as soon as it cannot become playable."""

from __future__ import annotations

import random

import pytest

from jarvis.core.codec import student_answer
from jarvis.rpg.models import Level
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.steering import MapSteer
from jarvis.rpg.tasks import create_next_map

LEVEL = Level(name=1, difficulty=1, time=300, width=10, height=10, num_wall=2, num_enemies=2)
HEAD = "[[1,1,300,10,10,2,2],"
WALLS = "[[[1,0],[1,3]],[[4,4],[7,4]]],"  # (1,0)-(1,3) vertical, (4,4)-(7,4) horizontal


def test_every_prefix_of_a_playable_map_is_allowed() -> None:
    rng = random.Random(3)
    for difficulty in (1, 5, 10):
        level = oracle_level([], difficulty, rng)
        steer = MapSteer(level)
        answer = student_answer(create_next_map, oracle_map(level, rng))
        for k in range(1, len(answer) + 1):
            assert steer.allows(answer[:k]), answer[:k]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (HEAD + "[[[1,0],[2,3]", "a diagonal wall"),
        (HEAD + WALLS + "[[1,2]", "an obstacle on a wall"),
        (HEAD + WALLS + "[[5,4],", "an obstacle on a wall, closed by the next token"),
        (HEAD + WALLS + "[[0,9]],[[3,3],[3,3]", "two enemies on one cell"),
        (HEAD + WALLS + "[[0,9]],[[3,3],[0,9]", "an enemy on an obstacle"),
        (HEAD + WALLS + "[[0,9]],[[3,3],[5,5]],[3,3]", "the player on an enemy"),
    ],
)
def test_a_prefix_that_cannot_be_playable_is_refused(text: str, why: str) -> None:
    assert not MapSteer(LEVEL).allows(text), why


def test_a_partial_number_is_judged_by_what_it_can_still_become() -> None:
    big = Level(name=1, difficulty=1, time=300, width=20, height=20, num_wall=1, num_enemies=1)
    steer = MapSteer(big)
    head = "[[1,1,300,20,20,1,1],[[[1,1],[1,"
    assert steer.allows(head + "1")  # y = 1 (or 10-19): a vertical wall along x = 1
    walls = "[[[0,1],[19,1]]],"  # a horizontal wall across row 1
    assert not steer.allows("[[1,1,300,20,20,1,1]," + walls + "[[5,1]")
    assert steer.allows("[[1,1,300,20,20,1,1]," + walls + "[[5,1")  # 10-19 are free


def test_enemies_and_player_stay_in_one_region() -> None:
    # a full-height wall at x = 2 splits the grid into x < 2 and x > 2
    split = Level(name=1, difficulty=1, time=300, width=10, height=4, num_wall=1, num_enemies=1)
    steer = MapSteer(split)
    head = "[[1,1,300,10,4,1,1],[[[2,0],[2,3]]],[],"
    assert steer.allows(head + "[[5,1]],")
    assert not steer.allows(head + "[[5,1]],[0,0]")  # the player could not reach the enemy
    assert steer.allows(head + "[[5,1]],[9,3]")
