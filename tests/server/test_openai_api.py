"""The unmodified ``openai`` SDK against a live JARVIS server."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from helpers.live_server import LiveServer
from jarvis import Jarvis
from jarvis.core.prompts import user_message
from jarvis.rpg.models import Level, Map
from jarvis.rpg.tasks import create_next_level

LEVEL_CALL = user_message(create_next_level, {"last_levels": [], "difficulty": 2})


def client(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)


def test_models_lists_tasks_versions_and_the_teacher(
    live: LiveServer, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    version = make_version(live.rt, "create_next_level", 1)
    ids = [m.id for m in client(live).models.list()]
    assert {"create_next_level", "create_next_map", "teacher"} <= set(ids)
    assert f"create_next_level@{version}" in ids


def test_a_typed_call_as_chat_returns_the_validated_answer(live: LiveServer) -> None:
    reply = client(live).chat.completions.create(
        model="create_next_level", messages=[{"role": "user", "content": LEVEL_CALL}]
    )
    level = Level.model_validate_json(reply.choices[0].message.content or "")
    assert level.difficulty == 2
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.model_extra and reply.model_extra["jarvis"]["source"] == "teacher"


def test_streaming_delivers_the_same_answer_in_chunks(live: LiveServer) -> None:
    stream = client(live).chat.completions.create(
        model="create_next_level",
        messages=[{"role": "user", "content": LEVEL_CALL}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert Level.model_validate_json(text).difficulty == 2
    assert chunks[-1].usage is not None  # the usage chunk comes last


def test_a_promoted_version_answers_the_next_request_without_restart(
    live: LiveServer, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    api = httpx.Client(base_url=live.url, timeout=60)
    body = {
        "input": {
            "level": Level(
                name=1, difficulty=1, time=300, width=10, height=10, num_wall=2, num_enemies=2
            ).model_dump()
        }
    }
    before = api.post("/v1/tasks/create_next_map/call", json=body).json()
    assert before["source"] == "teacher" and before["attempts"] == 1

    version = make_version(live.rt, "create_next_map", 2)
    promoted = api.post("/v1/admin/tasks/create_next_map/promote", json={"version": version})
    assert promoted.status_code == 200, promoted.text

    after = api.post("/v1/tasks/create_next_map/call", json=body).json()
    call = live.rt.store.recent_calls("create_next_map", limit=1)[0]
    first = live.rt.store.call_attempts(call["id"])[0]
    assert (first["source"], first["version"]) == ("student", version)
    # constrained decoding: even this random adapter's answer parses as a map of the level
    assert first["stage"] != "format", first["reason"]
    assert after["valid"]  # validated, or fallen back to the teacher
    Map.model_validate(after["output"])


def test_concurrent_requests_for_two_tasks_each_get_their_own_adapter(
    live: LiveServer, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    level_v = make_version(live.rt, "create_next_level", 3)
    map_v = make_version(live.rt, "create_next_map", 4)
    api = client(live)
    messages = [{"role": "user", "content": "Say something."}]

    def ask(model: str) -> str:
        reply = api.chat.completions.create(model=model, messages=messages, max_tokens=12)
        return reply.choices[0].message.content or ""

    models = [f"create_next_level@{level_v}", f"create_next_map@{map_v}"]
    alone = {m: ask(m) for m in models}
    assert alone[models[0]] != alone[models[1]]  # the adapters really differ
    with ThreadPoolExecutor(8) as pool:
        mixed = list(pool.map(ask, models * 4))
    assert mixed == [alone[m] for m in models * 4]


def test_json_schema_response_format_constrains_free_chat(
    live: LiveServer, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    version = make_version(live.rt, "create_next_level", 5)
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["answer"],
        "additionalProperties": False,  # as OpenAI's strict schemas: else any key may follow
    }
    reply = client(live).chat.completions.create(
        model=f"create_next_level@{version}",
        messages=[{"role": "user", "content": "Pick a digit."}],
        response_format={"type": "json_schema", "json_schema": {"name": "digit", "schema": schema}},
        max_tokens=20,
    )
    assert 0 <= json.loads(reply.choices[0].message.content or "")["answer"] <= 9


def test_a_schema_the_grammar_cannot_enforce_is_a_400_naming_the_keyword(
    live: LiveServer, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    version = make_version(live.rt, "create_next_level", 6)
    dict_schema = {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}}
    response = httpx.post(
        f"{live.url}/v1/chat/completions",
        json={
            "model": f"create_next_level@{version}",
            "messages": [{"role": "user", "content": "Count things."}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "counts", "schema": dict_schema},
            },
        },
        timeout=60,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "propertyNames" in error["message"] and error["param"] == "response_format"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "create_next_level", "messages": []}, 400, "messages"),
        (
            {"model": "create_next_level", "messages": [{"role": "user", "content": "hi"}]},
            400,
            "typed calls",
        ),
        (
            {"model": "no_such_task", "messages": [{"role": "user", "content": "x"}]},
            404,
            "unknown task",
        ),
        (
            {"model": "create_next_level@../etc", "messages": [{"role": "user", "content": "x"}]},
            404,
            "version",
        ),
        (
            {
                "model": "create_next_level",
                "messages": [{"role": "user", "content": LEVEL_CALL}],
                "temperature": 9,
            },
            400,
            "temperature",
        ),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_clear_message(
    live: LiveServer, body: dict[str, object], status: int, fragment: str
) -> None:
    response = httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["type"]


def test_the_sdk_raises_its_own_errors_for_ours(live: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError, match="unknown task"):
        client(live).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": LEVEL_CALL}]
        )
