"""A chat stream whose client goes away stops the work behind it at its next piece.

sse-starlette cancels the event generator when the client disconnects; the engine's callback
must then raise :class:`Cancelled`, so the decoding ends (its batch slot is freed:
``tests/serving/test_batching.py``) and the admission slot is released.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from jarvis.core.errors import Cancelled
from jarvis.server.openai_routes import Answer, ChatRequest, Message, _stream


class Gate:
    """The admission gate's generator protocol: ``close()`` releases the slot."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def close(self) -> None:
        self.released.set()


# the work's thread must end quietly even when the loop it reported to has closed
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_client_that_leaves_mid_stream_stops_the_engine_and_frees_admission() -> None:
    pieces_written: list[str] = []
    stopped_by: list[BaseException] = []
    first_piece = threading.Event()

    def produce(emit: Callable[[str], None] | None) -> Answer:
        assert emit is not None
        try:
            for i in range(1000):  # an engine writing a long answer, piece by piece
                emit(f"piece {i} ")
                pieces_written.append(str(i))
                first_piece.set()
                threading.Event().wait(0.01)
        except Cancelled as exc:
            stopped_by.append(exc)
            raise
        return Answer(text="never")

    body = ChatRequest(model="t@v0001", messages=[Message(role="user", content="hi")], stream=True)
    gate = Gate()

    async def client_reads_two_events_then_leaves() -> None:
        events = _stream(body, produce, gate)
        await anext(events)  # the role chunk
        await anext(events)  # the first piece
        await events.aclose()  # the client disconnected: sse-starlette closes the generator

    asyncio.run(client_reads_two_events_then_leaves())
    assert gate.released.wait(10)  # the work ended and gave its admission slot back
    assert stopped_by and isinstance(stopped_by[0], Cancelled)
    assert len(pieces_written) < 1000  # it did not write the rest of the answer
