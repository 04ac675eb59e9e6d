"""The HTTP server (FastAPI): OpenAI-compatible chat, typed task calls, admin, metrics."""

from jarvis.server.app import create_app

__all__ = ["create_app"]
