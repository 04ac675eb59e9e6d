"""A student served elsewhere: any OpenAI-compatible server holding the task's adapters.

For users who outgrow one CPU: vLLM loads the very PEFT adapters JARVIS trains
(``JARVIS_HOME/models/<task>/<version>/adapter``), e.g.::

    vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --max-lora-rank 16 \\
        --lora-modules create_next_level=$JARVIS_HOME/models/create_next_level/v0003/adapter

and ``JARVIS_STUDENT=remote JARVIS_STUDENT_BASE_URL=http://gpu-box:8000/v1`` makes the router
send the task's calls there (``JARVIS_STUDENT_MODEL``, default ``{task}``, names the served
model; ``{version}`` is filled in too, so a JARVIS server answers ``{task}@{version}``). The
request carries the student prompt, the sampling, and the call's schema in the student's
positional layout as ``response_format``, so the server's guided decoding enforces the same
per-call bounds as the local engine. The registry's active version stays the source of truth:
which version is active decides the model name, and a rollback is one setting away.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import openai

from jarvis.core.backends import Generation, GenerationRequest
from jarvis.core.codec import from_student, positional_schema, uses_positional
from jarvis.core.errors import BackendError
from jarvis.core.prompts import student_messages
from jarvis.registry import Registry

__all__ = ["RemoteStudent", "RemoteStudentConfig"]


@dataclass(frozen=True)
class RemoteStudentConfig:
    base_url: str | None
    api_key: str | None = None
    model: str = "{task}"  # the served model's name; {task} and {version} are filled in
    max_tokens: int = 1024


class RemoteStudent:
    def __init__(self, config: RemoteStudentConfig, registry: Registry) -> None:
        if not config.base_url:
            raise BackendError("student=remote needs JARVIS_STUDENT_BASE_URL")
        self.config = config
        self.registry = registry
        self.base_url = config.base_url.rstrip("/")
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=config.api_key or "not-needed",
            timeout=120.0,
            max_retries=2,
        )
        self._draw = random.Random()  # which calls a canary answers

    def active_version(self, task: str) -> str | None:
        return self.registry.serving_version(task, self._draw.random())

    def generate(self, request: GenerationRequest, version: str) -> Generation:
        task = request.task
        model = self.config.model.format(task=task.name, version=version)
        kwargs: dict[str, Any] = {}
        schema = task.call_schema(request.inputs)
        if schema is not None:
            if uses_positional(task):
                schema = positional_schema(schema)
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": task.name[:64], "schema": schema},
            }
        s = request.sampling
        for name in ("temperature", "top_p", "seed"):
            if getattr(s, name) is not None:
                kwargs[name] = getattr(s, name)
        try:
            reply = self._client.chat.completions.create(
                model=model,
                messages=list(student_messages(task, request.inputs)),  # type: ignore[arg-type]
                max_tokens=s.max_tokens or self.config.max_tokens,
                **kwargs,
            )
        except openai.OpenAIError as exc:
            raise BackendError(f"remote student {model} at {self.base_url}: {exc}") from exc
        choice = reply.choices[0]
        text = choice.message.content or ""
        usage = reply.usage
        return Generation(
            text=from_student(task, text),
            model=f"remote:{model}@{self.base_url}",
            tokens_in=usage.prompt_tokens if usage else None,
            tokens_out=usage.completion_tokens if usage else None,
            finished={"length": False, "stop": True}.get(choice.finish_reason),
        )
