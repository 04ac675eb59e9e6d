"""Settings come from JARVIS_* variables or a TOML file, with offline defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from jarvis import ConfigError, Settings


def test_defaults_run_offline(home: Path) -> None:
    s = Settings()
    assert s.home == home
    assert s.resolved_database_url == f"sqlite:///{home / 'jarvis.db'}"
    assert s.teacher == "auto" and s.teacher_base_url is None
    assert 0 < s.heldout_share < 1


def test_environment_overrides(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARVIS_TEACHER_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("JARVIS_STUDENT_RETRIES", "4")
    monkeypatch.setenv("JARVIS_TASK_MODULES", "a.tasks, b.tasks")
    s = Settings()
    assert s.teacher_base_url == "http://127.0.0.1:9/v1"
    assert s.student_retries == 4
    assert s.task_modules == ["a.tasks", "b.tasks"]


def test_api_key_is_secret(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("JARVIS_TEACHER_API_KEY", "sk-very-secret")
    s = Settings()
    assert "sk-very-secret" not in repr(s)
    assert s.teacher_api_key is not None
    assert s.teacher_api_key.get_secret_value() == "sk-very-secret"


def test_config_file_in_home(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[jarvis]\nthreshold = 42\nteacher_model = "m"\n')
    s = Settings()
    assert s.threshold == 42 and s.teacher_model == "m"


def test_environment_beats_config_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text("threshold = 42\n")
    monkeypatch.setenv("JARVIS_THRESHOLD", "7")
    assert Settings().threshold == 7


def test_broken_config_file_is_a_clear_error(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text("threshold = [unclosed\n")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        Settings()


def test_missing_explicit_config_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARVIS_CONFIG", str(home / "nope.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        Settings()


def test_out_of_range_values_are_refused(home: Path) -> None:
    with pytest.raises(ValueError):
        Settings(heldout_share=1.5)
    with pytest.raises(ValueError):
        Settings(threshold=0)
