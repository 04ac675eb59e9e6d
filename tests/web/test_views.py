"""What the dashboard shows, computed from a real store (no browser needed)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from jarvis import Jarvis, Settings
from jarvis.demo.play import LevelManager
from jarvis.rpg.oracle import oracle_level
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.testing import ScriptedStudent
from jarvis.web import views

LEVEL_1 = oracle_level([], 1, random.Random(0)).model_dump()


def row(rt: Jarvis, task: str) -> dict[str, Any]:
    return next(r for r in views.overview(rt)["tasks"] if r["name"] == task)


def test_a_fresh_store_shows_both_game_tasks_with_nothing_done(runtime: Jarvis) -> None:
    data = views.overview(runtime)
    assert {r["name"] for r in data["tasks"]} == {"create_next_level", "create_next_map"}
    level = row(runtime, "create_next_level")
    assert level["calls"] == 0
    assert level["student_share"] is None  # not 0%: there were no calls to share
    assert level["threshold"] == 200
    assert level["series"] == []
    assert data["teacher"] == "procedural oracle (offline)"


def test_teacher_calls_fill_the_dataset_and_the_series(runtime: Jarvis) -> None:
    manager = LevelManager(runtime)
    for _ in range(6):
        manager.next_level()
    level = row(runtime, "create_next_level")
    assert level["calls"] == 6
    assert level["teacher_calls"] == 6
    assert level["student_share"] == 0
    assert level["examples_train"] + level["examples_heldout"] == 6
    assert level["threshold_progress"] == pytest.approx(level["examples_train"] / 200)
    assert sum(p["calls"] for p in level["series"]) == 6
    assert level["latency_p50_ms"]["teacher"] is not None
    assert level["latency_p50_ms"]["student"] is None
    assert level["teacher_calls_saved"] == 0


def test_student_answers_count_as_saved_teacher_calls_at_the_configured_price(
    settings: Settings, runtime_with_student: Jarvis, student: ScriptedStudent
) -> None:
    rt = runtime_with_student
    rt.settings.teacher_price_in, rt.settings.teacher_price_out = 2.0, 10.0  # $ per 1M tokens
    student.answers = [json.dumps(LEVEL_1)]
    inputs = {"last_levels": [], "difficulty": 1}
    for _ in range(3):
        rt.call(create_next_level, inputs)
    student.answers = ["not json"]  # every attempt fails: the teacher answers (a fallback)
    rt.call(create_next_level, inputs)

    level = row(rt, "create_next_level")
    assert (level["calls"], level["student_calls"], level["fallbacks"]) == (4, 3, 1)
    assert level["student_share"] == 0.75
    assert level["fallback_rate"] == 0.25  # of the calls the student was asked first
    assert level["teacher_calls_saved"] == 3
    # the scripted student reports 10 prompt and 5 answer tokens per answer
    assert level["cost_saved_usd"] == pytest.approx(3 * (10 * 2.0 + 5 * 10.0) / 1e6)
    series = level["series"]
    assert sum(p["student"] for p in series) == 3
    assert sum(p["fallbacks"] for p in series) == 1


def test_map_answers_come_with_their_tile_grid(runtime: Jarvis) -> None:
    LevelManager(runtime).next_level()
    [call] = views.recent_calls(runtime, create_next_map)
    tiles = call["tiles"]
    level = call["output"]["level"]
    assert len(tiles) == level["height"] + 2 and len(tiles[0]) == level["width"] + 2
    assert sum(r.count("P") for r in tiles) == 1
    assert sum(r.count("E") for r in tiles) == level["num_enemies"]
    [level_call] = views.recent_calls(runtime, create_next_level)
    assert level_call["tiles"] is None  # only maps are drawn


def test_the_task_detail_has_growth_runs_and_versions(runtime: Jarvis) -> None:
    manager = LevelManager(runtime)
    for _ in range(3):
        manager.next_level()
    run_id = runtime.store.runs.enqueue("create_next_map", {}, "test")
    detail = views.task_detail(runtime, create_next_map)
    assert detail["growth"][-1]["train"] + detail["growth"][-1]["heldout"] == 3
    assert [r["id"] for r in detail["runs"]] == [run_id]
    assert detail["task"]["run"]["id"] == run_id  # the overview row shows it is training
    assert detail["versions"] == []
    assert detail["output"] == "Map"


def test_the_overview_shows_agreement_escalations_and_feedback_beside_validity(
    settings: Settings, runtime_with_student: Jarvis, student: ScriptedStudent
) -> None:
    """The active version's held-out agreement, threshold and coverage come from its card;
    escalations and feedback from the calls."""
    rt = runtime_with_student
    rt.sync_tasks()
    rt.store.versions.allocate("create_next_level")
    calibration = {"threshold": 0.8, "coverage": 0.9, "curve": [(0.5, 1.0, 0.9), (0.8, 0.9, 1.0)]}
    card = {
        "confidence_threshold": 0.8,
        "gate": {"candidate": {"agreement": 0.95, "calibration": calibration}, "verdict": {}},
    }
    rt.store.versions.set_status("create_next_level", "v0001", "candidate", card)
    rt.store.versions.promote("create_next_level", "v0001")
    student.answers = [json.dumps(LEVEL_1)]
    student.confidence = 0.3  # below the card's 0.8: every answer escalates
    result = rt.call(create_next_level, {"last_levels": [], "difficulty": 1})
    assert result.escalated and result.call_id is not None
    rt.feedback(result.call_id, score=0.0)

    level = row(rt, "create_next_level")

    assert (level["escalations"], level["escalation_rate"]) == (1, 1.0)
    assert level["fallbacks"] == 0
    assert (level["held_out_agreement"], level["confidence_threshold"]) == (0.95, 0.8)
    assert level["coverage"] == 0.9
    assert level["feedback"] == {"total": 1, "negative": 1, "active": None}
    [version] = views.task_detail(rt, create_next_level)["versions"]
    assert version["gate"]["candidate"]["curve"] == [[0.5, 1.0, 0.9], [0.8, 0.9, 1.0]]
    [call] = views.recent_calls(rt, create_next_level)
    assert call["escalated"] and call["confidence"] == 0.3
