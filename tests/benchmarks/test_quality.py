"""`jarvis bench quality` end to end on the tiny model: it trains, then asks each sample in
both routing modes and compares every served answer with the teacher's answer to that call."""

from __future__ import annotations

from pathlib import Path

import pytest

from jarvis.benchmarks import quality

pytestmark = pytest.mark.slow

TINY = {
    "train_max_steps": 2,
    "train_tokens_per_batch": 1024,
    "lora_rank": 4,
    "lora_alpha": 8,
    "gate_examples": 3,
    "gate_min_examples": 1,
    "gate_floor": 0.0,
    "agreement_floor": 0.0,  # the random tiny model agrees with nothing: judge the bench
    "heldout_share": 0.3,
    "engine": "torch",
    "max_tokens": 120,
}


def test_the_quality_bench_reports_both_routing_modes_side_by_side(
    tmp_path: Path, tiny_base: Path
) -> None:
    found = quality.run(
        "level",
        examples=8,
        sample=4,
        home=tmp_path / "home",
        cold_starts=4,
        settings_overrides={**TINY, "base_model": str(tiny_base)},
        say=lambda _msg: None,
    )

    assert found.training["promoted"], found.training
    assert set(found.samples) == {"game", "unseen", "cold starts"}
    for modes in found.samples.values():
        assert set(modes) == {"validity only", "cascade"}
        assert modes["validity only"]["escalated"] == 0  # no cascade: nothing escalates
        for m in modes.values():
            # the teacher's own answers agree with it, so at least the calls it answered do
            teacher_share = 1.0 - (m["student_share"] or 0.0)
            assert m["served_agreement"] >= teacher_share - 1e-9
            assert m["teacher_calls_saved"] == round((m["student_share"] or 0.0) * m["calls"])
    assert found.samples["cold starts"]["cascade"]["calls"] == 4
    assert set(found.new_game_level_1) == {"validity only", "cascade"}
    teacher = found.new_game_level_1["cascade"]["teacher"]
    assert (teacher["difficulty"], teacher["time"]) == (1, 300)  # the oracle's level 1
