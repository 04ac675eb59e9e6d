"""Turning a task's examples into token tensors for training: loss on the answer only.

Each example is rendered with :func:`jarvis.prompts.student_messages` (exactly what the
student sees at serve time), the answer in the student's positional encoding
(:mod:`jarvis.core.codec`), and the model's own chat template. Prompt tokens get the label
-100 so only the answer (and the end-of-turn token that stops generation) is learned.
Batches are built by length bucketing under a token budget, so CPU time goes to real tokens,
not padding.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jarvis.core.codec import student_answer
from jarvis.core.prompts import student_messages
from jarvis.core.tasks import Task
from jarvis.models.tokens import prompt_ids

IGNORE = -100


@dataclass(frozen=True, slots=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]
    example_id: int | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def tokenize_example(
    tokenizer: Any, task: Task[Any], inputs: dict[str, Any], output: Any, example_id: int | None
) -> TokenizedExample:
    prompt = prompt_ids(tokenizer, task, inputs)
    messages = [
        *student_messages(task, inputs),
        {"role": "assistant", "content": student_answer(task, output)},
    ]
    full = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))
    if full[: len(prompt)] != prompt:
        raise ValueError("the chat template does not extend the prompt with the answer")
    labels = [IGNORE] * len(prompt) + full[len(prompt) :]
    return TokenizedExample(full, labels, example_id)


def tokenize_rows(
    tokenizer: Any, task: Task[Any], rows: Iterable[dict[str, Any]], max_length: int
) -> tuple[list[TokenizedExample], int]:
    """Tokenize stored example rows; drop (and count) those longer than ``max_length``."""
    kept: list[TokenizedExample] = []
    too_long = 0
    for row in rows:
        inputs = task.load_inputs(row["input"])
        output = task.output_adapter.validate_python(row["output"])
        ex = tokenize_example(tokenizer, task, inputs, output, row.get("id"))
        if len(ex) > max_length:
            too_long += 1
            continue
        kept.append(ex)
    return kept, too_long


MAX_REPEATS = 4


def repeats_for(seen: int) -> int:
    """Copies of an example in training: 1 + log2 of how often the teacher gave it, at most
    :data:`MAX_REPEATS`. A call the program makes a hundred times (the first level of every
    game) weighs four, not a hundred: it matters more than a one-off, without drowning it."""
    return min(max(seen, 1).bit_length(), MAX_REPEATS)


def traffic_weighted(
    examples: Sequence[TokenizedExample], seen_by_id: dict[int, int]
) -> list[TokenizedExample]:
    """``examples``, each repeated :func:`repeats_for` its ``seen`` count (by example id)."""
    weighted: list[TokenizedExample] = []
    for ex in examples:
        seen = seen_by_id.get(ex.example_id, 1) if ex.example_id is not None else 1
        weighted.extend([ex] * repeats_for(seen))
    return weighted


def length_batches(
    examples: Sequence[TokenizedExample],
    tokens_per_batch: int,
    max_batch: int,
    seed: int,
    window: int = 48,
) -> list[list[TokenizedExample]]:
    """Group examples of similar length so that padded batches stay near the token budget.

    Sorting by length alone would put every example of one rare shape (all the short
    "no previous level" calls, say) into the same one or two batches, seen once per epoch;
    shuffling within windows of ``window`` length-neighbours spreads them out at a small cost
    in padding.
    """
    rng = random.Random(seed)
    by_length = sorted(examples, key=lambda e: (len(e), rng.random()))
    order: list[TokenizedExample] = []
    for start in range(0, len(by_length), window):
        chunk = by_length[start : start + window]
        rng.shuffle(chunk)
        order.extend(chunk)
    batches: list[list[TokenizedExample]] = []
    current: list[TokenizedExample] = []
    for ex in order:
        longest = max([len(ex), *(len(e) for e in current)])
        full = longest * (len(current) + 1) > tokens_per_batch or len(current) >= max_batch
        if current and full:
            batches.append(current)
            current = []
        current.append(ex)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(batch: Sequence[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask and labels (-100 on padding)."""
    import torch  # the train extra

    width = max(len(e) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
