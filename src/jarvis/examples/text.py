"""A free-text task a small model can learn: rewrite a sentence as a headline.

``headline("the city council approves a budget for the harbor.")`` is
``"The City Council Approves a Budget for the Harbor"``: Title Case, small words lower case
unless first or last, no trailing period. The teacher is the rule itself (deterministic code,
offline), so the whole loop (examples, threshold, training, the free-text gate, promotion) can
be run and tested without an LLM::

    JARVIS_TASK_MODULES=jarvis.examples.text jarvis call headline '{"sentence": "…"}'

Validity and quality are split the way the free-text gate expects: the validator only checks
what every good answer must do (same words, no trailing period); how close the casing comes to
the teacher's is what the gate's similarity score measures.
"""

# (the task function has no body on purpose: the LLM call is the body)

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from jarvis.core.freetext import TextRules
from jarvis.core.tasks import task

SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "nor", "of", "on", "or"}
    | {"over", "the", "to", "with"}
)
"""Words a headline keeps in lower case, unless they come first or last."""


@task(text=TextRules(max_chars=200))
def headline(sentence: str) -> str:
    """Rewrite the sentence as a news headline.

    Keep every word and its order. Write each word with a capital first letter, except the
    small words a, an, and, as, at, but, by, for, from, in, nor, of, on, or, over, the, to,
    with, which stay lower case unless they are the first or the last word. No trailing period.
    """


def to_headline(sentence: str) -> str:
    """The rule the task describes, as code: the teacher's answer."""
    words = sentence.strip().rstrip(".").split()
    last = len(words) - 1
    return " ".join(
        w.lower() if 0 < i < last and w.lower() in SMALL_WORDS else w[:1].upper() + w[1:]
        for i, w in enumerate(words)
    )


@headline.oracle
def _rule(sentence: str, rng: random.Random) -> str:
    return to_headline(sentence)


@headline.validator
def _keeps_the_words(answer: str, inputs: Mapping[str, Any]) -> str | None:
    if answer.endswith("."):
        return "a headline has no trailing period"
    wanted = inputs["sentence"].strip().rstrip(".").lower().split()
    if answer.lower().split() != wanted:
        return "the headline must keep the sentence's words, in order"
    return None


# -- inputs for demos and tests -------------------------------------------------------------

_SUBJECTS = (
    "the city council",
    "a local bakery",
    "the river museum",
    "our school band",
    "the new mayor",
    "a team of students",
    "the old lighthouse",
    "the farmers market",
)
_VERBS = ("approves", "opens", "celebrates", "plans", "announces", "wins", "rebuilds", "welcomes")
_OBJECTS = (
    "a budget for the harbor",
    "a garden on the roof",
    "the prize for best bread",
    "a concert in the park",
    "new hours for the summer",
    "a festival of lights",
    "the bridge over the river",
    "visitors from the north",
)


def sample_sentence(rng: random.Random) -> str:
    """One plain lower-case sentence (8 × 8 × 8 = 512 different ones)."""
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}."


def sample_sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` sentences, the same ones for the same seed."""
    rng = random.Random(seed)
    return [sample_sentence(rng) for _ in range(count)]


__all__ = ["SMALL_WORDS", "headline", "sample_sentence", "sample_sentences", "to_headline"]
