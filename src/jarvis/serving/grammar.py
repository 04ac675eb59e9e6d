"""The grammar of constrained decoding: a call's JSON Schema, enforced token by token by llguidance.

The student must write JSON that parses and fits the task's type, and, where a call knows
more (a map's coordinates lie inside *this* level's grid, it has exactly ``num_enemies``
enemies), fits that too. :func:`compile_schema` compiles that schema with llguidance (the
engine behind the structured output of llama.cpp, vLLM and SGLang) for the engine's own
vocabulary; each decoding then gets a :class:`Matcher`: the allowed next tokens as a mask
(microseconds), the tokens the grammar forces from here (jump-forward), and whether the answer
is complete. llguidance works on bytes, so a token that is half of a UTF-8 character is
handled like any other.

JSON is written compact (no whitespace, ``,`` and ``:``), as the student is trained; with
``positional=True`` objects are written as arrays of their values
(:func:`jarvis.core.codec.positional_schema`). A schema keyword llguidance cannot enforce is an
:class:`UnsupportedSchema` naming it, never a silently unconstrained answer.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from llguidance import LLMatcher, LLTokenizer
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from jarvis.core.codec import positional_schema

if TYPE_CHECKING:  # declared in the type stub only
    from llguidance._lib import JsonCompileOptions

__all__ = ["Grammar", "Matcher", "UnsupportedSchema", "Vocabulary", "compile_schema"]

# how the student writes JSON: compact, as in training. ``oneOf`` is enforced as ``anyOf``:
# exact for the unions pydantic writes (their branches exclude each other), and an answer
# matching two branches is still refused afterwards by the task's own validation.
JSON_OPTIONS: JsonCompileOptions = {
    "whitespace_flexible": False,
    "item_separator": ",",
    "key_separator": ":",
    "coerce_one_of": True,
}
_BIT = np.arange(32)
_COMPILED = 256  # grammars kept per vocabulary (a per-call schema is compiled once per call)


class UnsupportedSchema(ValueError):
    """The schema uses a feature the grammar cannot enforce (the message names it)."""


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The engine's tokens: their text (for the task's steering), the ids that end a sequence,
    and the same vocabulary as llguidance reads it."""

    texts: tuple[str, ...]
    eos_ids: tuple[int, ...]
    tokenizer: LLTokenizer
    _compiled: OrderedDict[str, Grammar | UnsupportedSchema] = field(
        default_factory=OrderedDict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_tokenizer(
        cls, tokenizer: Any, eos_ids: Sequence[int], n_vocab: int | None = None
    ) -> Vocabulary:
        """From a Hugging Face fast tokenizer; ``n_vocab``: the model's logit count, when it
        has rows past the tokenizer's last id (they are never allowed)."""
        from llguidance.hf import from_tokenizer

        try:
            ll = from_tokenizer(tokenizer, n_vocab=n_vocab, eos_token=list(eos_ids))
        except ValueError as exc:  # a slow (pure Python) tokenizer
            raise UnsupportedSchema(f"constrained decoding needs a fast tokenizer: {exc}") from exc
        special = set(getattr(tokenizer, "all_special_ids", []))
        size = ll.vocab_size
        known = len(tokenizer)
        texts = tuple(
            "" if i in special or i >= known else tokenizer.decode([i]) for i in range(size)
        )
        return cls(texts, tuple(eos_ids), ll)

    @property
    def size(self) -> int:
        return int(self.tokenizer.vocab_size)

    def encode(self, text: str) -> list[int]:
        """``text`` as tokens (no special tokens)."""
        return list(self.tokenizer.tokenize_str(text))

    def compiled(self, schema: Mapping[str, Any], positional: bool) -> Grammar:
        """:func:`compile_schema`, remembered (a refusal too) for the last few hundred schemas."""
        key = json.dumps([schema, positional], sort_keys=True)
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
        if hit is None:
            try:
                hit = compile_schema(schema, self, positional=positional)
            except UnsupportedSchema as exc:
                hit = exc
            with self._lock:
                self._compiled[key] = hit
                if len(self._compiled) > _COMPILED:
                    self._compiled.popitem(last=False)
        if isinstance(hit, UnsupportedSchema):
            raise UnsupportedSchema(str(hit))
        return hit


class Grammar:
    """One compiled schema for one vocabulary; :meth:`matcher` starts a decoding under it."""

    def __init__(self, schema: Mapping[str, Any], vocab: Vocabulary, text: str) -> None:
        self.schema = schema
        self.vocab = vocab
        self._start = LLMatcher(vocab.tokenizer, text, log_level=0)  # compiles: never raises
        if self._start.is_error():
            raise UnsupportedSchema(_reason(self._start.get_error()))

    def matcher(self) -> Matcher:
        return Matcher(self._start.deep_copy(), self.vocab)

    def accepts(self, text: str) -> bool:
        """Whether ``text`` is a complete answer (fed through the matcher as tokens)."""
        matcher = self.matcher()
        return matcher.consume(self.vocab.encode(text)) and matcher.accepting


def compile_schema(
    schema: Mapping[str, Any], vocab: Vocabulary, *, positional: bool = False
) -> Grammar:
    """Compile a JSON Schema; raises :class:`UnsupportedSchema` for what it cannot enforce."""
    if positional:
        schema = positional_schema(dict(schema))
    try:
        text = LLMatcher.grammar_from_json_schema(dict(schema), defaults=JSON_OPTIONS)
    except (ValueError, TypeError) as exc:
        raise UnsupportedSchema(f"not a JSON Schema: {exc}") from exc
    return Grammar(schema, vocab, text)


def _reason(message: str) -> str:
    """llguidance's error without its location prefix (``Unimplemented keys: ["not"]``)."""
    return message.strip().removeprefix("Error: ").strip()


class Matcher:
    """One answer being decoded: what may come next, what is forced, whether it is complete."""

    def __init__(self, inner: LLMatcher, vocab: Vocabulary) -> None:
        self._inner = inner
        self._mask = allocate_token_bitmask(1, vocab.size)
        self._size = vocab.size

    def forced_tokens(self) -> list[int]:
        """The tokens the grammar forces from here (jump-forward); empty when the model has a
        choice."""
        return list(self._inner.compute_ff_tokens())

    def allowed(self) -> np.ndarray:
        """The token ids allowed next, ascending (end-of-sequence once the answer is complete)."""
        fill_next_token_bitmask(self._inner, self._mask)
        words = self._mask[0]
        used = np.flatnonzero(words)  # only the 32-token words with an allowed token
        bits = np.unpackbits(words[used].view(np.uint8), bitorder="little").reshape(-1, 32)
        ids: np.ndarray = (used[:, None] * 32 + _BIT)[bits.astype(bool)]
        return ids[ids < self._size]

    def consume(self, tokens: Sequence[int]) -> bool:
        """Advance by ``tokens``; False (and the matcher is dead) if they break the grammar."""
        return bool(self._inner.consume_tokens(list(tokens))) and not self._inner.is_error()

    @property
    def accepting(self) -> bool:
        """The answer so far is complete (it may end here)."""
        return bool(self._inner.is_accepting())

    @property
    def error(self) -> str:
        return str(self._inner.get_error())
