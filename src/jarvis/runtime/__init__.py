"""The runtime: the settings, and the one place where the parts are picked and wired.

Settings ──▶ configs (one small config per layer) ──▶ Jarvis (store, tasks, teachers,
student, router, shadow checks) ──▶ the default runtime a task called directly uses
"""

from __future__ import annotations

from jarvis.runtime.default import get_default, set_default, using
from jarvis.runtime.jarvis import Jarvis
from jarvis.runtime.settings import Settings

__all__ = ["Jarvis", "Settings", "get_default", "set_default", "using"]
