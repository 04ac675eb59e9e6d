"""A teacher behind any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp.

Uses the official ``openai`` SDK, which retries connection errors, 429 and 5xx with
exponential backoff (``max_retries``). Failures become a :class:`TeacherError` that names the
endpoint, the model and the cause, and how many HTTP tries were made over how long (so the
retries show in the attempt's reason in the store); the teacher never invents an answer.

Servers differ in two ways that silently ruin a teacher, and both are found out on the first
calls, then remembered for the endpoint (and reported through ``on_decision``, which the
runtime records in the store, so every process and ``jarvis tasks`` see it):

* **How it takes a JSON schema** (:mod:`.forms`). With ``response_format="auto"`` the forms
  are tried in order; a form the server refuses (:func:`.forms.is_refusal`) is dropped at once,
  without spending the SDK's retries on it, and the next one is sent. The schema is in the
  prompt too, so the last form, ``prompt``, still carries it.
* **Whether its chat template keeps the system message.** Some (llama-cpp-python's ``gemma``
  format) drop it silently, and with it the instructions and the schema: the server's prompt
  token count then comes back far below what was sent. The teacher sees that, asks again with
  the instructions at the head of the user turn, and keeps doing so for this endpoint
  (``instructions="user"`` does it always, ``"system"`` never).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import openai

from jarvis.core.backends import Generation, GenerationRequest
from jarvis.core.errors import TeacherError
from jarvis.core.prompts import ChatMessage, instructions_in_user_turn
from jarvis.teachers.forms import AUTO_ORDER, Form, form_fields, is_refusal

__all__ = ["DEFAULT_BASE_URL", "OpenAITeacher"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
Instructions = Literal["auto", "system", "user"]
Decision = dict[str, Any]

# A system message of at least this many characters, with fewer than one prompt token
# counted per this many of its characters, was dropped by the chat template: a token is 3-4
# characters of English or JSON, and the user turn and the template add tokens of their own.
_CHECKED_SYSTEM_CHARS = 300
_CHARS_PER_TOKEN_MAX = 10


class OpenAITeacher:
    """Chat completions, the schema carried in the form the endpoint takes."""

    def __init__(
        self,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        response_format: str = "auto",
        instructions: Instructions = "auto",
        known: Mapping[str, Any] | None = None,
        on_decision: Callable[[Decision], None] | None = None,
    ) -> None:
        """``known``: a decision recorded earlier for this endpoint (``form``,
        ``instructions``), to start from; ``on_decision`` is told of each new one."""
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.on_decision = on_decision
        self._lock = threading.Lock()
        self._tries = threading.local()  # HTTP requests of the current call, in this thread
        self.auto = response_format == "auto"
        forms = list(AUTO_ORDER) if self.auto else [_explicit_form(response_format)]
        self.instructions: Instructions = instructions
        known = known or {}
        if self.auto and known.get("form") in forms:
            forms = forms[forms.index(Form(known["form"])) :]
        if instructions == "auto" and known.get("instructions") == "user":
            self.instructions = "user"
        self._forms = forms  # the candidates left, the one in use first
        self._usage_checked = self.instructions != "auto"  # the system-drop check is done
        self._confirmed = bool(known.get("form")) and self.auto
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
        return self.endpoint_name(self.base_url, self.model)

    @staticmethod
    def endpoint_name(base_url: str | None, model: str) -> str:
        """``openai:<model>@<base url>``: the endpoint in logs, errors and decisions."""
        return f"openai:{model}@{(base_url or DEFAULT_BASE_URL).rstrip('/')}"

    @property
    def form(self) -> Form:
        """The schema form in use (or to be tried next)."""
        return self._forms[0]

    @property
    def response_format(self) -> str:
        """The form in use, as the setting names it (``none`` for the prompt alone)."""
        return "none" if self.form is Form.PROMPT else self.form.value

    def describe(self) -> str:
        """How this endpoint is spoken to: the schema form and where the instructions go."""
        state = "" if self._confirmed or not self.auto else " (to be probed)"
        where = {"auto": "system turn", "system": "system turn", "user": "user turn"}
        return (
            f"structured output: {self.form.value}{state}; instructions: {where[self.instructions]}"
        )

    # -- one answer ---------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> Generation:
        self._tries.n = 0
        started = time.monotonic()
        messages = list(request.messages)
        if self.instructions == "user":
            messages = instructions_in_user_turn(messages)
        try:
            response = self._send(request, messages)
            if self._looks_dropped(messages, response):
                again = self._send(request, instructions_in_user_turn(messages))
                if self._drop_confirmed(messages, response, again):
                    response = again
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
        return self._generation(response)

    def _send(self, request: GenerationRequest, messages: list[ChatMessage]) -> Any:
        """One completion, in the first schema form the endpoint does not refuse."""
        schema = request.json_schema is not None
        while True:
            form = self.form
            kwargs = self._kwargs(request, messages, form)
            try:
                response = self._create(kwargs, probing=schema and not self._confirmed)
            except openai.APIStatusError as exc:
                if schema and self._refused(form, exc):
                    continue
                raise
            if schema and not self._confirmed:
                self._confirmed = True  # the first form that got an answer is the endpoint's
                if self.auto:
                    self._decide(reason=f"the endpoint takes the schema as {form.value}")
            return response

    def _create(self, kwargs: dict[str, Any], *, probing: bool) -> Any:
        """A form not yet seen to work is sent once without retries, so a refusal costs one
        request; any other failure of that request then gets the usual retries."""
        if not probing:
            return self._client.chat.completions.create(**kwargs)
        try:
            return self._client.with_options(max_retries=0).chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            if exc.status_code < 500 and exc.status_code != 429:
                raise  # not worth retrying (and maybe a refusal: the caller decides)
            if is_refusal(self.form, exc.status_code, _body_text(exc)):
                raise
            retries = max(0, self.max_retries - 1)
        except (openai.APIConnectionError, openai.APITimeoutError):
            retries = max(0, self.max_retries - 1)
        return self._client.with_options(max_retries=retries).chat.completions.create(**kwargs)

    def _kwargs(
        self, request: GenerationRequest, messages: list[ChatMessage], form: Form
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        s = request.sampling
        for key in ("temperature", "top_p", "seed", "max_tokens"):
            if getattr(s, key) is not None:
                kwargs[key] = getattr(s, key)
        if request.json_schema is not None:
            fields = form_fields(form, request.json_schema, request.task.name)
            standard = {k: v for k, v in fields.items() if k == "response_format"}
            extra = {k: v for k, v in fields.items() if k != "response_format"}
            kwargs.update(standard)
            if extra:
                kwargs["extra_body"] = extra
        return kwargs

    # -- what the endpoint showed -------------------------------------------------------------

    def _refused(self, form: Form, exc: openai.APIStatusError) -> bool:
        """Drop ``form`` if ``exc`` refuses it and another form is left; True to try again."""
        if not is_refusal(form, exc.status_code, _body_text(exc)):
            return False
        if not self.auto:
            raise TeacherError(
                f"teacher {self.name} refuses the structured output form {form.value!r} "
                f"(HTTP {exc.status_code}: {_short(exc.message)}); set "
                "JARVIS_TEACHER_RESPONSE_FORMAT=auto to find one it takes"
            ) from exc
        with self._lock:
            if self._forms and self._forms[0] is form and len(self._forms) > 1:
                self._forms.pop(0)
            nxt = self.form
        self._decide(
            form=nxt.value,
            reason=f"HTTP {exc.status_code} refused {form.value}: {_short(exc.message, 160)}",
        )
        return True

    def _looks_dropped(self, messages: list[ChatMessage], response: Any) -> bool:
        """The server counted far fewer prompt tokens than the system message alone holds:
        its chat template may have dropped the instructions (checked once per endpoint)."""
        if self.instructions != "auto" or self._usage_checked or response.usage is None:
            return False
        system = _system_chars(messages)
        tokens = response.usage.prompt_tokens or 0
        if system < _CHECKED_SYSTEM_CHARS or tokens == 0:  # 0: the server does not count
            return False
        if tokens * _CHARS_PER_TOKEN_MAX >= system:
            self._usage_checked = True  # the system message was read: no need to look again
            return False
        return True

    def _drop_confirmed(self, messages: list[ChatMessage], first: Any, again: Any) -> bool:
        """The same call with the instructions in the user turn: if the server now counts the
        system message's worth of tokens more, its template dropped them; remember it. If not,
        its token counts say nothing about the prompt: stop judging by them."""
        self._usage_checked = True
        system = _system_chars(messages)
        before = first.usage.prompt_tokens or 0
        after = (again.usage.prompt_tokens or 0) if again.usage is not None else 0
        if after * _CHARS_PER_TOKEN_MAX < system or after - before < system / 10:
            return False
        with self._lock:
            self.instructions = "user"
        self._decide(
            instructions="user",
            reason=f"the server counted {before} prompt tokens for a {system}-character system "
            f"message, {after} with it in the user turn: its chat template drops system "
            "messages",
        )
        return True

    def _decide(self, **decision: Any) -> None:
        """Log a new decision once, and hand it to whoever records them."""
        full = {"endpoint": self.name, "form": self.form.value, "instructions": self.instructions}
        full.update(decision)
        log.warning("%s: %s", self.name, full["reason"])
        if self.on_decision is not None:
            try:
                self.on_decision(full)
            except Exception:  # recording is a courtesy; the answer must not fail over it
                log.exception("cannot record the decision about %s", self.name)

    def _generation(self, response: Any) -> Generation:
        if not response.choices:
            raise TeacherError(f"teacher {self.name}: the response has no choices")
        choice = response.choices[0]
        usage = response.usage
        return Generation(
            text=choice.message.content or "",
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


def _system_chars(messages: list[ChatMessage]) -> int:
    return sum(len(m["content"]) for m in messages if m["role"] == "system")


def _explicit_form(setting: str) -> Form:
    if setting == "none":
        return Form.PROMPT
    try:
        return Form(setting)
    except ValueError:
        known = ", ".join(["auto", *(f.value for f in Form), "none"])
        raise TeacherError(f"unknown teacher response format {setting!r}: use {known}") from None


def _body_text(exc: openai.APIStatusError) -> str:
    body = exc.body if exc.body is not None else ""
    return f"{exc.message} {body}"


def _finished(reason: str | None) -> bool | None:
    """OpenAI's finish reason as "ended on its own": "length" means cut off at max_tokens."""
    if reason == "length":
        return False
    return True if reason in ("stop", "tool_calls", "function_call") else None


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
