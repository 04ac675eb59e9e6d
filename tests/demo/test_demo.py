"""The main demo: simulated players fill the dataset, a run trains, the student takes over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from jarvis import Jarvis, Settings
from jarvis.cli import app
from jarvis.cli.demo import phase_table, summary_table
from jarvis.demo.demo import Demo


def test_the_teacher_phase_stops_when_the_worker_queues_the_trained_task(home: Path) -> None:
    rt = Jarvis(Settings(home=home, student="none", threshold=30))
    rt.sync_tasks()
    demo = Demo(rt, train=["create_next_level"])
    phase = demo.warm_up()
    [run] = rt.store.runs.recent()
    assert (run["task"], run["status"]) == ("create_next_level", "queued")
    stats = {s.name: s for s in rt.store.task_stats()}
    assert stats["create_next_level"].examples_train >= 30
    assert phase.levels == stats["create_next_level"].calls
    # the map task was not asked for: nothing is queued for it, whatever its count
    assert not any(r["task"] == "create_next_map" for r in rt.store.runs.recent())
    # many players' games, not one endless run
    assert demo.games > 1
    difficulties = {c["input"]["difficulty"] for c in rt.store.recent_calls("create_next_level")}
    assert len(difficulties) > 3
    rt.close()


def test_an_unknown_task_to_train_is_refused_before_anything_runs(home: Path) -> None:
    rt = Jarvis(Settings(home=home, student="none"))
    with pytest.raises(Exception, match="no_such_task"):
        Demo(rt, train=["no_such_task"])
    assert rt.store.task_stats() == [] or all(s.calls == 0 for s in rt.store.task_stats())
    rt.close()


@pytest.mark.slow
def test_the_demo_closes_the_loop_on_a_tiny_model(
    home: Path, tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tiny random model cannot pass a real gate: a floor of 0 lets it be promoted, so the
    # student phase really runs on the trained version (and falls back when it slips).
    monkeypatch.setenv("JARVIS_GATE_FLOOR", "0")
    monkeypatch.setenv("JARVIS_AGREEMENT_FLOOR", "0")
    monkeypatch.setenv("JARVIS_ENGINE", "torch")
    monkeypatch.setenv("JARVIS_GATE_EXAMPLES", "4")
    monkeypatch.setenv("JARVIS_GATE_MIN_EXAMPLES", "1")  # a tiny demo holds out a handful
    monkeypatch.setenv("JARVIS_TRAIN_MAX_STEPS", "3")
    monkeypatch.setenv("JARVIS_MAX_TOKENS", "160")
    args = ["demo", "--base-model", str(tiny_base), "--threshold", "12", "--levels", "3"]
    result = CliRunner().invoke(app, [*args, "--port", "0", "--exit", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)

    [run] = summary["runs"]
    assert (run["task"], run["status"], run["promoted"]) == ("create_next_level", "succeeded", True)
    assert run["card"]["steps"] == 3
    phases = {p["phase"]: p for p in summary["phases"]}
    assert set(phases) == {"teacher", "training", "student"}
    level = phases["student"]["tasks"]["create_next_level"]
    assert level["calls"] == 3
    # every call was first put to the student: answered by it, or a logged fallback
    assert level["student"] + level["fallbacks"] == 3
    assert level["valid_share"] == 1.0  # fallbacks make every answer valid
    rows = {r["name"]: r for r in summary["tasks"]}
    assert rows["create_next_level"]["active_version"] == run["version"]
    assert rows["create_next_map"]["active_version"] is None
    assert summary["dashboard"].startswith("http://127.0.0.1:")

    # the same summary as the tables a person reads
    console = Console(record=True, width=200)
    console.print(phase_table(phases["student"]))
    console.print(summary_table(summary))
    text = console.export_text()
    assert "after promotion: 3 levels" in text
    level_line = [line for line in text.splitlines() if "create_next_level" in line][-1]
    assert str(rows["create_next_level"]["calls"]) in level_line
    assert run["version"] in text
