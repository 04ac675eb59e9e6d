"""The example free-text task ``headline``: its rule, its checks, and the whole loop on it.

The teacher is the rule itself (deterministic code), so these tests run offline: calls through
the router make examples; at the threshold the task is due; a job trains on the tiny base,
gates the candidate with the free-text similarity and promotes it; a later candidate that does
not clear its task's text floor is refused and the active version stays.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from helpers.threads import THREADS
from jarvis import Jarvis, Settings, validate_answer
from jarvis.examples.text import headline, sample_sentences, to_headline
from jarvis.registry import version_dir
from jarvis.runtime import job
from jarvis.training.gate import GateReport, decide

MODULE = "jarvis.examples.text"

# -- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "the city council approves a budget for the harbor.",
            "The City Council Approves a Budget for the Harbor",
        ),
        (
            "a team of students wins the prize for best bread.",
            "A Team of Students Wins the Prize for Best Bread",
        ),
        (
            "the river museum opens the bridge over the river",
            "The River Museum Opens the Bridge over the River",
        ),
        ("we go in.", "We Go In"),  # a small word that comes last is capitalised
        ("  spaced   out.  ", "Spaced Out"),
    ],
)
def test_the_teacher_writes_title_case_without_the_period(sentence: str, expected: str) -> None:
    assert to_headline(sentence) == expected
    assert headline.run_oracle({"sentence": sentence}, random.Random(0)) == expected


def test_the_validator_wants_the_same_words_and_no_period() -> None:
    inputs = {"sentence": "the new mayor plans a festival of lights."}

    def reason(answer: str) -> str | None:
        return validate_answer(headline, inputs, answer).reason

    assert reason("The New Mayor Plans a Festival of Lights") is None
    assert reason("the new mayor plans a festival of lights") is None  # valid; the gate scores it
    assert (
        reason("The New Mayor Plans a Festival of Lights.") == "a headline has no trailing period"
    )
    assert (
        reason("New Mayor Plans Festival")
        == "the headline must keep the sentence's words, in order"
    )
    assert reason("x" * 201) == "too long: 201 characters, at most 200 allowed"


def test_sample_sentences_are_reproducible() -> None:
    assert sample_sentences(5, seed=1) == sample_sentences(5, seed=1)
    assert len(set(sample_sentences(50))) > 30


# -- loaded like any task module --------------------------------------------------------------


def test_the_module_loads_through_the_task_modules_setting(home: Path) -> None:
    rt = Jarvis(Settings(home=home, task_modules=[MODULE], student="none"))

    result = rt.call("headline", {"sentence": "our school band wins a concert in the park."})

    assert rt.task("headline") is headline
    assert result.output == "Our School Band Wins a Concert in the Park"
    assert (result.source, result.valid) == ("teacher", True)
    assert result.attempts[0].model == "oracle:headline"
    assert rt.store.example_count("headline") == 1


# -- the whole loop on the tiny base ----------------------------------------------------------


def tiny_settings(home: Path, base: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "task_modules": [MODULE],
        "teacher_seed": 3,
        "base_model": str(base),
        "threshold": 12,
        "train_max_steps": 3,
        "train_tokens_per_batch": 1024,
        "lora_rank": 4,
        "lora_alpha": 8,
        "gate_examples": 3,
        "gate_min_examples": 3,
        "gate_floor": 0.0,  # the tiny random model writes nonsense: judge the path, not it
        "text_gate_floor": 0.0,
        "agreement_floor": 0.0,
        "train_threads": THREADS,
        "heldout_share": 0.2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def fill(rt: Jarvis, sentences: list[str]) -> None:
    for sentence in sentences:
        rt.call(headline, {"sentence": sentence})


@pytest.mark.slow
def test_threshold_train_gate_promote_then_a_candidate_below_its_text_floor_is_refused(
    home: Path, tiny_base: Path
) -> None:
    settings = tiny_settings(home, tiny_base)
    rt = Jarvis(settings)
    worker = rt.worker()
    sentences = sample_sentences(40, seed=11)

    fill(rt, sentences[:8])
    assert worker.enqueue_due() == [], "below the threshold: nothing to train"
    fill(rt, sentences[8:30])
    (run_id,) = worker.enqueue_due()

    assert job.run(run_id, settings) == 0

    assert rt.store.versions.active("headline") == "v0001"
    card = rt.store.versions.of_task("headline")[0]["card"]
    gate = card["gate"]
    assert gate["text_floor"] == 0.0
    assert gate["candidate"]["text_metric"] == "chrF"
    assert 0.0 <= gate["candidate"]["text_similarity"] <= 1.0
    assert gate["active"] is None
    assert gate["verdict"]["promote"] is True and "chrF" in gate["verdict"]["reason"]
    assert (version_dir(settings.models_dir, "headline", "v0001") / "card.json").is_file()

    # The next candidate is judged beside the active version on the same held-out examples;
    # this task's own text floor (a per-task setting) is out of its reach.
    strict = tiny_settings(home, tiny_base, task_settings={"headline": {"text_gate_floor": 1.0}})
    fill(rt, sentences[30:])
    run_id = rt.store.runs.enqueue(
        "headline", {"train_examples": rt.store.example_count("headline", "train")}, "test"
    )
    assert run_id is not None

    assert job.run(run_id, strict) == 0

    second = rt.store.versions.of_task("headline")[-1]
    gate = second["card"]["gate"]
    assert second["name"] == "v0002" and second["status"] == "rejected"
    assert rt.store.versions.active("headline") == "v0001"
    assert gate["text_floor"] == 1.0
    assert gate["active"]["text_similarity"] is not None, "the active version was scored too"
    assert "below the text floor 1.000" in gate["verdict"]["reason"]
    # and had it cleared the floor, the active version's score would have been its bar
    candidate, active = GateReport(**gate["candidate"]), GateReport(**gate["active"])
    lenient = decide(candidate, active, floor=0.0, text_floor=0.0)
    assert lenient.paired["score"]["examples"] == gate["candidate"]["examples"]
    assert lenient.promote is not lenient.paired["score"]["worse"]
