"""Where a run's hyper-parameters come from: settings < task's declared defaults < per-task
settings < the run's own overrides."""

from __future__ import annotations

from jarvis import Settings
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.training.job import train_config


def test_a_task_declares_its_own_training_defaults(settings: Settings) -> None:
    assert train_config(settings.for_task("create_next_level", create_next_level), {}).epochs == 2
    map_cfg = train_config(settings.for_task("create_next_map", create_next_map), {})
    assert (map_cfg.epochs, map_cfg.tokens_per_batch) == (1, 1024)


def test_user_settings_and_run_overrides_win(settings: Settings) -> None:
    tuned = settings.model_copy(update={"task_settings": {"create_next_map": {"train_epochs": 3}}})
    assert train_config(tuned.for_task("create_next_map", create_next_map), {}).epochs == 3
    run = train_config(tuned.for_task("create_next_map", create_next_map), {"epochs": 0.5})
    assert run.epochs == 0.5
