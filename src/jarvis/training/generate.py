"""In-process generation with a (LoRA-adapted) student: used by the gate and the local student.

Plain ``transformers`` generate with a KV cache, greedy or sampled, batched with left padding.
The serving engine replaces this on the hot path; it stays the reference implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jarvis.backends import GREEDY, Sampling
from jarvis.codec import from_student
from jarvis.tasks import Task
from jarvis.training.dataset import prompt_ids

if TYPE_CHECKING:
    from jarvis.serving.engine import Adapter, Engine


@dataclass(frozen=True, slots=True)
class Generated:
    text: str  # the answer as the validator reads it
    tokens_in: int
    tokens_out: int
    raw: str = ""  # what the model wrote (positional JSON for typed tasks)


def answer_cap(longest_answer_tokens: int) -> int:
    """A generation budget near the longest answer known: a much longer one is a runaway."""
    return int(longest_answer_tokens * 1.25) + 8


def answerer(
    model: Any, tokenizer: Any, task: Task[Any], max_new_tokens: int, adapter: str | None = None
) -> Callable[[Sequence[dict[str, Any]]], list[tuple[str, int]]]:
    """A greedy batch answerer for the gate: (answer text, tokens generated) per input."""

    def answer(batch: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
        if adapter is not None:
            model.set_adapter(adapter)
        outs = generate_batch(model, tokenizer, task, batch, GREEDY, max_new_tokens)
        return [(o.text, o.tokens_out) for o in outs]

    return answer


def engine_answerer(
    engine: Engine, task: Task[Any], adapter: Adapter, max_new_tokens: int
) -> Callable[[Sequence[dict[str, Any]]], list[tuple[str, int]]]:
    """A greedy answerer through the serving engine: the gate judges what serving will do."""

    def answer(batch: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
        outs = [
            engine.generate(
                task,
                inputs,
                adapter=adapter,
                sampling=GREEDY,
                max_new_tokens=max_new_tokens,
                constrained=engine.settings.constrained,
            )
            for inputs in batch
        ]
        return [(o.text, o.tokens_out) for o in outs]

    return answer


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted({int(i) for i in ids if i is not None})


def generate_batch(
    model: Any,
    tokenizer: Any,
    task: Task[Any],
    inputs_list: Sequence[dict[str, Any]],
    sampling: Sampling,
    max_new_tokens: int,
    streamer: Any = None,
) -> list[Generated]:
    """Answer several calls of one task at once (left-padded batch)."""
    import torch

    prompts = [prompt_ids(tokenizer, task, inputs) for inputs in inputs_list]
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad}
    if sampling.temperature:
        kwargs.update(do_sample=True, temperature=sampling.temperature)
        if sampling.top_p is not None:
            kwargs["top_p"] = sampling.top_p
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    stops = stop_token_ids(model, tokenizer)
    kwargs["eos_token_id"] = stops
    if streamer is not None:
        kwargs["streamer"] = streamer
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
    results = []
    for i, p in enumerate(prompts):
        new = out[i, width:].tolist()
        cut = next((k for k, t in enumerate(new) if t in stops), len(new))
        raw = tokenizer.decode(new[:cut], skip_special_tokens=True).strip()
        text = from_student(task, raw)  # positional → keyed JSON, for the validator
        results.append(Generated(text=text, tokens_in=len(p), tokens_out=cut, raw=raw))
    return results
