"""Who may change state: loopback is trusted by default, an exposed server needs a token.

* A token is configured (``JARVIS_API_TOKEN``): admin routes need ``Authorization: Bearer …``,
  wherever the server listens.
* No token, bound to loopback: admin routes are open (a single-user machine).
* No token, bound beyond loopback: admin routes are refused (403), with the fix in the message.
"""

from __future__ import annotations

import ipaddress
import secrets

from fastapi import Request

from jarvis.server.errors import ApiError

__all__ = ["is_loopback", "require_admin"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_admin(request: Request) -> None:
    """FastAPI dependency for routes that change state."""
    state = request.app.state
    token: str | None = state.api_token
    if token is None:
        if state.exposed:
            raise ApiError(
                403,
                "admin routes are disabled on an exposed server without a token: "
                "set JARVIS_API_TOKEN and send 'Authorization: Bearer <token>'",
                code="admin_disabled",
            )
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), token):
        raise ApiError(401, "missing or wrong bearer token", code="invalid_token")
