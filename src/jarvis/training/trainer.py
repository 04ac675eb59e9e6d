"""LoRA fine-tuning of the student on a CPU, readable top to bottom.

    base model (bf16, frozen) + LoRA adapters (fp32, trained) on attention and MLP
    loss: cross-entropy on the answer tokens only; the LM head runs only at those positions
    batches: length-bucketed under a token budget; AdamW; linear warm-up then cosine decay
    epochs, then replay rounds: every example is checked, the ones not yet learned go again

Replay is what makes the student say what the teacher says. After two epochs a 135M model
answers most inputs right but not the rare ones, and a rare input can be the one every user
sees first (a new game's level 1: one distinct example among hundreds). Every training step
also tells, for free, how well the model knew each answer of its batch (would greedy decoding
write it, how sure was it of its least sure token). Each round replays the examples whose
last such check said "not yet learned" (a token below ``learned_at``), then checks just those
again without gradients (a step's own check precedes its update); rounds stop when all
are learned, after ``replay_rounds``, at ``max_steps`` or at ``time_budget_s``. Measured on
300 level examples (README, *Agreement*): held-out exact match 75% after two epochs, 100%
with replay.

The LM head is the costliest layer of a small model with a large vocabulary (Gemma 3's 262k
tokens are ~170M of its 270M parameters), so it is applied to the answer positions alone:
prompt positions never need logits. bf16 weights are ~2.3x faster than fp32 on CPUs with
AVX512-BF16 or AMX, with the same loss curve, and some 68x slower on CPUs without them (torch
emulates them): ``dtype="auto"`` picks per CPU (:func:`jarvis.models.loading.resolve_dtype`).
The adapters stay fp32 so small updates are not lost.
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

from jarvis.core.task_settings import LORA_TARGET_MODULES
from jarvis.models.loading import load_causal_lm, load_tokenizer
from jarvis.models.threads import set_threads
from jarvis.training.dataset import IGNORE, TokenizedExample, collate, length_batches


@dataclass
class TrainConfig:
    """Hyper-parameters, with defaults chosen for a 2-core CPU (see the README's table)."""

    rank: int = 16  # LoRA rank r
    alpha: int = 32  # LoRA scaling alpha (effective scale alpha / r)
    dropout: float = 0.0  # LoRA dropout; 0 keeps small-data runs deterministic and fast
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGET_MODULES))
    epochs: float = 3.0  # passes over the training examples (fractions allowed)
    replay_rounds: int = 0  # after the epochs: rounds replaying the examples not yet learned
    learned_at: float = 0.9  # learned: greedy writes the answer, every token at least this sure
    time_budget_s: float | None = None  # no new replay round starts after this
    max_steps: int | None = None  # stop after this many optimizer steps (replay included)
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.06
    weight_decay: float = 0.0
    tokens_per_batch: int = 2048  # padded tokens per batch (length-bucketed)
    max_batch: int = 16  # examples per batch at most
    max_length: int = 1536  # longer examples are skipped (and counted)
    seed: int = 0
    threads: int | None = None  # torch threads; default: all cores
    dtype: str = "auto"  # of the frozen base: "bfloat16", "float32", "auto" (bf16 if native)

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
        if self.replay_rounds < 0 or not 0.0 < self.learned_at <= 1.0:
            raise ValueError("replay_rounds must be >= 0 and learned_at in (0, 1]")
        if self.dtype not in ("auto", "bfloat16", "float32"):
            raise ValueError("dtype must be auto, bfloat16 or float32")

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
    replay_rounds: int = 0  # replay rounds run
    learned: float | None = None  # share of examples learned at the last check (None: none)


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


@dataclass(frozen=True, slots=True)
class AnswerFit:
    """How well the model knows one example's answer (teacher-forced)."""

    right: bool  # greedy decoding would write every answer token
    least: float  # the lowest probability it gives a token of the answer

    def learned(self, at: float) -> bool:
        return self.right and self.least >= at


def answer_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, list[AnswerFit]]:
    """Mean cross-entropy over answer tokens, running the LM head only where it is needed;
    and, per example of the batch, how well the model knows its answer."""
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
    wanted = targets[keep]
    loss = F.cross_entropy(logits, wanted)
    with torch.no_grad():
        probs = logits.detach().softmax(-1)
        p_wanted = probs.gather(1, wanted[:, None])[:, 0]
        right = probs.argmax(-1) == wanted
        rows = keep.nonzero()[:, 0]
        fits = []
        for i in range(int(batch["input_ids"].shape[0])):
            mine = rows == i
            fits.append(
                AnswerFit(
                    right=bool(right[mine].all()),
                    least=float(p_wanted[mine].min()) if bool(mine.any()) else 1.0,
                )
            )
    return loss, fits


def lr_at_pass(
    position: float, passes: float, warmup_steps: int, step: int, cfg: TrainConfig
) -> float:
    """The learning rate at ``position`` (in passes over the data) of ``passes``: warm-up over
    the first steps, then cosine decay to a tenth; replay rounds count as passes, so the rate
    keeps falling while the last examples are learned."""
    if step < warmup_steps:
        return cfg.learning_rate * (step + 1) / warmup_steps
    progress = min(1.0, position / max(passes, 1e-9))
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
    run = _Run(model, tokenizer, cfg, on_progress, should_stop)
    schedule, per_epoch, total = plan_batches(examples, cfg)
    run.passes = total / per_epoch + cfg.replay_rounds
    run.warmup = max(1, int(total * cfg.warmup_fraction))
    for i, batch in enumerate(schedule[:total]):
        if not run.step(batch, i / per_epoch, total):
            break
    rounds, learned = 0, None
    position = total / per_epoch
    while rounds < cfg.replay_rounds and not run.stopped and not run.out_of_time(len(run.losses)):
        todo = run.unlearned(examples)
        learned = 1 - len(todo) / len(examples)
        if not todo:
            break
        rounds += 1
        batches = length_batches(todo, cfg.tokens_per_batch, cfg.max_batch, cfg.seed + 100 + rounds)
        for j, batch in enumerate(batches):
            if cfg.max_steps is not None and len(run.losses) >= cfg.max_steps:
                break
            if not run.step(batch, position + j / len(batches), len(run.losses) + len(batches) - j):
                break
        run.recheck(todo)  # a step's own check comes before its update: look again after it
        position += 1
    if rounds:
        learned = 1 - len(run.unlearned(examples)) / len(examples)
    return run.result(examples, skipped_too_long, rounds, learned)


class _Run:
    """One training run's optimizer, clock and figures."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        cfg: TrainConfig,
        on_progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        import torch  # the train extra

        self.model, self.cfg = model, cfg
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.on_progress, self.should_stop = on_progress, should_stop
        self.losses: list[float] = []
        self.fits: dict[int, AnswerFit] = {}  # per example (by identity): its last check
        self.seen = 0
        self.passes = 1.0
        self.warmup = 1
        self.stopped = False
        self.started = time.perf_counter()
        model.train()

    def out_of_time(self, steps: int) -> bool:
        """No new replay round: the time budget is spent, or ``max_steps`` reached."""
        if self.cfg.max_steps is not None and steps >= self.cfg.max_steps:
            return True
        budget = self.cfg.time_budget_s
        return budget is not None and time.perf_counter() - self.started >= budget

    def step(self, examples: list[TokenizedExample], position: float, total: int) -> bool:
        """One optimizer step on ``examples``; False once asked to stop."""
        import torch  # the train extra

        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            return False
        step = len(self.losses)
        lr = lr_at_pass(position, self.passes, self.warmup, step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss, fits = answer_loss(self.model, collate(examples, self.pad_id))
        self.fits.update((id(e), f) for e, f in zip(examples, fits, strict=True))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.losses.append(float(loss.item()))
        self.seen += len(examples)
        if self.on_progress is not None:
            elapsed = time.perf_counter() - self.started
            per_step = elapsed / (step + 1)
            self.on_progress(
                Progress(
                    step=step + 1,
                    total_steps=max(total, step + 1),
                    epoch=position,
                    loss=self.losses[-1],
                    examples_per_s=self.seen / elapsed,
                    seconds_per_step=per_step,
                    eta_s=per_step * max(0, total - step - 1),
                    learning_rate=lr,
                )
            )
        return True

    def recheck(self, examples: list[TokenizedExample]) -> None:
        """Check ``examples`` again without gradients (only those just replayed: the rest
        keep the check of their last step)."""
        import torch  # the train extra

        self.model.eval()
        with torch.no_grad():
            for batch in length_batches(
                examples, self.cfg.tokens_per_batch, self.cfg.max_batch, self.cfg.seed
            ):
                _, fits = answer_loss(self.model, collate(batch, self.pad_id))
                self.fits.update((id(e), f) for e, f in zip(batch, fits, strict=True))
        self.model.train()

    def unlearned(self, examples: list[TokenizedExample]) -> list[TokenizedExample]:
        """The examples whose answer the model did not know yet when it last trained on them
        (measured by the forward pass of that step: no extra pass over the data)."""
        at = self.cfg.learned_at
        return [e for e in examples if not (fit := self.fits.get(id(e))) or not fit.learned(at)]

    def result(
        self,
        examples: list[TokenizedExample],
        skipped_too_long: int,
        rounds: int,
        learned: float | None,
    ) -> TrainResult:
        self.model.eval()
        duration = time.perf_counter() - self.started
        losses = self.losses
        steps = len(losses)
        tail = losses[-max(1, min(10, steps // 5)) :] or [float("nan")]
        return TrainResult(
            steps=steps,
            final_loss=sum(tail) / len(tail),
            first_loss=losses[0] if losses else float("nan"),
            losses=losses,
            examples=len(examples),
            skipped_too_long=skipped_too_long,
            duration_s=duration,
            examples_per_s=self.seen / duration if duration else 0.0,
            seconds_per_step=duration / steps if steps else 0.0,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            replay_rounds=rounds,
            learned=learned,
        )
