"""The load suite itself: a short run reconciles every answer with exactly one logged call."""

from __future__ import annotations

import pytest

from jarvis.benchmarks.load import LoadConfig, run, server_figures
from jarvis.server.metrics import Metrics
from jarvis.serving.batcher import BatchCounts


@pytest.mark.slow
def test_a_short_load_run_loses_and_duplicates_nothing() -> None:
    result = run(LoadConfig(clients=6, seconds=3, invalid_rate=0.3, max_requests=150))
    assert result["errors"] == 0, result["error_examples"]
    assert result["answered"] > 0
    assert result["rows"] == result["answered"]
    assert result["reconciliation"] == {
        "answered_without_row": 0,
        "answered_twice": 0,
        "rows_without_answer": 0,
    }
    assert result["rows_retried"] > 0  # corrupted student answers were retried


@pytest.mark.slow
def test_a_load_run_on_one_task_calls_only_that_task() -> None:
    """One task is one adapter: how the batching engine is measured without adapters taking
    turns (``jarvis bench load --task create_next_level``)."""
    result = run(LoadConfig(clients=2, seconds=2, invalid_rate=0, tasks=("create_next_map",)))
    assert result["errors"] == 0, result["error_examples"]
    assert result["answered"] > 0
    assert result["tasks"] == ["create_next_map"]
    assert result["rows_by_task"] == {"create_next_map": result["answered"]}


def test_the_report_says_where_the_server_spent_its_time() -> None:
    """From the server's own /metrics: how full the engine's passes were and what they cost."""
    counts = [BatchCounts(0, 5, 5, 300, 1.0)]  # the warm-up: one call's prompt, alone
    metrics = Metrics()
    metrics.watch_batch(lambda: counts[0])
    before = metrics.render().decode()
    # during the run: 50 more passes carried 400 answers and read 2,000 tokens in 5 s
    counts[0] = BatchCounts(0, 55, 405, 2300, 6.0)
    figures = server_figures(before, metrics.render().decode(), wall=10.0)
    assert figures["answers_per_pass"] == 8.0
    assert figures["tokens_per_pass"] == 40.0
    assert figures["ms_per_pass"] == 100.0
    assert figures["ms_per_token"] == 2.5
    assert figures["forward_share_of_wall"] == 0.5
    assert figures["batch_steps"] == 50
    assert figures["cpu_cores_busy"] is not None  # the process collector's CPU seconds
