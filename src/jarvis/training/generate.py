"""Plain ``transformers`` generation with a (LoRA-adapted) student: the reference.

Generate with a KV cache, greedy or sampled, batched with left padding. The serving engine
replaces this everywhere; it stays as the baseline the engine is benchmarked against
(``jarvis bench serving``) and as an independent check of the engine's answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jarvis.core.backends import GREEDY, Sampling
from jarvis.core.codec import from_student
from jarvis.core.tasks import Task
from jarvis.models.tokens import prompt_ids, stop_token_ids


@dataclass(frozen=True, slots=True)
class Generated:
    text: str  # the answer as the validator reads it
    tokens_in: int
    tokens_out: int
    raw: str = ""  # what the model wrote (positional JSON for typed tasks)


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
    import torch  # the train extra

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
