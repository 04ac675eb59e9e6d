"""The dashboard's HTML pages: a small server-rendered shell per page, the rest is its script.

Pages and assets ship inside the package (``templates/``, ``static/``): nothing is fetched from
a CDN, and a strict Content-Security-Policy keeps every script and style same-origin.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jarvis import __version__
from jarvis.server.deps import find_task, runtime

__all__ = ["CSP", "router"]

router = APIRouter(include_in_schema=False)

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@cache
def _template(name: str) -> Template:
    return Template(resources.files("jarvis.web").joinpath("templates", name).read_text("utf-8"))


def render(page: str, title: str, **data: str) -> HTMLResponse:
    """``templates/<page>.html`` inside the layout; ``data`` becomes ``data-*`` on <main>."""
    attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in data.items())
    body = _template(f"{page}.html").substitute({k: html.escape(v) for k, v in data.items()})
    document = _template("layout.html").substitute(
        title=html.escape(title), page=page, attrs=attrs, body=body, version=__version__
    )
    return HTMLResponse(
        document,
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@router.get("/", response_class=HTMLResponse)
def overview_page() -> HTMLResponse:
    return render("overview", "JARVIS")


@router.get("/tasks/{task}", response_class=HTMLResponse)
def task_page(task: str, request: Request) -> HTMLResponse:
    find_task(runtime(request), task)  # an unknown task is a 404, not an empty page
    return render("task", f"{task} · JARVIS", task=task)


@router.get("/game", response_class=HTMLResponse)
def game_page() -> HTMLResponse:
    return render("game", "Spud-nik: SOLO · JARVIS")


@router.get("/jac", response_class=HTMLResponse)
def jac_page() -> HTMLResponse:
    return render("jac", "Run .jac · JARVIS")
