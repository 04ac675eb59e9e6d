"""The public API is what ``jarvis/__init__.py`` exports, and nothing is exported by accident."""

from __future__ import annotations

import jarvis


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(jarvis) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(jarvis, name)).__name__ == "module"}
    future = {"annotations"}  # `from __future__ import annotations` leaves this name behind
    assert set(jarvis.__all__) == (public - modules - future) | {"__version__"}


def test_every_exported_name_resolves() -> None:
    for name in jarvis.__all__:
        assert getattr(jarvis, name) is not None, name
