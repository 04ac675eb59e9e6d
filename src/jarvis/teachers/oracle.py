"""The procedural oracle as a teacher: offline, instant, always valid for its domain.

It answers by running the task's ``@task.oracle`` function. Every call and example it produces
is labelled with the model name ``oracle:<task>`` so no one mistakes it for an LLM.
"""

from __future__ import annotations

import random
import threading

from jarvis.core.backends import Generation, GenerationRequest
from jarvis.core.errors import TeacherError
from jarvis.core.prompts import render_answer
from jarvis.core.split import content_hash


class OracleTeacher:
    """Answers with the task's procedural oracle.

    With ``seed`` set, the same input always gets the same answer (reproducible demos and
    tests); without it each call draws a fresh layout.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    @property
    def name(self) -> str:
        return "oracle"

    def _rng_for(self, request: GenerationRequest) -> random.Random:
        if self.seed is None:
            with self._lock:
                return random.Random(self._rng.getrandbits(64))
        key = content_hash([self.seed, request.task.name, request.task.dump_inputs(request.inputs)])
        return random.Random(int(key[:16], 16))

    def generate(self, request: GenerationRequest) -> Generation:
        task = request.task
        if task.oracle_fn is None:
            raise TeacherError(
                f"teacher oracle: task {task.name!r} has no procedural oracle; "
                "set JARVIS_TEACHER_BASE_URL to use an LLM teacher"
            )
        try:
            output = task.run_oracle(request.inputs, self._rng_for(request))
        except Exception as exc:
            raise TeacherError(f"teacher oracle:{task.name} failed: {exc}") from exc
        return Generation(text=render_answer(task, output), model=f"oracle:{task.name}")
