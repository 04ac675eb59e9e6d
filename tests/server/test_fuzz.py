"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis, in-process over ASGI).

Every operation gets a bounded number of generated requests, valid and invalid; none may get
a 5xx, every error must have the OpenAI error shape with a message, and the server must go
on answering afterwards. The app has the procedural teacher and no student, and listens on
loopback without a token, so the admin routes are fuzzed past their guard too (the .jac
runner's routes always want a token, so no program is run).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402

from jarvis import Jarvis, Settings  # noqa: E402
from jarvis.server import create_app  # noqa: E402

LOCAL = "http://localhost"  # a loopback server answers to loopback names only

pytestmark = pytest.mark.slow

# per operation and mode (19 operations, 28 runs): ~10 s on 2 cores; JARVIS_FUZZ_EXAMPLES=500 for
# a deeper run
EXAMPLES = int(os.environ.get("JARVIS_FUZZ_EXAMPLES", "40"))
STATS: Counter[str] = Counter()


HOME = Path(tempfile.mkdtemp(prefix="jarvis-fuzz-"))  # the schema is read at import time
atexit.register(shutil.rmtree, HOME, True)
# schemathesis' in-process client sends ``Host: testserver``: a name this loopback app is told
# to answer to, as a user would for a name of their own (JARVIS_ALLOWED_HOSTS)
SETTINGS = Settings(
    home=HOME, teacher_seed=1, student="none", max_tokens=64, allowed_hosts=["testserver"]
)
RUNTIME = Jarvis(SETTINGS)
RUNTIME.sync_tasks()
APP = create_app(RUNTIME, host="127.0.0.1")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    RUNTIME.close()


def errors_are_clear(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx says what was wrong, in the OpenAI error shape."""
    if 400 <= response.status_code < 500:
        try:
            body = json.loads(response.content)
        except ValueError:
            raise AssertionError(f"{response.status_code} without a JSON body") from None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not error.get("message"):
            raise AssertionError(f"{response.status_code} without error.message: {body!r}")
    return None


# One test per operation and mode, named by them: schemathesis' own ``schema.parametrize()``
# gives every operation the same node id, and pytest-xdist (the suite runs on two workers)
# keeps one item per node id, so all but one operation went unfuzzed there. Invalid requests
# for operations with a body or a query (a string in the path cannot be made invalid).
def _runs() -> list[Any]:
    runs = []
    for result in schema.get_all_operations():
        operation = result.ok()
        runs.append(
            pytest.param(operation.label, GenerationMode.POSITIVE, id=f"valid {operation.label}")
        )
        if len(operation.body) > 0 or any(
            p.location != ParameterLocation.PATH for p in operation.iter_parameters()
        ):
            runs.append(
                pytest.param(
                    operation.label, GenerationMode.NEGATIVE, id=f"invalid {operation.label}"
                )
            )
    return sorted(runs, key=lambda run: run.id)


@pytest.mark.parametrize(("label", "mode"), _runs())
def test_no_request_gets_a_server_error(label: str, mode: GenerationMode) -> None:
    """Valid requests (positive) and invalid ones (negative), generated from the schema."""
    operation = schema.find_operation_by_label(label)
    assert operation is not None

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def fuzz(case: Any) -> None:
        STATS["examples"] += 1
        response = case.call()
        STATS[f"status {response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=[not_a_server_error, errors_are_clear])

    fuzz()


def test_the_server_still_answers_after_the_fuzzing() -> None:
    from fastapi.testclient import TestClient

    api = TestClient(APP, base_url=LOCAL)
    assert api.get("/health").json()["status"] == "ok"
    call = api.post(
        "/v1/tasks/create_next_level/call", json={"input": {"last_levels": [], "difficulty": 2}}
    )
    assert call.status_code == 200 and call.json()["valid"]
    print(f"fuzz: {dict(STATS)}")
