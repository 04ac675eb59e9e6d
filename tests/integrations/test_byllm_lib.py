"""byLLM's Python library mode: ``@by(llm)`` from ``jarvis.integrations.byllm_lib`` routes a
plain Python function's calls through JARVIS, as the plugin does for ``.jac`` programs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from byllm.lib import Model

from jarvis import Jarvis
from jarvis.integrations.byllm_lib import by
from jarvis.integrations.jac import task_name
from jarvis.rpg import Level
from jarvis.runtime import set_default


@dataclass
class Verdict:
    label: str
    stars: int


def mock(*outputs: object) -> Model:
    """byLLM's offline model, answering ``outputs`` in turn: the program's own teacher."""
    return Model(model_name="mockllm", config={"outputs": list(outputs)})


@pytest.fixture
def jarvis(runtime: Jarvis) -> Iterator[Jarvis]:
    """The runtime the decorated functions use (the process default)."""
    previous = set_default(runtime)
    yield runtime
    set_default(previous)


def test_a_python_function_becomes_a_task_answered_by_the_programs_model(
    jarvis: Jarvis,
) -> None:
    @by(mock(Verdict(label="positive", stars=5)))
    def judge(review: str) -> Verdict:
        """Judge a product review: a label and 1 to 5 stars."""
        raise AssertionError("the body of a by(llm) function is never run")

    verdict = judge("Great phone, the battery lasts days.")

    assert verdict == Verdict(label="positive", stars=5)  # the function's own type
    [call] = jarvis.store.recent_calls(task_name(judge.__wrapped__), limit=10)
    assert call["input"] == {"review": "Great phone, the battery lasts days."}
    assert call["output"] == {"label": "positive", "stars": 5}
    assert (call["source"], call["valid"], call["model"]) == ("teacher", True, "byllm:mockllm")
    row = jarvis.store.task_row(task_name(judge.__wrapped__))
    assert row is not None and set(row["output_schema"]["properties"]) == {"label", "stars"}


def test_positional_and_keyword_arguments_are_logged_by_parameter_name(jarvis: Jarvis) -> None:
    @by(mock("short", "shorter"))
    def summarize(text: str, words: int = 3) -> str:
        """Summarize the text in at most ``words`` words."""
        raise AssertionError

    assert summarize("the battery lasts for days") == "short"
    assert summarize(text="it broke", words=2) == "shorter"

    name = task_name(summarize.__wrapped__)
    inputs = [c["input"] for c in reversed(jarvis.store.recent_calls(name, limit=10))]
    assert inputs == [
        {"text": "the battery lasts for days", "words": 3},  # the default, by name
        {"text": "it broke", "words": 2},
    ]
    assert jarvis.store.task_row(name)["kind"] == "text"  # type: ignore[index]
    with pytest.raises(TypeError):
        summarize()  # a wrong call is Python's error, before any model is asked


def test_a_function_named_like_a_declared_task_is_that_task(jarvis: Jarvis) -> None:
    @by(mock())  # never asked: the declared task has its own teacher (the procedural oracle)
    def create_next_level(last_levels: list[Level], difficulty: int) -> Level:
        """Create the next level."""
        raise AssertionError

    level = create_next_level([], 2)

    assert isinstance(level, Level) and level.difficulty == 2
    [call] = jarvis.store.recent_calls("create_next_level", limit=10)
    assert call["input"] == {"last_levels": [], "difficulty": 2}
    assert call["output"] == level.model_dump(mode="json")


def test_opting_out_hands_the_call_back_to_byllm(jarvis: Jarvis) -> None:
    llm = mock(Verdict(label="negative", stars=1))

    @by(llm(jarvis=False))
    def judge_directly(review: str) -> Verdict:
        raise AssertionError

    assert judge_directly("Broke after two days.") == Verdict(label="negative", stars=1)
    assert jarvis.store.task_row(task_name(judge_directly.__wrapped__)) is None


def test_one_functions_opt_out_does_not_leak_into_another(jarvis: Jarvis) -> None:
    llm = mock(Verdict(label="neutral", stars=3))

    @by(llm)
    def judge(review: str) -> Verdict:
        raise AssertionError

    @by(llm(jarvis=False))  # byLLM sets this on the shared model object
    def judge_directly(review: str) -> Verdict:
        raise AssertionError

    assert judge("fine").stars == 3
    assert jarvis.store.recent_calls(task_name(judge.__wrapped__), limit=10)
