"""Free-text answers: what the validator rejects, and what the router does then.

A ``str`` answer parses whatever a model writes, so a free-text task checks the ways text goes
wrong without being "wrong" in the domain: empty, a repetition loop, cut off at the token
budget, longer or shorter than the task allows (:class:`jarvis.TextRules`). Ordinary teacher
prose must pass; a bad student answer is retried, then the teacher answers instead.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

import jarvis
from jarvis import Generation, GenerationRequest, Store, TaskError, TextRules, validate_answer
from jarvis.core.freetext import find_loop
from jarvis.testing import ScriptedStudent

GOOD = (
    "The council approved next year's budget after a long debate. Most of the money goes to "
    "the harbor, which has needed repairs since the storm; the rest funds two new parks."
)


@jarvis.task(text={"max_chars": 300})
def summarize(text: str) -> str:
    """Summarize the text in two sentences at most."""


@summarize.oracle
def _first_sentences(text: str, rng: random.Random) -> str:
    return GOOD


@jarvis.task(text=TextRules(min_chars=20, loop_repeats=None))
def describe(thing: str) -> str:
    """Describe the thing in a sentence or two; repeating yourself is allowed."""


def check(answer: str, task: jarvis.Task[Any] = summarize, **kwargs: Any) -> jarvis.Verdict:
    return validate_answer(task, {"text": "…"}, answer, **kwargs)


# -- what passes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        GOOD,
        "  " + GOOD + "\n",  # surrounding whitespace is stripped, not held against it
        "Ha ha ha ha ha, very funny.",  # a short repetition is language, not a loop
        "| a | b | c |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        "Step 1. Step 2. Step 3. Step 4. Step 5. Step 6. Step 7. Step 8.",  # counting up
        "Yes.",
    ],
)
def test_ordinary_answers_pass(answer: str) -> None:
    verdict = check(answer)

    assert verdict.valid, verdict.reason
    assert verdict.output == answer.strip()


# -- what fails, and why ----------------------------------------------------------------------


def test_an_empty_answer_fails_its_format() -> None:
    verdict = check("  \n ")

    assert (verdict.valid, verdict.stage, verdict.reason) == (False, "format", "empty answer")


def test_a_sentence_written_over_and_over_is_a_loop() -> None:
    answer = "The budget was approved. " + "The harbor gets the money. " * 6

    verdict = check(answer)

    assert (verdict.valid, verdict.stage) == (False, "semantic")
    assert (
        verdict.reason == "repetition loop: 'The harbor gets the money.' written 6 times in a row"
    )
    assert verdict.output == answer.strip()  # it parsed: the text is kept for the log


def test_a_long_tail_of_one_word_is_a_loop() -> None:
    verdict = check("The budget was approved by the the the the the the the the the the the")

    assert not verdict.valid
    assert verdict.reason is not None and "'the' written 11 times" in verdict.reason


def test_text_without_spaces_is_searched_for_loops_too() -> None:
    verdict = check("Funny: " + "ha" * 30)

    assert verdict.reason == "repetition loop: 'ha' written 30 times in a row"


def test_an_answer_longer_than_the_task_allows_fails() -> None:
    verdict = check("word " * 80)  # 399 characters, and no loop check would save it

    assert verdict.stage == "semantic"
    assert verdict.reason == "too long: 399 characters, at most 300 allowed"


def test_an_answer_shorter_than_the_task_asks_fails() -> None:
    verdict = check("A cat.", describe)

    assert verdict.reason == "too short: 6 characters, at least 20 required"


def test_a_task_may_turn_the_loop_check_off() -> None:
    assert check("Buffalo " * 8 + "is a sentence.", describe).valid


def test_an_answer_cut_off_at_the_token_budget_fails_even_if_it_reads_well() -> None:
    verdict = check(GOOD, truncated=True)

    assert (verdict.valid, verdict.stage) == (False, "semantic")
    assert verdict.reason is not None and verdict.reason.startswith("truncated")


def test_the_rules_run_before_the_tasks_own_validators() -> None:
    seen: list[str] = []

    @jarvis.task
    def shout(text: str) -> str:
        """Repeat the text in capitals."""

    @shout.validator
    def _capitals(answer: str, inputs: Mapping[str, Any]) -> str | None:
        seen.append(answer)
        return None if answer.isupper() else "not in capitals"

    assert validate_answer(shout, {"text": "hi"}, "").stage == "format"
    assert validate_answer(shout, {"text": "hi"}, "x" * 4001).reason == (
        "too long: 4001 characters, at most 4000 allowed"  # the default limit
    )
    assert seen == []
    assert validate_answer(shout, {"text": "hi"}, "quiet").reason == "not in capitals"


def test_find_loop_reports_the_unit_and_how_often_it_repeats() -> None:
    assert find_loop("a b c a b c a b c a b c a b c", repeats=5, min_chars=10) == ("a b c", 5)
    assert find_loop("a b c a b c a b c a b c", repeats=5, min_chars=10) is None  # only 4
    assert find_loop("- - - - - - - - - - - - - - - -", repeats=5, min_chars=10) is None


# -- declaring the rules ----------------------------------------------------------------------


def test_rules_are_declared_as_text_rules_or_a_mapping() -> None:
    assert summarize.text_rules == TextRules(max_chars=300)
    assert describe.text_rules == TextRules(min_chars=20, loop_repeats=None)


def test_a_free_text_task_without_rules_gets_the_defaults_and_typed_tasks_none() -> None:
    @jarvis.task
    def title(text: str) -> str:
        """Give the text a title."""

    @jarvis.task
    def count(text: str) -> int:
        """Count the words."""

    assert title.text_rules == TextRules()
    assert count.text_rules is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ({"max_chars": 0}, "max_chars must be >= 1"),
        ({"max_chars": 10, "min_chars": 11}, "min_chars must be in [0, max_chars=10]"),
        ({"loop_repeats": 1}, "loop_repeats must be >= 2"),
        ({"max_lenght": 10}, "bad text rules"),
    ],
)
def test_bad_rules_are_a_declaration_error(text: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError, match=message.replace("[", r"\[")):

        @jarvis.task(text=text)
        def title(text: str) -> str:
            """Give the text a title."""


def test_text_rules_on_a_typed_task_are_a_declaration_error() -> None:
    with pytest.raises(TaskError, match="only to tasks that return str"):

        @jarvis.task(text={"max_chars": 10})
        def count(text: str) -> int:
            """Count the words."""


# -- through the router -----------------------------------------------------------------------


@dataclass
class CuttingTeacher:
    """A teacher whose first answer is cut off at the token budget, then a whole one."""

    requests: list[GenerationRequest] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "cutting"

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        first = len(self.requests) == 1
        text = GOOD[:60] if first else GOOD
        return Generation(text=text, model="cutting-model", finished=not first)


def test_a_looping_student_is_retried_then_the_teacher_answers(store: Store) -> None:
    student = ScriptedStudent(answers=["Summary: " + "the harbor. " * 10])
    router = jarvis.Router(store, lambda task: jarvis.OracleTeacher(seed=1), student=student)

    result = router.call(summarize, {"text": "a long article"})

    assert [(a.source, a.verdict.valid) for a in result.attempts] == [
        ("student", False),
        ("student", False),
        ("student", False),
        ("teacher", True),
    ]
    assert all("repetition loop" in (a.verdict.reason or "") for a in result.attempts[:3])
    assert (result.valid, result.fallback, result.output) == (True, True, GOOD)
    attempts = store.call_attempts(result.call_id)
    assert [a["stage"] for a in attempts] == ["semantic", "semantic", "semantic", "ok"]
    assert [e["output"] for e in store.iter_examples("summarize")] == [GOOD]


def test_a_student_answer_cut_off_at_its_budget_falls_back(store: Store) -> None:
    student = ScriptedStudent(answers=[GOOD], finished=False)
    router = jarvis.Router(
        store,
        lambda task: jarvis.OracleTeacher(seed=1),
        student=student,
        config=jarvis.RouterConfig(student_retries=0),
    )

    result = router.call(summarize, {"text": "a long article"})

    assert [a.source for a in result.attempts] == ["student", "teacher"]
    assert (result.attempts[0].verdict.reason or "").startswith("truncated")
    assert result.valid and result.fallback


def test_a_cut_off_teacher_answer_is_asked_again_and_never_becomes_an_example(
    store: Store,
) -> None:
    teacher = CuttingTeacher()
    router = jarvis.Router(store, lambda task: teacher)

    result = router.call(summarize, {"text": "a long article"})

    assert [a.verdict.valid for a in result.attempts] == [False, True]
    feedback = teacher.requests[1].messages[-1]["content"]
    assert "truncated" in feedback  # the teacher is told why its answer was refused
    assert [e["output"] for e in store.iter_examples("summarize")] == [GOOD]
