"""Security checks of the HTTP API: every admin route guarded, bodies bounded, names that are
paths refused, CORS closed, and secrets never written to the logs or the store.

Covered elsewhere: 413 with a declared Content-Length (test_routes.py), a path as version or
task in calls and promote (test_routes.py, test_openai_api.py), static paths
(tests/web/test_api.py), .jac uploads and run ids (tests/web/test_jac_runner.py).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from helpers.threads import THREADS
from jarvis import Jarvis, Settings, TeacherError
from jarvis.rpg import create_next_level
from jarvis.server import create_app

LOCAL = "http://localhost"  # a loopback server answers to loopback names only

# Non-GET routes anyone may call: they answer calls, they change no configuration.
OPEN_ROUTES = {
    ("POST", "/v1/tasks/{task}/call"),
    ("POST", "/v1/chat/completions"),
}
PATH_VALUES = {"task": "create_next_level", "version": "v0001", "run_id": "1", "program": "a.jac"}
LEVEL_INPUT = {"last_levels": [], "difficulty": 3}


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, included routers too."""
    try:
        from fastapi.routing import iter_route_contexts

        found = [(c.methods or set(), c.path) for c in iter_route_contexts(app.routes)]
    except ImportError:  # FastAPI before route contexts: included routes are flat
        found = [(getattr(r, "methods", None) or set(), getattr(r, "path", "")) for r in app.routes]
    return sorted((m, p) for methods, p in found if p for m in methods)


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "x"), path)


def guarded(app: FastAPI) -> list[tuple[str, str]]:
    """Routes that must refuse a caller without the token: every state change but calls, and
    everything under /v1/admin/."""
    out = []
    for method, path in routes(app):
        if (method, path) in OPEN_ROUTES:
            continue
        if method not in ("GET", "HEAD", "OPTIONS") or path.startswith("/v1/admin/"):
            out.append((method, path))
    return out


def client(settings: Settings, host: str, token: str | None = None) -> TestClient:
    values: dict[str, Any] = {"student": "none"}
    if token is not None:
        values["api_token"] = SecretStr(token)
    rt = Jarvis(settings.model_copy(update=values))
    return TestClient(create_app(rt, host=host), base_url=LOCAL)


def test_the_route_list_is_complete(settings: Settings) -> None:
    """The enumeration sees included routers (else the guard tests below would prove nothing)."""
    app = client(settings, "127.0.0.1").app
    assert isinstance(app, FastAPI)
    found = routes(app)
    assert ("POST", "/v1/admin/tasks/{task}/promote") in found
    assert ("POST", "/v1/admin/jac/runs") in found
    assert ("POST", "/v1/tasks/{task}/call") in found
    assert len(guarded(app)) >= 8


def test_every_state_changing_route_refuses_without_a_token_when_exposed(
    settings: Settings,
) -> None:
    api = client(settings, "0.0.0.0")
    assert isinstance(api.app, FastAPI)
    unguarded = []
    for method, path in guarded(api.app):
        response = api.request(method, concrete(path), json={})
        if response.status_code not in (401, 403):
            unguarded.append(f"{method} {path}: {response.status_code}")
    assert not unguarded, f"admin routes open on an exposed server: {unguarded}"


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_with_a_token_every_guarded_route_wants_exactly_it(settings: Settings, host: str) -> None:
    api = client(settings, host, token="right-token")
    assert isinstance(api.app, FastAPI)
    for method, path in guarded(api.app):
        url = concrete(path)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "right-token"}):
            response = api.request(method, url, json={}, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "invalid_token"
        allowed = api.request(method, url, json={}, headers={"Authorization": "Bearer right-token"})
        assert allowed.status_code not in (401, 403), (method, path)


def test_the_open_routes_still_answer_when_exposed(settings: Settings) -> None:
    api = client(settings, "0.0.0.0")
    call = api.post("/v1/tasks/create_next_level/call", json={"input": LEVEL_INPUT})
    assert call.status_code == 200


def test_a_chunked_body_without_a_length_is_bounded_too(settings: Settings) -> None:
    rt = Jarvis(settings.model_copy(update={"student": "none", "max_body_bytes": 1000}))
    api = TestClient(create_app(rt), base_url=LOCAL)

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    for url in ("/v1/tasks/create_next_level/call", "/v1/admin/import", "/v1/chat/completions"):
        response = api.post(url, content=chunks())
        assert response.status_code == 413, (url, response.text)
        assert "larger than 1000 bytes" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/v1/admin/tasks/..%2F..%2Fetc/train", None),
        ("POST", "/v1/admin/tasks/..%2F..%2Fetc/promote", {"version": "v0001"}),
        ("POST", "/v1/admin/tasks/..%2F..%2Fetc/rollback", None),
        ("POST", "/v1/admin/tasks/create_next_level/promote", {"version": "v0001/../../x"}),
        ("POST", "/v1/admin/tasks/create_next_level/promote", {"version": "/etc/passwd"}),
        ("POST", "/v1/admin/import?task=../../etc", ""),
        ("GET", "/api/tasks/..%2F..%2Fetc", None),
        ("GET", "/api/tasks/..%2F..%2Fetc/calls", None),
        ("POST", "/v1/tasks/create_next_level%2F..%2F..%2Fx/call", {"input": {}}),
    ],
)
def test_names_that_are_paths_are_refused_and_touch_nothing(
    settings: Settings, method: str, url: str, body: Any
) -> None:
    api = client(settings, "127.0.0.1")
    before = set(settings.home.rglob("*"))
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
    response = api.request(method, url, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["message"]
    created = {p for p in set(settings.home.rglob("*")) - before if "jarvis.db" not in p.name}
    assert not created


def test_cors_is_closed_by_default(settings: Settings) -> None:
    api = client(settings, "127.0.0.1")
    origin = {"Origin": "https://evil.example"}
    preflight = api.options(
        "/v1/tasks/create_next_level/call",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code >= 400
    for response in (
        api.get("/v1/models", headers=origin),
        api.post("/v1/tasks/create_next_level/call", json={"input": LEVEL_INPUT}, headers=origin),
    ):
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers


# -- secrets ----------------------------------------------------------------------------------

TEACHER_KEY = "sk-MARKER-teacher-5f1c"
API_TOKEN = "MARKER-token-9a7e"
STUDENT_KEY = "MARKER-student-3d2b"
MARKERS = (TEACHER_KEY, API_TOKEN, STUDENT_KEY)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [m for m in MARKERS if m.encode() in data]


@pytest.mark.slow
def test_secrets_never_reach_the_logs_or_the_store(
    home: Path,
    tiny_base: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    env = {
        "JARVIS_TEACHER_API_KEY": TEACHER_KEY,
        "JARVIS_API_TOKEN": API_TOKEN,
        "JARVIS_STUDENT_API_KEY": STUDENT_KEY,
        "JARVIS_BASE_MODEL": str(tiny_base),
        "JARVIS_THRESHOLD": "12",
        "JARVIS_TRAIN_MAX_STEPS": "2",
        "JARVIS_LORA_RANK": "4",
        "JARVIS_LORA_ALPHA": "8",
        "JARVIS_GATE_EXAMPLES": "2",
        "JARVIS_GATE_MIN_EXAMPLES": "2",
        "JARVIS_GATE_FLOOR": "0",
        "JARVIS_AGREEMENT_FLOOR": "0",
        "JARVIS_TRAIN_THREADS": str(THREADS),
        "JARVIS_ENGINE": "torch",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    caplog.set_level(logging.DEBUG)  # the most a user could turn on

    # a teacher call to a dead endpoint, with the key
    monkeypatch.setenv("JARVIS_TEACHER_BASE_URL", dead)
    monkeypatch.setenv("JARVIS_TEACHER_MAX_RETRIES", "1")
    failing = Jarvis(Settings())
    assert failing.settings.teacher_api_key is not None
    with pytest.raises(TeacherError) as info:
        failing.call(create_next_level, LEVEL_INPUT)
    assert not leaks(str(info.value)) and not leaks(repr(failing.settings))
    failing.close()

    # the oracle teaches, the API is called with the token, the worker trains and serves
    monkeypatch.setenv("JARVIS_TEACHER", "oracle")
    settings = Settings()
    rt = Jarvis(settings)
    for d in range(30):
        rt.call(create_next_level, {"last_levels": [], "difficulty": 1 + d % 20})
    api = TestClient(create_app(rt, host="0.0.0.0"), base_url=LOCAL)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert api.post("/v1/admin/tasks/create_next_level/rollback", headers=auth).status_code == 409
    assert api.post("/v1/admin/tasks/create_next_level/train", headers=auth).status_code == 200

    outcome = rt.worker().step()
    assert outcome is not None and outcome.status == "succeeded", outcome
    served = api.post("/v1/tasks/create_next_level/call", json={"input": LEVEL_INPUT})
    assert served.status_code == 200
    assert api.post("/v1/admin/tasks/create_next_level/rollback", headers=auth).status_code == 200
    rt.close()

    # `jarvis serve` itself, its whole output
    port = closed_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jarvis.cli", "serve", "--port", str(port)],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{url}/v1/admin/tasks/create_next_level/rollback", headers=auth).is_error
        assert (
            httpx.post(f"{url}/v1/admin/import", content=b"{bad", headers=auth).status_code == 200
        )
    finally:
        server.send_signal(signal.SIGINT)
        served_output = server.communicate(timeout=30)[0]

    found: list[str] = []
    for path in home.rglob("*"):
        if path.is_file() and leaks(path.read_bytes()):
            found.append(str(path.relative_to(home)))
    assert not found, f"secrets written under JARVIS_HOME: {found}"
    assert not leaks(caplog.text), "a secret in the logs"
    out, err = capfd.readouterr()
    assert not leaks(out + err), "a secret on stdout/stderr"
    assert not leaks(served_output), "a secret in the server's output"
    assert list(home.glob("*.db")), "the store was not where the test looked"
