"""The train / held-out split is a pure function of the task and the input.

So the same input always lands on the same side, however often the teacher is asked, and a
held-out example is never trained on across retrainings.
"""

from __future__ import annotations

import pytest

from helpers.tiny import next_room
from jarvis import Jarvis, Store
from jarvis.core.split import canonical_json, content_hash, split_for

INPUTS = [{"level": {"name": i, "width": 10 + i % 7}, "difficulty": i % 5} for i in range(200)]


def test_the_same_task_and_input_always_get_the_same_split() -> None:
    for value in INPUTS:
        first = split_for("furnish", value, 0.5)
        assert all(split_for("furnish", value, 0.5) == first for _ in range(3))


def test_the_split_is_stable_across_processes() -> None:
    """Golden values: a process-salted hash (like Python's ``hash``) would break these."""
    # a task name and inputs as JSON: plain data, nothing of the RPG domain is imported
    got = [
        split_for("create_next_level", {"last_levels": [], "difficulty": d}, 0.15)
        for d in range(1, 11)
    ]
    h, t = "heldout", "train"
    assert got == [h, t, t, h, h, t, t, t, t, h]


def test_the_split_does_not_depend_on_key_order() -> None:
    for value in INPUTS:
        level = dict(reversed(value["level"].items()))
        reordered = {"difficulty": value["difficulty"], "level": level}
        assert canonical_json(reordered) == canonical_json(value)
        assert content_hash(reordered) == content_hash(value)
        assert split_for("t", reordered, 0.5) == split_for("t", value, 0.5)


@pytest.mark.parametrize("share", [0.15, 0.5])
def test_the_heldout_share_is_roughly_respected(share: float) -> None:
    splits = [split_for("next_room", {"i": i}, share) for i in range(2000)]
    heldout = splits.count("heldout") / len(splits)
    assert share - 0.03 <= heldout <= share + 0.03
    assert set(splits) == {"train", "heldout"}


def test_a_share_of_zero_keeps_everything_in_train() -> None:
    assert {split_for("next_room", {"i": i}, 0.0) for i in range(2000)} == {"train"}


def test_the_split_depends_on_the_task_name_too() -> None:
    differs = [v for v in INPUTS if split_for("task_a", v, 0.5) != split_for("task_b", v, 0.5)]
    assert differs, "the task name must take part in the split"


def test_the_router_writes_the_split_that_split_for_computes(runtime: Jarvis, store: Store) -> None:
    """Calls are chosen so that both splits occur; every stored example matches split_for."""
    share = runtime.settings.heldout_share

    def expected(size: int) -> str:
        return split_for("next_room", {"last_rooms": [], "size": size}, share)

    heldout = next(d for d in range(1, 500) if expected(d) == "heldout")
    train = next(d for d in range(1, 500) if expected(d) == "train")
    for size in (heldout, train, heldout):  # asking twice changes nothing
        runtime.call(next_room, {"last_rooms": [], "size": size})

    examples = list(store.iter_examples("next_room"))
    assert {e["input"]["size"]: e["split"] for e in examples} == {
        heldout: "heldout",
        train: "train",
    }
    assert all(e["split"] == split_for("next_room", e["input"], share) for e in examples)
