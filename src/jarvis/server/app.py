"""The HTTP server: one process serves the OpenAI-compatible API, typed calls and admin.

``create_app(runtime)`` builds a FastAPI app around a :class:`jarvis.Jarvis` (its router,
store, and local student engine). Everything that reaches a model passes an admission check
(at most ``max_pending`` at once, else 503 with ``Retry-After``); request bodies above
``max_body_bytes`` are refused with 413 before they are parsed; every error has the OpenAI
error shape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jarvis import __version__
from jarvis.runtime import Jarvis, Settings
from jarvis.server import (
    dashboard_api,
    dashboard_pages,
    jac_routes,
    openai_routes,
    task_routes,
)
from jarvis.server.browser_guard import LOOPBACK_NAMES, BrowserGuard, host_name
from jarvis.server.errors import ApiError, error_response
from jarvis.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from jarvis.server.metrics import Metrics
from jarvis.server.security import is_loopback
from jarvis.serving.batcher import BatchCounts

__all__ = ["Admission", "allowed_hosts", "create_app"]


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, unparsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"request body larger than {self.limit} bytes", code="body_too_large"
        )
        await response(scope, receive, send)


class Admission:
    """A bounded queue in front of the models: at most ``limit`` requests inside at once."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self._lock = threading.Lock()

    def __call__(self) -> Iterator[None]:  # a FastAPI dependency with cleanup
        with self._lock:
            if self.metrics.in_flight >= self.limit:
                self.metrics.reject("overloaded")
                raise ApiError(
                    503, f"server busy: {self.limit} requests already queued; retry shortly"
                )
            self.metrics.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.metrics.in_flight -= 1


def allowed_hosts(settings: Settings, exposed: bool) -> frozenset[str] | None:
    """The Host names the app answers to: loopback's and the configured ones; None (any) for
    an exposed server that names none (it is reached by whatever name its users know)."""
    if exposed and not settings.allowed_hosts:
        return None
    return LOOPBACK_NAMES | {host_name(h) for h in settings.allowed_hosts}


def _batch_counts(rt: Jarvis) -> BatchCounts:
    batcher = rt.engine.batcher if rt.engine is not None else None
    if batcher is None:  # no local engine, a serial one, or not loaded yet
        return BatchCounts()
    return batcher.counts()


def create_app(rt: Jarvis, *, host: str | None = None) -> FastAPI:
    """The API for ``rt``; ``host`` is where it will listen (it decides admin access)."""
    settings = rt.settings
    app = FastAPI(title="JARVIS", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.rt = rt
    app.state.metrics = Metrics()
    app.state.metrics.watch_batch(lambda: _batch_counts(rt))
    app.state.admission = Admission(settings.max_pending, app.state.metrics)
    app.state.exposed = not is_loopback(host or settings.host)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app.state.api_token = token or None
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    # outermost: refused before a byte of the body is read
    app.add_middleware(
        BrowserGuard,
        allowed_hosts=allowed_hosts(settings, app.state.exposed),
        on_refuse=app.state.metrics.reject,
    )

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        label = getattr(route, "path", "unmatched")
        app.state.metrics.observe_request(
            label, response.status_code, time.perf_counter() - started
        )
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return error_response(
            exc.status, exc.message, param=exc.param, code=exc.code, headers=headers
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # routing's own errors (no such route: 404, wrong method: 405) in the same shape
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = (
            f"{where}: {first.get('msg', 'invalid request')}" if where else str(first.get("msg"))
        )
        return error_response(400, f"invalid request: {message}", param=where or None)

    @app.get("/health")
    def health() -> dict[str, Any]:
        rt.store.task_names()  # the store answers
        return {"status": "ok", "version": __version__, "tasks": sorted(rt.tasks)}

    @app.get("/metrics", response_class=Response)
    def metrics() -> Response:
        return Response(app.state.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    app.include_router(openai_routes.router)
    app.include_router(task_routes.router)
    app.include_router(jac_routes.router)  # runs .jac programs: admin token always
    app.include_router(dashboard_api.router)
    app.include_router(dashboard_pages.router)
    static = resources.files("jarvis.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
