"""The decoding loop shared by every engine backend: mask, jump forward, sample, repeat.

A backend only has to answer one question: "having read these tokens, what are the scores of
these candidate tokens for the next position?" (:class:`LanguageModel`). The loop owns the
grammar (a :class:`.grammar.Matcher` per answer), so constrained decoding works the same on
llama.cpp and on torch. When the grammar allows few tokens (digits, brackets: the RPG answers)
only those rows of the LM head are asked for; a backend that computes every logit anyway just
picks them out.

**Jump-forward**: when the grammar forces text (keys, brackets, a map's copy of its level), its
tokens are appended without asking the model; the model reads them in one batched pass at
the next step instead of predicting them one at a time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from jarvis.core.backends import Sampling
from jarvis.serving.grammar import Grammar, Matcher

__all__ = ["Decoded", "Decoding", "LanguageModel", "Need", "decode"]

SCORE_ROWS_LIMIT = 2048
"""Ask the backend for at most this many rows of the LM head; more allowed tokens (free text
in a string) and it computes them all, as that is cheaper than gathering most of the head."""


class Steer(Protocol):
    """Semantic checks the grammar cannot express (a task's ``@t.steering``)."""

    def allows(self, text: str) -> bool:
        """Can the answer written so far still become a valid one?"""
        ...


class LanguageModel(Protocol):
    """One sequence at a time; the engine serialises calls."""

    def begin(self) -> None:
        """Forget the previous sequence."""

    def scores(self, tokens: Sequence[int], rows: np.ndarray | None) -> np.ndarray:
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
    confidence: float = 1.0
    """The lowest probability the model gave a token it chose (among the tokens the grammar
    allowed; forced tokens excluded): one unsure digit makes an unsure answer."""
    first_token_s: float | None = None
    total_s: float = 0.0


def decode(
    model: LanguageModel,
    prompt: Sequence[int],
    *,
    sampling: Sampling,
    max_new_tokens: int,
    eos_ids: Sequence[int],
    grammar: Grammar | None = None,
    steer: Steer | None = None,
    on_tokens: Callable[[list[int]], None] | None = None,
) -> Decoded:
    """Generate up to ``max_new_tokens`` after ``prompt``, under ``grammar`` if given.

    ``steer`` (with a grammar) refuses candidates that would make the answer semantically
    invalid; the model's most likely (or sampled) acceptable token is taken instead.
    One sequence on ``model``; :mod:`.batcher` drives many :class:`Decoding` at once.
    """
    model.begin()
    run = Decoding(prompt, sampling, max_new_tokens, eos_ids, grammar, steer, on_tokens)
    while (need := run.want()) is not None:
        run.give(model.scores(need.tokens, need.asked))
    return run.result()


@dataclass(frozen=True, slots=True)
class Need:
    """What one sequence needs from the model before it can write its next token."""

    tokens: list[int]
    """Tokens the model has not read yet (the prompt, forced text, the last choice)."""
    rows: np.ndarray | None
    """The candidate tokens (None: every token)."""

    @property
    def asked(self) -> np.ndarray | None:
        """The rows to ask the backend for: all of them when many are allowed (free text in
        a string), as that is cheaper than gathering most of the LM head."""
        rows = self.rows
        return None if rows is None or len(rows) > SCORE_ROWS_LIMIT else rows


class Decoding:
    """One answer being decoded: the grammar state, what the model has still to read, and
    what was written. :meth:`want` writes forced text and says what the model must score
    next; :meth:`give` takes those scores and writes the chosen token. Backends differ only in
    how they compute scores: one sequence at a time, or many in one forward pass."""

    def __init__(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        max_new_tokens: int,
        eos_ids: Sequence[int],
        grammar: Grammar | None = None,
        steer: Steer | None = None,
        on_tokens: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.started = time.perf_counter()
        self.sampling = sampling
        self.max_new_tokens = max_new_tokens
        self.eos = set(eos_ids)
        self.matcher: Matcher | None = grammar.matcher() if grammar is not None else None
        self.steer = steer
        self.on_tokens = on_tokens
        self.out = Decoded(prompt_tokens=len(prompt))
        self.rng = np.random.default_rng(sampling.seed)
        self.pending: list[int] = list(prompt)  # read by the model at its next step
        self.texts = grammar.vocab.texts if grammar is not None else ()
        self.written: list[str] = []  # the text so far, for the steering
        self._need: Need | None = None
        self._over = False

    def want(self) -> Need | None:
        """Jump over forced text; then what the model must score, or None when the answer is
        over (complete, out of budget, or at a dead end)."""
        while not self._over and self._need is None:
            if len(self.out.tokens) >= self.max_new_tokens:
                self._end()
            elif self.matcher is None:
                self._need = Need(self.pending, None)
            else:
                self._grammar_step(self.matcher)
        return self._need

    def _grammar_step(self, matcher: Matcher) -> None:
        forced = matcher.forced_tokens()
        if forced:  # jump forward: the grammar allows only this text
            forced = forced[: self.max_new_tokens - len(self.out.tokens)]
            if not matcher.consume(forced):
                self._end()  # cannot happen: the grammar chose them
                return
            self.pending.extend(forced)
            self._emit(forced)
            return
        rows = matcher.allowed()
        if not len(rows):
            self._end()  # dead end: cannot happen for a well-formed grammar
        elif len(rows) <= len(self.eos) and all(int(r) in self.eos for r in rows):
            self.out.finished = True  # the answer is complete: no need to ask the model
            self._end()
        else:
            self._need = Need(self.pending, rows)

    def give(self, logits: np.ndarray) -> None:
        """The model's scores for :meth:`want`'s rows (or for every token): write one."""
        need = self._need
        assert need is not None, "give() without want()"
        self._need = None
        rows = need.rows
        if rows is not None and need.asked is None:
            logits = logits[rows]  # the backend was asked for every row
        pick = self._pick(logits, rows)
        if pick is None:
            self._end()  # nothing acceptable: the answer stays unfinished (and is rejected)
            return
        self.out.confidence = min(self.out.confidence, _probability(logits, pick))
        token = int(rows[pick]) if rows is not None else pick
        self.out.sampled += 1
        if token in self.eos:
            self.out.finished = True
            self._end()
            return
        self.pending = [token]
        self._emit([token])
        if self.matcher is not None and not self.matcher.consume([token]):
            self._end()  # cannot happen: the token was allowed

    def stop(self) -> None:
        """End the answer where it is (a caller that went away, a failed backend)."""
        self._need = None
        self._end()

    def result(self) -> Decoded:
        """The answer, once :meth:`want` returned None or :meth:`stop` was called."""
        assert self._over, "result() before the answer is over"
        return self.out

    def _end(self) -> None:
        self._over = True
        self.out.total_s = time.perf_counter() - self.started

    def _pick(self, logits: np.ndarray, rows: np.ndarray | None) -> int | None:
        if self.steer is not None and rows is not None:
            acceptable = _acceptance(self.steer, "".join(self.written), rows, self.texts, self.eos)
            steered = _choose_acceptable(logits, self.sampling, self.rng, acceptable)
            if steered is None:
                return None
            pick, refused = steered
            self.out.steered += refused
        else:
            pick = _choose(logits, self.sampling, self.rng)
        return pick

    def _emit(self, new: list[int]) -> None:
        if self.out.first_token_s is None:
            self.out.first_token_s = time.perf_counter() - self.started
        self.out.tokens.extend(new)
        if self.steer is not None:
            self.written.extend(self.texts[t] for t in new)
        if self.on_tokens is not None:
            self.on_tokens(new)


def _acceptance(
    steer: Steer, so_far: str, rows: np.ndarray, texts: Sequence[str], eos: set[int]
) -> Callable[[int], bool]:
    def acceptable(i: int) -> bool:
        token = int(rows[i])
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


def _probability(logits: np.ndarray, i: int) -> float:
    """The model's own probability of candidate ``i`` (softmax at temperature 1): how sure
    it was, whatever sampling then did."""
    scaled = logits.astype(np.float64) - float(np.max(logits))
    weights = np.exp(scaled)
    total = float(weights.sum())
    return float(weights[i] / total) if total > 0 and math.isfinite(total) else 0.0


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
