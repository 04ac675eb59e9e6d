"""Typed calls (``/v1/tasks/{task}/call``) and the admin routes (train, promote, rollback,
import), which need a token when the server is exposed (:mod:`.security`)."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from jarvis.core.errors import (
    ConflictError,
    JarvisError,
    NotFoundError,
    TaskError,
    TeacherError,
)
from jarvis.core.results import CallResult
from jarvis.core.tasks import Task
from jarvis.server.deps import admitted, find_task, runtime
from jarvis.server.errors import ApiError
from jarvis.server.security import require_admin
from jarvis.store.jsonl import import_lines
from jarvis.store.versions import check_version_name
from jarvis.training.worker import queue_run

__all__ = ["router", "run_call"]

router = APIRouter()


class CallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(description="The call's arguments by name, as JSON.")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: float | None = Field(default=None, ge=0.0, le=1.0, description="0 wrong .. 1 right.")
    correction: Any = Field(default=None, description="The right answer, as the task's JSON.")
    source: str = Field(default="api", min_length=1, max_length=64)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: float | None = Field(default=None, gt=0)
    max_steps: int | None = Field(default=None, gt=0)


def run_call(request: Request, task: Task[Any], inputs: dict[str, Any]) -> CallResult:
    """One typed call through the router (validation, retries, fallback, logging)."""
    rt = runtime(request)
    try:
        loaded = task.load_inputs(inputs)
    except TaskError as exc:
        raise ApiError(422, str(exc), param="input", code="bad_input") from None
    try:
        result = rt.router.call(task, loaded, raise_on_invalid=False)
    except TeacherError as exc:
        raise ApiError(502, str(exc), code="teacher_failed") from None
    except JarvisError as exc:
        raise ApiError(503, str(exc), code="backend_failed") from None
    attempt = result.attempts[-1] if result.attempts else None
    request.app.state.metrics.observe_call(
        task.name,
        result.source,
        result.fallback,
        (attempt.tokens_in or 0) if attempt else 0,
        (attempt.tokens_out or 0) if attempt else 0,
    )
    return result


@router.get("/v1/tasks")
def list_tasks(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    data = []
    for name, task in sorted(rt.tasks.items()):
        data.append(
            {
                "name": name,
                "kind": "text" if task.is_free_text else "typed",
                "params": task.param_names,
                "active_version": rt.store.versions.active(name),
                "examples": rt.store.example_count(name, "train"),
            }
        )
    return {"object": "list", "data": data}


@router.post("/v1/tasks/{task}/call")
def call_task(
    task: str, body: CallRequest, request: Request, _: None = Depends(admitted)
) -> dict[str, Any]:
    """The same envelope as ``jarvis call --json``."""
    t = find_task(runtime(request), task)
    return run_call(request, t, body.input).envelope()


@router.post("/v1/calls/{call_id}/feedback", dependencies=[Depends(require_admin)])
def feedback(
    call_id: Annotated[int, Path(ge=1, le=2**62, description="The call's id (envelope).")],
    body: FeedbackRequest,
    request: Request,
) -> dict[str, Any]:
    """A score and/or a corrected answer for a logged call (it changes the training data, so
    it needs the token when the server is exposed)."""
    try:
        result = runtime(request).feedback(
            call_id, score=body.score, correction=body.correction, source=body.source
        )
    except NotFoundError as exc:
        raise ApiError(404, str(exc), param="call_id", code="unknown_call") from None
    except TaskError as exc:
        raise ApiError(422, str(exc), param="correction", code="bad_feedback") from None
    return result.as_dict()


# -- admin ------------------------------------------------------------------------------------


@router.post("/v1/admin/tasks/{task}/train", dependencies=[Depends(require_admin)])
def train(task: str, request: Request, body: TrainRequest | None = None) -> dict[str, Any]:
    """Queue a training run (the worker, or ``jarvis up``, runs it)."""
    rt = runtime(request)
    t = find_task(rt, task)
    overrides = body.model_dump(exclude_none=True) if body else {}
    try:
        run_id, n_train = queue_run(rt.store, t.name, overrides, "requested (API)")
    except ConflictError as exc:
        raise ApiError(409, str(exc), code=exc.code) from None
    return {"run_id": run_id, "task": t.name, "train_examples": n_train, "status": "queued"}


@router.post("/v1/admin/tasks/{task}/promote", dependencies=[Depends(require_admin)])
def promote(task: str, body: PromoteRequest, request: Request) -> dict[str, Any]:
    rt = runtime(request)
    t = find_task(rt, task)
    try:
        version = check_version_name(body.version)
        rt.registry.promote(t.name, version)
    except JarvisError as exc:
        raise ApiError(409, str(exc), param="version") from None
    return {"task": t.name, "active_version": version}


@router.post("/v1/admin/tasks/{task}/rollback", dependencies=[Depends(require_admin)])
def rollback(task: str, request: Request) -> dict[str, Any]:
    rt = runtime(request)
    t = find_task(rt, task)
    try:
        active = rt.registry.rollback(t.name)
    except JarvisError as exc:
        raise ApiError(409, str(exc)) from None
    return {"task": t.name, "active_version": active}


@router.post("/v1/admin/import", dependencies=[Depends(require_admin)])
async def import_jsonl(request: Request, task: str | None = None) -> dict[str, Any]:
    """Import JSONL examples from the body (byLLM logs or OpenAI chat lines)."""
    rt = runtime(request)
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not UTF-8 text: {exc}") from None
    try:
        report = import_lines(
            rt.store,
            io.StringIO(text),
            tasks=rt.tasks,
            task=task,
            heldout_share=rt.settings.heldout_share,
        )
    except JarvisError as exc:
        raise ApiError(400, str(exc)) from None
    return {
        "lines": report.lines,
        "added": report.added,
        "duplicates": report.duplicates,
        "errors": [str(e) for e in report.errors],
    }
