"""The game's level progression, as the original ``LevelManager`` ran it.

Each new level asks ``create_next_level`` with the last (at most three) levels and the current
difficulty, then ``create_next_map`` for it; the difficulty rises after every second level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jarvis.core.results import CallResult
from jarvis.rpg.models import Level, Map
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.runtime import Jarvis

KEEP_LEVELS = 3


@dataclass
class PlayedLevel:
    number: int
    level: Level
    game_map: Map
    level_call: CallResult
    map_call: CallResult
    inputs: dict[str, dict[str, Any]]  # per task: what it was asked
    new_game: bool  # the level was asked with no previous level

    @property
    def calls(self) -> tuple[CallResult, CallResult]:
        return (self.level_call, self.map_call)


@dataclass
class LevelManager:
    runtime: Jarvis
    current_level: int = 0
    current_difficulty: int = 1
    prev_levels: list[Level] = field(default_factory=list)

    def next_level(self) -> PlayedLevel:
        """Generate the next level and its map through the router (teacher or student)."""
        self.prev_levels = self.prev_levels[-KEEP_LEVELS:]
        asked: dict[str, Any] = {
            "last_levels": list(self.prev_levels),
            "difficulty": self.current_difficulty,
        }
        level_call = self.runtime.call(create_next_level, asked)
        level: Level = level_call.output
        map_call = self.runtime.call(create_next_map, {"level": level})
        inputs = {create_next_level.name: asked, create_next_map.name: {"level": level}}
        self.prev_levels.append(level)
        self.current_level += 1
        if self.current_level % 2 == 0:
            self.current_difficulty += 1
        return PlayedLevel(
            self.current_level,
            level,
            map_call.output,
            level_call,
            map_call,
            inputs,
            new_game=not asked["last_levels"],
        )
