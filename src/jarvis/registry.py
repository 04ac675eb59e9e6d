"""Versions on disk: ``<home>/models/<task>/v0001/`` with the adapter and its ``card.json``.

Nothing is overwritten: a version is written into a hidden temporary directory and renamed
into place in one step, and versions are never modified afterwards. Which version is active
lives in the store (one transaction), so promotion and rollback are atomic too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jarvis.core.errors import ConfigError
from jarvis.core.tasks import check_task_name
from jarvis.store import Store
from jarvis.store.versions import check_version_name

log = logging.getLogger(__name__)

ADAPTER = "adapter"
CARD = "card.json"
WEIGHTS = "adapter_model.safetensors"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


@dataclass(frozen=True, slots=True)
class Adapter:
    """A PEFT adapter directory and the name it is loaded under (``task@version``)."""

    name: str
    path: Path


def adapter_name(task: str, version: str) -> str:
    """The one name a version's adapter goes by, in the engine and in model names."""
    return f"{task}@{version}"


def version_dir(models_dir: Path, task: str, version: str) -> Path:
    """The directory of a version; names are validated so no path can escape ``models_dir``."""
    check_task_name(task)
    check_version_name(version)
    root = models_dir.resolve()
    path = (root / task / version).resolve()
    if root not in path.parents:
        raise ConfigError(f"version path escapes the models directory: {task}/{version}")
    return path


def staging_dir(models_dir: Path, task: str, version: str) -> Path:
    """A fresh hidden directory beside the final one, to build a version in."""
    parent = version_dir(models_dir, task, version).parent
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{version}-", dir=parent))


def publish(staging: Path, models_dir: Path, task: str, version: str, card: dict[str, Any]) -> Path:
    """Write the card and move the staged version into place, atomically."""
    target = version_dir(models_dir, task, version)
    if target.exists():
        raise ConfigError(f"version {task}/{version} already exists on disk")
    if not (staging / ADAPTER / "adapter_config.json").is_file():
        raise ConfigError(f"staged version {task}/{version} has no adapter")
    tmp_card = staging / f".{CARD}.tmp"
    tmp_card.write_text(json.dumps(card, indent=2, default=str))
    with tmp_card.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp_card.replace(staging / CARD)
    os.replace(staging, target)
    return target


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def read_card(models_dir: Path, task: str, version: str) -> dict[str, Any]:
    path = version_dir(models_dir, task, version) / CARD
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the card of {task}/{version}: {exc}") from exc
    return data


def adapter_path(models_dir: Path, task: str, version: str) -> Path:
    path = version_dir(models_dir, task, version) / ADAPTER
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(f"version {task}/{version} has no adapter at {path}")
    return path


def check_adapter(path: Path, name: str) -> None:
    """Refuse an adapter whose files are unreadable: its config must be a JSON object and its
    weights (when present) must start with a readable safetensors header. Cheap: nothing is
    loaded, only the config and the header are read."""
    try:
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"version {name}: adapter_config.json is unreadable: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"version {name}: adapter_config.json is not a JSON object")
    weights = path / WEIGHTS
    if not weights.exists():
        return
    try:
        with weights.open("rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 2 <= size <= _MAX_HEADER:
                raise ValueError(f"header length {size} is impossible")
            header = json.loads(fh.read(size).decode("utf-8"))
            if not isinstance(header, dict):
                raise ValueError("the header is not a JSON object")
    except (OSError, ValueError) as exc:  # ValueError: also bad UTF-8 and bad JSON
        raise ConfigError(f"version {name}: {WEIGHTS} is unreadable: {exc}") from exc


class Registry:
    """Versions of every task: files on disk plus their state in the store."""

    def __init__(self, store: Store, models_dir: Path) -> None:
        self.store = store
        self.models_dir = models_dir
        self._thresholds: dict[str, float | None] = {}

    def adapter(self, task: str, version: str) -> Adapter:
        """The adapter of ``task``'s ``version`` (its directory must hold one)."""
        return Adapter(adapter_name(task, version), adapter_path(self.models_dir, task, version))

    def card(self, task: str, version: str) -> dict[str, Any]:
        return read_card(self.models_dir, task, version)

    def confidence_threshold(self, task: str, version: str) -> float | None:
        """The version's calibrated confidence threshold (None: none in its card, which is
        then served without a cascade). A card never changes once its version is gated, so
        each is read once, from the store."""
        key = f"{task}@{version}"
        if key not in self._thresholds:
            row = self.store.versions.get(task, version) or {}
            value = (row.get("card") or {}).get("confidence_threshold")
            self._thresholds[key] = None if value is None else float(value)
        return self._thresholds[key]

    def discard_staged(self, task: str, version: str) -> None:
        """Remove what an interrupted run staged for ``version`` (hidden, never published)."""
        try:
            folder = version_dir(self.models_dir, task, version).parent
        except ConfigError:
            return
        for staged in folder.glob(f".{version}-*"):
            log.info("removing %s, staged by an interrupted run", staged)
            discard(staged)

    def versions(self, task: str) -> list[dict[str, Any]]:
        return self.store.versions.of_task(check_task_name(task))

    def active(self, task: str) -> str | None:
        return self.store.versions.active(task)

    def promote(self, task: str, version: str) -> None:
        # refuse a version with no adapter, or one whose files cannot be loaded
        check_adapter(adapter_path(self.models_dir, task, version), f"{task}/{version}")
        self.store.versions.promote(task, version)
        self.store.add_event(
            "promoted", f"{task} {version} is now active", task=task, version=version
        )

    def release(self, task: str, version: str, share: float) -> str:
        """A version that passed its gate: promoted at once when nothing is active (or
        ``share`` is 1), else a canary serving ``share`` of the calls. Returns "promoted" or
        "canary"."""
        if share >= 1.0 or self.active(task) is None:
            self.promote(task, version)
            return "promoted"
        check_adapter(adapter_path(self.models_dir, task, version), f"{task}/{version}")
        self.store.versions.start_canary(task, version, share)
        self.store.add_event(
            "canary",
            f"{task} {version} serves {share:.0%} of the calls beside "
            f"{self.active(task)} until live checks agree",
            task=task,
            version=version,
            share=share,
        )
        return "canary"

    def serving_version(self, task: str, draw: float) -> str | None:
        """Which version answers a call, for a uniform ``draw`` in [0, 1): the canary for its
        share of the calls, the active version for the rest (None: the teacher)."""
        active, canary, share = self.store.versions.serving(task)
        if canary is not None and draw < share:
            return canary
        return active

    def ramp(self, task: str, reason: str) -> str | None:
        """Double the canary's share (promote it once the share reaches 1); its version."""
        canary = self.store.versions.canary(task)
        if canary is None:
            return None
        version, share = canary["version"], min(1.0, canary["share"] * 2)
        if share >= 1.0:
            self.promote(task, version)
            return str(version)
        self.store.versions.set_canary_share(task, share)
        self.store.add_event(
            "canary_ramped",
            f"{task} {version} now serves {share:.0%} of the calls: {reason}",
            task=task,
            version=version,
            share=share,
        )
        return str(version)

    def abort_canary(self, task: str, reason: str) -> str | None:
        """Stop the canary: its version is rolled back, the active one serves everything."""
        version = self.store.versions.end_canary(task, "rolled_back")
        if version is not None:
            self.store.add_event(
                "canary_rolled_back",
                f"{task} {version} rolled back, {self.active(task)} serves every call: {reason}",
                task=task,
                version=version,
            )
        return version

    def rollback(self, task: str) -> str | None:
        previous = self.store.versions.rollback(check_task_name(task))
        self.store.add_event(
            "rolled_back",
            f"{task} rolled back to {previous or 'the teacher'}",
            task=task,
            version=previous,
        )
        return previous
