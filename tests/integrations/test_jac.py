"""Unchanged Jac programs, run with the real ``jac run``, have their ``by llm()`` calls
answered through JARVIS (the plugin is loaded from our ``jac`` entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.live_server import LiveServer
from jarvis import Jarvis, Settings, Store

ROOT = Path(__file__).resolve().parents[2]
RPG = ROOT / "examples" / "rpg" / "rpg.jac"
REVIEW = Path(__file__).parent / "programs" / "review.jac"
VIA_SERVER = Path(__file__).parent / "programs" / "via_server.jac"
JAC = Path(sys.executable).parent / "jac"


def jac_run(program: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "JARVIS_HOME": str(home), **env}
    return subprocess.run(
        [str(JAC), "run", str(program)],
        cwd=home.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def calls(home: Path, task: str) -> list[dict[str, object]]:
    store = Store(Settings(home=home).resolved_database_url)
    try:
        return list(reversed(store.recent_calls(task, limit=100)))
    finally:
        store.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_the_rpg_program_calls_land_in_the_game_tasks(home: Path) -> None:
    run = jac_run(RPG, home)
    assert run.returncode == 0, run.stderr[-2000:]
    printed = [line for line in run.stdout.splitlines() if line.startswith("level ")]
    assert len(printed) == 4
    assert all(line.endswith("(Map)") for line in printed)  # the program's own Map type

    levels, maps = calls(home, "create_next_level"), calls(home, "create_next_map")
    assert len(levels) == len(maps) == 4
    assert all(c["source"] == "teacher" and c["valid"] for c in levels + maps)
    assert levels[0]["input"] == {"last_levels": [], "difficulty": 1}
    # Jac objects arrive as the task's JSON: level 3 is asked with the two levels before it
    assert [lv["name"] for lv in levels[2]["input"]["last_levels"]] == [1, 2]  # type: ignore[index]
    assert levels[2]["input"]["difficulty"] == 2  # type: ignore[index]
    # and the answers went back into the program: its printout matches the logged maps
    for line, logged in zip(printed, maps, strict=True):
        level = logged["output"]["level"]  # type: ignore[index]
        assert line.startswith(f"level {level['name']}: difficulty {level['difficulty']}, ")


def test_a_function_of_any_program_becomes_a_task_with_its_own_schema(home: Path) -> None:
    run = jac_run(REVIEW, home)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "judge: positive 5 Verdict" in run.stdout  # the program's own type, round-tripped
    assert "summarize: battery lasts days" in run.stdout
    assert "judge_directly: negative 1 Verdict" in run.stdout

    [judged] = calls(home, "review.judge")
    assert judged["output"] == {"label": "positive", "stars": 5}
    assert judged["model"] == "byllm:mockllm"  # the program's model was the teacher
    assert judged["input"] == {"review": "Great phone, the battery lasts days."}
    [summary] = calls(home, "review.summarize")
    assert summary["output"] == "battery lasts days"

    rt = Jarvis(Settings(home=home, student="none"))
    row = rt.store.task_row("review.judge")
    assert row is not None and row["kind"] == "typed"
    assert set(row["output_schema"]["properties"]) == {"label", "stars"}
    assert rt.store.task_row("review.summarize")["kind"] == "text"  # type: ignore[index]
    # the opted-out call never reached JARVIS
    assert rt.store.task_row("review.judge_directly") is None
    # a worker (another process) can rebuild the task from the store alone
    task = rt.task("review.judge")
    assert task.param_names == ["review"]
    assert task.output_schema == row["output_schema"]
    rt.close()


def test_jarvis_off_hands_every_call_back_to_byllm(home: Path) -> None:
    run = jac_run(REVIEW, home, JARVIS_JAC="off")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "judge: positive 5 Verdict" in run.stdout
    assert not (home / "jarvis.db").exists()  # JARVIS was never even opened


@pytest.mark.slow
def test_a_bad_student_answer_falls_back_inside_the_program(
    home: Path, tiny_base: Path, make_version: Callable[[Jarvis, str, int], str]
) -> None:
    # an untrained adapter, decoded without the grammar, never writes a valid level
    env = {
        "JARVIS_BASE_MODEL": str(tiny_base),
        "JARVIS_ENGINE": "torch",
        "JARVIS_CONSTRAINED": "false",
        "JARVIS_MAX_TOKENS": "24",
        "JARVIS_STUDENT_RETRIES": "1",
    }
    rt = Jarvis(Settings(home=home, base_model=str(tiny_base), student="none"))
    rt.sync_tasks()
    version = make_version(rt, "create_next_level", 3)
    rt.store.versions.promote("create_next_level", version)
    rt.close()

    run = jac_run(RPG, home, **env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len([line for line in run.stdout.splitlines() if line.startswith("level ")]) == 4

    levels = calls(home, "create_next_level")
    assert len(levels) == 4
    for call in levels:  # the student was asked twice, then the teacher answered
        assert (call["fallback"], call["valid"], call["attempts"]) == (True, True, 3)


def test_byllm_pointed_at_the_jarvis_server_is_served_by_the_task(home: Path) -> None:
    """No plugin (``JARVIS_JAC=off``): byLLM sends its own request to ``/v1/chat/completions``
    with the task as the model, and JARVIS reads byLLM's rendering of the call."""
    rt = Jarvis(Settings(home=home, student="none", teacher_seed=1))
    rt.sync_tasks()
    with LiveServer(rt) as server:
        run = jac_run(VIA_SERVER, home, JARVIS_JAC="off", JARVIS_URL=server.url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "levels 1 2, difficulty 3, Level" in run.stdout
    first, second = calls(home, "create_next_level")
    assert first["input"] == {"last_levels": [], "difficulty": 3}
    assert second["input"]["last_levels"] == [first["output"]]  # type: ignore[index]
    rt.close()
