"""LoRA training on the tiny base: the loss goes down, only the answer is learned, and the
adapter is saved in the standard PEFT format."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from helpers.threads import THREADS
from jarvis.rpg import create_next_level, oracle_level
from jarvis.training.dataset import (
    IGNORE,
    TokenizedExample,
    length_batches,
    repeats_for,
    tokenize_example,
    traffic_weighted,
)
from jarvis.training.trainer import TrainConfig, load_for_training, train


def level_examples(tokenizer: object, n: int) -> list:  # type: ignore[type-arg]
    rng = random.Random(0)
    out = []
    for _ in range(n):
        d = rng.randint(1, 5)
        inputs = create_next_level.bind([], d)
        out.append(
            tokenize_example(tokenizer, create_next_level, inputs, oracle_level([], d, rng), None)
        )
    return out


def test_labels_cover_only_the_answer(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    ex = level_examples(tok, 1)[0]
    answer = [t for t, label in zip(ex.input_ids, ex.labels, strict=True) if label != IGNORE]
    text = tok.decode(answer)
    assert text.startswith("[1,")  # the positional answer: name first, then difficulty …
    assert text.rstrip().endswith("<|im_end|>")  # the model learns to stop
    prompt = tok.decode(
        [t for t, label in zip(ex.input_ids, ex.labels, strict=True) if label == IGNORE]
    )
    assert "create_next_level\n\nlast_levels = []" in prompt


def test_length_batches_respect_the_token_budget(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    examples = level_examples(tok, 30)
    batches = length_batches(examples, tokens_per_batch=400, max_batch=8, seed=1)
    assert sum(len(b) for b in batches) == 30
    for batch in batches:
        assert len(batch) <= 8
        assert max(len(e) for e in batch) * len(batch) <= 400 or len(batch) == 1


def test_recurring_examples_weigh_more_but_never_drown_the_rest() -> None:
    assert [repeats_for(seen) for seen in (0, 1, 2, 3, 4, 7, 8, 100)] == [1, 1, 2, 2, 3, 3, 4, 4]
    once = TokenizedExample([1, 2], [IGNORE, 2], example_id=1)
    often = TokenizedExample([3, 4], [IGNORE, 4], example_id=2)
    unstored = TokenizedExample([5, 6], [IGNORE, 6], example_id=None)
    weighted = traffic_weighted([once, often, unstored], {1: 1, 2: 100})
    assert [ex.example_id for ex in weighted] == [1, 2, 2, 2, 2, None]


def test_loss_goes_down_and_the_adapter_is_a_peft_adapter(tiny_base: Path, tmp_path: Path) -> None:
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = TrainConfig(
        epochs=5,
        learning_rate=3e-2,
        rank=8,
        alpha=16,
        tokens_per_batch=1024,
        target_modules=modules,
        threads=THREADS,
    )
    model, tok = load_for_training(tiny_base, cfg)
    result = train(model, tok, level_examples(tok, 24), cfg)
    assert result.steps >= 10
    assert result.final_loss < result.first_loss * 0.5
    model.save_pretrained(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 8
    assert set(config["target_modules"]) == set(modules)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_training_config_is_checked() -> None:
    with pytest.raises(ValueError, match="rank"):
        TrainConfig(rank=0)
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(dtype="float8")


def test_no_examples_is_a_clear_error(tiny_base: Path) -> None:
    cfg = TrainConfig(max_steps=1)
    model, tok = load_for_training(tiny_base, cfg)
    with pytest.raises(ValueError, match="no training examples"):
        train(model, tok, [], cfg)


def test_replay_rounds_train_again_on_every_example_not_yet_learned(tiny_base: Path) -> None:
    """After its epoch, each round checks every example and replays the unlearned ones: with
    a bar no answer can clear (every token at probability 1), all of them, every round."""
    cfg = TrainConfig(
        epochs=1,
        learning_rate=3e-2,
        rank=8,
        alpha=16,
        tokens_per_batch=1024,
        threads=THREADS,
        replay_rounds=3,
        learned_at=1.0,
    )
    model, tok = load_for_training(tiny_base, cfg)
    examples = level_examples(tok, 8)
    epoch_steps = len(length_batches(examples, 1024, cfg.max_batch, cfg.seed))

    result = train(model, tok, examples, cfg)

    assert result.replay_rounds == 3
    assert result.steps >= epoch_steps + 3  # at least one step per round
    assert result.learned == 0.0


def test_a_time_budget_stops_replay_rounds_from_starting(tiny_base: Path) -> None:
    cfg = TrainConfig(
        epochs=1,
        rank=8,
        alpha=16,
        tokens_per_batch=1024,
        threads=THREADS,
        replay_rounds=6,
        learned_at=1.0,
        time_budget_s=1e-6,
    )
    model, tok = load_for_training(tiny_base, cfg)
    result = train(model, tok, level_examples(tok, 4), cfg)
    assert result.replay_rounds == 0


def test_the_fit_of_an_answer_says_whether_greedy_would_write_it() -> None:
    from jarvis.training.trainer import AnswerFit

    assert AnswerFit(right=True, least=0.95).learned(0.9)
    assert not AnswerFit(right=True, least=0.5).learned(0.9)  # right, but unsure
    assert not AnswerFit(right=False, least=0.95).learned(0.9)
