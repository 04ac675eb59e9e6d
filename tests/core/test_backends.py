"""Backend basics: the sampling schedule of student retries, and the empty student."""

from __future__ import annotations

import pytest

from helpers.tiny import next_room
from jarvis import GREEDY, BackendError, GenerationRequest, NoStudent, Sampling, retry_sampling
from jarvis.core.prompts import render_messages

RETRIES = range(1, 5)


def test_the_first_attempt_is_greedy() -> None:
    first = retry_sampling(0, seed=5, max_tokens=64)
    assert (first.temperature, first.top_p) == (GREEDY.temperature, GREEDY.top_p) == (0.0, None)
    assert first.seed == 5
    assert first.max_tokens == 64


def test_retries_sample_ever_more_widely() -> None:
    """Temperature rises strictly on each retry and top-p never shrinks between retries."""
    schedule = [retry_sampling(n) for n in RETRIES]
    assert all(s.temperature is not None and s.top_p is not None for s in schedule)
    temperatures = [float(s.temperature or 0.0) for s in schedule]
    top_ps = [float(s.top_p or 0.0) for s in schedule]
    assert min(temperatures) > 0.0
    assert temperatures == sorted(set(temperatures))  # strictly rising
    assert top_ps == sorted(set(top_ps))  # strictly rising
    assert min(top_ps) > 0.0 and max(top_ps) <= 1.0


def test_every_attempt_gets_its_own_seed() -> None:
    seeds = [retry_sampling(n, seed=100).seed for n in range(0, 5)]
    assert len(set(seeds)) == len(seeds)
    assert seeds != [retry_sampling(n, seed=0).seed for n in range(0, 5)]


@pytest.mark.parametrize("attempt", [0, *RETRIES])
def test_max_tokens_is_kept_on_every_attempt(attempt: int) -> None:
    assert retry_sampling(attempt, max_tokens=77).max_tokens == 77


def test_default_sampling_leaves_everything_to_the_backend() -> None:
    assert Sampling() == Sampling(temperature=None, top_p=None, seed=None, max_tokens=None)


def test_no_student_serves_nothing() -> None:
    student = NoStudent()
    inputs = next_room.load_inputs({"last_rooms": [], "size": 3})
    request = GenerationRequest(next_room, inputs, render_messages(next_room, inputs))
    assert student.active_version("next_room") is None
    with pytest.raises(BackendError, match="no student"):
        student.generate(request, "v0001")
