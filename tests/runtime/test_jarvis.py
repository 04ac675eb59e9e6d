"""The runtime: the one place that turns the settings into parts and wires them."""

from __future__ import annotations

from pathlib import Path

import pytest

import jarvis
from helpers.tiny import next_room
from jarvis import ConfigError, Jarvis, NoStudent, Settings
from jarvis.core.events import StudentAnswered
from jarvis.serving.local import LocalStudent
from jarvis.serving.remote import RemoteStudent
from jarvis.testing import ScriptedStudent
from jarvis.training.worker import Worker


def test_each_layer_gets_its_own_config_from_the_settings(home: Path) -> None:
    settings = Settings(
        home=home, student_retries=4, teacher_attempts=3, max_tokens=99, engine="torch"
    )
    rt = Jarvis(settings)
    assert (rt.router.config.student_retries, rt.router.config.teacher_attempts) == (4, 3)
    assert rt.router.config.max_tokens == 99
    assert isinstance(rt.student, LocalStudent)
    assert rt.engine is not None and rt.engine.config.backend == "torch"
    assert rt.engine.config.base.spec == settings.base_model
    assert rt.engine.config.base.home == home
    rt.close()


@pytest.mark.parametrize("choice", ["none", "remote"])
def test_the_student_setting_picks_the_backend(home: Path, choice: str) -> None:
    settings = Settings(home=home, student=choice, student_base_url="http://127.0.0.1:9/v1")
    rt = Jarvis(settings)
    expected = {"none": NoStudent, "remote": RemoteStudent}[choice]
    assert isinstance(rt.router.student, expected)
    assert rt.engine is None  # no local engine is built for these
    rt.close()


def test_a_task_s_settings_are_its_override_then_its_declaration_then_the_default(
    home: Path,
) -> None:
    @jarvis.task(threshold=30, train={"train_epochs": 4})
    def summarize(text: str) -> str:
        """Summarize."""

    settings = Settings(
        home=home, threshold=100, task_settings={"summarize": {"train_epochs": 1.5}}
    )
    rt = Jarvis(settings)
    rt.register(summarize)
    ts = rt.task_settings("summarize")
    assert (ts.threshold, ts.train_epochs) == (30, 1.5)
    assert rt.task_settings("unknown").threshold == 100
    rt.close()


def test_a_bad_per_task_setting_is_a_clear_error(home: Path) -> None:
    rt = Jarvis(Settings(home=home, task_settings={"next_room": {"threshold": "many"}}))
    rt.register(next_room)
    with pytest.raises(ConfigError, match="next_room"):
        rt.task_settings("next_room")
    rt.close()


def test_shadow_checks_are_wired_to_the_router_s_events(home: Path) -> None:
    student = ScriptedStudent(['{"number":1,"size":3,"doors":1,"lamps":3}'])
    rt = Jarvis(
        Settings(home=home, task_settings={"next_room": {"shadow_rate": 1.0}}), student=student
    )
    seen: list[StudentAnswered] = []
    rt.events.subscribe(StudentAnswered, seen.append)
    result = rt.call(next_room, {"last_rooms": [], "size": 3})
    rt.shadow.drain()

    assert result.source == "student"
    assert [e.call_id for e in seen] == [result.call_id]
    checks = rt.store.shadows.agreements("next_room", "v0001", 10)
    assert checks == [1.0]  # the teacher said the same
    rt.close()


def test_the_worker_shares_the_runtime_s_store_and_tasks(home: Path) -> None:
    rt = Jarvis(Settings(home=home))
    worker = rt.worker(watch=["next_room"])
    assert isinstance(worker, Worker)
    assert worker.store is rt.store and worker.catalogue is rt.catalogue
    assert worker.watch == frozenset({"next_room"})
    assert worker.config.launcher.module == "jarvis.runtime.job"
    assert "teacher_api_key" not in worker.config.launcher.settings  # no secret to the job
    rt.close()
