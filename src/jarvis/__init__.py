"""JARVIS: typed LLM calls that teach a small local model to replace the big one.

Declare a task, call it; a teacher answers, every answer is validated and logged, and the
examples it produces train a student that takes over::

    import jarvis

    @jarvis.task
    def summarize(text: str) -> str:
        \"\"\"Summarize the text in one sentence.\"\"\"
"""

from __future__ import annotations

from jarvis.core.agreement import Comparison, compare_answers
from jarvis.core.backends import (
    GREEDY,
    Backend,
    Generation,
    GenerationRequest,
    NoStudent,
    Sampling,
    StudentBackend,
    retry_sampling,
)
from jarvis.core.errors import (
    AllAttemptsFailed,
    BackendError,
    ConfigError,
    ConflictError,
    ImportFileError,
    JarvisError,
    MissingExtra,
    NotFoundError,
    StoreError,
    TaskError,
    TeacherError,
)
from jarvis.core.events import Events, FellBack, StudentAnswered
from jarvis.core.freetext import TextRules
from jarvis.core.prompts import ChatMessage, render_answer, render_messages
from jarvis.core.results import Attempt, CallResult
from jarvis.core.task_settings import TaskSettings
from jarvis.core.tasks import Task, task
from jarvis.core.validate import Verdict, validate_answer, validate_output
from jarvis.routing.feedback import FeedbackResult
from jarvis.routing.router import Router, RouterConfig
from jarvis.runtime import Jarvis, Settings, get_default, set_default, using
from jarvis.store import Store
from jarvis.teachers import OpenAITeacher, OracleTeacher

__version__ = "0.1.0"

__all__ = [
    "GREEDY",
    "AllAttemptsFailed",
    "Attempt",
    "Backend",
    "BackendError",
    "CallResult",
    "ChatMessage",
    "Comparison",
    "ConfigError",
    "ConflictError",
    "Events",
    "FeedbackResult",
    "FellBack",
    "Generation",
    "GenerationRequest",
    "ImportFileError",
    "Jarvis",
    "JarvisError",
    "MissingExtra",
    "NoStudent",
    "NotFoundError",
    "OpenAITeacher",
    "OracleTeacher",
    "Router",
    "RouterConfig",
    "Sampling",
    "Settings",
    "Store",
    "StoreError",
    "StudentAnswered",
    "StudentBackend",
    "Task",
    "TaskError",
    "TaskSettings",
    "TeacherError",
    "TextRules",
    "Verdict",
    "__version__",
    "compare_answers",
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
