"""Feedback on served answers: ``POST /v1/calls/{id}/feedback`` and what it changes.

A correction is validated like any answer and becomes the training answer for that input,
ahead of the teacher's; bad feedback gets a clear 4xx and changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from jarvis import Jarvis, Settings
from jarvis.server import create_app
from jarvis.store.feedback import outranked

LOCAL = "http://localhost"  # a loopback server answers to loopback names only

LEVEL_INPUT = {"last_levels": [], "difficulty": 3}


@pytest.fixture
def rt(settings: Settings) -> Jarvis:
    # every example in training, so the corrected input is a training input too
    return Jarvis(settings.model_copy(update={"student": "none", "heldout_share": 0.0}))


@pytest.fixture
def api(rt: Jarvis) -> TestClient:
    return TestClient(create_app(rt, host="127.0.0.1"), base_url=LOCAL)


def served(api: TestClient) -> dict[str, Any]:
    response = api.post("/v1/tasks/create_next_level/call", json={"input": LEVEL_INPUT})
    assert response.status_code == 200
    return dict(response.json())


def test_a_correction_becomes_the_training_answer_for_that_input(
    api: TestClient, rt: Jarvis
) -> None:
    call = served(api)
    better = {**call["output"], "time": call["output"]["time"] + 60}

    response = api.post(
        f"/v1/calls/{call['call_id']}/feedback", json={"score": 0.0, "correction": better}
    )

    assert response.status_code == 200, response.text
    assert response.json() | {"feedback_id": 1} == {
        "feedback_id": 1,
        "call_id": call["call_id"],
        "task": "create_next_level",
        "version": None,  # the teacher answered
        "example_added": True,
    }
    rows = list(rt.store.iter_examples("create_next_level", "train"))
    assert sorted(r["origin"] for r in rows) == ["feedback", "teacher"]
    # training sees only the correction for that input
    assert [r["output"] for r in outranked(rows)] == [better]


def test_a_score_alone_is_recorded_against_the_task(api: TestClient, rt: Jarvis) -> None:
    call = served(api)
    assert api.post(f"/v1/calls/{call['call_id']}/feedback", json={"score": 1}).status_code == 200
    assert rt.store.feedback.by_version("create_next_level") == {
        None: {"feedback": 1, "negative": 0, "mean_score": 1.0, "corrections": 0}
    }


@pytest.mark.parametrize(
    ("call_id", "body", "status", "fragment"),
    [
        (999, {"score": 0.5}, 404, "no call 999"),
        (None, {"correction": {"name": 1}}, 422, "not a valid answer"),
        (None, {"correction": {**LEVEL_INPUT, "difficulty": 4}}, 422, "not a valid answer"),
        (None, {"score": 2}, 400, "less than or equal to 1"),
        (None, {"score": "great"}, 400, "valid number"),
        (None, {}, 422, "needs a score"),
        (None, {"score": 1, "extra": True}, 400, "Extra inputs"),
    ],
)
def test_bad_feedback_gets_a_clear_error_and_changes_nothing(
    api: TestClient,
    rt: Jarvis,
    call_id: int | None,
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    call = served(api)
    before = list(rt.store.iter_examples("create_next_level"))

    response = api.post(f"/v1/calls/{call_id or call['call_id']}/feedback", json=body)

    assert response.status_code == status, response.text
    assert fragment in response.text
    assert list(rt.store.iter_examples("create_next_level")) == before
    assert rt.store.feedback.by_version("create_next_level") == {}


def test_feedback_needs_the_token_on_an_exposed_server(settings: Settings) -> None:
    rt = Jarvis(settings.model_copy(update={"student": "none"}))
    api = TestClient(create_app(rt, host="0.0.0.0"), base_url=LOCAL)
    assert api.post("/v1/calls/1/feedback", json={"score": 1}).status_code == 403
