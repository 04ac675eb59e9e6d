"""Deterministic train / held-out split.

An example's split is a pure function of its task and its input, so the same input always
lands on the same side (however often the teacher is asked) and held-out examples are never
trained on, across every retraining.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

Split = Literal["train", "heldout"]


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free JSON: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def split_for(task: str, input_json: Any, heldout_share: float) -> Split:
    digest = hashlib.sha256(f"{task}\n{canonical_json(input_json)}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return "heldout" if fraction < heldout_share else "train"
