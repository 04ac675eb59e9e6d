"""What a free-text answer must look like: a task's :class:`TextRules` and the check itself.

A typed answer proves much of its quality by parsing; a ``str`` answer parses whatever the
model writes. These rules catch the ways a small model's text goes wrong without being
"wrong" in any domain sense, while leaving ordinary teacher prose alone:

* too long or too short for the task (``max_chars``, ``min_chars``);
* a repetition loop: one unit of words (or, in text without spaces, of characters) written
  back to back ``loop_repeats`` times or more, over at least ``loop_min_chars`` characters
  ("The cat sat. The cat sat. The cat sat. …"); units without a letter or digit
  (``| --- | --- |``, ``-----``) never count, so Markdown tables and rules pass;
* truncation: the generator stopped at its token budget. Only the generator knows this, so it
  is reported by the caller (``truncated=True``), never guessed from the text.

A task declares its rules with ``@task(text=TextRules(max_chars=200))`` or
``@task(text={"max_chars": 200})``; every free-text task gets the defaults otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from jarvis.core.errors import TaskError

_MAX_WORD_PERIOD = 40  # longest repeated unit looked for, in words (a long sentence)
_MAX_CHAR_PERIOD = 12  # … and in characters, for text without spaces ("hahaha…", "的的的…")


@dataclass(frozen=True, slots=True)
class TextRules:
    """Limits for one free-text task's answers (characters are counted after stripping)."""

    max_chars: int = 4000
    """Longer answers are rejected: a runaway, or not what the task asks for."""
    min_chars: int = 1
    """Shorter answers are rejected (an empty answer always is)."""
    loop_repeats: int | None = 5
    """A unit written back to back this many times is a loop; ``None`` turns the check off."""
    loop_min_chars: int = 40
    """… if the repeated stretch is at least this long, so "ha ha ha ha ha" stays fine."""

    def __post_init__(self) -> None:
        if self.max_chars < 1:
            raise TaskError(f"text rules: max_chars must be >= 1, got {self.max_chars}")
        if not 0 <= self.min_chars <= self.max_chars:
            raise TaskError(
                f"text rules: min_chars must be in [0, max_chars={self.max_chars}], "
                f"got {self.min_chars}"
            )
        if self.loop_repeats is not None and self.loop_repeats < 2:
            raise TaskError(f"text rules: loop_repeats must be >= 2, got {self.loop_repeats}")
        if self.loop_min_chars < 1:
            raise TaskError(f"text rules: loop_min_chars must be >= 1, got {self.loop_min_chars}")


def check_text(answer: str, rules: TextRules, *, truncated: bool = False) -> str | None:
    """Why the (stripped, non-empty) ``answer`` breaks ``rules``, or ``None`` when it is fine."""
    n = len(answer)
    if truncated:  # first: an answer cut at the budget is long because it was cut
        return "truncated: the answer stopped at the token limit, not at its end"
    if n > rules.max_chars:
        return f"too long: {n} characters, at most {rules.max_chars} allowed"
    if rules.loop_repeats is not None:
        loop = find_loop(answer, rules.loop_repeats, rules.loop_min_chars)
        if loop is not None:
            unit, times = loop
            shown = unit if len(unit) <= 40 else unit[:40] + "…"
            return f"repetition loop: {shown!r} written {times} times in a row"
    if n < rules.min_chars:
        return f"too short: {n} characters, at least {rules.min_chars} required"
    return None


def find_loop(text: str, repeats: int, min_chars: int) -> tuple[str, int] | None:
    """The first unit repeated back to back ``repeats``+ times over ``min_chars``+ characters.

    Returns the unit and how many times it is repeated there, or ``None``. Words are compared
    exactly (so a count that goes up, "Step 1. Step 2. …", is not a loop). Cost: linear in the
    text for each unit length tried.
    """
    words = text.split()
    # characters taken by words[a:b] joined by single spaces: ends[b] - ends[a] - 1
    ends = [0, *accumulate(len(w) + 1 for w in words)]
    found = _periodic_run(
        words, _MAX_WORD_PERIOD, repeats, min_chars, lambda a, b: ends[b] - ends[a] - 1
    )
    if found is not None:
        start, period, times = found
        return " ".join(words[start : start + period]), times
    for word in words:  # text without spaces: look inside each long enough word
        if len(word) >= min_chars:
            found = _periodic_run(word, _MAX_CHAR_PERIOD, repeats, min_chars, lambda a, b: b - a)
            if found is not None:
                start, period, times = found
                return word[start : start + period], times
    return None


def _periodic_run(
    seq: Sequence[str],
    max_period: int,
    repeats: int,
    min_chars: int,
    span: Callable[[int, int], int],
) -> tuple[int, int, int] | None:
    """(start, period, times) of the first stretch of ``seq`` that is one unit repeated.

    ``seq[i] == seq[i + p]`` for a run of ``r`` positions means ``seq[i-r+1 : i+p+1]`` has
    period ``p``: ``(r + p) // p`` copies of the unit.
    """
    for period in range(1, min(max_period, len(seq) // repeats) + 1):
        run = 0
        for i in range(len(seq) - period):
            run = run + 1 if seq[i] == seq[i + period] else 0
            times = (run + period) // period
            if times < repeats:
                continue
            start = i - run + 1
            unit = seq[start : start + period]
            if not any(ch.isalnum() for part in unit for ch in part):
                continue
            if span(start, i + period + 1) >= min_chars:
                end = i + 1  # follow the loop to its end, to report how long it went on
                while end < len(seq) - period and seq[end] == seq[end + period]:
                    end += 1
                return start, period, (end - start + period) // period
    return None
