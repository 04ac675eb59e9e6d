"""LoRA fine-tuning of the student on a CPU, readable top to bottom.

    base model (bf16, frozen) + LoRA adapters (fp32, trained) on the attention projections
    loss: cross-entropy on the answer tokens only; the LM head runs only at those positions
    batches: length-bucketed under a token budget; AdamW; linear warm-up then cosine decay

The LM head is the costliest layer of a small model with a large vocabulary (Gemma 3's 262k
tokens are ~170M of its 270M parameters), so it is applied to the answer positions alone:
prompt positions never need logits. bf16 weights are ~2.3x faster than fp32 on CPUs with
AVX512-BF16, with the same loss curve; the adapters stay fp32 so small updates are not lost.
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jarvis.models.loading import load_causal_lm, load_tokenizer
from jarvis.models.threads import set_threads
from jarvis.training.dataset import IGNORE, TokenizedExample, collate, length_batches


@dataclass
class TrainConfig:
    """Hyper-parameters, with defaults chosen for a 2-core CPU (see the README's table)."""

    rank: int = 16  # LoRA rank r
    alpha: int = 32  # LoRA scaling alpha (effective scale alpha / r)
    dropout: float = 0.0  # LoRA dropout; 0 keeps small-data runs deterministic and fast
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    epochs: float = 3.0  # passes over the training examples (fractions allowed)
    max_steps: int | None = None  # stop after this many optimizer steps, if set
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.06
    weight_decay: float = 0.0
    tokens_per_batch: int = 2048  # padded tokens per batch (length-bucketed)
    max_batch: int = 16  # examples per batch at most
    max_length: int = 1536  # longer examples are skipped (and counted)
    seed: int = 0
    threads: int | None = None  # torch threads; default: all cores
    dtype: str = "bfloat16"  # of the frozen base weights: "bfloat16" or "float32"

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise ValueError("rank and alpha must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.epochs <= 0 and not self.max_steps:
            raise ValueError("epochs must be > 0 (or set max_steps)")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")
        if self.tokens_per_batch < 16 or self.max_batch < 1 or self.max_length < 16:
            raise ValueError("tokens_per_batch, max_batch and max_length are too small")
        if self.dtype not in ("bfloat16", "float32"):
            raise ValueError("dtype must be bfloat16 or float32")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    step: int
    total_steps: int
    epoch: float
    loss: float
    examples_per_s: float
    seconds_per_step: float
    eta_s: float
    learning_rate: float


@dataclass
class TrainResult:
    steps: int
    final_loss: float
    first_loss: float
    losses: list[float]
    examples: int
    skipped_too_long: int
    duration_s: float
    examples_per_s: float
    seconds_per_step: float
    peak_rss_mb: float


def load_for_training(base_path: Path, cfg: TrainConfig) -> tuple[Any, Any]:
    """The frozen base model with fresh LoRA adapters, and its tokenizer."""
    from peft import LoraConfig, get_peft_model  # the train extra

    tokenizer = load_tokenizer(base_path)
    model = load_causal_lm(base_path, cfg.dtype)
    lora = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)  # adapters in fp32 (autocast_adapter_dtype)
    return peft_model, tokenizer


def answer_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over answer tokens, running the LM head only where it is needed."""
    import torch  # the train extra
    import torch.nn.functional as F

    base = model.get_base_model()
    hidden = base.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state  # (B, T, d)
    # position t predicts token t+1: keep the positions whose *next* token is an answer token
    targets = batch["labels"][:, 1:]  # (B, T-1)
    keep = targets != IGNORE
    h = hidden[:, :-1][keep]  # (N, d), N = answer tokens in the batch
    logits = base.get_output_embeddings()(h).float()  # (N, vocab)
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return F.cross_entropy(logits, targets[keep])


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    warmup = max(1, int(total * cfg.warmup_fraction))
    if step < warmup:
        return cfg.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def plan_batches(
    examples: list[TokenizedExample], cfg: TrainConfig
) -> tuple[list[list[TokenizedExample]], int, int]:
    """Every step's batch, in order: (schedule, batches per epoch, steps). Each epoch is
    bucketed afresh (its own seed); ``max_steps`` cuts the run short, or cycles on past the
    epochs."""
    epoch_batches = [
        length_batches(examples, cfg.tokens_per_batch, cfg.max_batch, cfg.seed + e)
        for e in range(max(1, math.ceil(cfg.epochs)))
    ]
    per_epoch = len(epoch_batches[0])
    total = max(1, round(per_epoch * cfg.epochs))
    if cfg.max_steps:
        total = min(total, cfg.max_steps) if cfg.epochs > 0 else cfg.max_steps
    schedule = [b for epoch in epoch_batches for b in epoch]
    while len(schedule) < total:  # max_steps beyond the epochs: keep cycling
        schedule.extend(schedule[:per_epoch])
    return schedule, per_epoch, total


def train(
    model: Any,
    tokenizer: Any,
    examples: list[TokenizedExample],
    cfg: TrainConfig,
    *,
    skipped_too_long: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train the LoRA adapters of ``model`` in place; return the figures of the run."""
    import torch  # the train extra

    if not examples:
        raise ValueError("no training examples (all too long, or none stored)")
    set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    schedule, per_epoch, total = plan_batches(examples, cfg)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    model.train()
    losses: list[float] = []
    seen = 0
    started = time.perf_counter()
    for step in range(total):
        if should_stop is not None and should_stop():
            break
        lr = lr_at(step, total, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = collate(schedule[step], pad_id)
        loss = answer_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.item()))
        seen += len(schedule[step])
        elapsed = time.perf_counter() - started
        if on_progress is not None:
            per_step = elapsed / (step + 1)
            on_progress(
                Progress(
                    step=step + 1,
                    total_steps=total,
                    epoch=(step + 1) / per_epoch,
                    loss=losses[-1],
                    examples_per_s=seen / elapsed,
                    seconds_per_step=per_step,
                    eta_s=per_step * (total - step - 1),
                    learning_rate=lr,
                )
            )
    model.eval()
    duration = time.perf_counter() - started
    steps = len(losses)
    tail = losses[-max(1, min(10, steps // 5)) :]
    return TrainResult(
        steps=steps,
        final_loss=sum(tail) / len(tail),
        first_loss=losses[0],
        losses=losses,
        examples=len(examples),
        skipped_too_long=skipped_too_long,
        duration_s=duration,
        examples_per_s=seen / duration if duration else 0.0,
        seconds_per_step=duration / steps if steps else 0.0,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
