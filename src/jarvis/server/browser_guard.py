"""What a web page in the user's browser can do to a JARVIS on this machine: nothing.

Binding to loopback keeps other machines out, not the pages a local browser opens. A hostile
page can (1) make the browser send a "simple" cross-site request that needs no CORS
preflight: a form POST, or ``fetch(..., {mode: "no-cors"})`` with a ``text/plain`` body; and
(2) read answers through DNS rebinding: its own host name made to resolve to 127.0.0.1, so
the browser treats the server as the page's own origin (the request then carries
``Host: evil.example:PORT``). Jupyter, Ollama (CVE-2024-28224) and the Docker and Kubernetes
dashboards were each caught by one of these. This middleware closes both, before routing:

* **Host allowlist** (a loopback server, or any server with ``JARVIS_ALLOWED_HOSTS``): the
  ``Host`` header must name localhost, 127.0.0.1, [::1] or an allowed name, else 403. A
  rebinding page cannot send another ``Host`` than its own name, so it reads nothing.
* **No cross-site state changes**: a POST/PUT/PATCH/DELETE whose ``Sec-Fetch-Site`` is not
  ``same-origin``/``none``, or whose ``Origin`` is not the server's own, is refused (403);
  non-browser clients send neither header and are unaffected.
* **No preflight-free bodies**: such a request with ``text/plain`` or a form encoding
  (``application/x-www-form-urlencoded``, ``multipart/form-data``: the content types a page may
  send without a preflight) is refused (415); JSON bodies use ``application/json``, JSONL
  imports ``application/x-ndjson`` or ``application/jsonl``.

GET routes only read; with the Host check a foreign page cannot read their answers (the
browser's same-origin policy, and no CORS headers are ever sent).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from jarvis.server.errors import error_response

__all__ = ["LOOPBACK_NAMES", "BrowserGuard", "host_name"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
SAME_SITE = frozenset({"same-origin", "none"})  # "none": typed in the address bar, a bookmark


def host_name(host: str) -> str:
    """The name in a ``Host`` header or an origin's netloc, without the port, lower case."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8765
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class BrowserGuard:
    """ASGI middleware; ``allowed_hosts`` None: no Host check (an exposed server by default)."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: frozenset[str] | None,
        on_refuse: Callable[[str], None] | None = None,
    ) -> None:
        """``on_refuse(code)`` counts each refusal (the app's ``jarvis_rejected_total``)."""
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.on_refuse = on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope["method"], headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, code = refusal
        if self.on_refuse is not None:
            self.on_refuse(code)
        await error_response(status, message, code=code)(scope, receive, send)

    def _refusal(self, method: str, headers: dict[str, str]) -> tuple[int, str, str] | None:
        host = headers.get("host", "")
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            names = ", ".join(sorted(self.allowed_hosts))
            return (
                403,
                f"Host {host!r} is not allowed: this server answers to {names} "
                "(add a name with JARVIS_ALLOWED_HOSTS)",
                "host_not_allowed",
            )
        if method.upper() in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if site is not None and site.lower() not in SAME_SITE:
            return 403, f"cross-site request refused (Sec-Fetch-Site: {site})", "cross_site"
        if origin is not None and (
            origin == "null" or urlsplit(origin).netloc.lower() != host.lower()
        ):
            return 403, f"cross-site request refused (Origin: {origin})", "cross_site"
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media in SIMPLE_TYPES:
            return (
                415,
                f"Content-Type {media} is not accepted here: send application/json "
                "(JSONL imports: application/x-ndjson)",
                "unsupported_media_type",
            )
        return None
