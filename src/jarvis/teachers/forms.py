"""How a teacher's answer is held to the task's JSON schema, by the server itself.

OpenAI-compatible servers agree on chat messages and disagree on structured output. Each form
below is one server's way of taking a JSON schema; a server that does not know a form refuses
it (OpenAI and vLLM with a 400, llama-cpp-python with a 500 or 422 naming
``response_format``), or ignores an unknown field, in which case the answer is still validated
by JARVIS like any other. The schema is always in the prompt as well (the system message), so
the last form, ``prompt``, still tells the model what to write.

    form         what is sent                                          servers
    json_schema  response_format {"type": "json_schema", ...}          OpenAI, vLLM, Ollama 0.5+
    json_object  response_format {"type": "json_object", "schema": …}  llama-cpp-python, Anyscale
    vllm         structured_outputs {"json": schema}                   vLLM 0.12+
    vllm_guided  guided_json: schema                                   vLLM before 0.12
    ollama       format: schema                                        Ollama
    prompt       nothing: the schema is in the prompt only             any
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["AUTO_ORDER", "Form", "form_fields", "is_refusal"]


class Form(StrEnum):
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    VLLM = "vllm"
    VLLM_GUIDED = "vllm_guided"
    OLLAMA = "ollama"
    PROMPT = "prompt"


AUTO_ORDER: tuple[Form, ...] = tuple(Form)
"""The order ``auto`` tries them in: the standard first, the prompt alone last."""

# the request fields each form sets (also what a refusal of it names)
_NAMES: dict[Form, tuple[str, ...]] = {
    Form.JSON_SCHEMA: ("response_format", "json_schema"),
    Form.JSON_OBJECT: ("response_format", "json_object"),
    Form.VLLM: ("structured_outputs",),
    Form.VLLM_GUIDED: ("guided_json",),
    Form.OLLAMA: ("format",),
    Form.PROMPT: (),
}


def form_fields(form: Form, schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The request's top-level fields that carry ``schema`` in ``form`` (``name`` names it
    where the form wants a name: letters, digits, ``_`` and ``-``, at most 64)."""
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64] or "answer"
    if form is Form.JSON_SCHEMA:
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": safe, "schema": schema},
            }
        }
    if form is Form.JSON_OBJECT:
        return {"response_format": {"type": "json_object", "schema": schema}}
    if form is Form.VLLM:
        return {"structured_outputs": {"json": schema}}
    if form is Form.VLLM_GUIDED:
        return {"guided_json": schema}
    if form is Form.OLLAMA:
        return {"format": schema}
    return {}


def is_refusal(form: Form, status: int, body: str) -> bool:
    """Whether an error response refuses ``form`` itself (and another form may work): a 400
    or 422 that names one of the form's fields, or a 500 that names them (llama-cpp-python
    reports its request validation as a 500)."""
    if form is Form.PROMPT or (status not in (400, 422) and status < 500):
        return False
    text = body.lower()
    return any(name in text for name in _NAMES[form])
