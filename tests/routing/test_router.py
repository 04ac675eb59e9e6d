"""The router: who answers a call, how bad answers are retried, and what ends up in the store.

Every test checks both the returned :class:`jarvis.CallResult` and the rows the real SQLite
store holds afterwards, because the log is what later trains the student.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

import jarvis
from helpers.envelope import ENVELOPE_KEYS
from helpers.tiny import (
    Furniture,
    Room,
    Spot,
    furnish,
    next_room,
    oracle_furniture,
    oracle_room,
    pick_small_number,
    task_without_teacher,
)
from jarvis import (
    AllAttemptsFailed,
    BackendError,
    Generation,
    GenerationRequest,
    Jarvis,
    Settings,
    Store,
    TaskError,
    TeacherError,
)
from jarvis.core.prompts import render_answer
from jarvis.core.split import KEEP_HELDOUT, split_for
from jarvis.core.task_settings import TaskSettings
from jarvis.routing.examples import Examples
from jarvis.store import ExampleRecord, TaskInfo
from jarvis.teachers import OracleTeacher
from jarvis.testing import ScriptedStudent

ROOM_INPUTS: dict[str, Any] = {"last_rooms": [], "size": 3}


# -- helpers ------------------------------------------------------------------------------


@dataclass
class RecordingTeacher:
    """A teacher that records every request; answers from ``answers`` or the real oracle."""

    answers: list[str | Exception] | None = None
    requests: list[GenerationRequest] = field(default_factory=list)
    oracle: OracleTeacher = field(default_factory=lambda: OracleTeacher(seed=1))

    @property
    def name(self) -> str:
        return "recording"

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        if self.answers is None:
            return self.oracle.generate(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return Generation(text=answer, model="recording-model", tokens_in=3, tokens_out=1)


def make_router(
    store: Store, teacher: RecordingTeacher, student: ScriptedStudent | None = None
) -> jarvis.Router:
    return jarvis.Router(store, lambda task: teacher, student=student)


def room_1() -> Room:
    return oracle_room([], 3)


def valid_room_json() -> str:
    return render_answer(next_room, room_1())


def recurring(times: int) -> Examples:
    """Examples whose held-out inputs move to training once the teacher answered them
    ``times`` times (0: never)."""
    return Examples(lambda task: TaskSettings(recurring_to_train=times))


def stats_for(store: Store, task: str) -> Any:
    return next(s for s in store.task_stats() if s.name == task)


# -- teacher only -------------------------------------------------------------------------


def test_without_a_student_the_teacher_answers_and_its_answer_becomes_an_example(
    runtime: Jarvis, store: Store
) -> None:
    result = runtime.call(next_room, ROOM_INPUTS)

    assert result.valid
    assert result.output == room_1()
    assert (result.source, result.version, result.fallback) == ("teacher", None, False)
    assert len(result.attempts) == 1
    assert result.reason is None

    calls = store.recent_calls()
    assert len(calls) == 1
    call = calls[0]
    assert call["id"] == result.call_id
    assert call["task"] == "next_room"
    assert call["source"] == "teacher"
    assert call["model"] == "oracle:next_room"
    assert call["valid"] and not call["fallback"]
    assert call["attempts"] == 1
    assert call["input"] == {"last_rooms": [], "size": 3}
    assert call["output"] == room_1().model_dump()

    attempts = store.call_attempts(result.call_id)
    assert [(a["number"], a["source"], a["valid"], a["stage"]) for a in attempts] == [
        (0, "teacher", True, "ok")
    ]

    examples = list(store.iter_examples("next_room"))
    assert len(examples) == 1
    assert examples[0]["split"] in {"train", "heldout"}
    assert examples[0]["input"] == call["input"]
    assert examples[0]["output"] == call["output"]
    assert examples[0]["call_id"] == result.call_id


# -- student ------------------------------------------------------------------------------


def test_a_valid_student_answer_is_served_without_asking_the_teacher(
    store: Store, student: ScriptedStudent
) -> None:
    student.answers = [valid_room_json()]
    teacher = RecordingTeacher()
    router = make_router(store, teacher, student)

    result = router.call(next_room, next_room.load_inputs(ROOM_INPUTS))

    assert result.valid
    assert result.output == room_1()
    assert (result.source, result.version, result.fallback) == ("student", "v0001", False)
    assert len(result.attempts) == 1
    assert teacher.requests == []
    assert len(student.requests) == 1
    # Student answers are not training data.
    assert list(store.iter_examples("next_room")) == []
    call = store.recent_calls()[0]
    assert (call["source"], call["version"]) == ("student", "v0001")
    assert call["model"] == "scripted@v0001"
    assert stats_for(store, "next_room").student_calls == 1


def test_an_invalid_student_answer_is_retried_with_different_sampling(
    runtime_with_student: Jarvis, store: Store, student: ScriptedStudent
) -> None:
    """The retry really reaches the model with a higher temperature and a new seed."""
    student.answers = ['{"number": 1, "size":', valid_room_json()]

    result = runtime_with_student.call(next_room, ROOM_INPUTS)

    assert result.valid
    assert (result.source, result.fallback) == ("student", False)
    assert len(result.attempts) == 2

    first, second = (r.sampling for r in student.requests)
    assert first.temperature == 0.0  # greedy first
    assert second.temperature is not None and second.temperature > first.temperature
    assert second.top_p is not None and 0.0 < second.top_p <= 1.0
    assert second.seed != first.seed

    rows = store.call_attempts(result.call_id)
    assert [(a["temperature"], a["top_p"], a["seed"]) for a in rows] == [
        (first.temperature, first.top_p, first.seed),
        (second.temperature, second.top_p, second.seed),
    ]
    assert rows[0]["valid"] is False and rows[0]["stage"] == "format"
    assert rows[0]["reason"].startswith("not valid JSON")
    assert rows[1]["valid"] is True and rows[1]["reason"] is None
    assert list(store.iter_examples("next_room")) == []


def test_a_student_that_stays_invalid_falls_back_to_the_teacher(
    runtime_with_student: Jarvis, settings: Settings, store: Store, student: ScriptedStudent
) -> None:
    student.answers = ["I think the room should be big."]

    result = runtime_with_student.call(next_room, ROOM_INPUTS)

    tries = 1 + settings.student_retries
    assert len(student.requests) == tries
    assert result.valid
    assert (result.source, result.version, result.fallback) == ("teacher", None, True)
    assert len(result.attempts) == tries + 1
    assert [a.source for a in result.attempts] == ["student"] * tries + ["teacher"]

    examples = list(store.iter_examples("next_room"))
    assert [e["output"] for e in examples] == [result.output_json]

    stats = stats_for(store, "next_room")
    assert (stats.calls, stats.teacher_calls, stats.student_calls, stats.fallbacks) == (1, 1, 0, 1)
    assert stats.invalid_calls == 0
    assert stats.examples_train + stats.examples_heldout == 1


def test_a_failing_student_engine_falls_back_at_once_without_retries(
    runtime_with_student: Jarvis, store: Store, student: ScriptedStudent
) -> None:
    student.answers = [BackendError("engine crashed: CUDA out of memory")]

    result = runtime_with_student.call(next_room, ROOM_INPUTS)

    assert len(student.requests) == 1
    assert result.valid
    assert (result.source, result.fallback) == ("teacher", True)
    rows = store.call_attempts(result.call_id)
    assert [(a["source"], a["stage"]) for a in rows] == [("student", "error"), ("teacher", "ok")]
    assert rows[0]["reason"] == "engine crashed: CUDA out of memory"
    assert rows[0]["version"] == "v0001"


def _furniture_with(room: Room, chairs: list[Spot], table: Spot) -> str:
    return render_answer(furnish, Furniture(room=room, chairs=chairs, table=table))


@pytest.mark.parametrize(
    ("chairs", "table", "reason_part"),
    [
        ([Spot(x=0, y=0), Spot(x=1, y=1)], Spot(x=1, y=1), "taken twice"),
        ([Spot(x=3, y=0)], Spot(x=1, y=1), "outside the 3x3 room"),
    ],
    ids=["cell-taken-twice", "chair-out-of-bounds"],
)
def test_a_well_formed_but_invalid_answer_counts_as_invalid_and_is_retried(
    runtime_with_student: Jarvis,
    store: Store,
    student: ScriptedStudent,
    chairs: list[Spot],
    table: Spot,
    reason_part: str,
) -> None:
    room = room_1()
    good = render_answer(furnish, oracle_furniture(room, random.Random(0)))
    student.answers = [_furniture_with(room, chairs, table), good]

    result = runtime_with_student.call(furnish, {"room": room})

    assert result.valid
    assert (result.source, result.fallback, len(result.attempts)) == ("student", False, 2)
    first = result.attempts[0].verdict
    assert (first.valid, first.stage) == (False, "semantic")
    assert first.reason is not None and reason_part in first.reason
    assert isinstance(first.output, Furniture)  # it parsed; only the rules rejected it
    rows = store.call_attempts(result.call_id)
    assert rows[0]["stage"] == "semantic" and reason_part in rows[0]["reason"]


# -- a teacher that fails -----------------------------------------------------------------


def test_an_always_invalid_teacher_raises_all_attempts_failed_and_the_call_is_logged(
    runtime: Jarvis, settings: Settings, store: Store
) -> None:
    with pytest.raises(AllAttemptsFailed) as info:
        runtime.call(pick_small_number, {"limit": 3})

    exc = info.value
    assert len(exc.attempts) == settings.teacher_attempts == 2
    assert exc.last_output == "4"
    assert exc.last_parsed == 4
    assert exc.reason == "4 is not below 3"
    assert "pick_small_number" in str(exc) and "4 is not below 3" in str(exc)

    call = store.recent_calls()[0]
    assert exc.call_id == call["id"]
    assert call["valid"] is False
    assert call["reason"] == "4 is not below 3"
    assert call["attempts"] == 2
    assert list(store.iter_examples("pick_small_number")) == []
    assert stats_for(store, "pick_small_number").invalid_calls == 1


def test_raise_on_invalid_false_returns_the_invalid_result(runtime: Jarvis, store: Store) -> None:
    result = runtime.call(pick_small_number, {"limit": 3}, raise_on_invalid=False)

    assert result.valid is False
    assert result.output == 4
    assert result.reason == "4 is not below 3"
    assert result.source == "teacher"
    assert store.recent_calls()[0]["id"] == result.call_id
    assert list(store.iter_examples("pick_small_number")) == []


def test_the_teacher_is_told_why_its_answer_was_rejected(store: Store) -> None:
    teacher = RecordingTeacher(answers=["7", "2"])
    router = make_router(store, teacher)

    result = router.call(pick_small_number, pick_small_number.load_inputs({"limit": 3}))

    assert result.valid and result.output == 2
    assert len(teacher.requests) == 2
    first, second = (r.messages for r in teacher.requests)
    assert [m["role"] for m in first] == ["system", "user"]
    assert second[:2] == first
    assert second[2] == {"role": "assistant", "content": "7"}
    assert second[3]["role"] == "user"
    assert "7 is not below 3" in second[3]["content"]
    examples = list(store.iter_examples("pick_small_number"))
    assert [e["output"] for e in examples] == [2]


def test_a_dead_teacher_raises_teacher_error_and_the_call_is_logged(store: Store) -> None:
    teacher = RecordingTeacher(answers=[TeacherError("teacher x@http://h/v1: HTTP 503: down")])
    router = make_router(store, teacher)

    with pytest.raises(TeacherError, match=r"HTTP 503: down"):
        router.call(next_room, next_room.load_inputs(ROOM_INPUTS))

    assert len(teacher.requests) == 1  # a dead teacher is not asked again
    call = store.recent_calls()[0]
    assert call["valid"] is False
    assert call["output"] is None
    assert call["error"] == "teacher x@http://h/v1: HTTP 503: down"
    rows = store.call_attempts(call["id"])
    assert [(a["source"], a["stage"]) for a in rows] == [("teacher", "error")]
    assert list(store.iter_examples("next_room")) == []


def test_a_task_with_no_teacher_at_all_raises_teacher_error_and_is_logged(
    runtime: Jarvis, store: Store
) -> None:
    with pytest.raises(TeacherError, match="JARVIS_TEACHER_BASE_URL"):
        runtime.call(task_without_teacher, {"x": 1})

    call = store.recent_calls()[0]
    assert call["task"] == "task_without_teacher"
    assert call["valid"] is False
    assert "JARVIS_TEACHER_BASE_URL" in call["error"]


# -- the result and the ways to call ------------------------------------------------------


def test_the_envelope_has_exactly_the_documented_keys(runtime: Jarvis) -> None:
    result = runtime.call(next_room, ROOM_INPUTS)

    envelope = result.envelope()
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["call_id"] == runtime.store.recent_calls(limit=1)[0]["id"]
    assert envelope["output"] == room_1().model_dump()
    assert (envelope["source"], envelope["attempts"], envelope["valid"]) == ("teacher", 1, True)
    assert isinstance(envelope["latency_ms"], float) and envelope["latency_ms"] >= 0


def test_calling_a_task_directly_routes_through_the_runtime_in_use(
    runtime: Jarvis, store: Store
) -> None:
    with jarvis.using(runtime):
        room = next_room([], 3)

    assert isinstance(room, Room)
    assert room == room_1()
    assert len(store.recent_calls()) == 1


@pytest.mark.parametrize(
    ("call", "message_part"),
    [
        (lambda: next_room([], "big"), "size"),
        (lambda: next_room([], 3, colour="red"), "colour"),
        (lambda: next_room([]), "size"),
        (lambda: next_room("not a list", 3), "last_rooms"),
    ],
    ids=["wrong-type", "unknown-argument", "missing-argument", "wrong-list"],
)
def test_bad_inputs_raise_task_error_and_nothing_is_logged(
    runtime: Jarvis, store: Store, call: Any, message_part: str
) -> None:
    with jarvis.using(runtime), pytest.raises(TaskError) as info:
        call()

    message = str(info.value)
    assert "next_room" in message and message_part in message
    assert store.recent_calls() == []


def test_unknown_input_keys_given_as_data_are_rejected(runtime: Jarvis, store: Store) -> None:
    with pytest.raises(TaskError, match="extra"):
        runtime.call(next_room, {**ROOM_INPUTS, "extra": 1})
    assert store.recent_calls() == []


# -- recurring inputs: what the program sends again and again is learned -------------------


def held_out_room_inputs(share: float = 0.15) -> dict[str, Any]:
    """A next_room input whose hash puts it in the held-out split."""
    for size in range(1, 500):
        inputs = {"last_rooms": [], "size": size}
        if split_for("next_room", inputs, share) == "heldout":
            return inputs
    raise AssertionError("no held-out input found")


def seed_heldout(store: Store, n: int = KEEP_HELDOUT) -> None:
    """``n`` held-out examples of other inputs: what a gate needs, so a move may happen."""
    store.ensure_task(TaskInfo.of(next_room))
    others = [
        ExampleRecord(input={"seed": i}, output={"room": i}, split="heldout", origin="import")
        for i in range(n)
    ]
    store.add_examples("next_room", others)


def examples_of(store: Store, inputs: Mapping[str, Any]) -> list[tuple[str, int]]:
    rows = store.iter_examples("next_room")
    return [(e["split"], e["seen"]) for e in rows if e["input"] == inputs]


def test_a_held_out_input_the_teacher_answers_again_and_again_moves_to_training(
    store: Store,
) -> None:
    seed_heldout(store)
    inputs = held_out_room_inputs()
    router = jarvis.Router(store, lambda task: RecordingTeacher(), examples=recurring(3))

    router.call(next_room, next_room.load_inputs(inputs))
    router.call(next_room, next_room.load_inputs(inputs))
    assert examples_of(store, inputs) == [("heldout", 2)]  # one example, seen twice

    router.call(next_room, next_room.load_inputs(inputs))
    assert examples_of(store, inputs) == [("train", 3)]  # recurring: now learned
    router.call(next_room, next_room.load_inputs(inputs))
    assert examples_of(store, inputs) == [("train", 4)]  # and it never goes back
    assert len(store.recent_calls(limit=10)) == 4  # every call still logged


def test_a_new_answer_to_an_input_that_moved_is_training_data_too(store: Store) -> None:
    seed_heldout(store)
    inputs = held_out_room_inputs()
    room = oracle_room([], inputs["size"])
    answers = [render_answer(next_room, room)] * 3 + [
        render_answer(next_room, room.model_copy(update={"lamps": room.lamps + 1}))
    ]
    teacher = RecordingTeacher(answers=answers)
    router = jarvis.Router(store, lambda task: teacher, examples=recurring(3))
    for _ in range(4):
        router.call(next_room, next_room.load_inputs(inputs))

    # never held out beside its own input in training: the gate would be measuring recall
    assert examples_of(store, inputs) == [("train", 3), ("train", 1)]


def test_recurring_to_train_zero_keeps_the_split_a_pure_function_of_the_input(
    store: Store,
) -> None:
    inputs = held_out_room_inputs()
    router = jarvis.Router(store, lambda task: RecordingTeacher(), examples=recurring(0))
    for _ in range(5):
        router.call(next_room, next_room.load_inputs(inputs))
    assert examples_of(store, inputs) == [("heldout", 5)]


def test_imported_duplicates_do_not_count_as_traffic(store: Store) -> None:
    inputs = held_out_room_inputs()
    router = jarvis.Router(store, lambda task: RecordingTeacher(), examples=recurring(2))
    router.call(next_room, next_room.load_inputs(inputs))
    [stored] = [e for e in store.iter_examples("next_room") if e["input"] == inputs]
    again = ExampleRecord(input=inputs, output=stored["output"], split="heldout", origin="import")
    for _ in range(3):
        assert store.add_examples("next_room", [again]).duplicates == 1
    assert examples_of(store, inputs) == [("heldout", 1)]
    # the rule travels on the router's example records only
    assert router.examples.make(next_room, inputs, stored["output"]).train_after_seen == 2


def test_a_move_never_drains_the_held_out_set_the_gate_needs(store: Store) -> None:
    seed_heldout(store, KEEP_HELDOUT - 1)
    inputs = held_out_room_inputs()
    router = jarvis.Router(store, lambda task: RecordingTeacher(), examples=recurring(3))
    for _ in range(4):
        router.call(next_room, next_room.load_inputs(inputs))
    assert examples_of(store, inputs) == [("heldout", 4)]  # it would leave too few

    seed_heldout(store, KEEP_HELDOUT)  # one more held-out example arrives…
    router.call(next_room, next_room.load_inputs(inputs))
    assert examples_of(store, inputs) == [("train", 5)]  # …and the next repeat moves it


# -- a teacher asked again ------------------------------------------------------------------


def test_a_teacher_asked_again_samples_differently(store: Store) -> None:
    """A deterministic server repeats the very answer it was told was wrong, unless the retry
    changes the sampling."""
    teacher = RecordingTeacher(answers=["7", "2"])
    router = make_router(store, teacher)

    router.call(pick_small_number, pick_small_number.load_inputs({"limit": 3}))

    first, second = (r.sampling for r in teacher.requests)
    assert first.temperature is None and first.seed is None  # the endpoint's own sampling
    assert second.temperature is not None and second.temperature > 0
    assert second.seed is not None


def test_the_teacher_is_told_every_rule_its_answer_broke(store: Store) -> None:
    teacher = RecordingTeacher(
        answers=['{"number": 1, "size": 9, "doors": 99, "lamps": 0}', valid_room_json()]
    )
    router = make_router(store, teacher)
    one_rule_per_validator = jarvis.task(name="strict_room")(next_room.fn)
    one_rule_per_validator.validator(lambda room, inputs: None if room.lamps else "no lamp")
    one_rule_per_validator.validator(lambda room, inputs: None if room.size == 3 else "size")

    router.call(one_rule_per_validator, one_rule_per_validator.load_inputs(ROOM_INPUTS))

    feedback = teacher.requests[1].messages[-1]["content"]
    assert "- no lamp" in feedback and "- size" in feedback


def test_a_long_rejected_answer_is_not_sent_back_whole(store: Store) -> None:
    runaway = "[" * 5000
    teacher = RecordingTeacher(answers=[runaway, valid_room_json()])
    router = make_router(store, teacher)

    router.call(next_room, next_room.load_inputs(ROOM_INPUTS))

    echoed = teacher.requests[1].messages[-2]
    assert echoed["role"] == "assistant"
    assert len(echoed["content"]) < 700 and "characters cut" in echoed["content"]


# -- confidence cascade -------------------------------------------------------------------


def test_a_valid_but_unsure_student_answer_escalates_to_the_teacher_whose_answer_is_kept(
    store: Store,
) -> None:
    """Below its version's calibrated threshold, a valid answer is not trusted: the teacher
    answers (an escalation, not a fallback) and its answer becomes a training example."""
    student = ScriptedStudent([valid_room_json()], confidence=0.41)
    teacher = RecordingTeacher()
    router = jarvis.Router(
        store, lambda task: teacher, student=student, threshold_for=lambda t, v: 0.75
    )

    result = router.call(next_room, next_room.load_inputs(ROOM_INPUTS))

    assert (result.source, result.output) == ("teacher", room_1())
    assert result.escalated and not result.fallback
    assert len(student.requests) == 1  # a valid answer is not retried: its doubt is the issue
    call = store.recent_calls()[0]
    assert call["escalated"] and not call["fallback"] and call["confidence"] == 0.41
    assert [
        (a["source"], a["valid"], a["confidence"]) for a in store.call_attempts(result.call_id)
    ] == [
        ("student", True, 0.41),
        ("teacher", True, None),
    ]
    assert [e["output"] for e in store.iter_examples("next_room")] == [room_1().model_dump()]
    stats = stats_for(store, "next_room")
    assert (stats.escalations, stats.fallbacks, stats.student_calls) == (1, 0, 0)


def test_a_sure_student_answer_is_served_and_no_threshold_means_no_cascade(store: Store) -> None:
    teacher = RecordingTeacher()
    sure = ScriptedStudent([valid_room_json()], confidence=0.9)
    router = jarvis.Router(store, lambda t: teacher, student=sure, threshold_for=lambda t, v: 0.75)
    assert router.call(next_room, next_room.load_inputs(ROOM_INPUTS)).source == "student"

    unsure = ScriptedStudent([valid_room_json()], confidence=0.1)
    no_threshold = jarvis.Router(
        store, lambda t: teacher, student=unsure, threshold_for=lambda t, v: None
    )
    assert no_threshold.call(next_room, next_room.load_inputs(ROOM_INPUTS)).source == "student"
    assert teacher.requests == []


def test_an_escalation_the_teacher_cannot_answer_serves_the_students_valid_answer(
    store: Store,
) -> None:
    student = ScriptedStudent([valid_room_json()], confidence=0.2)
    teacher = RecordingTeacher([TeacherError("teacher down")])
    router = jarvis.Router(
        store, lambda t: teacher, student=student, threshold_for=lambda t, v: 0.75
    )

    result = router.call(next_room, next_room.load_inputs(ROOM_INPUTS))

    assert (result.source, result.valid, result.output) == ("student", True, room_1())
    assert result.escalated
    call = store.recent_calls()[0]
    assert call["source"] == "student" and call["error"] == "teacher down"
    assert list(store.iter_examples("next_room")) == []


def test_the_teacher_answer_is_a_second_opinion_that_is_not_logged(runtime: Jarvis) -> None:
    assert runtime.teacher_answer(next_room, ROOM_INPUTS) == room_1().model_dump()
    assert runtime.store.recent_calls() == []
