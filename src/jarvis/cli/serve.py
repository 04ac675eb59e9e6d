"""``jarvis serve`` (the HTTP API) and ``jarvis up`` (API + training worker, one command)."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer
import uvicorn

from jarvis.cli.common import handle_errors, out, runtime
from jarvis.core.errors import ConfigError
from jarvis.server import create_app
from jarvis.server.security import is_loopback


def _serve(ctx: typer.Context, host: str | None, port: int | None, with_worker: bool) -> None:
    rt = runtime(ctx)
    settings = rt.settings
    host = host or settings.host
    port = settings.port if port is None else port
    if not is_loopback(host) and settings.api_token is None:
        out.print(
            f"[yellow]listening on {host}: admin routes stay disabled until JARVIS_API_TOKEN "
            "is set[/yellow]"
        )
    rt.sync_tasks()
    app = create_app(rt, host=host)
    stop = threading.Event()
    if with_worker:
        worker = rt.worker()
        recovered = worker.recover()
        if recovered:
            out.print(f"marked interrupted runs as failed: {recovered}")
        threading.Thread(
            target=worker.run_forever, args=(stop,), name="jarvis-worker", daemon=True
        ).start()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out.print(
        f"JARVIS on http://{host}:{port}  (dashboard: http://{host}:{port}/, "
        f"OpenAI base URL: http://{host}:{port}/v1)"
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    finally:
        stop.set()


def register(app: typer.Typer) -> None:
    app.command("serve")(handle_errors(serve_cmd))
    app.command("up")(handle_errors(up_cmd))


def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8765).")] = None,
) -> None:
    """Serve the OpenAI-compatible API, typed calls, admin and /metrics."""
    _serve(ctx, host, port, with_worker=False)


def up_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8765).")] = None,
) -> None:
    """The server and the training worker in one process: a whole single-machine JARVIS."""
    _serve(ctx, host, port, with_worker=True)
