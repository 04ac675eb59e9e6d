"""What a hostile web page could send to a JARVIS on loopback, request by request: refused, and
the store is unchanged. (The same attacks from a real page in Chromium:
tests/web/test_hostile_page.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers.store_rows import IMPORT_LINE as LINE
from helpers.store_rows import row_counts
from jarvis import Jarvis, Settings
from jarvis.server import create_app
from jarvis.server.browser_guard import host_name

LEVEL_CALL = {"input": {"last_levels": [], "difficulty": 3}}
EVIL = "http://evil.example"


@pytest.fixture
def rt(settings: Settings) -> Any:
    runtime = Jarvis(settings.model_copy(update={"teacher_seed": 3, "student": "none"}))
    runtime.sync_tasks()
    yield runtime
    runtime.close()


def client(rt: Jarvis, host: str = "127.0.0.1", base: str = "http://127.0.0.1:8765") -> TestClient:
    return TestClient(create_app(rt, host=host), base_url=base)


@pytest.mark.parametrize(
    "host", ["localhost:8765", "127.0.0.1:8765", "[::1]:8765", "LOCALHOST", "127.0.0.1"]
)
def test_loopback_names_are_answered(rt: Jarvis, host: str) -> None:
    assert client(rt).get("/api/overview", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/overview"),
        ("GET", "/api/tasks/create_next_level/calls"),
        ("GET", "/api/stream"),
        ("POST", "/v1/admin/tasks/create_next_level/train"),
        ("POST", "/v1/tasks/create_next_level/call"),
    ],
)
def test_a_rebinding_host_is_refused_before_anything_runs(
    rt: Jarvis, method: str, path: str
) -> None:
    before = row_counts(rt.store)
    response = client(rt).request(
        method, path, headers={"Host": "evil.example:8765"}, json=LEVEL_CALL
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "host_not_allowed" and "JARVIS_ALLOWED_HOSTS" in error["message"]
    assert row_counts(rt.store) == before


def test_allowed_hosts_add_names_and_an_exposed_server_checks_only_when_told(
    rt: Jarvis,
) -> None:
    rt.settings.allowed_hosts = ["jarvis.lan"]
    assert client(rt).get("/health", headers={"Host": "jarvis.lan:8765"}).status_code == 200
    assert client(rt).get("/health", headers={"Host": "other.lan"}).status_code == 403
    exposed = client(rt, host="0.0.0.0")
    assert exposed.get("/health", headers={"Host": "other.lan"}).status_code == 403
    rt.settings.allowed_hosts = []
    exposed = client(rt, host="0.0.0.0")  # reached by whatever name its users know
    assert exposed.get("/health", headers={"Host": "203.0.113.5:8765"}).status_code == 200


def test_a_plain_form_or_no_cors_import_changes_nothing(rt: Jarvis) -> None:
    api = client(rt)
    before = row_counts(rt.store)
    # what a <form enctype="text/plain"> or fetch(..., {mode: "no-cors"}) sends
    cross = api.post(
        "/v1/admin/import",
        content=LINE,
        headers={"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403 and cross.json()["error"]["code"] == "cross_site"
    # an old browser without Sec-Fetch-*: still refused by its Origin
    origin_only = api.post(
        "/v1/admin/import", content=LINE, headers={"Content-Type": "text/plain", "Origin": EVIL}
    )
    assert origin_only.status_code == 403
    # no Origin at all, but a body type a browser sends without a preflight
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        response = api.post("/v1/admin/import", content=LINE, headers={"Content-Type": media})
        assert response.status_code == 415, media
        assert "application/x-ndjson" in response.json()["error"]["message"]
    assert row_counts(rt.store) == before


def test_every_state_change_refuses_a_cross_site_origin(rt: Jarvis) -> None:
    api = client(rt)
    before = row_counts(rt.store)
    for path in (
        "/v1/tasks/create_next_level/call",
        "/v1/chat/completions",
        "/v1/admin/tasks/create_next_level/train",
        "/v1/admin/tasks/create_next_level/promote",
        "/v1/admin/tasks/create_next_level/rollback",
        "/v1/admin/import",
        "/v1/calls/1/feedback",
        "/v1/admin/jac/runs",
    ):
        for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}):
            response = api.post(path, json=LEVEL_CALL, headers=headers)
            assert response.status_code == 403, (path, headers)
    assert row_counts(rt.store) == before


def test_the_dashboard_and_non_browser_clients_keep_working(rt: Jarvis) -> None:
    api = client(rt)
    same_origin = {"Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"}
    call = api.post("/v1/tasks/create_next_level/call", json=LEVEL_CALL, headers=same_origin)
    assert call.status_code == 200 and call.json()["valid"]
    for media in ("application/x-ndjson", "application/jsonl", None):  # None: the CLI's httpx
        headers = {"Content-Type": media} if media else {}
        url = "/v1/admin/import?task=create_next_level"
        imported = api.post(url, content=LINE, headers=headers)
        assert imported.status_code == 200, imported.text
    assert api.post("/v1/admin/import", content=LINE).json()["duplicates"] == 1
    typed = {"Sec-Fetch-Site": "none"}  # a request the user made (address bar, bookmark)
    assert api.post("/v1/tasks/create_next_level/call", json=LEVEL_CALL, headers=typed).is_success


def test_refusals_are_counted_in_the_metrics(rt: Jarvis) -> None:
    api = client(rt)
    api.get("/health", headers={"Host": "evil.example"})
    api.post("/v1/admin/import", content=LINE, headers={"Origin": EVIL})
    text = api.get("/metrics").text
    assert 'jarvis_rejected_total{reason="host_not_allowed"} 1.0' in text
    assert 'jarvis_rejected_total{reason="cross_site"} 1.0' in text


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8765", "localhost"),
        ("[::1]:8765", "::1"),
        ("[::1]", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("Evil.Example:80", "evil.example"),
    ],
)
def test_host_names_drop_the_port(header: str, name: str) -> None:
    assert host_name(header) == name
