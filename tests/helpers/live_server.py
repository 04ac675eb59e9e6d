"""A real JARVIS server on a free port, in a thread (uvicorn, as ``jarvis serve`` runs it)."""

from __future__ import annotations

from jarvis import Jarvis
from jarvis.server import create_app
from jarvis.server.background import BackgroundServer


class LiveServer(BackgroundServer):
    def __init__(self, rt: Jarvis, host: str = "127.0.0.1") -> None:
        # ``host`` decides what the app treats as exposed; the socket stays on loopback.
        super().__init__(create_app(rt, host=host), "127.0.0.1", 0)
        self.rt = rt
