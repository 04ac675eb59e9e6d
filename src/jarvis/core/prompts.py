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


def retry_feedback(reason: str | None) -> ChatMessage:
    """What a teacher is told after an invalid answer (instructor-style repair)."""
    return {
        "role": "user",
        "content": f"That answer was rejected: {reason}. Answer again, correctly.",
    }


def training_conversation(
    task: Task[Any], inputs: Mapping[str, Any], output: Any
) -> list[ChatMessage]:
    """A complete example in OpenAI chat fine-tuning form."""
    answer: ChatMessage = {"role": "assistant", "content": render_answer(task, output)}
    return [*render_messages(task, inputs), answer]
