"""The ``jarvis`` command line, run in-process through Typer's test runner.

The ``home`` fixture points JARVIS_HOME at a temporary directory, so every command here uses a
fresh SQLite store; the teacher is the procedural oracle, seeded for repeatable answers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from helpers.envelope import ENVELOPE_KEYS
from jarvis.cli import app
from jarvis.rpg import Level, Map, Position, Wall, oracle_level, oracle_map

runner = CliRunner()

STATUS_KEYS = {
    "name",
    "calls",
    "teacher_calls",
    "student_calls",
    "fallbacks",
    "examples_train",
    "examples_heldout",
    "threshold",
    "active_version",
}


@pytest.fixture(autouse=True)
def cli_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every command runs in the temporary home with a seeded procedural teacher."""
    monkeypatch.setenv("JARVIS_TEACHER_SEED", "11")
    return home


def jarvis(*args: str) -> Result:
    return runner.invoke(app, list(args))


def jarvis_json(*args: str) -> Any:
    """Run a command that must succeed and print JSON; return the parsed JSON."""
    result = jarvis(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def level_input(difficulty: int) -> str:
    return json.dumps({"last_levels": [], "difficulty": difficulty})


def a_level() -> Level:
    return oracle_level([], 1, random.Random(0))


def walled_in_map(level: Level) -> Map:
    """Enemy 2 sits in a pocket closed by two walls and two obstacles: nobody can reach it."""

    def at(x: int, y: int) -> Position:
        return Position(x=x, y=y)

    return Map(
        level=level,
        walls=[
            Wall(start_pos=at(4, 4), end_pos=at(6, 4)),
            Wall(start_pos=at(4, 6), end_pos=at(6, 6)),
        ],
        small_obstacles=[at(4, 5), at(6, 5)],
        enemies=[at(8, 8), at(5, 5)],
        player_pos=at(0, 0),
    )


def assert_one_error_line(result: Result, *words: str) -> None:
    """A usage error: exit 2, nothing on stdout, one ``error: …`` line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    for word in words:
        assert word in line


# --- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["tasks"],
        ["status"],
        ["call"],
        ["check"],
        ["calls"],
        ["import"],
        ["export"],
        ["demo"],
        ["bench"],
        ["bench", "router"],
    ],
    ids=lambda c: " ".join(c) or "jarvis",
)
def test_every_command_has_help(command: list[str]) -> None:
    result = jarvis(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def test_the_main_help_lists_the_commands() -> None:
    text = jarvis("--help").stdout
    for command in (
        "tasks",
        "status",
        "call",
        "check",
        "calls",
        "import",
        "export",
        "demo",
        "bench",
    ):
        assert command in text


# --- tasks ------------------------------------------------------------------------------------


def test_tasks_lists_the_game_tasks() -> None:
    result = jarvis("tasks")
    assert result.exit_code == 0, result.output
    assert "create_next_level" in result.stdout
    assert "create_next_map" in result.stdout


def test_tasks_json_describes_each_task() -> None:
    data = jarvis_json("tasks", "--json")
    tasks = {t["name"]: t for t in data["tasks"]}
    assert {"create_next_level", "create_next_map"} <= set(tasks)
    assert tasks["create_next_level"]["inputs"] == ["last_levels", "difficulty"]
    assert tasks["create_next_level"]["output"] == "Level"
    assert tasks["create_next_map"]["inputs"] == ["level"]
    assert tasks["create_next_map"]["output"] == "Map"
    assert tasks["create_next_map"]["oracle"] is True
    assert "oracle" in data["teacher"]


# --- call -------------------------------------------------------------------------------------


def test_call_prints_the_answer_as_json() -> None:
    level = jarvis_json("call", "create_next_level", "--input", level_input(3))
    assert Level.model_validate(level) == oracle_level([], 3, random.Random(0))
    assert (level["name"], level["difficulty"], level["width"]) == (1, 3, 14)


def test_call_json_prints_the_envelope() -> None:
    envelope = jarvis_json("call", "create_next_level", "--input", level_input(3), "--json")
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["source"] == "teacher"
    assert envelope["valid"] is True
    assert envelope["reason"] is None
    assert envelope["fallback"] is False
    assert envelope["attempts"] == 1
    assert envelope["version"] is None
    assert envelope["latency_ms"] >= 0
    assert envelope["output"]["difficulty"] == 3


def test_call_reads_its_input_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "map-input.json"
    path.write_text(json.dumps({"level": a_level().model_dump()}), encoding="utf-8")
    game_map = jarvis_json("call", "create_next_map", "--input", f"@{path}")
    assert Map.model_validate(game_map).level == a_level()


@pytest.mark.parametrize(
    ("task", "input_json", "words"),
    [
        pytest.param(
            "create_next_level",
            "{difficulty: 3",
            ["--input is not valid JSON"],
            id="malformed-json",
        ),
        pytest.param("create_next_level", "[1, 2]", ["must be a JSON object"], id="not-an-object"),
        pytest.param(
            "no_such_task",
            "{}",
            ["unknown task 'no_such_task'", "create_next_level"],
            id="unknown-task",
        ),
        pytest.param("x[/]", "{}", ["unknown task 'x[/]'"], id="task-name-like-markup"),
        pytest.param("[bold]x", "{}", ["unknown task '[bold]x'"], id="task-name-like-a-style"),
        pytest.param(
            "create_next_level",
            '{"last_levels": [], "difficulty": "hard"}',
            ["bad inputs", "difficulty"],
            id="wrong-type",
        ),
        pytest.param(
            "create_next_level",
            '{"last_levels": []}',
            ["bad inputs", "difficulty"],
            id="missing-argument",
        ),
        pytest.param(
            "create_next_level",
            '{"last_levels": [], "difficulty": 1, "speed": 2}',
            ["bad inputs", "speed"],
            id="unknown-argument",
        ),
        pytest.param(
            "create_next_level", "@/no/such/input.json", ["cannot read"], id="missing-input-file"
        ),
    ],
)
def test_call_with_bad_arguments_prints_one_error_line(
    task: str, input_json: str, words: list[str]
) -> None:
    assert_one_error_line(jarvis("call", task, "--input", input_json), *words)
    assert jarvis_json("calls", "--json") == {"calls": []}  # nothing reached the router


# --- check ------------------------------------------------------------------------------------


def test_check_accepts_a_valid_map() -> None:
    level = a_level()
    game_map = oracle_map(level, random.Random(3))
    result = jarvis(
        "check",
        "create_next_map",
        "--input",
        json.dumps({"level": level.model_dump()}),
        "--output",
        game_map.model_dump_json(),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"valid": True, "reason": None}


def test_check_rejects_a_map_with_an_enemy_walled_in() -> None:
    level = a_level()
    result = jarvis(
        "check",
        "create_next_map",
        "--input",
        json.dumps({"level": level.model_dump()}),
        "--output",
        walled_in_map(level).model_dump_json(),
    )
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is False
    assert verdict["reason"] == "enemy 2 at (5, 5) cannot be reached from the player at (0, 0)"


def test_check_rejects_an_answer_of_the_wrong_shape() -> None:
    result = jarvis(
        "check", "create_next_level", "--input", level_input(1), "--output", '{"name": 1}'
    )
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is False
    assert "does not match the output type" in verdict["reason"]


def test_check_reads_input_and_output_from_files(tmp_path: Path) -> None:
    level = a_level()
    inputs, good, bad = tmp_path / "in.json", tmp_path / "good.json", tmp_path / "bad.json"
    inputs.write_text(json.dumps({"level": level.model_dump()}), encoding="utf-8")
    good.write_text(oracle_map(level, random.Random(4)).model_dump_json(), encoding="utf-8")
    bad.write_text(walled_in_map(level).model_dump_json(), encoding="utf-8")

    ok = jarvis("check", "create_next_map", "--input", f"@{inputs}", "--output", f"@{good}")
    rejected = jarvis("check", "create_next_map", "--input", f"@{inputs}", "--output", f"@{bad}")

    assert (ok.exit_code, json.loads(ok.stdout)) == (0, {"valid": True, "reason": None})
    assert rejected.exit_code == 1
    assert "cannot be reached" in json.loads(rejected.stdout)["reason"]


def test_check_of_an_unknown_task_is_a_usage_error() -> None:
    result = jarvis("check", "no_such_task", "--input", "{}", "--output", "{}")
    assert_one_error_line(result, "unknown task 'no_such_task'")


# --- status and calls -------------------------------------------------------------------------


def make_calls() -> None:
    """Two level calls and one map call, through the CLI."""
    for difficulty in (1, 2):
        result = jarvis("call", "create_next_level", "--input", level_input(difficulty))
        assert result.exit_code == 0, result.output
    map_input = json.dumps({"level": a_level().model_dump()})
    assert jarvis("call", "create_next_map", "--input", map_input).exit_code == 0


def test_status_json_before_any_call_lists_the_declared_tasks() -> None:
    rows = {r["name"]: r for r in jarvis_json("status", "--json")["tasks"]}
    assert {"create_next_level", "create_next_map"} <= set(rows)
    for row in rows.values():
        assert set(row) >= STATUS_KEYS
        assert row["calls"] == row["examples_train"] == row["examples_heldout"] == 0
        assert row["threshold"] == 200  # the default from Settings
        assert row["active_version"] is None


def test_status_shows_the_threshold_the_worker_acts_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A per-task threshold in JARVIS_TASK_SETTINGS is the one status shows, as the worker
    uses it (not the global default)."""
    monkeypatch.setenv("JARVIS_TASK_SETTINGS", '{"create_next_level": {"threshold": 30}}')
    rows = {r["name"]: r for r in jarvis_json("status", "--json")["tasks"]}
    assert rows["create_next_level"]["threshold"] == 30
    assert rows["create_next_map"]["threshold"] == 200


def test_status_json_counts_the_calls_made() -> None:
    make_calls()
    data = jarvis_json("status", "--json")
    assert set(data) == {"tasks"}
    rows = {r["name"]: r for r in data["tasks"]}
    for row in rows.values():
        assert set(row) >= STATUS_KEYS
    level, game_map = rows["create_next_level"], rows["create_next_map"]
    assert (level["calls"], level["teacher_calls"], level["student_calls"]) == (2, 2, 0)
    assert (game_map["calls"], game_map["teacher_calls"], game_map["student_calls"]) == (1, 1, 0)
    assert level["fallbacks"] == game_map["fallbacks"] == 0
    assert level["examples_train"] + level["examples_heldout"] == 2
    assert game_map["examples_train"] + game_map["examples_heldout"] == 1


@pytest.fixture
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables fit the terminal width; make it wide enough that no name is folded."""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.mark.usefixtures("wide_terminal")
def test_status_prints_a_table() -> None:
    make_calls()
    result = jarvis("status")
    assert result.exit_code == 0, result.output
    assert "create_next_level" in result.stdout
    assert "create_next_map" in result.stdout
    assert "threshold" in result.stdout


def test_calls_lists_recent_calls_newest_first() -> None:
    for difficulty in (1, 2, 3):
        jarvis("call", "create_next_level", "--input", level_input(difficulty))
    jarvis("call", "create_next_map", "--input", json.dumps({"level": a_level().model_dump()}))

    calls = jarvis_json("calls", "create_next_level", "--json")["calls"]
    assert [c["input"]["difficulty"] for c in calls] == [3, 2, 1]
    assert [c["id"] for c in calls] == sorted((c["id"] for c in calls), reverse=True)
    assert {c["task"] for c in calls} == {"create_next_level"}
    assert all(c["source"] == "teacher" and c["valid"] for c in calls)
    assert calls[0]["output"]["difficulty"] == 3

    everything = jarvis_json("calls", "--json")["calls"]
    assert [c["task"] for c in everything] == ["create_next_map", *["create_next_level"] * 3]
    latest_two = jarvis_json("calls", "create_next_level", "--json", "--limit", "2")["calls"]
    assert [c["input"]["difficulty"] for c in latest_two] == [3, 2]


@pytest.mark.usefixtures("wide_terminal")
def test_calls_prints_a_table() -> None:
    jarvis("call", "create_next_level", "--input", level_input(1))
    result = jarvis("calls", "create_next_level")
    assert result.exit_code == 0, result.output
    assert "create_next_level" in result.stdout
    assert "teacher" in result.stdout


# --- demo and bench ---------------------------------------------------------------------------


# The demo itself (it trains) is tested end to end in tests/rpg/test_demo.py.


def test_bench_router_json_reports_the_overhead_of_both_paths() -> None:
    """Only the shape and positivity are checked: timings depend on the machine."""
    data = jarvis_json("bench", "router", "--calls", "100", "--json")
    paths = {r["path"]: r for r in data["router"]}
    assert set(paths) == {"student", "teacher"}
    for figures in paths.values():
        assert figures["calls"] == 100
        for key in ("router_p50_ms", "router_p99_ms", "overhead_p50_ms", "target_p50_ms"):
            assert figures[key] > 0, key
        for key in ("bare_p50_ms", "bare_p99_ms", "overhead_p99_ms"):
            assert figures[key] >= 0, key


def test_bench_router_refuses_too_few_calls() -> None:
    result = jarvis("bench", "router", "--calls", "5", "--json")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_bench_quality_refuses_no_cold_starts() -> None:
    result = jarvis("bench", "quality", "--cold-starts", "0", "--json")
    assert result.exit_code == 2
    assert "--cold-starts" in result.output and "Traceback" not in result.output


def test_bench_load_names_the_tasks_it_can_call() -> None:
    result = jarvis("bench", "load", "--task", "create_next_boss", "-s", "1")
    assert result.exit_code == 2
    assert "create_next_boss is not one of create_next_level, create_next_map" in result.output
