"""A command that needs an optional part says which extra to install, in one line."""

from __future__ import annotations

import pytest

from jarvis.core import extras
from jarvis.core.errors import ConfigError, MissingExtra
from jarvis.core.extras import has_extra, require_extra


def test_an_installed_extra_passes() -> None:
    assert has_extra("train")
    require_extra("train", "training")  # no error


def test_a_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extras.EXTRA_MODULES, "serve", ("no_such_module_here",))
    assert not has_extra("serve")
    with pytest.raises(MissingExtra) as caught:
        require_extra("serve", "the llama.cpp engine")
    assert str(caught.value) == (
        "the llama.cpp engine needs the 'serve' extra: pip install 'jarvis-mtllm[serve]'"
    )
    assert caught.value.extra == "serve"
    assert isinstance(caught.value, ConfigError)  # the CLI and the API report it as one
