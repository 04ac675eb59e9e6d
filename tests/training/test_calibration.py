"""The confidence threshold: the most calls the student can keep at the target agreement."""

from __future__ import annotations

from jarvis.training.calibration import calibrate


def test_the_threshold_is_the_lowest_confidence_whose_kept_answers_meet_the_target() -> None:
    confidences = [0.99, 0.97, 0.95, 0.9, 0.8, 0.6, 0.5, 0.3]
    agrees = [True, True, True, True, True, False, True, False]

    found = calibrate(confidences, agrees, target=0.98)

    assert found.threshold == 0.8  # keeps five, all agree
    assert found.coverage == 5 / 8 and found.agreement == 1.0
    assert calibrate(confidences, agrees, target=0.8).threshold == 0.5  # 6 of 7 kept agree


def test_no_threshold_reaches_an_impossible_target() -> None:
    found = calibrate([0.9, 0.8], [False, True], target=0.98)
    assert found.threshold is None and found.coverage == 0.0
    assert calibrate([], [], 0.98).threshold is None


def test_answers_of_the_same_confidence_are_kept_or_escalated_together() -> None:
    found = calibrate([0.9, 0.9, 0.5], [True, False, True], target=0.98)
    assert found.threshold is None  # 0.9 keeps one right and one wrong answer: 50%
    assert [c[0] for c in found.curve] == [0.5, 0.9]
