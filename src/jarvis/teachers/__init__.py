"""Teachers: the large models (or procedural oracles) whose answers students learn from.

Which teacher answers which task is the runtime's choice (:mod:`jarvis.runtime.teachers`).
"""

from __future__ import annotations

from jarvis.teachers.openai_compat import OpenAITeacher
from jarvis.teachers.oracle import OracleTeacher

__all__ = ["OpenAITeacher", "OracleTeacher"]
