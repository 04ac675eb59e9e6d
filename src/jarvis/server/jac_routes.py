"""Admin routes that run ``.jac`` programs (``/v1/admin/jac/...``) for the dashboard.

Running a program runs code on the server, so these routes are stricter than
:func:`jarvis.server.security.require_admin`: with no ``JARVIS_API_TOKEN`` configured they are
refused (403) even on loopback, and every one of them, listing and streaming included, needs
``Authorization: Bearer <token>``. The console stream is server-sent events read with
``fetch()`` (which can send that header), so the token never appears in a URL.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from jarvis.runtime import Jarvis
from jarvis.server.errors import ApiError
from jarvis.server.jac_runs import JacRun, JacRunner, check_run_id

__all__ = ["require_jac_admin", "router", "runner"]

NO_TOKEN = (
    "running .jac programs needs JARVIS_API_TOKEN on the server: set it, restart the server "
    "and send 'Authorization: Bearer <token>'"
)
POLL_S = 0.1  # how often a console stream looks for new lines
PING_S = 15.0  # a comment line keeps idle streams open through proxies

_create_lock = threading.Lock()


def require_jac_admin(request: Request) -> None:
    """403 without a configured token (even on loopback), 401 without the right bearer."""
    token: str | None = request.app.state.api_token
    if not token:
        raise ApiError(403, NO_TOKEN, code="jac_needs_token")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ApiError(401, "missing or wrong bearer token", code="invalid_token")


def runner(request: Request) -> JacRunner:
    """The app's runner, made on first use (only after the token check passed)."""
    state = request.app.state
    with _create_lock:
        found: JacRunner | None = getattr(state, "jac_runner", None)
        if found is None:
            rt: Jarvis = state.rt
            found = state.jac_runner = JacRunner(rt.settings)
    return found


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    found: JacRunner | None = getattr(app.state, "jac_runner", None)
    if found is not None:
        await asyncio.to_thread(found.shutdown)  # no `jac run` outlives the server


router = APIRouter(
    prefix="/v1/admin/jac",
    tags=["jac"],
    dependencies=[Depends(require_jac_admin)],
    lifespan=_lifespan,
)


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="File name; [A-Za-z0-9_.-], ending in .jac.")
    source: str = Field(description="The program's text (UTF-8).")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: str = Field(description="A program id from GET /v1/admin/jac/programs.")


@router.get("/programs")
def list_programs(request: Request) -> dict[str, Any]:
    r = runner(request)
    return {
        "programs": r.programs(),
        "jac_installed": r.jac() is not None,
        "limits": {
            "timeout_s": r.settings.jac_run_timeout_s,
            "max_runs": r.settings.jac_max_runs,
            "max_upload_bytes": r.settings.jac_max_upload_bytes,
        },
    }


@router.post("/programs", status_code=201)
def upload_program(body: UploadRequest, request: Request) -> dict[str, Any]:
    return runner(request).upload(body.name, body.source)


@router.get("/programs/{program:path}")
def program_source(program: str, request: Request) -> dict[str, Any]:
    return {"id": program, "source": runner(request).program_source(program)}


@router.get("/runs")
def list_runs(request: Request) -> dict[str, Any]:
    return {"runs": runner(request).runs()}


@router.post("/runs", status_code=201)
def start_run(body: RunRequest, request: Request) -> dict[str, Any]:
    return runner(request).start(body.program).summary()


@router.get("/runs/{run_id}")
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    return runner(request).get(check_run_id(run_id)).summary()


@router.post("/runs/{run_id}/stop")
def stop_run(run_id: str, request: Request) -> dict[str, Any]:
    return runner(request).stop(check_run_id(run_id)).summary()


def console_event(data: str, event: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(data=data, event=event)


async def _events(r: JacRunner, run: JacRun) -> AsyncIterator[ServerSentEvent]:
    """Every line so far, then new ones as they come, then ``event: exit``.

    sse-starlette frames each line (a ``\r`` inside a line, as a progress bar writes, becomes
    a line break of the same event instead of cutting it), pings idle streams, and cancels this
    generator when the client goes away.
    """
    yield console_event(json.dumps(run.summary()), "run")
    if run.done and run.process is None:  # from an earlier server (or it never started)
        for line in r.past_output(run):
            yield console_event(line)
        yield console_event(json.dumps(run.exit_info()), "exit")
        return
    seq = 0
    while True:
        lines, dropped, done = run.lines_from(seq)  # `done` is read with the lines
        if dropped:
            note = f"… {dropped} earlier line(s) not kept in memory; see {run.log_path}"
            yield console_event(note)
            seq += dropped
        for number, text in lines:
            yield console_event(text)
            seq = number + 1
        if done:
            yield console_event(json.dumps(run.exit_info()), "exit")
            return
        await asyncio.sleep(POLL_S)


@router.get("/runs/{run_id}/stream")
def stream_run(run_id: str, request: Request) -> EventSourceResponse:
    r = runner(request)
    run = r.get(check_run_id(run_id))
    return EventSourceResponse(_events(r, run), ping=PING_S)
