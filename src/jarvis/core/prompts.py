"""Turning a call into chat messages, and an answer into the text a model should produce.

One renderer is used for the teacher, for training and for the student, so the student sees
at serve time exactly what it was trained on. The user message keeps the format the original
Jac/byLLM system logged (function name, a blank line, one ``name = repr(value)`` line per
argument), so its ``llm_io_log.jsonl`` files can be imported and trained on as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from jarvis.core.tasks import Task


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


JSON_RULE = "Answer with only a JSON value matching this JSON schema, no other text:"
TEXT_RULE = "Answer with only the result text, no explanations."


def system_message(task: Task[Any]) -> str:
    if task.is_free_text:
        return f"{task.instructions}\n\n{TEXT_RULE}"
    return f"{task.instructions}\n\n{JSON_RULE}\n{task.output_schema_text}"


def user_message(task: Task[Any], inputs: Mapping[str, Any]) -> str:
    """``task_name``, a blank line, then ``name = repr(value)`` per argument, in order."""
    lines = [f"{name} = {inputs[name]!r}" for name in task.param_names if name in inputs]
    return "\n".join([task.name, "", *lines])


def render_messages(task: Task[Any], inputs: Mapping[str, Any]) -> list[ChatMessage]:
    return [
        {"role": "system", "content": system_message(task)},
        {"role": "user", "content": user_message(task, inputs)},
    ]


def student_messages(task: Task[Any], inputs: Mapping[str, Any]) -> list[ChatMessage]:
    """What the student sees, in training and at serve time alike.

    A fine-tuned student has one adapter per task and learns the answer format from its
    examples (and constrained decoding enforces it), so it needs neither the schema nor the
    full instructions: only the task's one-line summary and the call. On a CPU every prompt
    token costs training and serving time, and the schema alone is ~200 tokens.
    """
    return [
        {"role": "system", "content": task.instructions.split("\n", 1)[0]},
        {"role": "user", "content": user_message(task, inputs)},
    ]


def render_answer(task: Task[Any], output: Any) -> str:
    """The answer as the model should write it: compact JSON (fewer tokens), or plain text."""
    if task.is_free_text:
        return str(output)
    return json.dumps(task.dump_output(output), separators=(",", ":"), ensure_ascii=False)


def instructions_in_user_turn(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The same conversation with the system message at the head of the first user turn, for
    chat templates that drop system messages (the instructions and schema would be lost)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    if not system:
        return rest
    for i, m in enumerate(rest):
        if m["role"] == "user":
            rest[i] = {"role": "user", "content": f"{system}\n\n{m['content']}"}
            return rest
    return [{"role": "user", "content": system}, *rest]


RETRY_ECHO_CHARS = 600
"""How much of a rejected answer is sent back with the feedback: enough to see the mistake,
not a whole runaway answer."""


def retry_feedback(reasons: str | list[str] | None) -> ChatMessage:
    """What a teacher is told after an invalid answer (instructor-style repair): every rule
    the answer broke, one per line when there are several."""
    broken = [reasons] if isinstance(reasons, str) else list(reasons or [])
    if len(broken) > 1:
        listed = "\n".join(f"- {r}" for r in broken)
        content = f"That answer was rejected because:\n{listed}\nAnswer again, correctly."
    else:
        content = (
            f"That answer was rejected: {broken[0] if broken else None}. Answer again, correctly."
        )
    return {"role": "user", "content": content}


def rejected_echo(text: str | None) -> ChatMessage:
    """The rejected answer as the assistant turn of a retry, cut to :data:`RETRY_ECHO_CHARS`."""
    text = text or ""
    if len(text) > RETRY_ECHO_CHARS:
        text = text[:RETRY_ECHO_CHARS] + f" … [{len(text) - RETRY_ECHO_CHARS} characters cut]"
    return {"role": "assistant", "content": text}


def training_conversation(
    task: Task[Any], inputs: Mapping[str, Any], output: Any
) -> list[ChatMessage]:
    """A complete example in OpenAI chat fine-tuning form."""
    answer: ChatMessage = {"role": "assistant", "content": render_answer(task, output)}
    return [*render_messages(task, inputs), answer]
