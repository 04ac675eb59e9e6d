"""The engine's vocabulary (SmolLM2's tokenizer, as the tiny base ships it), built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from jarvis.serving.grammar import Vocabulary


@pytest.fixture(scope="session")
def vocab(tiny_base: Path) -> Vocabulary:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    return Vocabulary.from_tokenizer(tokenizer, [tokenizer.eos_token_id])
