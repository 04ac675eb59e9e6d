"""The dashboard's pages and JSON API over HTTP: headers, errors, limits, the live stream."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from helpers.live_server import LiveServer
from jarvis import Jarvis
from jarvis.demo.play import LevelManager
from jarvis.server import create_app

LOCAL = "http://localhost"  # a loopback server answers to loopback names only


@pytest.fixture
def client(runtime: Jarvis) -> TestClient:
    runtime.sync_tasks()
    return TestClient(create_app(runtime), base_url=LOCAL)


@pytest.mark.parametrize("path", ["/", "/tasks/create_next_map", "/game"])
def test_pages_are_html_with_a_strict_content_security_policy(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "http://" not in response.text.replace("http://www.w3.org", "")  # no CDN
    assert '<script src="/static/common.js' in response.text


def test_the_packaged_assets_are_served(client: TestClient) -> None:
    for name in ("app.css", "common.js", "overview.js", "task.js", "game.js"):
        assert client.get(f"/static/{name}").status_code == 200, name


@pytest.mark.parametrize(
    "path", ["/static/../__init__.py", "/static/%2e%2e/pages.py", "/static/..%2f..%2fconfig.py"]
)
def test_static_paths_cannot_leave_the_asset_folder(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_an_unknown_or_malformed_task_is_a_clear_404(client: TestClient) -> None:
    for path in ("/tasks/nope", "/api/tasks/nope", "/tasks/a%20b"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "task" in response.json()["error"]["message"]


def test_the_overview_api_reports_the_calls_made(runtime: Jarvis, client: TestClient) -> None:
    LevelManager(runtime).next_level()
    data = client.get("/api/overview").json()
    rows = {r["name"]: r for r in data["tasks"]}
    assert rows["create_next_level"]["calls"] == rows["create_next_map"]["calls"] == 1
    assert data["totals"]["calls"] == 2
    assert data["admin"] == {"exposed": False, "token_required": False}


def test_the_calls_api_bounds_its_limit(client: TestClient) -> None:
    assert client.get("/api/tasks/create_next_map/calls?limit=0").status_code == 400
    assert client.get("/api/tasks/create_next_map/calls?limit=201").status_code == 400
    assert client.get("/api/tasks/create_next_map/calls?limit=5").json()["calls"] == []


def test_the_stream_announces_a_change_when_a_call_is_logged(runtime: Jarvis) -> None:
    with (
        LiveServer(runtime) as server,
        httpx.Client(timeout=10) as http,
        http.stream("GET", f"{server.url}/api/stream") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = (line for line in response.iter_lines() if line.startswith("data:"))
        first = json.loads(next(events)[5:])
        LevelManager(runtime).next_level()
        second = json.loads(next(events)[5:])
    assert second["call"] > first["call"]
