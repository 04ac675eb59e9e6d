"""Calling a task directly finds the runtime through a context variable: ``using`` holds for
the current thread (or asyncio task) only, and the process default is built on first use."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.tiny import Room, next_room, oracle_room
from jarvis.core import context


@dataclass
class Answer:
    output: Any


@dataclass
class FakeRuntime:
    """A caller that answers every call with the teacher's room, and counts its calls."""

    name: str
    calls: list[Mapping[str, Any]] = field(default_factory=list)

    def call(self, task: Any, inputs: Mapping[str, Any], *, raise_on_invalid: bool = True) -> Any:
        self.calls.append(inputs)
        return Answer(oracle_room(inputs["last_rooms"], inputs["size"]))


def test_using_routes_direct_calls_through_the_given_runtime_inside_the_block() -> None:
    rt = FakeRuntime("a")
    with context.using(rt):
        room = next_room([], 3)
    assert isinstance(room, Room) and room.number == 1
    assert len(rt.calls) == 1


def test_using_in_one_thread_does_not_change_another_threads_runtime() -> None:
    mine, theirs = FakeRuntime("mine"), FakeRuntime("theirs")
    inside = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        with context.using(theirs):
            inside.set()
            done.wait(5)
            next_room([], 2)

    thread = threading.Thread(target=other_thread)
    with context.using(mine):
        thread.start()
        assert inside.wait(5)
        next_room([], 3)  # while the other thread is inside its own `using`
        done.set()
        thread.join(5)
    assert [c["size"] for c in mine.calls] == [3]
    assert [c["size"] for c in theirs.calls] == [2]


def test_asyncio_tasks_keep_their_own_runtime() -> None:
    a, b = FakeRuntime("a"), FakeRuntime("b")

    async def call_in(rt: FakeRuntime, size: int) -> None:
        with context.using(rt):
            await asyncio.sleep(0.01)  # the other task runs meanwhile
            next_room([], size)

    async def both() -> None:
        await asyncio.gather(call_in(a, 3), call_in(b, 4))

    asyncio.run(both())
    assert [c["size"] for c in a.calls] == [3]
    assert [c["size"] for c in b.calls] == [4]


def test_without_using_the_process_default_answers_and_can_be_replaced() -> None:
    fallback = FakeRuntime("default")
    previous = context.set_default(fallback)
    try:
        assert context.current() is fallback
        next_room([], 3)
        assert len(fallback.calls) == 1
    finally:
        context.set_default(previous)
