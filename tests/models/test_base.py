"""The converted base is derived data: made once per machine, in the user cache, and shared by
every JARVIS_HOME (a second home, a training job, a test worker do not convert it again).
Conversions an earlier JARVIS kept in ``JARVIS_HOME/base/`` are still used."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from jarvis.models import base as base_module
from jarvis.models.base import MARKER, converted_dir, resolve_base


@pytest.mark.slow
def test_two_homes_share_one_conversion_in_the_cache(tmp_path: Path) -> None:
    said: list[str] = []
    first = resolve_base("smollm2-135m", tmp_path / "a", said.append)
    second = resolve_base("smollm2-135m", tmp_path / "b", said.append)

    assert first == second
    assert first.path == converted_dir() / "smollm2-135m"
    assert (first.path / "model.safetensors").is_file() and (first.path / MARKER).is_file()
    assert not (tmp_path / "a" / "base").exists() and not (tmp_path / "b" / "base").exists()
    assert sum("converting" in line for line in said) <= 1  # none if this run had it already


def test_a_conversion_kept_in_the_home_by_an_earlier_jarvis_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JARVIS_CACHE_DIR", str(tmp_path / "empty-cache"))
    earlier = tmp_path / "home" / "base" / "smollm2-135m"
    earlier.mkdir(parents=True)
    marker = {"name": "smollm2-135m", "source": "an earlier conversion", "sha256": "ab" * 32}
    (earlier / MARKER).write_text(json.dumps(marker))

    found = resolve_base("smollm2-135m", tmp_path / "home")

    assert (found.path, found.source) == (earlier, "an earlier conversion")
    assert not (tmp_path / "empty-cache" / "base" / "smollm2-135m").exists()


def test_callers_that_need_the_base_at_once_convert_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second caller waits for the first's conversion, then finds it (no GGUF is fetched
    or read: the conversion here is a stand-in that writes what a finished one leaves)."""
    monkeypatch.setenv("JARVIS_CACHE_DIR", str(tmp_path / "cache"))
    converted: list[str] = []
    started = threading.Event()

    def slow_convert(gguf: Path, target: Path, name: str, *_: object) -> base_module.BaseModel:
        converted.append(name)
        started.set()
        threading.Event().wait(0.5)  # the other caller arrives meanwhile
        target.mkdir(parents=True, exist_ok=True)
        (target / MARKER).write_text(json.dumps({"name": name, "source": "s", "sha256": "0"}))
        return base_module._load_marker(target)

    monkeypatch.setattr(base_module, "_convert_gguf", slow_convert)
    monkeypatch.setattr(base_module, "shipped_gguf", lambda *_: tmp_path / "unread.gguf")
    results: list[base_module.BaseModel] = []
    first = threading.Thread(
        target=lambda: results.append(resolve_base("smollm2-135m", tmp_path / "a"))
    )
    first.start()
    assert started.wait(30)
    results.append(resolve_base("smollm2-135m", tmp_path / "b"))
    first.join()

    assert converted == ["smollm2-135m"]
    assert results[0] == results[1]
