"""A tiny task domain for the core's own tests: rooms of a house, and their furniture.

It has the shapes the core must handle, and nothing of the RPG: a typed answer (``Room``), an
input that is a list of earlier answers, a nested answer with a list of positions
(``Furniture``), semantic rules a parsed answer can still break (a room of the wrong size, a
chair outside the room or on another's cell), a deterministic procedural teacher for both,
and a task whose teacher is always wrong.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

import jarvis


class Room(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int
    size: int  # the side of a square room, in cells
    doors: int
    lamps: int


class Spot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: int
    y: int


class Furniture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room: Room
    chairs: list[Spot]
    table: Spot


@jarvis.task
def next_room(last_rooms: list[Room], size: int) -> Room:
    """Design the next room of a house, of the requested size.

    Its number follows the last room's (1 when there is none); doors and lamps grow with size.
    """


@next_room.validator
def _room_fits_request(room: Room, inputs: Mapping[str, Any]) -> str | None:
    if room.size != inputs["size"]:
        return f"size {room.size} is not the requested {inputs['size']}"
    if not 1 <= room.doors <= room.size:
        return f"{room.doors} doors do not fit a room of size {room.size}"
    return None if room.lamps >= 1 else "a room needs a lamp"


@next_room.oracle
def _procedural_room(last_rooms: list[Room], size: int, rng: random.Random) -> Room:
    return oracle_room(last_rooms, size)


def oracle_room(last_rooms: list[Room], size: int) -> Room:
    """The teacher's room: always the same for the same call."""
    number = last_rooms[-1].number + 1 if last_rooms else 1
    return Room(number=number, size=size, doors=1 + (size - 1) // 3, lamps=size)


@jarvis.task
def furnish(room: Room) -> Furniture:
    """Place chairs and a table in the room, each on a cell of its own inside it."""


@furnish.validator
def _furniture_fits(furniture: Furniture, inputs: Mapping[str, Any]) -> str | None:
    room: Room = inputs["room"]
    if furniture.room != room:
        return "the furniture is for another room"
    taken: set[tuple[int, int]] = set()
    for i, spot in enumerate([*furniture.chairs, furniture.table]):
        what = "the table" if i == len(furniture.chairs) else f"chair {i + 1}"
        if not (0 <= spot.x < room.size and 0 <= spot.y < room.size):
            return f"{what} at ({spot.x}, {spot.y}) is outside the {room.size}x{room.size} room"
        if (spot.x, spot.y) in taken:
            return f"{what} at ({spot.x}, {spot.y}) is on a cell taken twice"
        taken.add((spot.x, spot.y))
    return None


@furnish.oracle
def _procedural_furniture(room: Room, rng: random.Random) -> Furniture:
    return oracle_furniture(room, rng)


def oracle_furniture(room: Room, rng: random.Random) -> Furniture:
    """Chairs on random free cells, the table on another: always valid."""
    cells = [(x, y) for x in range(room.size) for y in range(room.size)]
    rng.shuffle(cells)
    chairs = [Spot(x=x, y=y) for x, y in cells[: max(1, room.size // 2)]]
    x, y = cells[len(chairs)]
    return Furniture(room=room, chairs=chairs, table=Spot(x=x, y=y))


# A task whose oracle always breaks the task's own rule, so the teacher is always wrong.


@jarvis.task
def pick_small_number(limit: int) -> int:
    """Pick a whole number below the limit."""


@pick_small_number.validator
def _below_limit(number: int, inputs: Mapping[str, Any]) -> str | None:
    limit = inputs["limit"]
    return None if number < limit else f"{number} is not below {limit}"


@pick_small_number.oracle
def _always_too_big(limit: int, rng: random.Random) -> int:
    return limit + 1


@jarvis.task
def task_without_teacher(x: int) -> int:
    """Has neither an oracle nor an LLM endpoint to answer it."""
