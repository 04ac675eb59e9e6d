"""``jarvis train``, ``runs``, ``versions``, ``promote`` and ``rollback`` from the command line.

Versions are made directly through the store and the registry (with a placeholder adapter
file), so these tests need no model; the training itself is tested in tests/training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from jarvis import Settings, Store
from jarvis.cli import app
from jarvis.registry import ADAPTER, publish, staging_dir

runner = CliRunner()
TASK = "create_next_level"


def jarvis(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def versions(home: Path) -> Store:
    """Two published candidate versions of create_next_level and a few teacher calls."""
    assert jarvis("call", TASK, "--input", '{"last_levels": [], "difficulty": 1}').exit_code == 0
    settings = Settings()
    store = Store(settings.resolved_database_url)
    for _ in range(2):
        name = store.versions.allocate(TASK)
        staging = staging_dir(settings.models_dir, TASK, name)
        (staging / ADAPTER).mkdir()
        (staging / ADAPTER / "adapter_config.json").write_text("{}")
        card = {
            "train": {"examples": 10, "final_loss": 0.1, "duration_s": 1.0},
            "gate": {
                "candidate": {"format_pass": 1.0, "semantic_pass": 0.95, "field_agreement": 0.8},
                "verdict": {"promote": True, "reason": "good enough"},
            },
        }
        publish(staging, settings.models_dir, TASK, name, card)
        store.versions.set_status(TASK, name, "candidate", card)
    return store


def test_promote_and_rollback_switch_the_active_version(versions: Store) -> None:
    assert jarvis("promote", TASK, "v0001").exit_code == 0
    result = jarvis("promote", TASK, "v0002")
    assert result.exit_code == 0 and "v0002 is now active" in result.output
    assert versions.versions.active(TASK) == "v0002"

    result = jarvis("rollback", TASK)
    assert result.exit_code == 0 and "now served by v0001" in result.output
    result = jarvis("rollback", TASK)
    assert result.exit_code == 0 and "the teacher" in result.output
    assert versions.versions.active(TASK) is None
    status = json.loads(jarvis("status", "--json").output)
    row = next(t for t in status["tasks"] if t["name"] == TASK)
    assert row["active_version"] is None


def test_versions_lists_the_gate_figures(versions: Store) -> None:
    jarvis("promote", TASK, "v0002")
    data = json.loads(jarvis("versions", TASK, "--json").output)
    assert data["active"] == "v0002"
    assert [v["name"] for v in data["versions"]] == ["v0001", "v0002"]
    assert data["versions"][1]["card"]["gate"]["candidate"]["semantic_pass"] == 0.95
    table = runner.invoke(app, ["versions", TASK], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "95%" in table.output and "active" in table.output


@pytest.mark.parametrize("name", ["../../etc", "v1", "latest", "v0001/../v0002"])
def test_bad_version_names_are_refused(versions: Store, name: str) -> None:
    result = jarvis("promote", TASK, name)
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


def test_promoting_a_missing_version_or_task_is_a_clear_error(versions: Store) -> None:
    assert jarvis("promote", TASK, "v0009").exit_code == 2
    result = jarvis("promote", "../secrets", "v0001")
    assert result.exit_code == 2 and "invalid task name" in result.output


def test_rollback_with_nothing_active_is_a_clear_error(versions: Store) -> None:
    result = jarvis("rollback", TASK)
    assert result.exit_code == 2 and "no active version" in result.output


def test_train_queues_one_run_at_a_time(home: Path) -> None:
    result = jarvis("train", TASK)
    assert result.exit_code == 2 and "no training examples" in result.output
    for d in range(1, 15):
        jarvis("call", TASK, "--input", json.dumps({"last_levels": [], "difficulty": d}))
    result = jarvis("train", TASK, "--epochs", "1")
    assert result.exit_code == 0 and "queued run 1" in result.output
    result = jarvis("train", TASK)
    assert result.exit_code == 2 and "already has a queued or running" in result.output
    runs = json.loads(jarvis("runs", "--json").output)["runs"]
    assert [(r["id"], r["status"], r["params"]["train"]) for r in runs] == [
        (1, "queued", {"epochs": 1.0})
    ]
    assert jarvis("runs").exit_code == 0


def test_train_an_unknown_task_is_a_clear_error(home: Path) -> None:
    result = jarvis("train", "nope")
    assert result.exit_code == 2 and "unknown task" in result.output
