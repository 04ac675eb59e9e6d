"""The OpenAI-compatible teacher, against a real local HTTP server.

The server is a plain :class:`http.server.ThreadingHTTPServer` on 127.0.0.1 that answers
``POST /v1/chat/completions`` from a script of ``(status, body)`` responses and records every
request body, so these tests exercise the real ``openai`` SDK, its HTTP client, its retries
and its error types.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jarvis import (
    GenerationRequest,
    Jarvis,
    OpenAITeacher,
    Sampling,
    Settings,
    Store,
    TeacherError,
)
from jarvis.core.prompts import render_answer, render_messages
from jarvis.rpg import Level, create_next_level, oracle_level

LEVEL = oracle_level([], 1, random.Random(0))


# -- the fake endpoint --------------------------------------------------------------------


def completion(content: str, *, model: str = "served-model") -> dict[str, Any]:
    """A minimal, well-formed chat completion body."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 34, "total_tokens": 154},
    }


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


@dataclass
class FakeEndpoint:
    """What the test controls: the scripted responses (the last one repeats) and a delay."""

    url: str
    responses: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_response(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
            index = min(len(self.requests), len(self.responses)) - 1
            return self.responses[index]


def _handler_for(endpoint: FakeEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send(404, error_body(f"no route {self.path}"))
                return
            status, payload = endpoint.next_response(body)
            if endpoint.delay_s:
                endpoint.release.wait(endpoint.delay_s)
            self._send(status, payload)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429 or status >= 500:
                    self.send_header("retry-after-ms", "10")  # keep the SDK's backoff short
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    fake = FakeEndpoint(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    host, port = server.server_address[:2]
    fake.url = f"http://{host}:{port}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def level_request(sampling: Sampling | None = None) -> GenerationRequest:
    inputs = create_next_level.load_inputs({"last_levels": [], "difficulty": 1})
    return GenerationRequest(
        create_next_level,
        inputs,
        render_messages(create_next_level, inputs),
        sampling or Sampling(),
        create_next_level.output_schema,
    )


def teacher_for(endpoint: FakeEndpoint, **kwargs: Any) -> OpenAITeacher:
    options: dict[str, Any] = {"model": "m", "max_retries": 0, "timeout_s": 5.0}
    options.update(kwargs)
    return OpenAITeacher(base_url=endpoint.url, **options)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- answers ------------------------------------------------------------------------------


def test_a_chat_completion_becomes_a_generation(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(200, completion('{"answer": 1}', model="m-2025-01"))]

    generation = teacher_for(endpoint).generate(level_request())

    assert generation.text == '{"answer": 1}'
    assert generation.model == "m-2025-01"
    assert (generation.tokens_in, generation.tokens_out) == (120, 34)


def test_an_answer_cut_off_at_max_tokens_is_reported_as_unfinished(
    endpoint: FakeEndpoint,
) -> None:
    """The router rejects a cut-off free-text answer; only the finish reason tells."""
    cut = completion("The council approved the budget after a long")
    cut["choices"][0]["finish_reason"] = "length"
    endpoint.responses = [(200, completion("{}")), (200, cut)]
    teacher = teacher_for(endpoint)

    assert teacher.generate(level_request()).finished is True
    assert teacher.generate(level_request()).finished is False


def test_the_request_carries_model_messages_schema_and_sampling(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(200, completion("{}"))]
    request = level_request(Sampling(temperature=0.7, top_p=0.9, seed=11, max_tokens=256))

    teacher_for(endpoint).generate(request)

    (sent,) = endpoint.requests
    assert sent["model"] == "m"
    assert sent["messages"] == request.messages
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "create_next_level", "schema": create_next_level.output_schema},
    }
    assert (sent["temperature"], sent["top_p"], sent["seed"]) == (0.7, 0.9, 11)
    assert sent["max_tokens"] == 256


def test_unset_sampling_is_left_to_the_endpoint(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(200, completion("{}"))]

    teacher_for(endpoint).generate(level_request(Sampling()))

    (sent,) = endpoint.requests
    assert not {"temperature", "top_p", "seed", "max_tokens"} & set(sent)


def test_json_object_mode_and_no_format_mode(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(200, completion("{}"))]

    teacher_for(endpoint, response_format="json_object").generate(level_request())
    teacher_for(endpoint, response_format="none").generate(level_request())

    # json_object carries the schema (llama-cpp-python enforces it; "some JSON" is not enough)
    assert endpoint.requests[0]["response_format"] == {
        "type": "json_object",
        "schema": create_next_level.output_schema,
    }
    assert "response_format" not in endpoint.requests[1]


def test_garbage_content_is_returned_as_text_the_teacher_does_not_judge(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.responses = [(200, completion("not json at all"))]
    assert teacher_for(endpoint).generate(level_request()).text == "not json at all"


# -- failures -----------------------------------------------------------------------------


def test_a_server_error_is_retried_and_then_succeeds(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [
        (500, error_body("upstream hiccup", "server_error")),
        (200, completion("{}")),
    ]

    generation = teacher_for(endpoint, max_retries=2).generate(level_request())

    assert generation.text == "{}"
    assert len(endpoint.requests) == 2


def test_rate_limiting_that_never_ends_is_a_teacher_error(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(429, error_body("Rate limit reached", "rate_limit_error"))]

    with pytest.raises(TeacherError) as info:
        teacher_for(endpoint, max_retries=1).generate(level_request())

    message = str(info.value)
    assert endpoint.url in message
    assert "429" in message
    assert "Rate limit reached" in message
    assert len(endpoint.requests) == 2  # the first try and one retry


def test_a_refused_connection_is_a_teacher_error_naming_the_endpoint() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    teacher = OpenAITeacher(base_url=url, model="m", max_retries=0, timeout_s=2.0)

    with pytest.raises(TeacherError) as info:
        teacher.generate(level_request())

    assert url in str(info.value)
    assert "cannot connect" in str(info.value)


def test_a_slow_endpoint_is_a_teacher_error_that_says_it_timed_out(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.responses = [(200, completion("{}"))]
    endpoint.delay_s = 5.0  # released at teardown; the client gives up after 0.3 s

    with pytest.raises(TeacherError) as info:
        teacher_for(endpoint, timeout_s=0.3).generate(level_request())

    assert "timed out" in str(info.value)
    assert endpoint.url in str(info.value)


def test_a_client_error_is_not_retried(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(401, error_body("Incorrect API key provided"))]

    with pytest.raises(TeacherError, match=r"HTTP 401: .*Incorrect API key"):
        teacher_for(endpoint, max_retries=2).generate(level_request())

    assert len(endpoint.requests) == 1


def test_a_refused_form_is_dropped_for_the_next_one_and_remembered(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.responses = [
        (400, error_body("response_format of type json_schema is not supported by this model")),
        (200, completion("{}")),
    ]
    teacher = teacher_for(endpoint)

    assert teacher.generate(level_request()).text == "{}"
    assert endpoint.requests[0]["response_format"]["type"] == "json_schema"
    assert endpoint.requests[1]["response_format"]["type"] == "json_object"
    assert endpoint.requests[1]["response_format"]["schema"] == create_next_level.output_schema
    assert teacher.response_format == "json_object"

    teacher.generate(level_request())  # no second refusal to pay for

    assert len(endpoint.requests) == 3
    assert endpoint.requests[2]["response_format"]["type"] == "json_object"


def test_a_500_that_names_response_format_is_a_refusal_not_worth_retries(
    endpoint: FakeEndpoint,
) -> None:
    """llama-cpp-python answers a response_format it does not know with a 500: one request
    finds that out, the SDK's retries are not spent on it."""
    refusal = error_body(
        "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\"}]",
        "internal_server_error",
    )
    endpoint.responses = [(500, refusal), (200, completion("{}"))]
    teacher = teacher_for(endpoint, max_retries=3)

    assert teacher.generate(level_request()).text == "{}"
    assert len(endpoint.requests) == 2
    assert teacher.response_format == "json_object"


# Recorded refusals of the other servers' forms: each names the field it does not take.
VLLM_OLD = (400, error_body("Unknown field: 'structured_outputs'"))
JSON_SCHEMA_REFUSED = (400, error_body("'response_format' json_schema is not supported"))
JSON_OBJECT_REFUSED = (
    422,
    error_body("response_format.schema: Extra inputs are not permitted", "validation_error"),
)


def test_the_forms_are_tried_in_order_until_one_is_taken(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [
        JSON_SCHEMA_REFUSED,
        JSON_OBJECT_REFUSED,
        VLLM_OLD,
        (200, completion("{}")),
    ]
    teacher = teacher_for(endpoint)

    teacher.generate(level_request())

    schema = create_next_level.output_schema
    sent = endpoint.requests
    assert [r.get("response_format", {}).get("type") for r in sent[:2]] == [
        "json_schema",
        "json_object",
    ]
    assert sent[2]["structured_outputs"] == {"json": schema} and "response_format" not in sent[2]
    assert sent[3]["guided_json"] == schema  # vLLM before 0.12
    assert teacher.response_format == "vllm_guided"


@pytest.mark.parametrize(
    ("setting", "field", "value"),
    [
        ("vllm", "structured_outputs", lambda s: {"json": s}),
        ("vllm_guided", "guided_json", lambda s: s),
        ("ollama", "format", lambda s: s),
    ],
)
def test_an_explicit_form_is_sent_as_the_server_takes_it(
    endpoint: FakeEndpoint, setting: str, field: str, value: Any
) -> None:
    endpoint.responses = [(200, completion("{}"))]
    teacher_for(endpoint, response_format=setting).generate(level_request())
    (sent,) = endpoint.requests
    assert sent[field] == value(create_next_level.output_schema)
    assert "response_format" not in sent


def test_an_explicit_form_the_server_refuses_is_a_clear_error(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [JSON_OBJECT_REFUSED]
    with pytest.raises(TeacherError, match="JARVIS_TEACHER_RESPONSE_FORMAT=auto"):
        teacher_for(endpoint, response_format="json_object").generate(level_request())
    assert len(endpoint.requests) == 1


def test_a_template_that_drops_the_system_message_is_detected_and_avoided(
    endpoint: FakeEndpoint,
) -> None:
    """The server counted 25 prompt tokens for a ~1,000-character system message: it never
    saw the instructions. The same call goes again with them in the user turn, and so do the
    next ones."""
    dropped = completion("{}")
    dropped["usage"]["prompt_tokens"] = 25
    read = completion("{}")
    read["usage"]["prompt_tokens"] = 290  # the instructions, now in the user turn, counted
    endpoint.responses = [(200, dropped), (200, read)]
    decisions: list[dict[str, Any]] = []
    teacher = teacher_for(endpoint, on_decision=decisions.append)

    teacher.generate(level_request())
    teacher.generate(level_request())

    first, again, later = endpoint.requests
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [m["role"] for m in again["messages"]] == ["user"]
    assert again["messages"][0]["content"].startswith(create_next_level.instructions)
    assert "create_next_level\n\nlast_levels = []" in again["messages"][0]["content"]
    assert [m["role"] for m in later["messages"]] == ["user"]
    assert any(d.get("instructions") == "user" for d in decisions)


def test_a_server_whose_token_counts_say_nothing_is_not_judged_by_them(
    endpoint: FakeEndpoint,
) -> None:
    """Some servers report a token count that is not the prompt's: asked again with the
    instructions in the user turn, the count does not move, so nothing was dropped."""
    constant = completion("{}")
    constant["usage"]["prompt_tokens"] = 7
    endpoint.responses = [(200, constant)]
    decisions: list[dict[str, Any]] = []
    teacher = teacher_for(endpoint, on_decision=decisions.append)

    teacher.generate(level_request())
    teacher.generate(level_request())

    assert len(endpoint.requests) == 3  # one check, then no more
    assert [m["role"] for m in endpoint.requests[2]["messages"]] == ["system", "user"]
    assert not any(d.get("instructions") == "user" for d in decisions)


def test_a_recorded_decision_is_where_a_new_process_starts(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(200, completion("{}"))]
    known = {"form": "json_object", "instructions": "user"}
    teacher_for(endpoint, known=known).generate(level_request())
    (sent,) = endpoint.requests
    assert sent["response_format"]["type"] == "json_object"
    assert [m["role"] for m in sent["messages"]] == ["user"]


def test_other_bad_requests_are_not_retried_without_the_format(endpoint: FakeEndpoint) -> None:
    endpoint.responses = [(400, error_body("messages: too long"))]
    teacher = teacher_for(endpoint)

    with pytest.raises(TeacherError, match="HTTP 400"):
        teacher.generate(level_request())

    assert len(endpoint.requests) == 1
    assert teacher.response_format == "json_schema"


# -- end to end through the runtime -------------------------------------------------------


def runtime_on(endpoint: FakeEndpoint, home: Path, store: Store) -> Jarvis:
    settings = Settings(
        home=home, teacher_base_url=endpoint.url, teacher_model="m", teacher_max_retries=0
    )
    return Jarvis(settings, store=store)


def test_a_runtime_with_a_base_url_routes_calls_to_the_endpoint(
    endpoint: FakeEndpoint, home: Path, store: Store
) -> None:
    endpoint.responses = [(200, completion(render_answer(create_next_level, LEVEL), model="m-7"))]
    runtime = runtime_on(endpoint, home, store)

    result = runtime.call(create_next_level, {"last_levels": [], "difficulty": 1})

    assert result.valid
    assert isinstance(result.output, Level) and result.output == LEVEL
    assert result.source == "teacher"
    (sent,) = endpoint.requests
    assert sent["model"] == "m"
    assert sent["messages"][1]["content"] == "create_next_level\n\nlast_levels = []\ndifficulty = 1"
    call = store.recent_calls()[0]
    assert (call["model"], call["valid"], call["tokens_in"], call["tokens_out"]) == (
        "m-7",
        True,
        120,
        34,
    )
    examples = list(store.iter_examples("create_next_level"))
    assert [e["output"] for e in examples] == [LEVEL.model_dump()]


def test_garbage_from_the_endpoint_makes_the_call_invalid(
    endpoint: FakeEndpoint, home: Path, store: Store
) -> None:
    endpoint.responses = [(200, completion("not json at all"))]
    runtime = runtime_on(endpoint, home, store)

    result = runtime.call(
        create_next_level, {"last_levels": [], "difficulty": 1}, raise_on_invalid=False
    )

    assert result.valid is False
    assert result.reason is not None and result.reason.startswith("not valid JSON")
    assert len(endpoint.requests) == runtime.settings.teacher_attempts
    retry_messages = endpoint.requests[-1]["messages"]
    assert retry_messages[-2] == {"role": "assistant", "content": "not json at all"}
    assert "not valid JSON" in retry_messages[-1]["content"]
    call = store.recent_calls()[0]
    assert call["valid"] is False
    assert list(store.iter_examples("create_next_level")) == []
