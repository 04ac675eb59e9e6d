"""Teachers: the large models (or procedural oracles) whose answers students learn from."""

from __future__ import annotations

from jarvis.teachers.openai_compat import OpenAITeacher
from jarvis.teachers.oracle import OracleTeacher
from jarvis.teachers.resolve import TeacherResolver

__all__ = ["OpenAITeacher", "OracleTeacher", "TeacherResolver"]
