"""Grammar coverage on real-world schemas: a seeded sample of JSONSchemaBench, old vs new.

JSONSchemaBench (github.com/guidance-ai/jsonschemabench, ~10k schemas in 10 categories) is not
vendored (its repository states no licence): clone it, then run from this repository

    python benchmarks/jsonschemabench.py --data PATH/jsonschemabench/data [--per-category 50]
        [--answers 60] [--home H]

1. **Compile rate**: ``--per-category`` schemas drawn per category with a fixed seed (500 by
   default), compiled by the hand-written grammar (loaded from git, :mod:`baseline`) and by
   llguidance (:mod:`jarvis.serving.grammar`) for the engine's vocabulary.
2. **Answers**: for ``--answers`` of the schemas both compiled (seeded, over categories), the
   engine's base model writes one answer under each grammar (greedy, free chat: "write a JSON
   value for this schema"); each is checked with ``jsonschema`` against the schema: share
   valid, share cut off by the token budget (``--max-tokens``), p50 seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
from baseline import Baseline, TupleRows, load_baseline  # benchmarks/baseline.py

from jarvis.core.backends import GREEDY
from jarvis.runtime import Settings
from jarvis.runtime.configs import engine_config
from jarvis.serving.engine import Engine
from jarvis.serving.grammar import UnsupportedSchema, compile_schema

PROMPT = "Write one JSON value that is valid under this JSON Schema. Answer with the JSON only."


def sample(data: Path, per_category: int, seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(category, file name, schema), ``per_category`` from each category, seeded."""
    rng = random.Random(seed)
    out = []
    for category in sorted(p for p in data.iterdir() if p.is_dir()):
        files = sorted(category.glob("*.json"))
        for path in rng.sample(files, min(per_category, len(files))):
            schema = json.loads(path.read_text("utf-8"))
            out.append((category.name, path.name, schema))
    return out


def compiles(
    engine: Engine, old: Baseline, schemas: list[tuple[str, str, dict[str, Any]]]
) -> tuple[dict[str, dict[str, Any]], list[int]]:
    old_grammar = old[0]
    vocab = engine._vocab
    assert vocab is not None
    per: dict[str, dict[str, Any]] = {"old": {}, "new": {}}
    both: list[int] = []
    for which in per:
        per[which] = {"ok": Counter(), "total": Counter(), "reasons": Counter(), "ms": []}
    for i, (category, _, schema) in enumerate(schemas):
        ok = {}
        for which in ("old", "new"):
            f = per[which]
            f["total"][category] += 1
            started = time.perf_counter()
            try:
                if which == "old":
                    old_grammar.compile_schema(schema)
                else:
                    compile_schema(schema, vocab)
                ok[which] = True
                f["ok"][category] += 1
            except (UnsupportedSchema, old_grammar.UnsupportedSchema) as exc:
                ok[which] = False
                f["reasons"][str(exc)[:60]] += 1
            except (RecursionError, ValueError, KeyError, TypeError) as exc:
                ok[which] = False
                f["reasons"][f"{type(exc).__name__}"] += 1
            f["ms"].append(1000 * (time.perf_counter() - started))
        if ok["old"] and ok["new"]:
            both.append(i)
    return per, both


def answer(
    engine: Engine, old: Baseline, schema: dict[str, Any], which: str, max_tokens: int
) -> tuple[str, bool]:
    """One answer under the old or the new grammar; (text, finished)."""
    vocab = engine._vocab
    assert vocab is not None
    text = json.dumps(schema, separators=(",", ":"))[:3000]
    messages = [{"role": "system", "content": PROMPT}, {"role": "user", "content": text}]
    if which == "new":
        out = engine.chat(
            messages, adapter=None, sampling=GREEDY, max_new_tokens=max_tokens, schema=schema
        )
        return out.text, out.finished
    old_grammar, old_guide, old_decode = old
    guide = old_guide.Guide(
        old_grammar.compile_schema(schema),
        old_guide.Vocabulary(vocab.texts, vocab.eos_ids, vocab.encode),
    )
    prompt = engine.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    with engine._lock:
        engine._use(None)
        done = old_decode.decode(
            TupleRows(engine._lm),
            list(prompt),
            sampling=GREEDY,
            max_new_tokens=max_tokens,
            eos_ids=vocab.eos_ids,
            guide=guide,
        )
    return engine.tokenizer.decode(done.tokens, skip_special_tokens=True).strip(), done.finished


def is_valid(schema: dict[str, Any], text: str) -> bool:
    try:
        instance = json.loads(text)
    except json.JSONDecodeError:
        return False
    validator = jsonschema.validators.validator_for(schema)(schema)
    try:
        return bool(validator.is_valid(instance))
    except (jsonschema.exceptions.SchemaError, jsonschema.exceptions.RefResolutionError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--per-category", type=int, default=50)
    parser.add_argument("--answers", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    # one answer at a time: the old loop drives the serial engine, the new one too (same work)
    settings = Settings(home=args.home, batch_size=1) if args.home else Settings(batch_size=1)
    old = load_baseline()
    engine = Engine(engine_config(settings))
    engine.tokenizer  # noqa: B018  # loads the engine and its vocabulary
    schemas = sample(args.data, args.per_category, args.seed)
    per, both = compiles(engine, old, schemas)
    report: dict[str, Any] = {"schemas": len(schemas), "compile": {}, "answers": {}}
    for which, f in per.items():
        report["compile"][which] = {
            "compiled": sum(f["ok"].values()) / len(schemas),
            "by_category": {c: f"{f['ok'][c]}/{f['total'][c]}" for c in sorted(f["total"])},
            "ms_p50": statistics.median(f["ms"]),
            "top_refusals": f["reasons"].most_common(6),
        }
        print(which, json.dumps(report["compile"][which]))
    rng = random.Random(args.seed + 1)
    chosen = rng.sample(both, min(args.answers, len(both)))
    for which in ("old", "new"):
        valid = finished = 0
        seconds = []
        for i in chosen:
            schema = schemas[i][2]
            started = time.perf_counter()
            text, done = answer(engine, old, schema, which, args.max_tokens)
            seconds.append(time.perf_counter() - started)
            finished += done
            valid += is_valid(schema, text)
        report["answers"][which] = {
            "schemas": len(chosen),
            "valid": valid / max(1, len(chosen)),
            "finished": finished / max(1, len(chosen)),
            "p50_s": statistics.median(seconds) if seconds else None,
        }
        print(which, json.dumps(report["answers"][which]))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
