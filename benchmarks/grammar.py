"""Constrained decoding on llguidance vs the hand-written grammar it replaced, in one run.

Run from the repository (the baseline is read from git): ``python benchmarks/grammar.py
[--home H] [--baseline REV] [--levels 200] [--maps 40]``.

1. **Compile per call, mask per token** (no model): the per-call schemas of game-like level
   and map calls, and a string-heavy schema, walked token by token along a reference answer
   (the oracle's; texts with non-ASCII characters for the strings). Also: how many reference
   answers each grammar accepts.
2. **Answers** (the engine's model, greedy, the task's steering): ``--levels`` level calls and
   ``--maps`` map calls decoded under each grammar with the same model and adapter (the
   latest version of each task in ``--home``; the bare base where there is none): parse and
   validity rates, and p50 latency per answer.
3. **Batched** (``--batched CLIENTS``): the same calls on the continuous-batching engine
   (``JARVIS_BATCH_SIZE``), CLIENTS at a time: parse and validity rates, the share of answers
   identical to the serial engine's, and the wall time of both.

The baseline's modules (``serving/grammar.py``, ``guide.py``, ``decode.py`` at ``--baseline``)
are loaded from git under other names; both run on the same vocabulary and model.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from baseline import BASELINE, Baseline, TupleRows, load_baseline  # benchmarks/baseline.py

from jarvis.benchmarks.training import level_inputs, map_inputs
from jarvis.core.backends import GREEDY
from jarvis.core.codec import from_student, student_answer, uses_positional
from jarvis.core.tasks import Task
from jarvis.core.validate import validate_answer
from jarvis.registry import Adapter, Registry
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.tasks import create_next_level, create_next_map
from jarvis.runtime import Settings
from jarvis.runtime.configs import engine_config
from jarvis.serving.engine import Engine
from jarvis.serving.grammar import compile_schema
from jarvis.store import Store

NOTE_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 40},
        "body": {"type": "string", "maxLength": 200},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 4},
    },
    "required": ["title", "body", "tags"],
    "additionalProperties": False,
}
TEXTS = [
    "Level design notes",
    "Caves of the north: narrow corridors, two exits, a locked door.",
    "日本語テキスト",
    "Überraschung! Ein Schlüssel liegt hinter der Tür.",
    "Les ennemis patrouillent près de l'entrée; évitez-les.",
    "emoji 🎮 and symbols ± ≤ ≥",
]


def note_answer(rng: random.Random) -> str:
    note = {
        "title": rng.choice(TEXTS)[:40],
        "body": " ".join(rng.sample(TEXTS, 3))[:200],
        "tags": [t[:16] for t in rng.sample(TEXTS, 2)],
    }
    return json.dumps(note, separators=(",", ":"), ensure_ascii=False)


def cases(n: int) -> dict[str, list[tuple[dict[str, Any], bool, str]]]:
    """(schema, positional, reference answer) per kind of schema."""
    rng = random.Random(7)
    out: dict[str, list[tuple[dict[str, Any], bool, str]]] = {"level": [], "map": [], "strings": []}
    for _ in range(n):
        inputs = level_inputs(rng)
        schema = create_next_level.call_schema(inputs)
        answer = oracle_level(inputs["last_levels"], inputs["difficulty"], rng)
        assert schema is not None
        out["level"].append((schema, True, student_answer(create_next_level, answer)))
        m = map_inputs(rng)
        schema = create_next_map.call_schema(m)
        assert schema is not None
        out["map"].append(
            (schema, True, student_answer(create_next_map, oracle_map(m["level"], rng)))
        )
        out["strings"].append((NOTE_SCHEMA, False, note_answer(rng)))
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def micro(engine: Engine, old: Baseline, n: int) -> list[dict[str, Any]]:
    old_grammar, old_guide, _ = old
    tokenizer = engine.tokenizer
    vocab = engine._vocab
    assert vocab is not None
    old_vocab = old_guide.Vocabulary(vocab.texts, vocab.eos_ids, vocab.encode)
    rows = []
    for kind, items in cases(n).items():
        figures: dict[str, dict[str, list[float]]] = {
            "old": {"compile": [], "mask": [], "ok": []},
            "new": {"compile": [], "mask": [], "ok": []},
        }
        for schema, positional, answer in items:
            tokens = tokenizer.encode(answer, add_special_tokens=False)
            # the hand-written grammar, compiled per call as the engine did (its caches cold)
            started = time.perf_counter()
            try:
                guide = old_guide.Guide(
                    old_grammar.compile_schema(schema, positional=positional), old_vocab
                )
            except old_grammar.UnsupportedSchema:
                guide = None
            figures["old"]["compile"].append(time.perf_counter() - started)
            ok = guide is not None
            state = guide.initial if guide is not None else None
            for token in tokens if guide is not None else []:
                started = time.perf_counter()
                allowed = guide.allowed(state)
                figures["old"]["mask"].append(time.perf_counter() - started)
                if token not in allowed:
                    ok = False
                    break
                state = guide.advance(state, token)
            figures["old"]["ok"].append(
                float(ok and state is not None and old_grammar.accepts(state))
            )
            # llguidance
            started = time.perf_counter()
            grammar = compile_schema(schema, vocab, positional=positional)
            matcher = grammar.matcher()
            figures["new"]["compile"].append(time.perf_counter() - started)
            ok = True
            for token in tokens:
                started = time.perf_counter()
                allowed_ids = matcher.allowed()
                figures["new"]["mask"].append(time.perf_counter() - started)
                if token not in allowed_ids or not matcher.consume([token]):
                    ok = False
                    break
            figures["new"]["ok"].append(float(ok and matcher.accepting))
        for which, f in figures.items():
            rows.append(
                {
                    "schema": kind,
                    "grammar": which,
                    "calls": len(items),
                    "compile_ms_p50": 1000 * pct(f["compile"], 50),
                    "compile_ms_max": 1000 * max(f["compile"]),
                    "mask_us_p50": 1e6 * pct(f["mask"], 50),
                    "mask_us_p99": 1e6 * pct(f["mask"], 99),
                    "mask_us_max": 1e6 * max(f["mask"]) if f["mask"] else float("nan"),
                    "reference_accepted": statistics.mean(f["ok"]),
                }
            )
    return rows


def latest_adapter(registry: Registry, store: Store, task: str) -> Adapter | None:
    versions = store.versions.of_task(task)
    return registry.adapter(task, versions[-1]["name"]) if versions else None


def answers(
    engine: Engine,
    old: Baseline,
    registry: Registry,
    store: Store,
    task: Task[Any],
    calls: list[dict[str, Any]],
    max_tokens: int,
) -> list[dict[str, Any]]:
    old_grammar, old_guide, old_decode = old
    vocab = engine._vocab
    assert vocab is not None
    old_vocab = old_guide.Vocabulary(vocab.texts, vocab.eos_ids, vocab.encode)
    adapter = latest_adapter(registry, store, task.name)
    rows = []
    for which in ("old", "new"):
        parsed = valid = 0
        seconds: list[float] = []
        texts: list[str] = []
        for inputs in calls:
            started = time.perf_counter()
            if which == "new":
                out = engine.generate(
                    task, inputs, adapter=adapter, sampling=GREEDY, max_new_tokens=max_tokens
                )
                text = out.text
            else:
                schema = task.call_schema(inputs)
                assert schema is not None
                guide = old_guide.Guide(
                    old_grammar.compile_schema(schema, positional=uses_positional(task)), old_vocab
                )
                with engine._lock:
                    engine._use(adapter)
                    done = old_decode.decode(
                        TupleRows(engine._lm),
                        engine.prompt(task, inputs),
                        sampling=GREEDY,
                        max_new_tokens=max_tokens,
                        eos_ids=vocab.eos_ids,
                        guide=guide,
                        steer=task.steer(inputs),
                    )
                raw = engine.tokenizer.decode(done.tokens, skip_special_tokens=True).strip()
                text = from_student(task, raw)
            seconds.append(time.perf_counter() - started)
            texts.append(text)
            verdict = validate_answer(task, inputs, text)
            parsed += verdict.stage != "format"
            valid += verdict.valid
        rows.append(
            {
                "task": task.name,
                "grammar": which,
                "adapter": adapter.name if adapter else "base",
                "calls": len(calls),
                "parsed": parsed / len(calls),
                "valid": valid / len(calls),
                "p50_s": pct(seconds, 50),
                "wall_s": round(sum(seconds), 1),
                "texts": texts,
            }
        )
    return rows


def batched(
    engine: Engine,
    registry: Registry,
    store: Store,
    task: Task[Any],
    calls: list[dict[str, Any]],
    max_tokens: int,
    clients: int,
    serial: list[str],
) -> dict[str, Any]:
    """The calls on the batching engine, ``clients`` at a time, against the serial answers."""
    adapter = latest_adapter(registry, store, task.name)

    def one(inputs: dict[str, Any]) -> str:
        out = engine.generate(
            task, inputs, adapter=adapter, sampling=GREEDY, max_new_tokens=max_tokens
        )
        return out.text

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        texts = list(pool.map(one, calls))
    wall = time.perf_counter() - started
    verdicts = [
        validate_answer(task, inputs, text) for inputs, text in zip(calls, texts, strict=True)
    ]
    return {
        "task": task.name,
        "grammar": f"new, batched ({clients} clients)",
        "calls": len(calls),
        "parsed": sum(v.stage != "format" for v in verdicts) / len(calls),
        "valid": sum(v.valid for v in verdicts) / len(calls),
        "same_as_serial": sum(a == b for a, b in zip(texts, serial, strict=True)) / len(calls),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--micro", type=int, default=40, help="calls per schema kind")
    parser.add_argument("--levels", type=int, default=200)
    parser.add_argument("--maps", type=int, default=40)
    parser.add_argument("--batched", type=int, default=0, help="clients on the batching engine")
    args = parser.parse_args()
    # one answer at a time: the old loop drives the serial engine, the new one too (same work)
    settings = Settings(home=args.home, batch_size=1) if args.home else Settings(batch_size=1)
    old = load_baseline(args.baseline)
    engine = Engine(engine_config(settings))
    print(f"engine: {engine.tokenizer.__class__.__name__}, backend {engine.backend}")
    result: dict[str, Any] = {"micro": micro(engine, old, args.micro), "answers": []}
    for row in result["micro"]:
        print(json.dumps(row))
    store = Store(settings.resolved_database_url)
    registry = Registry(store, settings.models_dir)
    rng = random.Random(11)
    serials: list[tuple[Task[Any], list[dict[str, Any]], list[str]]] = []
    for task, calls in (
        (create_next_level, [level_inputs(rng) for _ in range(args.levels)]),
        (create_next_map, [map_inputs(rng) for _ in range(args.maps)]),
    ):
        if not calls:
            continue
        rows = answers(engine, old, registry, store, task, calls, 2000)
        serials.append((task, calls, rows[-1]["texts"]))
        for row in rows:
            del row["texts"]
            print(json.dumps(row))
            result["answers"].append(row)
    if args.batched:
        # one llama.cpp engine at a time: the serial one is closed before the batching one runs
        engine.close()
        batch_size = Settings.model_fields["batch_size"].default
        batching = Engine(engine_config(settings.model_copy(update={"batch_size": batch_size})))
        for task, calls, serial in serials:
            row = batched(batching, registry, store, task, calls, 2000, args.batched, serial)
            print(json.dumps(row))
            result["answers"].append(row)
        batching.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
