"""A teacher that fails: 500s, timeouts, garbage, through the router and the HTTP API.

The teacher is the real OpenAI-compatible one (the ``openai`` SDK and its retries with
backoff) against a scripted local HTTP endpoint. Each call ends in a clear state: logged
exactly once, the HTTP tries and their time in the attempt's reason, a :class:`TeacherError`
(502 over HTTP) when nothing can be done. The teacher alone is covered in
``tests/teachers/test_openai_teacher.py``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jarvis import AllAttemptsFailed, Jarvis, Settings, TeacherError
from jarvis.core.prompts import render_answer
from jarvis.rpg import create_next_level, oracle_level
from jarvis.server import create_app

LOCAL = "http://localhost"  # a loopback server answers to loopback names only

TASK = "create_next_level"
INPUTS = {"last_levels": [], "difficulty": 1}


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 410, "completion_tokens": 5, "total_tokens": 415},
    }


SERVER_ERROR = (500, {"error": {"message": "upstream hiccup", "type": "server_error"}})


def good_answer() -> tuple[int, dict[str, Any]]:
    import random

    level = oracle_level([], 1, random.Random(0))
    return 200, completion(render_answer(create_next_level, level))


@dataclass
class Endpoint:
    url: str = ""
    responses: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # last repeats
    hits: int = 0
    delay_s: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    fake = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with fake.lock:
                fake.hits += 1
                status, body = fake.responses[min(fake.hits, len(fake.responses)) - 1]
            if fake.delay_s:
                fake.release.wait(fake.delay_s)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("retry-after-ms", "20")  # the SDK's backoff, kept short
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def runtime(home: Path, endpoint: Endpoint, **overrides: Any) -> Jarvis:
    values: dict[str, Any] = {
        "home": home,
        "teacher_base_url": endpoint.url,
        "teacher_model": "m",
        "teacher_max_retries": 2,
        "teacher_timeout_s": 5.0,
        "student": "none",
    }
    values.update(overrides)
    return Jarvis(Settings(**values))


def only_call(rt: Jarvis) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    calls = rt.store.recent_calls(TASK, limit=100)
    assert len(calls) == 1, "the call must be logged exactly once"
    return calls[0], rt.store.call_attempts(calls[0]["id"])


def test_500s_that_never_stop_are_retried_with_backoff_then_a_logged_teacher_error(
    home: Path, endpoint: Endpoint
) -> None:
    endpoint.responses = [SERVER_ERROR]
    rt = runtime(home, endpoint)

    with pytest.raises(TeacherError) as failed:
        rt.call(create_next_level, INPUTS)

    message = str(failed.value)
    assert endpoint.url in message and "HTTP 500" in message and "upstream hiccup" in message
    assert "after 3 tries in" in message  # the first try and two retries, with their backoff
    assert endpoint.hits == 3
    call, attempts = only_call(rt)
    assert call["valid"] is False and call["error"] == message
    assert [(a["source"], a["stage"], a["reason"]) for a in attempts] == [
        ("teacher", "error", message)
    ]
    assert list(rt.store.iter_examples(TASK)) == []


def test_a_500_then_an_answer_is_one_valid_call_and_the_retry_is_logged(
    home: Path, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.responses = [SERVER_ERROR, good_answer()]
    rt = runtime(home, endpoint)

    with caplog.at_level(logging.WARNING, logger="jarvis.teachers.openai_compat"):
        result = rt.call(create_next_level, INPUTS)

    assert result.valid and result.source == "teacher"
    assert endpoint.hits == 2
    call, attempts = only_call(rt)
    assert call["valid"] is True and call["error"] is None
    assert [(a["source"], a["stage"]) for a in attempts] == [("teacher", "ok")]
    assert any("answered (after 2 tries in" in r.getMessage() for r in caplog.records)
    assert len(list(rt.store.iter_examples(TASK))) == 1


def test_a_teacher_that_times_out_is_a_logged_teacher_error_naming_the_timeout(
    home: Path, endpoint: Endpoint
) -> None:
    endpoint.responses = [good_answer()]
    endpoint.delay_s = 5.0  # released at teardown; the client gives up after 0.3 s
    rt = runtime(home, endpoint, teacher_timeout_s=0.3, teacher_max_retries=1)

    with pytest.raises(TeacherError, match=r"timed out .*after 2 tries in"):
        rt.call(create_next_level, INPUTS)

    call, attempts = only_call(rt)
    assert "timed out" in call["error"]
    assert [(a["source"], a["stage"]) for a in attempts] == [("teacher", "error")]


def test_garbage_then_a_good_answer_shows_both_attempts(home: Path, endpoint: Endpoint) -> None:
    endpoint.responses = [(200, completion("<html>oops</html>")), good_answer()]
    rt = runtime(home, endpoint)

    result = rt.call(create_next_level, INPUTS)

    assert result.valid and len(result.attempts) == 2
    call, attempts = only_call(rt)
    assert call["valid"] is True and call["attempts"] == 2
    assert [(a["number"], a["stage"]) for a in attempts] == [(0, "format"), (1, "ok")]
    assert attempts[0]["raw_text"] == "<html>oops</html>"
    assert str(attempts[0]["reason"]).startswith("not valid JSON")


def test_garbage_every_time_is_all_attempts_failed_logged_once(
    home: Path, endpoint: Endpoint
) -> None:
    endpoint.responses = [(200, completion('{"name": "not a level"}'))]
    rt = runtime(home, endpoint)

    with pytest.raises(AllAttemptsFailed) as failed:
        rt.call(create_next_level, INPUTS)

    call, attempts = only_call(rt)
    assert failed.value.call_id == call["id"]
    assert call["valid"] is False and call["attempts"] == rt.settings.teacher_attempts
    assert {a["stage"] for a in attempts} == {"format"}
    assert list(rt.store.iter_examples(TASK)) == []


def test_over_http_a_dead_teacher_is_a_502_with_the_cause_and_the_server_goes_on(
    home: Path, endpoint: Endpoint
) -> None:
    endpoint.responses = [SERVER_ERROR]
    rt = runtime(home, endpoint, teacher_max_retries=1)
    api = TestClient(create_app(rt), base_url=LOCAL)

    response = api.post(f"/v1/tasks/{TASK}/call", json={"input": INPUTS})

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "teacher_failed" and error["type"] == "upstream_error"
    assert "HTTP 500" in error["message"] and "after 2 tries" in error["message"]
    only_call(rt)
    assert api.get("/health").status_code == 200
    endpoint.responses = [good_answer()]  # the teacher is back
    endpoint.hits = 0
    assert api.post(f"/v1/tasks/{TASK}/call", json={"input": INPUTS}).status_code == 200
    assert len(rt.store.recent_calls(TASK, limit=100)) == 2
