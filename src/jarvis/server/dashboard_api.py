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
from fastapi.responses import StreamingResponse

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
async def stream(request: Request) -> StreamingResponse:
    rt = _rt(request)

    async def events() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        last: dict[str, Any] | None = None
        started = quiet = time.monotonic()
        while time.monotonic() - started < STREAM_LIFETIME_S:
            if await request.is_disconnected():
                return
            fingerprint = await anyio.to_thread.run_sync(rt.store.insights.changes)
            if fingerprint != last:
                last = fingerprint
                quiet = time.monotonic()
                yield f"event: change\ndata: {json.dumps(fingerprint)}\n\n"
            elif time.monotonic() - quiet > KEEPALIVE_S:
                quiet = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
