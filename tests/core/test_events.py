"""The router's events: observers subscribe by event type, and a failing observer never
breaks the call that emitted the event."""

from __future__ import annotations

import logging

import pytest

from helpers.tiny import next_room
from jarvis import Events, FellBack, GenerationRequest, StudentAnswered


def answered(call_id: int) -> StudentAnswered:
    inputs = next_room.load_inputs({"last_rooms": [], "size": 3})
    return StudentAnswered(GenerationRequest(next_room, inputs, []), {"n": 1}, "v0001", call_id)


def test_handlers_get_the_events_of_their_type_in_the_order_they_subscribed() -> None:
    events = Events()
    seen: list[str] = []
    events.subscribe(StudentAnswered, lambda e: seen.append(f"first {e.call_id}"))
    events.subscribe(StudentAnswered, lambda e: seen.append(f"second {e.call_id}"))
    events.subscribe(FellBack, lambda e: seen.append("fallback"))

    events.emit(answered(7))

    assert seen == ["first 7", "second 7"]


def test_a_failing_handler_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = Events()
    seen: list[int | None] = []

    def broken(event: StudentAnswered) -> None:
        raise RuntimeError("observer bug")

    events.subscribe(StudentAnswered, broken)
    events.subscribe(StudentAnswered, lambda e: seen.append(e.call_id))
    with caplog.at_level(logging.ERROR, logger="jarvis.core.events"):
        events.emit(answered(3))

    assert seen == [3]
    assert "observer bug" in caplog.text
