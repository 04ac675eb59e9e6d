"""The student's tokens: the prompt exactly as trained and served, and the ids that end it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jarvis.core.prompts import student_messages
from jarvis.core.tasks import Task

__all__ = ["eos_ids", "prompt_ids", "stop_token_ids"]


def prompt_ids(tokenizer: Any, task: Task[Any], inputs: dict[str, Any]) -> list[int]:
    """Token ids of the student prompt, ending where the answer starts."""
    ids = tokenizer.apply_chat_template(
        list(student_messages(task, inputs)),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    return list(ids)


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The ids that end an answer, from a loaded model's generation config."""
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted({int(i) for i in ids if i is not None})


def eos_ids(base_dir: Path, tokenizer: Any) -> list[int]:
    """The same, read from a model directory's files (no model loaded: llama.cpp serves it)."""
    ids: set[int] = set()
    generation = base_dir / "generation_config.json"
    if generation.is_file():
        configured = json.loads(generation.read_text()).get("eos_token_id")
        ids |= set(configured if isinstance(configured, list) else [configured])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(i for i in ids if i is not None)
