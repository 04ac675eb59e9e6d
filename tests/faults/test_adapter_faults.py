"""Faults of a version's files: an adapter missing after promotion, or corrupt on disk.

The student is the real serving engine (torch backend) on the tiny test base. Whatever goes
wrong with a version's files, the call still gets an answer (the teacher falls back), the
failure is logged on the student's attempt with a clear reason, and the rest keeps working:
the server answers, ``jarvis versions`` lists, another version is served.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from helpers.live_server import LiveServer
from jarvis import Jarvis, Settings
from jarvis.cli import app as cli_app
from jarvis.core.errors import ConfigError
from jarvis.registry import ADAPTER, Registry, version_dir
from jarvis.rpg import create_next_level

pytestmark = pytest.mark.slow

TASK = "create_next_level"
INPUTS = {"last_levels": [], "difficulty": 2}
MakeVersion = Callable[[Jarvis, str, int], str]


@pytest.fixture
def rt(home: Path, tiny_base: Path) -> Iterator[Jarvis]:
    settings = Settings(
        home=home,
        teacher_seed=7,
        base_model=str(tiny_base),
        engine="torch",
        student_retries=1,
        max_tokens=64,
    )
    runtime = Jarvis(settings)
    runtime.sync_tasks()  # the tasks' rows, which versions refer to
    yield runtime
    runtime.close()


def adapter_dir(rt: Jarvis, version: str) -> Path:
    return version_dir(rt.settings.models_dir, TASK, version) / ADAPTER


def attempts_of_last_call(rt: Jarvis) -> tuple[dict[str, object], list[dict[str, object]]]:
    call = rt.store.recent_calls(TASK, limit=1)[0]
    return call, rt.store.call_attempts(int(call["id"]))  # type: ignore[call-overload]


def calls_logged(rt: Jarvis) -> int:
    return len(rt.store.recent_calls(TASK, limit=1000))


def test_an_adapter_deleted_after_promotion_falls_back_to_the_teacher(
    rt: Jarvis, make_version: MakeVersion
) -> None:
    version = make_version(rt, TASK, 1)
    Registry(rt.store, rt.settings.models_dir).promote(TASK, version)
    first = rt.call(create_next_level, INPUTS, raise_on_invalid=False)
    assert first.attempts[0].source == "student"  # the engine loaded and served it

    shutil.rmtree(adapter_dir(rt, version))
    result = rt.call(create_next_level, INPUTS)

    assert result.valid and result.source == "teacher" and result.fallback
    call, attempts = attempts_of_last_call(rt)
    assert call["id"] == result.call_id and call["fallback"] is True
    # the engine failing is not retried: one student error, then the teacher
    assert [(a["source"], a["stage"]) for a in attempts] == [
        ("student", "error"),
        ("teacher", "ok"),
    ]
    reason = str(attempts[0]["reason"])
    assert f"{TASK}@{version}" in reason and "has no adapter" in reason
    assert calls_logged(rt) == 2  # each call logged exactly once
    assert rt.store.versions.active(TASK) == version  # nothing was switched behind our back


def test_a_corrupt_adapter_is_refused_at_promotion(
    rt: Jarvis, make_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(rt.store, rt.settings.models_dir)
    good = make_version(rt, TASK, 1)
    registry.promote(TASK, good)
    bad_weights = make_version(rt, TASK, 2)
    (adapter_dir(rt, bad_weights) / "adapter_model.safetensors").write_bytes(b"\x00garbage" * 64)
    bad_config = make_version(rt, TASK, 3)
    (adapter_dir(rt, bad_config) / "adapter_config.json").write_text("{not json")

    for version, what in [(bad_weights, "safetensors"), (bad_config, "adapter_config.json")]:
        with pytest.raises(ConfigError) as refused:
            registry.promote(TASK, version)
        assert version in str(refused.value) and what in str(refused.value)
        assert rt.store.versions.active(TASK) == good

    monkeypatch.setenv("JARVIS_HOME", str(rt.settings.home))
    listed = CliRunner().invoke(cli_app, ["versions", TASK, "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert data["active"] == good
    assert [v["name"] for v in data["versions"]] == [good, bad_weights, bad_config]
    # and the API refuses it the same way, with a 409 that says why
    with LiveServer(rt) as server:
        response = httpx.post(
            f"{server.url}/v1/admin/tasks/{TASK}/promote", json={"version": bad_weights}
        )
    assert response.status_code == 409
    assert "safetensors" in response.json()["error"]["message"]


@pytest.mark.parametrize("corrupt", ["adapter_model.safetensors", "adapter_config.json"])
def test_an_adapter_corrupted_after_promotion_falls_back_and_the_engine_recovers(
    rt: Jarvis, make_version: MakeVersion, corrupt: str
) -> None:
    registry = Registry(rt.store, rt.settings.models_dir)
    bad = make_version(rt, TASK, 1)
    registry.promote(TASK, bad)
    (adapter_dir(rt, bad) / corrupt).write_bytes(b"\x00garbage" * 64)  # not loaded yet

    result = rt.call(create_next_level, INPUTS)

    assert result.valid and result.source == "teacher" and result.fallback
    _, attempts = attempts_of_last_call(rt)
    assert [(a["source"], a["stage"]) for a in attempts] == [
        ("student", "error"),
        ("teacher", "ok"),
    ]
    reason = str(attempts[0]["reason"])
    assert f"cannot load adapter {TASK}@{bad}" in reason, reason

    # the failed load did not poison the engine: a good version is served next
    good = make_version(rt, TASK, 2)
    registry.promote(TASK, good)
    served = rt.call(create_next_level, INPUTS, raise_on_invalid=False)
    assert (served.attempts[0].source, served.attempts[0].version) == ("student", good)
    assert served.attempts[0].verdict.stage != "error", served.attempts[0].verdict.reason
    assert calls_logged(rt) == 2


def test_the_server_keeps_serving_when_the_active_adapter_disappears(
    rt: Jarvis, make_version: MakeVersion
) -> None:
    version = make_version(rt, TASK, 1)
    Registry(rt.store, rt.settings.models_dir).promote(TASK, version)
    shutil.rmtree(version_dir(rt.settings.models_dir, TASK, version))
    with LiveServer(rt) as server:
        api = httpx.Client(base_url=server.url, timeout=60)
        for _ in range(3):
            response = api.post(f"/v1/tasks/{TASK}/call", json={"input": INPUTS})
            assert response.status_code == 200, response.text
            envelope = response.json()
            assert envelope["valid"] and envelope["source"] == "teacher" and envelope["fallback"]
        assert api.get("/health").json()["status"] == "ok"
        models = api.get("/v1/models")
        assert models.status_code == 200
    assert calls_logged(rt) == 3
