"""A teacher behind any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp.

Uses the official ``openai`` SDK, which retries connection errors, 429 and 5xx with
exponential backoff (``max_retries``). Failures become a :class:`TeacherError` that names the
endpoint, the model and the cause, and how many HTTP tries were made over how long (so the
retries show in the attempt's reason in the store); the teacher never invents an answer.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import openai

from jarvis.core.backends import Generation, GenerationRequest
from jarvis.core.errors import TeacherError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAITeacher:
    """Chat completions with ``response_format`` JSON schema when the endpoint accepts it."""

    def __init__(
        self,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        response_format: str = "json_schema",
    ) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.model = model
        self.response_format = response_format
        self._lock = threading.Lock()
        self._tries = threading.local()  # HTTP requests of the current call, in this thread
        self._client = openai.OpenAI(
            base_url=self.base_url,
            # Local servers (vLLM, llama.cpp, Ollama) accept any key; the SDK requires one.
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [self._count_try]}),
        )

    def _count_try(self, _request: object) -> None:
        self._tries.n = getattr(self._tries, "n", 0) + 1

    @property
    def name(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def _response_format(self, request: GenerationRequest) -> dict[str, Any] | None:
        schema = request.json_schema
        if schema is None or self.response_format == "none":
            return None
        if self.response_format == "json_object":
            return {"type": "json_object"}
        name = "".join(c if c.isalnum() or c in "_-" else "_" for c in request.task.name)[:64]
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}

    def generate(self, request: GenerationRequest) -> Generation:
        kwargs: dict[str, Any] = {"model": self.model, "messages": list(request.messages)}
        s = request.sampling
        if s.temperature is not None:
            kwargs["temperature"] = s.temperature
        if s.top_p is not None:
            kwargs["top_p"] = s.top_p
        if s.seed is not None:
            kwargs["seed"] = s.seed
        if s.max_tokens is not None:
            kwargs["max_tokens"] = s.max_tokens
        fmt = self._response_format(request)
        if fmt is not None:
            kwargs["response_format"] = fmt
        self._tries.n = 0
        started = time.monotonic()
        try:
            try:
                response = self._client.chat.completions.create(**kwargs)
            except openai.BadRequestError as exc:
                if fmt is None or "response_format" not in str(exc):
                    raise
                # The endpoint does not do structured output: ask once more without it, and
                # remember, so later calls do not pay for the refusal again.
                log.warning("%s refused response_format (%s); retrying without it", self.name, exc)
                with self._lock:
                    self.response_format = "none"
                kwargs.pop("response_format")
                response = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise TeacherError(
                f"teacher {self.name}: timed out ({exc}){self._tried(started)}"
            ) from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise TeacherError(
                f"teacher {self.name}: cannot connect ({cause}){self._tried(started)}"
            ) from exc
        except openai.APIStatusError as exc:
            raise TeacherError(
                f"teacher {self.name}: HTTP {exc.status_code}: {_short(exc.message)}"
                f"{self._tried(started)}"
            ) from exc
        except openai.OpenAIError as exc:
            raise TeacherError(f"teacher {self.name}: {exc}{self._tried(started)}") from exc
        if getattr(self._tries, "n", 1) > 1:
            log.warning("%s answered%s", self.name, self._tried(started))
        if not response.choices:
            raise TeacherError(f"teacher {self.name}: the response has no choices")
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = response.usage
        return Generation(
            text=text,
            model=response.model or self.model,
            tokens_in=usage.prompt_tokens if usage else None,
            tokens_out=usage.completion_tokens if usage else None,
            finished=_finished(choice.finish_reason),
        )

    def _tried(self, started: float) -> str:
        """The SDK's retries and backoff, for a message: " (after N tries in S s)"."""
        tries = getattr(self._tries, "n", 0)
        if tries <= 1:
            return ""
        return f" (after {tries} tries in {time.monotonic() - started:.2f} s)"


def _finished(reason: str | None) -> bool | None:
    """OpenAI's finish reason as "ended on its own": "length" means cut off at max_tokens."""
    if reason == "length":
        return False
    return True if reason in ("stop", "tool_calls", "function_call") else None


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
