"""Typed calls, admin access, limits and metrics, through the ASGI app in-process."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from helpers.envelope import ENVELOPE_KEYS
from jarvis import Jarvis, Settings
from jarvis.server import create_app
from jarvis.server.app import Admission
from jarvis.server.errors import ApiError
from jarvis.server.metrics import Metrics
from jarvis.serving.batcher import BatchCounts

LOCAL = "http://localhost"  # a loopback server answers to loopback names only

LEVEL_INPUT = {"last_levels": [], "difficulty": 3}


def app_client(settings: Settings, host: str = "127.0.0.1", **overrides: object) -> TestClient:
    rt = Jarvis(settings.model_copy(update=overrides), student=None)
    return TestClient(create_app(rt, host=host), base_url=LOCAL)


@pytest.fixture
def api(settings: Settings) -> TestClient:
    return app_client(settings, student="none")


def test_a_typed_call_returns_the_cli_envelope(api: TestClient) -> None:
    response = api.post("/v1/tasks/create_next_level/call", json={"input": LEVEL_INPUT})
    assert response.status_code == 200
    envelope = response.json()
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["valid"] and envelope["source"] == "teacher"
    assert envelope["output"]["difficulty"] == 3


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/tasks/create_next_level/call", {"input": {"difficulty": "hard"}}, 422, "bad inputs"),
        ("/v1/tasks/create_next_level/call", {"inputs": LEVEL_INPUT}, 400, "input"),
        ("/v1/tasks/no_such/call", {"input": {}}, 404, "unknown task"),
        ("/v1/tasks/..%2Fetc/call", {"input": {}}, 404, ""),
    ],
)
def test_bad_calls_are_refused_clearly(
    api: TestClient, path: str, body: dict[str, object], status: int, fragment: str
) -> None:
    response = api.post(path, json=body)
    assert response.status_code == status, response.text
    if fragment:
        assert fragment in response.json()["error"]["message"]


def test_bodies_over_the_limit_are_refused_before_parsing(settings: Settings) -> None:
    api = app_client(settings, student="none", max_body_bytes=1000)
    big = {"input": {"last_levels": [], "difficulty": 1, "pad": "x" * 2000}}
    response = api.post("/v1/tasks/create_next_level/call", json=big)
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["error"]["message"]


def test_admin_is_refused_on_an_exposed_server_without_a_token(settings: Settings) -> None:
    api = app_client(settings, host="0.0.0.0", student="none")
    response = api.post("/v1/admin/tasks/create_next_level/rollback")
    assert response.status_code == 403
    assert "JARVIS_API_TOKEN" in response.json()["error"]["message"]
    # typed calls stay open: only state changes are guarded
    assert api.post("/v1/tasks/create_next_level/call", json={"input": LEVEL_INPUT}).is_success


def test_a_configured_token_is_required_everywhere(settings: Settings) -> None:
    api = app_client(settings, host="0.0.0.0", student="none", api_token=SecretStr("s3cret"))
    url = "/v1/admin/tasks/create_next_level/rollback"
    assert api.post(url).status_code == 401
    assert api.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    authorized = api.post(url, headers={"Authorization": "Bearer s3cret"})
    # past the guard: refused only because there is nothing to roll back
    assert authorized.status_code == 409
    assert "no active version" in authorized.json()["error"]["message"]


def test_promote_refuses_a_path_as_version(api: TestClient) -> None:
    response = api.post("/v1/admin/tasks/create_next_level/promote", json={"version": "../../etc"})
    assert response.status_code == 409
    assert "version" in response.json()["error"]["message"]


def test_import_keeps_good_lines_and_names_the_bad_ones(api: TestClient) -> None:
    level = {
        "name": 1,
        "difficulty": 1,
        "time": 300,
        "width": 10,
        "height": 10,
        "num_wall": 5,
        "num_enemies": 2,
    }
    good = {  # a byLLM log line: the rendered call and the model's answer
        "input": "create_next_level\n\nlast_levels = []\ndifficulty = 1",
        "output": json.dumps(level),
    }
    body = json.dumps(good) + "\n{not json\n"
    response = api.post("/v1/admin/import", content=body.encode())
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["lines"], report["added"]) == (2, 1)
    assert report["errors"] and report["errors"][0].startswith("line 2")


def test_train_needs_examples_first(api: TestClient) -> None:
    response = api.post("/v1/admin/tasks/create_next_map/train")
    assert response.status_code == 409
    assert "no training examples" in response.json()["error"]["message"]


def test_admission_answers_503_when_the_queue_is_full() -> None:
    admission = Admission(1, Metrics())
    first = admission()
    next(first)
    second = admission()
    with pytest.raises(ApiError) as refused:
        next(second)
    assert refused.value.status == 503
    first.close()  # the first request finishes: room again
    third = admission()
    next(third)
    third.close()


def test_health_and_metrics(api: TestClient) -> None:
    assert api.get("/health").json()["status"] == "ok"
    api.post("/v1/tasks/create_next_level/call", json={"input": LEVEL_INPUT})
    response = api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    task = ("task", "create_next_level")
    assert samples[("jarvis_calls_total", (("source", "teacher"), task))] == 1
    route = ("route", "/v1/tasks/{task}/call")
    assert samples[("jarvis_request_seconds_count", (route,))] == 1
    assert samples[("jarvis_student_share", (task,))] == 0.0
    assert samples[("jarvis_in_flight", ())] == 0
    assert samples[("process_resident_memory_bytes", ())] > 0  # the process collector
    # the engine's continuous batch (no local engine here: nothing decoding, no passes)
    assert samples[("jarvis_batch_active", ())] == 0
    assert samples[("jarvis_batch_steps_total", ())] == 0


def test_the_batch_series_read_the_engine_at_scrape_time() -> None:
    figures = [BatchCounts()]
    metrics = Metrics()
    metrics.watch_batch(lambda: figures[0])
    # three answers decoding; 40 passes carried 100 answers and read 900 tokens in 2.5 s
    figures[0] = BatchCounts(3, 40, 100, 900, 2.5)
    text = metrics.render().decode()
    assert "jarvis_batch_active 3.0" in text
    assert "jarvis_batch_steps_total 40.0" in text
    assert "jarvis_batch_answers_total 100.0" in text
    assert "jarvis_batch_tokens_total 900.0" in text
    assert "jarvis_batch_forward_seconds_total 2.5" in text


def test_two_apps_keep_their_own_counts() -> None:
    first, second = Metrics(), Metrics()
    first.observe_call("t", "student", False, 3, 4)
    assert b'jarvis_calls_total{source="student",task="t"} 1.0' in first.render()
    assert b"jarvis_calls_total{" not in second.render()
