"""McNemar's exact test: worse with confidence, or within noise."""

from __future__ import annotations

import pytest

from jarvis.training.paired import mcnemar


def test_losing_every_discordant_example_of_eight_is_worse() -> None:
    test = mcnemar([False] * 8 + [True] * 32, [True] * 40)
    assert (test.candidate_only, test.active_only) == (0, 8)
    assert test.p_worse == pytest.approx(0.5**8) and test.worse


def test_two_losses_are_noise_and_equal_trades_prove_nothing() -> None:
    assert not mcnemar([False, False] + [True] * 38, [True] * 40).worse
    test = mcnemar([True, False] * 10, [False, True] * 10)
    assert (test.candidate_only, test.active_only) == (10, 10) and not test.worse
    assert mcnemar([True] * 5, [True] * 5).p_worse == 1.0


def test_outcomes_of_different_examples_cannot_be_paired() -> None:
    with pytest.raises(ValueError, match="same examples"):
        mcnemar([True], [True, False])
