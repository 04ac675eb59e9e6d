"""The decoding loop shared by every engine backend: mask, jump forward, sample, repeat.

A backend only has to answer one question: "having read these tokens, what are the scores of
these candidate tokens for the next position?" (:class:`LanguageModel`). The loop owns the
grammar (:class:`.guide.Guide`), so constrained decoding works the same on llama.cpp and on
torch, and scoring only the candidate rows of the LM head is the backend's choice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from jarvis.core.backends import Sampling
from jarvis.serving.grammar import State
from jarvis.serving.guide import Guide

__all__ = ["Decoded", "LanguageModel", "decode"]


class Steer(Protocol):
    """Semantic checks the grammar cannot express (a task's ``@t.steering``)."""

    def allows(self, text: str) -> bool:
        """Can the answer written so far still become a valid one?"""
        ...


class LanguageModel(Protocol):
    """One sequence at a time; the engine serialises calls."""

    def begin(self) -> None:
        """Forget the previous sequence."""

    def scores(self, tokens: Sequence[int], rows: Sequence[int] | None) -> np.ndarray:
        """Read ``tokens`` (appended to the sequence); return next-token logits.

        Only for the token ids in ``rows`` (in that order) when given, else the whole
        vocabulary. float32, one dimension.
        """
        ...


@dataclass
class Decoded:
    tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    sampled: int = 0  # tokens the model chose (the rest were forced by the grammar)
    steered: int = 0  # choices where the model's pick was refused by the task's steering
    finished: bool = False  # ended by end-of-sequence / a complete answer, not the budget
    first_token_s: float | None = None
    total_s: float = 0.0


def decode(
    model: LanguageModel,
    prompt: Sequence[int],
    *,
    sampling: Sampling,
    max_new_tokens: int,
    eos_ids: Sequence[int],
    guide: Guide | None = None,
    steer: Steer | None = None,
    on_tokens: Callable[[list[int]], None] | None = None,
) -> Decoded:
    """Generate up to ``max_new_tokens`` after ``prompt``, under ``guide``'s grammar if given.

    ``steer`` (with a guide) refuses candidates that would make the answer semantically
    invalid; the model's most likely (or sampled) acceptable token is taken instead.
    """
    start = time.perf_counter()
    out = Decoded(prompt_tokens=len(prompt))
    rng = np.random.default_rng(sampling.seed)
    eos = set(eos_ids)
    model.begin()
    pending: list[int] = list(prompt)
    state: State | None = guide.initial if guide is not None else None

    texts = guide.vocab.texts if guide is not None else ()
    written: list[str] = []

    def emit(new: list[int]) -> None:
        if out.first_token_s is None:
            out.first_token_s = time.perf_counter() - start
        out.tokens.extend(new)
        if steer is not None:
            written.extend(texts[t] for t in new)
        if on_tokens is not None:
            on_tokens(new)

    while len(out.tokens) < max_new_tokens:
        rows: tuple[int, ...] | None = None
        if guide is not None and state is not None:
            forced, after = guide.forced_tokens(state)
            if forced:
                forced = forced[: max_new_tokens - len(out.tokens)]
                pending.extend(forced)
                emit(forced)
                state = after
                continue
            rows = guide.allowed(state)
            if not rows:
                break  # dead end: cannot happen for a well-formed grammar
            if all(r in eos for r in rows):
                out.finished = True  # the answer is complete: no need to ask the model
                break
        logits = model.scores(pending, rows)
        if steer is not None and rows is not None:
            steered = _choose_acceptable(
                logits, sampling, rng, _acceptance(steer, "".join(written), rows, texts, eos)
            )
            if steered is None:
                break  # nothing acceptable: the answer stays unfinished (and is rejected)
            pick, refused = steered
            out.steered += refused
        else:
            pick = _choose(logits, sampling, rng)
        token = rows[pick] if rows is not None else pick
        out.sampled += 1
        if token in eos:
            out.finished = True
            break
        pending = [token]
        emit([token])
        if guide is not None and state is not None:
            state = guide.advance(state, token)
    out.total_s = time.perf_counter() - start
    return out


def _acceptance(
    steer: Steer, so_far: str, rows: Sequence[int], texts: Sequence[str], eos: set[int]
) -> Callable[[int], bool]:
    def acceptable(i: int) -> bool:
        token = rows[i]
        if token in eos:
            return True
        text = texts[token]  # every character boundary: "],[" closes one position, opens one
        return all(steer.allows(so_far + text[:k]) for k in range(1, len(text) + 1))

    return acceptable


def _choose_acceptable(
    logits: np.ndarray,
    sampling: Sampling,
    rng: np.random.Generator,
    acceptable: Callable[[int], bool],
) -> tuple[int, int] | None:
    """The pick among acceptable indices, and how many better picks were refused."""
    if not sampling.temperature:
        for refused, i in enumerate(np.argsort(-logits, kind="stable")):
            if acceptable(int(i)):
                return int(i), refused
        return None
    probs = _probabilities(logits, sampling)
    refused = 0
    while probs.sum() > 0:
        i = int(rng.choice(len(probs), p=probs / probs.sum()))
        if acceptable(i):
            return i, refused
        refused += 1
        probs[i] = 0.0
    return None


def _probabilities(logits: np.ndarray, sampling: Sampling) -> np.ndarray:
    scaled = logits.astype(np.float64) / max(sampling.temperature or 1.0, 1e-5)
    scaled -= scaled.max()
    probs = np.exp(scaled)
    probs /= probs.sum()
    if sampling.top_p is not None and sampling.top_p < 1.0:
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, sampling.top_p)) + 1]
        mask = np.zeros_like(probs)
        mask[keep] = probs[keep]
        probs = mask / mask.sum()
    return probs


def _choose(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    if not sampling.temperature:
        return int(np.argmax(logits))
    probs = _probabilities(logits, sampling)
    if not math.isfinite(float(probs.sum())):
        return int(np.argmax(logits))
    return int(rng.choice(len(probs), p=probs))
