"""The web dashboard and the browser game, served by the API server at ``/``."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the serve extra brings FastAPI; `jarvis.web.views` must not need it
    from fastapi import FastAPI

__all__ = ["mount"]


def mount(app: FastAPI) -> None:
    """Add the pages, their JSON API and the packaged static assets to ``app``."""
    from fastapi.staticfiles import StaticFiles

    from jarvis.web import api, pages

    static = resources.files("jarvis.web").joinpath("static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
