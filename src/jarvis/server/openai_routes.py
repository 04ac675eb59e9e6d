"""The OpenAI-compatible surface: ``/v1/chat/completions`` (streaming or not) and ``/v1/models``.

``model`` picks who answers:

* ``<task>``: a typed call through the router (the task's active student, validated, retried,
  falling back to the teacher, logged). The last user message must be the call as JARVIS
  and byLLM render it: the task name, a blank line, then ``name = value`` lines.
* ``<task>@v0003``: that version's adapter directly (no fallback). A call message is decoded
  under the call's grammar; any other conversation is free chat with the adapter, constrained
  by ``response_format`` ``json_schema`` when given.
* ``teacher``: the configured teacher answers the call named in the last user message.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sse_starlette import EventSourceResponse, ServerSentEvent

from jarvis.core.backends import GenerationRequest, Sampling
from jarvis.core.errors import Cancelled, JarvisError, TaskError
from jarvis.core.prompts import render_messages
from jarvis.core.pyrepr import ReprError, parse_byllm_call, parse_call_text
from jarvis.core.tasks import Task
from jarvis.runtime import Jarvis
from jarvis.server.deps import find_task, runtime
from jarvis.server.errors import ApiError
from jarvis.server.task_routes import run_call
from jarvis.serving.engine import Engine, EngineOutput
from jarvis.serving.grammar import UnsupportedSchema
from jarvis.store.versions import check_version_name

__all__ = ["router"]

router = APIRouter()

TEACHER = "teacher"
PING_S = 15.0  # a comment line keeps an idle stream open through proxies


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # unknown OpenAI fields are accepted, unused

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0, le=8192)
    max_completion_tokens: int | None = Field(default=None, gt=0, le=8192)
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1)
    response_format: ResponseFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ChatRequest:
        rf = self.response_format
        if rf is not None and rf.type == "json_schema" and not (rf.json_schema or {}).get("schema"):
            raise ValueError("response_format json_schema needs json_schema.schema")
        return self

    @property
    def budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def sampling(self) -> Sampling:
        return Sampling(
            temperature=0.0 if self.temperature is None else self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            max_tokens=self.budget,
        )


class Answer(BaseModel):
    """What one chat completion produced, whoever produced it."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length"] = "stop"
    jarvis: dict[str, Any] = Field(default_factory=dict)


@router.get("/v1/models")
def list_models(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    created = int(time.time())
    data: list[dict[str, Any]] = []
    for name in sorted(rt.tasks):
        active = rt.store.versions.active(name)
        data.append(_model(name, created, task=name, active_version=active))
        for row in rt.store.versions.of_task(name):
            data.append(
                _model(f"{name}@{row['name']}", created, task=name, status=row.get("status"))
            )
    data.append(_model(TEACHER, created, teacher=rt.settings.teacher))
    return {"object": "list", "data": data}


def _model(model_id: str, created: int, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "jarvis", **extra}


@router.post("/v1/chat/completions", response_model=None)
def chat_completions(body: ChatRequest, request: Request) -> Any:
    produce = _producer(request, body)
    admission = request.app.state.admission
    gate = admission()
    next(gate)  # admitted, or ApiError 503
    if not body.stream:
        try:
            answer = produce(None)
        finally:
            gate.close()
        return _completion(body.model, answer)
    return EventSourceResponse(_stream(body, produce, gate), ping=PING_S)


def _producer(
    request: Request, body: ChatRequest
) -> Callable[[Callable[[str], None] | None], Answer]:
    """Check the request now (so errors are plain 4xx), and return the work to run."""
    rt = runtime(request)
    model = body.model
    if model == TEACHER:
        task, inputs = _typed_call(rt, body, None)
        return lambda emit: _teacher_answer(rt, task, inputs)
    name, _, version = model.partition("@")
    task = find_task(rt, name)
    if not version:
        _, inputs = _typed_call(rt, body, task)
        return lambda emit: _router_answer(request, task, inputs)
    try:
        adapter = rt.registry.adapter(task.name, check_version_name(version))
    except JarvisError as exc:
        raise ApiError(404, str(exc), param="model", code="unknown_model") from None
    engine = _engine(rt)
    call = _maybe_call(body, task)
    if call is not None:
        # a typed answer is sent whole: the adapter writes positional JSON, clients get keyed
        return lambda emit: _engine_answer(
            engine.generate(
                task,
                call,
                adapter=adapter,
                sampling=body.sampling(),
                max_new_tokens=body.budget or rt.settings.max_tokens,
            ),
            model,
        )
    schema = None
    if body.response_format is not None and body.response_format.type == "json_schema":
        schema = (body.response_format.json_schema or {})["schema"]
    messages = [
        {"role": m.role if m.role != "developer" else "system", "content": m.text()}
        for m in body.messages
    ]

    def free_chat(emit: Callable[[str], None] | None) -> Answer:
        try:
            out = engine.chat(
                messages,
                adapter=adapter,
                sampling=body.sampling(),
                max_new_tokens=body.budget or rt.settings.max_tokens,
                schema=schema,
                on_text=emit,
            )
        except UnsupportedSchema as exc:
            raise ApiError(400, f"response_format schema: {exc}", param="response_format") from None
        return _engine_answer(out, model)

    return free_chat


def _engine(rt: Jarvis) -> Engine:
    engine = rt.engine
    if engine is None:
        raise ApiError(400, "this server has no local student (JARVIS_STUDENT=none)", param="model")
    return engine


def _maybe_call(body: ChatRequest, task: Task[Any]) -> dict[str, Any] | None:
    try:
        name, args = parse_call_text(_last_user(body))
    except (ReprError, ApiError):
        return None
    if name != task.name:
        return None
    try:
        return task.load_inputs(args)
    except TaskError as exc:
        raise ApiError(400, str(exc), param="messages") from None


def _last_user(body: ChatRequest) -> str:
    for message in reversed(body.messages):
        if message.role == "user":
            return message.text()
    raise ApiError(400, "no user message", param="messages")


def _typed_call(
    rt: Jarvis, body: ChatRequest, task: Task[Any] | None
) -> tuple[Task[Any], dict[str, Any]]:
    text = _last_user(body)
    try:
        name, args = parse_call_text(text)
    except ReprError as exc:
        if task is not None:  # byLLM's own rendering (a Jac program pointed at this server)
            try:
                return task, task.load_inputs(parse_byllm_call(text))
            except ReprError:
                pass
            except TaskError as bad:
                raise ApiError(400, str(bad), param="messages") from None
        expected = task.name if task else "the task name"
        raise ApiError(
            400,
            f"model {body.model!r} answers typed calls: the last user message must be the call "
            f"({expected} on the first line, a blank line, then 'name = value' lines): {exc}",
            param="messages",
        ) from None
    if task is None:
        task = find_task(rt, name)
    elif name != task.name:
        raise ApiError(
            400,
            f"model {task.name!r} answers typed calls of {task.name!r}; the last user "
            f"message calls {name!r}",
            param="messages",
        )
    try:
        return task, task.load_inputs(args)
    except TaskError as exc:
        raise ApiError(400, str(exc), param="messages") from None


def _router_answer(request: Request, task: Task[Any], inputs: dict[str, Any]) -> Answer:
    result = run_call(request, task, task.dump_inputs(inputs))
    attempt = result.attempts[-1] if result.attempts else None
    text = json.dumps(result.output_json, separators=(",", ":"), ensure_ascii=False)
    if task.is_free_text and isinstance(result.output_json, str):
        text = result.output_json
    return Answer(
        text=text,
        prompt_tokens=(attempt.tokens_in or 0) if attempt else 0,
        completion_tokens=(attempt.tokens_out or 0) if attempt else 0,
        jarvis=result.envelope(),
    )


def _teacher_answer(rt: Jarvis, task: Task[Any], inputs: dict[str, Any]) -> Answer:
    try:
        backend = rt.teachers.for_task(task)
        gen = backend.generate(
            GenerationRequest(task=task, inputs=inputs, messages=render_messages(task, inputs))
        )
    except JarvisError as exc:
        raise ApiError(502, str(exc), code="teacher_failed") from None
    return Answer(
        text=gen.text,
        prompt_tokens=gen.tokens_in or 0,
        completion_tokens=gen.tokens_out or 0,
        jarvis={"source": "teacher", "model": gen.model},
    )


def _engine_answer(out: EngineOutput, model: str) -> Answer:
    return Answer(
        text=out.text,
        prompt_tokens=out.tokens_in,
        completion_tokens=out.tokens_out,
        finish_reason="stop" if out.finished else "length",
        jarvis={"source": "student", "model": model, "constrained": out.constrained},
    )


def _completion(model: str, answer: Answer) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": _usage(answer),
        "jarvis": answer.jarvis,
    }


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


async def _stream(
    body: ChatRequest, produce: Callable[[Callable[[str], None] | None], Answer], gate: Any
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: token pieces as the engine writes them, then [DONE].

    Framing, pings and a client's disconnect are sse-starlette's; a client that goes away
    cancels this generator, and the engine stops at its next token (:class:`Cancelled` from
    the callback), which frees its batch slot and its admission slot.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    streamed: list[str] = []
    gone = threading.Event()

    def post(kind: str, value: Any) -> bool:
        """Hand ``value`` to the stream; False once its loop is closed (the client is gone and
        so is the server's loop, at shutdown or when a caller's own loop ended)."""
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # "Event loop is closed": no one is left to tell
            return False
        return True

    def emit(piece: str) -> None:
        if gone.is_set() or not post("piece", piece):
            raise Cancelled("the client closed the stream")

    def work() -> None:
        try:
            post("done", produce(emit))
        except Exception as exc:  # reported in the stream: the status line is already sent
            post("error", exc)
        finally:
            gate.close()

    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> ServerSentEvent:
        payload = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return ServerSentEvent(data=json.dumps(payload, ensure_ascii=False))

    threading.Thread(target=work, name="chat-stream", daemon=True).start()
    try:
        yield chunk({"role": "assistant", "content": ""})
        while True:
            kind, value = await queue.get()
            if kind == "piece":
                if value:
                    streamed.append(value)
                    yield chunk({"content": value})
                continue
            if kind == "error":
                message = value.message if isinstance(value, ApiError) else str(value)
                error = {"error": {"message": message, "type": "server_error"}}
                yield ServerSentEvent(data=json.dumps(error))
                break
            answer: Answer = value
            if not streamed:  # typed answers come whole, when validated
                yield chunk({"content": answer.text})
            yield chunk({}, answer.finish_reason, jarvis=answer.jarvis)
            if body.stream_options is not None and body.stream_options.include_usage:
                payload = {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body.model,
                    "choices": [],
                    "usage": _usage(answer),
                }
                yield ServerSentEvent(data=json.dumps(payload))
            break
        yield ServerSentEvent(data="[DONE]")
    finally:
        gone.set()  # a disconnect cancels this generator: the engine stops at its next token
