"""Importing and exporting training examples as JSONL.

Import reads the original system's ``llm_io_log.jsonl`` and OpenAI chat JSONL, checks every
answer with the task's own validator, reports bad lines by number and stores the good ones in
one transaction. Export writes OpenAI chat fine-tuning JSONL that imports back unchanged.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from jarvis import Jarvis, Store
from jarvis.cli import app
from jarvis.core.errors import ImportFileError, JarvisError, StoreError
from jarvis.core.pyrepr import parse_call_text
from jarvis.core.split import canonical_json
from jarvis.core.tasks import Task
from jarvis.core.validate import validate_answer
from jarvis.demo.play import LevelManager
from jarvis.rpg import (
    Level,
    Map,
    Position,
    Wall,
    create_next_level,
    create_next_map,
    oracle_level,
    oracle_map,
)
from jarvis.store.jsonl import export_file, export_lines, import_file

TASKS: dict[str, Task[Any]] = {t.name: t for t in (create_next_level, create_next_map)}

ORIGINAL_SYSTEM = (
    "This is a task you must complete by returning only the output.\n"
    "Do not include explanations, code, or extra text—only the result.\n"
)
ORIGINAL_SELF = (
    "self = LevelManager(current_level=2, current_difficulty=1, prev_levels=[], prev_level_maps=[])"
)

runner = CliRunner()


# --- building lines as the original system logged them ----------------------------------------


def make_level(difficulty: int = 1, last_levels: list[Level] | None = None) -> Level:
    return oracle_level(last_levels or [], difficulty, random.Random(0))


def make_map(level: Level, seed: int = 1) -> Map:
    return oracle_map(level, random.Random(seed))


def original_level_line(difficulty: int, last_levels: list[Level] | None = None) -> str:
    """A create_next_level line of llm_io_log.jsonl: the output is JSON text."""
    level = make_level(difficulty, last_levels)
    call = "\n".join(
        [
            "create_next_level",
            "",
            ORIGINAL_SELF,
            f"last_levels = {last_levels or []!r}",
            f"difficulty = {difficulty}",
        ]
    )
    return json.dumps(
        {"system": ORIGINAL_SYSTEM, "input": call, "output": json.dumps(level.model_dump())}
    )


def jac_repr(game_map: Map) -> str:
    """The map as the Jac game printed it: ``Map_tiles(level=Level(…), walls=[Wall(…)], …)``."""
    text = repr(game_map)
    assert text.startswith("Map(level=Level(")
    return "Map_tiles(" + text[len("Map(") :]


def original_map_line(level: Level, output: str) -> str:
    """A create_next_map line of llm_io_log.jsonl, with ``output`` as logged."""
    call = "\n".join(["create_next_map", "", ORIGINAL_SELF, f"level = {level!r}"])
    return json.dumps({"system": ORIGINAL_SYSTEM, "input": call, "output": output})


def chat_line(user: str, assistant: str, system: str | None = "Make levels.") -> str:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return json.dumps({"messages": messages})


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def examples_of(store: Store, task: str) -> set[tuple[str, str, str]]:
    """A task's examples as comparable (input JSON, output JSON, split) triples."""
    return {
        (canonical_json(e["input"]), canonical_json(e["output"]), e["split"])
        for e in store.iter_examples(task)
    }


def count_examples(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM examples").scalar_one())


# --- the original llm_io_log.jsonl ------------------------------------------------------------


def test_import_of_the_original_log_format(store: Store, tmp_path: Path) -> None:
    """The task comes from the call's first line, ``self`` is dropped, reprs are read back."""
    level = make_level(1)
    game_map = make_map(level)
    first = make_level(1)
    path = write_lines(
        tmp_path / "llm_io_log.jsonl",
        [
            original_level_line(1),
            original_level_line(2, last_levels=[first]),
            original_map_line(level, jac_repr(game_map)),
        ],
    )

    report = import_file(store, path, tasks=TASKS)

    assert report.ok and report.errors == []
    assert (report.lines, report.added, report.duplicates) == (3, 3, 0)
    assert {name: r.added for name, r in report.results.items()} == {
        "create_next_level": 2,
        "create_next_map": 1,
    }
    levels = list(store.iter_examples("create_next_level"))
    assert [e["input"] for e in levels] == [
        {"last_levels": [], "difficulty": 1},
        {"last_levels": [first.model_dump()], "difficulty": 2},
    ]
    assert all(e["origin"] == "import" for e in levels)
    assert levels[1]["output"] == make_level(2, [first]).model_dump()
    [map_example] = store.iter_examples("create_next_map")
    assert map_example["input"] == {"level": level.model_dump()}
    assert Map.model_validate(map_example["output"]) == game_map
    assert "self" not in map_example["input"]


def test_the_imported_tasks_are_declared_in_the_store(store: Store, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "log.jsonl", [original_level_line(1)])
    import_file(store, path, tasks=TASKS)
    row = store.task_row("create_next_level")
    assert row is not None
    assert row["params"] == ["last_levels", "difficulty"]
    assert row["output_schema"] == create_next_level.output_schema


# --- bad lines --------------------------------------------------------------------------------


def unreachable_enemy_map() -> Map:
    """A full-height wall at x=7 shuts enemy 2 at (9, 9) away from the player at (0, 0)."""
    level = make_level(1)
    return Map(
        level=level,
        walls=[Wall(start_pos=Position(x=7, y=0), end_pos=Position(x=7, y=level.height - 1))],
        small_obstacles=[],
        enemies=[Position(x=2, y=2), Position(x=9, y=9)],
        player_pos=Position(x=0, y=0),
    )


def out_of_bounds_enemy_map() -> Map:
    level = make_level(1)
    return Map(
        level=level,
        walls=[],
        small_obstacles=[],
        enemies=[Position(x=2, y=2), Position(x=level.width, y=3)],
        player_pos=Position(x=0, y=0),
    )


def mixed_file(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """A log mixing good and bad lines; returns the file and, per bad line, a reason word."""
    level = make_level(1)
    wrong_types = {**level.model_dump(), "width": "10"}
    lines = [
        original_level_line(1),  # 1 good
        "this is not JSON",  # 2
        json.dumps([1, 2, 3]),  # 3
        json.dumps(
            {
                "system": ORIGINAL_SYSTEM,  # 4
                "input": "create_next_level\n\ndifficulty = 1",
            }
        ),
        json.dumps(
            {
                "input": "Make me a level please\n\ndifficulty = 1",  # 5
                "output": json.dumps(level.model_dump()),
            }
        ),
        original_map_line(level, jac_repr(unreachable_enemy_map())),  # 6
        original_map_line(level, jac_repr(out_of_bounds_enemy_map())),  # 7
        original_map_line(level, "Map_tiles(level="),  # 8
        json.dumps(
            {
                "system": ORIGINAL_SYSTEM,  # 9
                "input": "create_next_level\n\nlast_levels = []\ndifficulty = 1",
                "output": json.dumps(wrong_types),
            }
        ),
        "",  # 10 empty
        original_map_line(level, jac_repr(make_map(level))),  # 11 good
        "   ",  # 12 blank
    ]
    reasons = {
        2: "not JSON",
        3: "JSON object",
        4: "expected",
        5: "function name",
        6: "cannot be reached",
        7: "outside",
        8: "neither JSON nor",
        9: "does not match the output type",
    }
    return write_lines(tmp_path / "mixed.jsonl", lines), reasons


def test_bad_lines_are_reported_by_number_and_the_good_ones_stored(
    store: Store, tmp_path: Path
) -> None:
    path, reasons = mixed_file(tmp_path)

    report = import_file(store, path, tasks=TASKS)

    assert not report.ok
    assert [e.line for e in report.errors] == sorted(reasons)
    for error in report.errors:
        assert reasons[error.line] in error.reason, (error.line, error.reason)
    assert [e.line for e in report.errors if "semantic" in e.reason] == [6, 7]
    assert [e.line for e in report.errors if "(format)" in e.reason] == [9]
    assert report.lines == 12
    assert {name: r.added for name, r in report.results.items()} == {
        "create_next_level": 1,
        "create_next_map": 1,
    }


def test_the_cli_prints_each_bad_line_as_file_line_reason_and_exits_1(
    home: Path, tmp_path: Path
) -> None:
    path, reasons = mixed_file(tmp_path)

    result = runner.invoke(app, ["import", str(path)])

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    bad = re.findall(rf"^{re.escape(str(path))}:(\d+): (.+)$", result.stderr, re.MULTILINE)
    assert [int(n) for n, _ in bad] == sorted(reasons)
    for number, reason in bad:
        assert reasons[int(number)] in reason
    assert "2 examples added" in result.stdout
    assert f"{len(reasons)} bad lines" in result.stdout


def test_a_file_of_good_lines_imports_with_exit_status_0(home: Path, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "good.jsonl", [original_level_line(d) for d in (1, 2, 3)])
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "create_next_level: 3 added, 0 duplicates skipped" in result.stdout


# --- one transaction per file -----------------------------------------------------------------


def test_a_crash_mid_import_leaves_no_examples_behind(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 levels are written in batches of 500; the second batch fails, the first rolls back."""
    level = make_level(1)
    lines = [original_level_line(d) for d in range(1, 601)]
    lines.append(original_map_line(level, jac_repr(make_map(level))))
    path = write_lines(tmp_path / "big.jsonl", lines)

    original = Store._insert_ignore
    example_batches: list[int] = []

    def failing_insert(self: Store, table: sa.Table) -> Any:
        if table.name == "examples":
            example_batches.append(len(example_batches) + 1)
            if len(example_batches) == 2:
                raise sa.exc.OperationalError("INSERT INTO examples", {}, OSError("disk full"))
        return original(self, table)

    monkeypatch.setattr(Store, "_insert_ignore", failing_insert)
    with pytest.raises(StoreError, match="disk full"):
        import_file(store, path, tasks=TASKS)

    assert example_batches == [1, 2]  # the first batch really was written before the crash
    assert count_examples(store) == 0

    monkeypatch.setattr(Store, "_insert_ignore", original)
    report = import_file(store, path, tasks=TASKS)
    assert report.added == 601


# --- OpenAI chat JSONL ------------------------------------------------------------------------


def test_chat_import_infers_the_task_from_the_first_line_of_the_user_message(
    store: Store, tmp_path: Path
) -> None:
    level = make_level(2)
    path = write_lines(
        tmp_path / "chat.jsonl",
        [
            chat_line(
                "create_next_level\n\nlast_levels = []\ndifficulty = 2",
                json.dumps(level.model_dump()),
            ),
            chat_line(
                f"create_next_map\n\nlevel = {level!r}",
                json.dumps(make_map(level).model_dump()),
                system=None,
            ),
        ],
    )
    report = import_file(store, path, tasks=TASKS)
    assert report.ok
    assert {name: r.added for name, r in report.results.items()} == {
        "create_next_level": 1,
        "create_next_map": 1,
    }
    [example] = store.iter_examples("create_next_level")
    assert example["input"] == {"last_levels": [], "difficulty": 2}
    assert example["output"] == level.model_dump()


def test_chat_import_with_a_task_files_every_line_under_it(store: Store, tmp_path: Path) -> None:
    """``task=`` wins over the name in the message, e.g. for data logged under an old name."""
    level = make_level(3)
    path = write_lines(
        tmp_path / "renamed.jsonl",
        [
            chat_line(
                "make_level\n\nlast_levels = []\ndifficulty = 3", json.dumps(level.model_dump())
            )
        ],
    )
    report = import_file(store, path, tasks=TASKS, task="create_next_level")
    assert report.ok
    assert list(report.results) == ["create_next_level"]
    assert [e["output"] for e in store.iter_examples("create_next_level")] == [level.model_dump()]
    assert "make_level" not in store.task_names()


def test_chat_import_checks_answers_and_message_shape(store: Store, tmp_path: Path) -> None:
    level = make_level(1)
    path = write_lines(
        tmp_path / "chat-bad.jsonl",
        [
            json.dumps({"messages": "hello"}),
            json.dumps({"messages": [{"role": "user", "content": "create_next_level"}]}),
            chat_line(
                "create_next_level\n\nlast_levels = []\ndifficulty = 2",
                json.dumps(level.model_dump()),
            ),  # difficulty 1 answered for 2
        ],
    )
    report = import_file(store, path, tasks=TASKS)
    assert [(e.line, e.reason.split(":")[0]) for e in report.errors] == [
        (1, "'messages' must be a list of objects"),
        (2, "'messages' needs a user and an assistant message"),
        (3, "invalid output (semantic)"),
    ]
    assert count_examples(store) == 0


# --- export, and importing the export ---------------------------------------------------------


@pytest.fixture
def played(runtime: Jarvis) -> Jarvis:
    """Ten levels of the game through the runtime: 20 calls answered by the seeded oracle."""
    manager = LevelManager(runtime)
    for _ in range(10):
        manager.next_level()
    return runtime


def check_export_line(line: str, task: Task[Any]) -> None:
    """An export line is a 3-message chat whose answer is valid for the call it answers."""
    record = json.loads(line)
    assert list(record) == ["messages"]
    system, user, assistant = record["messages"]
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
    assert system["content"].startswith(task.instructions)
    func, args = parse_call_text(user["content"])
    assert func == task.name
    verdict = validate_answer(task, task.load_inputs(args), assistant["content"])
    assert verdict.valid, verdict.reason


@pytest.mark.parametrize("task", [create_next_level, create_next_map], ids=lambda t: t.name)
def test_export_writes_valid_chat_lines_per_split(
    played: Jarvis, store: Store, tmp_path: Path, task: Task[Any]
) -> None:
    stats = {s.name: s for s in store.task_stats()}[task.name]
    assert stats.examples_train > 0 and stats.examples_heldout > 0  # both splits are exercised
    assert stats.examples_train + stats.examples_heldout == 10

    counts = {}
    for split in ("train", "heldout", None):
        path = tmp_path / f"{task.name}-{split}.jsonl"
        counts[split] = export_file(store, task.name, path, tasks=played.tasks, split=split)
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == counts[split]
        for line in lines:
            check_export_line(line, task)
    assert counts == {
        "train": stats.examples_train,
        "heldout": stats.examples_heldout,
        None: stats.examples_train + stats.examples_heldout,
    }
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temp file left


def test_export_through_the_cli(played: Jarvis, store: Store, tmp_path: Path) -> None:
    stats = {s.name: s for s in store.task_stats()}["create_next_map"]
    expected = {
        "train": stats.examples_train,
        "heldout": stats.examples_heldout,
        "all": stats.examples_train + stats.examples_heldout,
    }
    for split, count in expected.items():
        path = tmp_path / f"maps[{split}].jsonl"  # brackets: not to be read as Rich markup
        result = runner.invoke(
            app, ["export", "create_next_map", "-o", str(path), "--split", split]
        )
        assert result.exit_code == 0, result.output
        assert f"wrote {count} {split} examples of create_next_map to {path}" in result.stdout
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == count
        for line in lines:
            check_export_line(line, create_next_map)


def test_an_export_imports_into_a_fresh_store_as_the_same_examples(
    played: Jarvis, store: Store, tmp_path: Path
) -> None:
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        for task in (create_next_level, create_next_map):
            path = tmp_path / f"{task.name}.jsonl"
            written = export_file(store, task.name, path, tasks=played.tasks, split=None)

            report = import_file(fresh, path, tasks=played.tasks)
            assert report.ok
            assert (report.added, report.duplicates) == (written, 0)
            assert examples_of(fresh, task.name) == examples_of(store, task.name)

            again = import_file(fresh, path, tasks=played.tasks)
            assert (again.added, again.duplicates) == (0, written)
        assert [(s.examples_train, s.examples_heldout) for s in fresh.task_stats()] == [
            (s.examples_train, s.examples_heldout) for s in store.task_stats()
        ]
    finally:
        fresh.close()


def test_the_cli_imports_an_export_into_another_home(
    played: Jarvis, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "levels.jsonl"
    written = export_file(store, "create_next_level", path, tasks=played.tasks, split=None)
    other_home = tmp_path / "other-home"
    # The other home has its own (SQLite) store, whatever this test's store is.
    monkeypatch.delenv("JARVIS_DATABASE_URL", raising=False)

    first = runner.invoke(app, ["--home", str(other_home), "import", str(path)])
    again = runner.invoke(app, ["--home", str(other_home), "import", str(path)])

    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert f"{written} examples added, 0 duplicates" in first.stdout
    assert f"0 examples added, {written} duplicates" in again.stdout
    other = Store(f"sqlite:///{other_home / 'jarvis.db'}")
    try:
        assert examples_of(other, "create_next_level") == examples_of(store, "create_next_level")
    finally:
        other.close()


def test_exporting_an_unknown_task_is_an_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(JarvisError, match="unknown task 'no_such_task'"):
        list(export_lines(store, "no_such_task", tasks=TASKS, split=None))
    result = runner.invoke(app, ["export", "no_such_task", "-o", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown task 'no_such_task'")
    assert not (tmp_path / "x.jsonl").exists()


# --- files that cannot be read at all ---------------------------------------------------------


def test_a_missing_file_is_an_import_file_error(store: Store, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(ImportFileError, match=r"cannot open .*nope\.jsonl: No such file"):
        import_file(store, missing, tasks=TASKS)


def test_a_file_that_is_not_utf8_is_an_import_file_error_and_stores_nothing(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(original_level_line(1).encode() + b"\n" + '"café"\n'.encode("latin-1"))
    with pytest.raises(ImportFileError, match="is not UTF-8 text"):
        import_file(store, path, tasks=TASKS)
    assert count_examples(store) == 0


@pytest.mark.parametrize("kind", ["missing", "not-utf8"])
def test_the_cli_reports_an_unreadable_file_in_one_line_with_exit_2(
    home: Path, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"{kind}[v1].jsonl"  # brackets: printed as they are, not as markup
    if kind == "not-utf8":
        path.write_bytes(b"\xff\xfe{}\n")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert str(path) in line
