"""A remote student: the router sends a task's calls to another OpenAI-compatible server.

The remote here is a second JARVIS server (it answers ``task@version`` models), standing in
for vLLM with ``--enable-lora``: same request, same positional ``response_format`` schema.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from helpers.live_server import LiveServer
from jarvis import Jarvis, Settings
from jarvis.core.codec import positional_schema, student_answer
from jarvis.rpg.models import Level
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.tasks import create_next_map
from jarvis.serving.grammar import Vocabulary, compile_schema

LEVEL = Level(name=1, difficulty=1, time=300, width=10, height=10, num_wall=2, num_enemies=2)


def test_the_positional_schema_admits_exactly_the_students_answers(vocab: Vocabulary) -> None:
    level = oracle_level([], 6, random.Random(0))
    schema = positional_schema(create_next_map.call_schema({"level": level}))
    grammar = compile_schema(schema, vocab)  # plain JSON Schema: no JARVIS layout flag
    answer = student_answer(create_next_map, oracle_map(level, random.Random(1)))
    assert grammar.accepts(answer)
    assert not grammar.accepts(answer.replace("[", "{", 1))


def test_calls_go_to_the_remote_student_with_its_active_version(
    live: LiveServer, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    version = make_version(live.rt, "create_next_map", 7)
    live.rt.store.versions.promote("create_next_map", version)
    settings = live.rt.settings.model_copy(
        update={
            "student": "remote",
            "student_base_url": f"{live.url}/v1",
            "student_model": "{task}@{version}",
        }
    )
    rt = Jarvis(settings, store=live.rt.store)
    result = rt.call("create_next_map", {"level": LEVEL}, raise_on_invalid=False)
    first = result.attempts[0]
    assert (first.source, first.version) == ("student", version)
    assert first.model is not None and first.model.startswith("remote:create_next_map@")
    assert first.verdict.stage != "format"  # the remote's guided decoding: it parses


def test_a_dead_remote_student_falls_back_to_the_teacher(settings: Settings) -> None:
    rt = Jarvis(
        settings.model_copy(
            update={"student": "remote", "student_base_url": "http://127.0.0.1:9/v1"}
        )
    )
    rt.sync_tasks()
    task = "create_next_level"
    version = rt.store.versions.allocate(task)
    rt.store.versions.set_status(task, version, "candidate", {})
    rt.store.versions.promote(task, version)
    result = rt.call(task, {"last_levels": [], "difficulty": 1})
    assert result.valid and result.source == "teacher" and result.fallback
    assert result.attempts[0].verdict.stage == "error"
    assert "remote student" in (result.attempts[0].verdict.reason or "")
