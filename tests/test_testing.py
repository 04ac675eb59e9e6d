"""The fakes jarvis ships for users' tests answer from their script and keep every request."""

from __future__ import annotations

import pytest

import jarvis
from helpers.tiny import next_room
from jarvis import BackendError, Store
from jarvis.core.prompts import render_answer
from jarvis.testing import ScriptedStudent, ScriptedTeacher

ROOM = next_room.output_adapter.validate_python({"number": 1, "size": 3, "doors": 1, "lamps": 3})


def test_a_scripted_student_and_teacher_drive_the_router(store: Store) -> None:
    student = ScriptedStudent(["not json", "still not json", "nope"])
    teacher = ScriptedTeacher(["oops", render_answer(next_room, ROOM)])
    router = jarvis.Router(store, lambda task: teacher, student=student)

    result = router.call(next_room, next_room.bind([], 3))

    assert result.valid and result.fallback and result.output == ROOM
    assert len(student.requests) == 3
    assert student.requests[1].sampling.temperature  # the retries really sampled
    assert len(teacher.requests) == 2
    assert "rejected" in teacher.requests[1].messages[-1]["content"]  # told why


def test_an_exception_in_the_script_is_raised_in_place_of_an_answer() -> None:
    student = ScriptedStudent([BackendError("engine down")])
    with pytest.raises(BackendError, match="engine down"):
        student.generate(None, "v0001")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="no answers"):
        ScriptedTeacher([]).generate(None)  # type: ignore[arg-type]
