"""Constrained decoding with a real (tiny, untrained) model: answers parse by construction."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from jarvis.core.backends import GREEDY, Sampling
from jarvis.core.codec import from_student, student_answer
from jarvis.models.tokens import prompt_ids
from jarvis.rpg.models import Map
from jarvis.rpg.oracle import oracle_level, oracle_map
from jarvis.rpg.tasks import create_next_map
from jarvis.serving.decode import decode
from jarvis.serving.grammar import Grammar, Vocabulary, compile_schema
from jarvis.serving.torch_lm import TorchLM


@pytest.fixture(scope="module")
def tiny(tiny_base: Path) -> tuple[Any, Any, Vocabulary]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.bfloat16).eval()
    return model, tokenizer, Vocabulary.from_tokenizer(tokenizer, [tokenizer.eos_token_id])


def map_guide(vocab: Vocabulary, difficulty: int) -> tuple[dict[str, Any], Grammar]:
    level = oracle_level([], difficulty, random.Random(difficulty))
    inputs = {"level": level}
    schema = create_next_map.call_schema(inputs)
    assert schema is not None
    return inputs, compile_schema(schema, vocab, positional=True)


def test_few_tokens_are_allowed_and_the_answer_tokens_are_among_them(
    tiny: tuple[Any, Any, Vocabulary],
) -> None:
    _, _, vocab = tiny
    inputs, grammar = map_guide(vocab, 3)
    answer = student_answer(create_next_map, oracle_map(inputs["level"], random.Random(1)))
    matcher = grammar.matcher()
    for token in vocab.encode(answer):
        allowed = matcher.allowed()
        assert token in allowed and len(allowed) < 200  # digits, brackets, commas, merges
        assert matcher.consume([token])
    assert matcher.accepting
    assert tuple(matcher.allowed()) == vocab.eos_ids  # complete: only the end remains


def test_forced_text_is_the_level_the_map_must_repeat(tiny: tuple[Any, Any, Vocabulary]) -> None:
    _, tokenizer, vocab = tiny
    inputs, grammar = map_guide(vocab, 2)
    level = inputs["level"]
    forced = tokenizer.decode(grammar.matcher().forced_tokens())
    assert forced.startswith(f"[[{level.name},{level.difficulty},")


@pytest.mark.parametrize("difficulty", [1, 5, 12])
def test_an_untrained_model_writes_a_well_formed_in_bounds_map_under_the_grammar(
    tiny: tuple[Any, Any, Vocabulary], difficulty: int
) -> None:
    model, tokenizer, vocab = tiny
    inputs, guide = map_guide(vocab, difficulty)
    level = inputs["level"]
    prompt = prompt_ids(tokenizer, create_next_map, inputs)
    out = decode(
        TorchLM(model),
        prompt,
        sampling=Sampling(temperature=1.0, seed=difficulty),
        max_new_tokens=2000,
        eos_ids=vocab.eos_ids,
        grammar=guide,
    )
    assert out.finished
    assert out.sampled < len(out.tokens)  # brackets and the level were forced, not sampled
    text = from_student(create_next_map, tokenizer.decode(out.tokens))
    game_map = Map.model_validate_json(text)  # parses: a random model, a valid shape
    assert game_map.level == level
    assert len(game_map.walls) == level.num_wall
    assert len(game_map.enemies) == level.num_enemies
    cells = [game_map.player_pos, *game_map.enemies, *game_map.small_obstacles]
    cells += [p for w in game_map.walls for p in (w.start_pos, w.end_pos)]
    assert all(0 <= p.x < level.width and 0 <= p.y < level.height for p in cells)


def test_without_the_grammar_the_same_model_writes_no_map(
    tiny: tuple[Any, Any, Vocabulary],
) -> None:
    model, tokenizer, vocab = tiny
    inputs, _ = map_guide(vocab, 1)
    prompt = prompt_ids(tokenizer, create_next_map, inputs)
    out = decode(TorchLM(model), prompt, sampling=GREEDY, max_new_tokens=40, eos_ids=vocab.eos_ids)
    text = from_student(create_next_map, tokenizer.decode(out.tokens))
    with pytest.raises(ValueError):
        Map.model_validate_json(text)


def test_seeded_sampling_repeats_and_the_budget_is_respected(
    tiny: tuple[Any, Any, Vocabulary],
) -> None:
    model, tokenizer, vocab = tiny
    inputs, guide = map_guide(vocab, 4)
    prompt = prompt_ids(tokenizer, create_next_map, inputs)
    lm = TorchLM(model)

    def run(seed: int, budget: int = 2000) -> list[int]:
        sampling = Sampling(temperature=0.9, top_p=0.95, seed=seed)
        out = decode(
            lm,
            prompt,
            sampling=sampling,
            max_new_tokens=budget,
            eos_ids=vocab.eos_ids,
            grammar=guide,
        )
        assert out.finished == (budget == 2000)
        return out.tokens

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert len(run(3, budget=25)) == 25


@pytest.mark.parametrize("difficulty", [1, 6])
def test_with_the_maps_steering_even_an_untrained_model_writes_playable_maps(
    tiny: tuple[Any, Any, Vocabulary], difficulty: int
) -> None:
    from jarvis.rpg.rules import check_map

    model, tokenizer, vocab = tiny
    inputs, guide = map_guide(vocab, difficulty)
    out = decode(
        TorchLM(model),
        prompt_ids(tokenizer, create_next_map, inputs),
        sampling=Sampling(temperature=1.0, seed=difficulty),
        max_new_tokens=2000,
        eos_ids=vocab.eos_ids,
        grammar=guide,
        steer=create_next_map.steer(inputs),
    )
    game_map = Map.model_validate_json(from_student(create_next_map, tokenizer.decode(out.tokens)))
    assert check_map(game_map, inputs["level"]) is None
    assert out.steered > 0  # a random model's picks were refused, and replaced


def test_the_torch_backend_reuses_its_kv_cache_exactly(tiny: tuple[Any, Any, Vocabulary]) -> None:
    import numpy as np
    import torch

    model, _, _ = tiny
    lm = TorchLM(model)
    lm.begin()
    lm.scores([1, 2, 3, 4, 5], None)
    step = lm.scores([6], None)  # reads one new token on top of the cache
    with torch.inference_mode():
        full = model(input_ids=torch.tensor([[1, 2, 3, 4, 5, 6]])).logits[0, -1].float().numpy()
    assert np.allclose(step, full, atol=1e-2)
    rows = np.array([7, 8, 9])
    lm.begin()
    lm.scores([1, 2, 3, 4, 5], None)
    assert np.allclose(lm.scores([6], rows), full[rows], atol=1e-2)  # only those LM-head rows
