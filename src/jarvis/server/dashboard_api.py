"""The dashboard's JSON API (``/api/…``) and its live stream (``/api/stream``, SSE).

The stream does not push data: once a second it compares a cheap fingerprint of the store
(last call, runs, versions, events) and sends a ``change`` event when it moved; the pages then
fetch what they show. One cheap query per connected page per second, whatever the traffic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from jarvis.runtime import Jarvis
from jarvis.server.deps import find_task
from jarvis.web import views

__all__ = ["router"]

router = APIRouter(prefix="/api", include_in_schema=False)

POLL_S = 1.0
KEEPALIVE_S = 15.0
STREAM_LIFETIME_S = 120.0  # then the browser reconnects; a server can always shut down


def _rt(request: Request) -> Jarvis:
    rt: Jarvis = request.app.state.rt
    return rt


@router.get("/overview")
async def overview(request: Request) -> dict[str, Any]:
    rt = _rt(request)
    data = await anyio.to_thread.run_sync(views.overview, rt)
    data["admin"] = _admin_info(request)
    return data


@router.get("/tasks/{task}")
async def task_detail(task: str, request: Request) -> dict[str, Any]:
    rt = _rt(request)
    t = find_task(rt, task)
    data = await anyio.to_thread.run_sync(views.task_detail, rt, t)
    data["admin"] = _admin_info(request)
    return data


@router.get("/tasks/{task}/calls")
async def task_calls(
    task: str, request: Request, limit: int = Query(default=25, ge=1, le=200)
) -> dict[str, Any]:
    rt = _rt(request)
    t = find_task(rt, task)
    calls = await anyio.to_thread.run_sync(views.recent_calls, rt, t, limit)
    return {"task": t.name, "calls": calls}


def _admin_info(request: Request) -> dict[str, bool]:
    """Whether admin buttons need the user's token (the server is exposed)."""
    return {
        "exposed": bool(request.app.state.exposed),
        "token_required": bool(request.app.state.exposed or request.app.state.api_token),
    }


@router.get("/stream")
async def stream(request: Request) -> EventSourceResponse:
    rt = _rt(request)

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(retry=1000)
        last: dict[str, Any] | None = None
        started = time.monotonic()
        while time.monotonic() - started < STREAM_LIFETIME_S:
            fingerprint = await anyio.to_thread.run_sync(rt.store.insights.changes)
            if fingerprint != last:
                last = fingerprint
                yield ServerSentEvent(data=json.dumps(fingerprint), event="change")
            await asyncio.sleep(POLL_S)

    # sse-starlette pings idle streams and cancels ``events`` when the page goes away
    return EventSourceResponse(events(), ping=KEEPALIVE_S)
