"""From a character grammar to token masks, with jump-forward over forced text.

At each decoding step the model may only pick tokens whose text keeps the answer inside the
grammar (:mod:`.grammar`); once the answer is complete only end-of-sequence is allowed. Two
things keep this cheap on a CPU:

* **A small candidate vocabulary.** Only tokens made of characters the grammar can ever use
  are candidates (for the RPG tasks' integer-only answers: 73 of SmolLM2's 49,152 tokens), so
  a mask is built by simulating a few dozen short strings, and the caller can score only
  those rows of the LM head.
* **Caching by state.** Grammar states are hashable and repeat (every ``x`` coordinate of a
  10-wide map starts in the same state), so masks are computed once per state, across steps
  and calls.

**Jump-forward**: when the grammar admits exactly one next character (keys, brackets, a
constant), the whole forced text is appended without asking the model, tokenized the way the
tokenizer would write it; the model only reads those tokens (one batched forward pass),
instead of predicting them one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jarvis.serving import grammar as g
from jarvis.serving.grammar import Grammar, State, accepts, feed

__all__ = ["Guide", "Vocabulary"]

_CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class Vocabulary:
    """The text of every token id, and the ids that end a sequence."""

    texts: tuple[str, ...]
    eos_ids: tuple[int, ...]
    encode: Callable[[str], list[int]]  # text → token ids, no special tokens

    @classmethod
    def from_tokenizer(cls, tokenizer: object, eos_ids: Sequence[int]) -> Vocabulary:
        """Build from a Hugging Face tokenizer (each id decoded on its own)."""
        size = len(tokenizer)  # type: ignore[arg-type]
        decode = tokenizer.decode  # type: ignore[attr-defined]
        special = set(getattr(tokenizer, "all_special_ids", []))
        texts = tuple("" if i in special else decode([i]) for i in range(size))

        def encode(text: str) -> list[int]:
            return list(tokenizer.encode(text, add_special_tokens=False))  # type: ignore[attr-defined]

        return cls(texts, tuple(eos_ids), encode)


class Guide:
    """Token-level view of one grammar: allowed ids per state, and forced continuations."""

    def __init__(self, grammar: Grammar, vocab: Vocabulary) -> None:
        self.grammar = grammar
        self.vocab = vocab
        alphabet = _alphabet(grammar)
        self.free_text = alphabet is None
        self.candidates: list[int] = []
        self._by_first: dict[str, list[int]] = {}
        for i, text in enumerate(vocab.texts):
            if not text or i in vocab.eos_ids:
                continue
            if alphabet is not None and not set(text) <= alphabet:
                continue
            self.candidates.append(i)
            self._by_first.setdefault(text[0], []).append(i)
        self.alphabet = frozenset(alphabet) if alphabet is not None else frozenset(self._by_first)
        self._allowed: dict[State, tuple[int, ...]] = {}
        self._forced: dict[State, str] = {}

    @property
    def initial(self) -> State:
        return self.grammar.initial

    def advance(self, state: State, token: int) -> State | None:
        """The state after a token, or ``None`` if the token breaks the grammar."""
        for ch in self.vocab.texts[token]:
            nxt = feed(state, ch)
            if nxt is None:
                return None
            state = nxt
        return state

    def allowed(self, state: State) -> tuple[int, ...]:
        """Token ids allowed next (end-of-sequence ids included when the answer is complete)."""
        hit = self._allowed.get(state)
        if hit is not None:
            return hit
        ids: list[int] = []
        for first, group in self._by_first.items():
            after = feed(state, first)
            if after is None:
                continue
            for i in group:
                text = self.vocab.texts[i]
                s: State | None = after
                for ch in text[1:]:
                    s = feed(s, ch)  # type: ignore[arg-type]  # loop breaks on None
                    if s is None:
                        break
                if s is not None:
                    ids.append(i)
        if accepts(state):
            ids.extend(self.vocab.eos_ids)
        result = tuple(sorted(ids))
        self._remember(self._allowed, state, result)
        return result

    def is_complete(self, state: State) -> bool:
        """True when nothing can follow: the answer is finished."""
        return not state

    def forced_text(self, state: State) -> str:
        """The text the grammar forces from here (empty when the model has a choice)."""
        hit = self._forced.get(state)
        if hit is not None:
            return hit
        out: list[str] = []
        s = state
        while s and not accepts(s) and len(out) < 256:
            top, data = s[-1]
            if top.free_text(data):
                break
            options = [(c, n) for c in self.alphabet if (n := feed(s, c)) is not None]
            if len(options) != 1:
                break
            ch, s = options[0]
            out.append(ch)
        text = "".join(out)
        self._remember(self._forced, state, text)
        return text

    def forced_tokens(self, state: State) -> tuple[list[int], State]:
        """Tokens for the forced text (as the tokenizer writes it) and the state after them.

        Returns no tokens if the tokenizer's spelling of the forced text does not fit the
        grammar token by token (then the model picks them one by one, under the mask).
        """
        text = self.forced_text(state)
        if not text:
            return [], state
        ids = self.vocab.encode(text)
        s: State | None = state
        for i in ids:
            s = self.advance(s, i) if s is not None else None
        if s is None or "".join(self.vocab.texts[i] for i in ids) != text:
            return [], state
        return ids, s

    @staticmethod
    def _remember(cache: dict[State, Any], state: State, value: Any) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[state] = value


def _alphabet(grammar: Grammar) -> frozenset[str] | None:
    """Every character the grammar can use, or ``None`` if it has free text (strings)."""
    chars: set[str] = set()
    seen: set[int] = set()
    stack: list[g.Node] = [grammar.root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, g.String):
            return None
        if isinstance(node, g.Literal):
            chars |= set(node.text)
        elif isinstance(node, g.Choice):
            for option in node.options:
                chars |= set(option)
        elif isinstance(node, g.Integer):
            chars |= set("-0123456789")
        elif isinstance(node, g.Number):
            chars |= set("-+.eE0123456789")
        elif isinstance(node, g.Sequence):
            stack.extend(node.children)
        elif isinstance(node, g.Array):
            chars |= set("[],")
            stack.append(node.item)
        elif isinstance(node, g.Alternatives):
            stack.extend(node.options)
    return frozenset(chars)
