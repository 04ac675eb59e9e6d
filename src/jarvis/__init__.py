"""JARVIS: typed LLM calls that teach a small local model to replace the big one.

Declare a task, call it; a teacher answers, every answer is validated and logged, and the
examples it produces train a student that takes over::

    import jarvis

    @jarvis.task
    def summarize(text: str) -> str:
        \"\"\"Summarize the text in one sentence.\"\"\"
"""

from __future__ import annotations

from jarvis.backends import (
    GREEDY,
    Backend,
    Generation,
    GenerationRequest,
    NoStudent,
    Sampling,
    StudentBackend,
    retry_sampling,
)
from jarvis.config import Settings
from jarvis.errors import (
    AllAttemptsFailed,
    BackendError,
    ConfigError,
    ImportFileError,
    JarvisError,
    StoreError,
    TaskError,
    TeacherError,
)
from jarvis.freetext import TextRules
from jarvis.prompts import ChatMessage, render_answer, render_messages
from jarvis.router import Attempt, CallResult, Router
from jarvis.runtime import Jarvis, get_default, set_default, using
from jarvis.store import Store
from jarvis.tasks import Task, task
from jarvis.teachers import OpenAITeacher, OracleTeacher
from jarvis.validate import Verdict, validate_answer, validate_output

__version__ = "0.1.0"

__all__ = [
    "GREEDY",
    "AllAttemptsFailed",
    "Attempt",
    "Backend",
    "BackendError",
    "CallResult",
    "ChatMessage",
    "ConfigError",
    "Generation",
    "GenerationRequest",
    "ImportFileError",
    "Jarvis",
    "JarvisError",
    "NoStudent",
    "OpenAITeacher",
    "OracleTeacher",
    "Router",
    "Sampling",
    "Settings",
    "Store",
    "StoreError",
    "StudentBackend",
    "Task",
    "TaskError",
    "TeacherError",
    "TextRules",
    "Verdict",
    "__version__",
    "get_default",
    "render_answer",
    "render_messages",
    "retry_sampling",
    "set_default",
    "task",
    "using",
    "validate_answer",
    "validate_output",
]
