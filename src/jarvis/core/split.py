"""Deterministic train / held-out split.

An example's split is a function of its task and its input, so the same input always lands
on the same side however often the teacher is asked, and held-out examples are never trained
on, across every retraining.

With one exception, in one direction: an input the program sends again and again (the
teacher answered it :data:`RECURRING_TO_TRAIN` times) moves from held-out to training. Such an
input is the traffic that matters most, and is often one of few: every new game of the RPG
asks for level 1 with no previous levels, the same call each time, so it is a single example,
and had its hash put it in held-out, the student would never learn how games start. A move is
only ever held-out → train, so no version is gated on examples it was trained on (the held-out
set of later gates is a subset of earlier ones); the held-out set measures the unseen tail, and
keeps at least :data:`KEEP_HELDOUT` examples.
Repeats also weigh more in training (:func:`jarvis.training.dataset.traffic_weighted`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

Split = Literal["train", "heldout"]

RECURRING_TO_TRAIN = 3
"""Teacher answers to one held-out input after which it moves to training (0: never)."""

KEEP_HELDOUT = 20
"""A move never leaves a task with fewer held-out examples than this: a program whose calls all
recur would otherwise drain its held-out set, and a gate with nothing to judge promotes
nothing."""


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free JSON: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def split_for(task: str, input_json: Any, heldout_share: float) -> Split:
    digest = hashlib.sha256(f"{task}\n{canonical_json(input_json)}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return "heldout" if fraction < heldout_share else "train"
