"""The serving engine: one base model, an adapter per task version, constrained decoding.

``backend="llama.cpp"`` (the default where ``llama-cpp-python`` is installed and the base has
a GGUF form) serves the base GGUF with GGUF LoRA adapters converted from the PEFT ones on
first use; ``backend="torch"`` serves the same PEFT adapters with transformers. Either way the
answer is decoded under the call's grammar (:meth:`jarvis.tasks.Task.call_schema`, compiled by
llguidance in :mod:`.grammar`), with jump-forward over forced text (:mod:`.decode`), so every
answer of a typed task parses. Plain ``transformers`` generate
(:mod:`jarvis.training.generate`) remains the reference it is benchmarked against.

**Continuous batching** on llama.cpp (``batch_size`` > 1, the default): calls decode together
in one multi-sequence context, one forward pass per step for all of them (:mod:`.batcher`,
:mod:`.llama_batch`); a call that arrives mid-batch joins at the next step. With
``batch_size=1``, and always on torch, one generation at a time (a lock): callers queue.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jarvis.core.backends import Sampling
from jarvis.core.codec import from_student, uses_positional
from jarvis.core.errors import BackendError, ConfigError, MissingExtra
from jarvis.core.tasks import Task
from jarvis.models.base import BaseSpec
from jarvis.models.loading import load_causal_lm, load_tokenizer
from jarvis.models.threads import set_threads
from jarvis.models.tokens import eos_ids, prompt_ids, stop_token_ids
from jarvis.registry import Adapter
from jarvis.serving.batcher import Batcher
from jarvis.serving.decode import Decoded, Decoding, LanguageModel, Steer, decode
from jarvis.serving.gguf_lora import convert_adapter
from jarvis.serving.grammar import Grammar, UnsupportedSchema, Vocabulary
from jarvis.serving.llama_batch import LlamaBatchLM
from jarvis.serving.llama_lm import LlamaCppLM, llama_cpp_available
from jarvis.serving.torch_lm import TorchLM

__all__ = ["Adapter", "Engine", "EngineConfig", "EngineOutput", "answer_cap"]

log = logging.getLogger(__name__)

BackendName = Literal["auto", "llama.cpp", "torch"]
GGUF_ADAPTER = "adapter.gguf"


@dataclass(frozen=True)
class EngineConfig:
    """What the engine needs to know (the runtime builds it from the settings)."""

    base: BaseSpec = field(default_factory=BaseSpec)
    """The student base, and where its converted forms are cached."""
    backend: BackendName = "auto"
    """``llama.cpp`` where installed (and the base has a GGUF), else ``torch``."""
    threads: int | None = None
    """CPU threads; default: every core."""
    constrained: bool = True
    """Decode typed answers under the call's grammar (callers pass it on)."""
    steering: bool = True
    """With the grammar, apply a task's semantic steering (maps: free cells)."""
    batch_size: int = 32
    """llama.cpp: answers decoded together (continuous batching); 1: one at a time."""
    slot_tokens: int = 2048
    """llama.cpp: the KV cells of each slot (prompt and answer together)."""
    prefix_cache: bool = True
    """llama.cpp: reuse the KV cells of a previous prompt's shared head. Reading a prompt in
    two parts rounds differently from reading it whole (token probabilities within ~1% on
    an AVX-512 CPU), so tests that compare answers exactly turn it off."""


def answer_cap(longest_answer_tokens: int) -> int:
    """A generation budget near the longest answer known: a much longer one is a runaway."""
    return int(longest_answer_tokens * 1.25) + 8


@dataclass(frozen=True, slots=True)
class EngineOutput:
    text: str  # the answer as validators read it (keyed JSON for typed tasks)
    raw: str  # what the model wrote (positional JSON for typed tasks)
    tokens_in: int
    tokens_out: int
    sampled: int  # tokens the model chose; the rest were forced by the grammar
    steered: int  # choices the task's steering refused (the model's pick was invalid)
    constrained: bool
    finished: bool
    confidence: float  # the lowest probability of a token the model chose (1.0: all forced)
    first_token_s: float | None
    total_s: float


class Engine:
    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        backend: BackendName | None = None,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        """``model``/``tokenizer``: an already loaded (PEFT) model for the torch backend."""
        self.config = config or EngineConfig()
        self.requested: BackendName = backend or self.config.backend
        self._lock = threading.Lock()
        self._tokenizer = tokenizer
        self._given_model = model
        self._lm: LanguageModel | None = None  # one sequence at a time (serial path)
        self._batcher: Batcher | None = None  # many at once (llama.cpp, batch_size > 1)
        self.backend: str | None = None
        self._vocab: Vocabulary | None = None
        self._unsupported: OrderedDict[str, str] = OrderedDict()  # schemas warned about
        self._loaded: set[str] = set()
        self.steering = self.config.steering

    # -- loading -------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        """The base model's tokenizer (loads the engine)."""
        with self._lock:
            self._ensure()
        return self._tokenizer

    @property
    def batcher(self) -> Batcher | None:
        """The continuous batcher, when this engine batches (loaded)."""
        return self._batcher

    def close(self) -> None:
        """Stop the batcher and free its context (a serial engine holds no thread)."""
        with self._lock:
            if self._batcher is not None:
                self._batcher.close()
                self._batcher = None
                self._vocab = None

    def _ensure(self) -> None:
        if self._vocab is not None:
            return
        cfg = self.config
        base = cfg.base.resolve()
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(base.path)
        gguf = None
        if self.requested != "torch":
            if llama_cpp_available():
                gguf = cfg.base.serving_gguf()
            elif self.requested == "llama.cpp":
                raise MissingExtra("the llama.cpp engine", "serve")
            if gguf is None and self.requested == "llama.cpp":
                raise ConfigError(f"base {cfg.base.spec!r} has no GGUF form")
        if gguf is not None and cfg.batch_size > 1:
            batch_lm = LlamaBatchLM(
                gguf,
                slots=cfg.batch_size,
                ctx_per_slot=cfg.slot_tokens,
                threads=cfg.threads,
                prefix_cache=cfg.prefix_cache,
            )
            self._batcher, n_vocab = Batcher(batch_lm), batch_lm.n_vocab
            self.backend = "llama.cpp"
            eos = eos_ids(base.path, self._tokenizer)
        elif gguf is not None:
            llama = LlamaCppLM(
                gguf, threads=cfg.threads, n_ctx=cfg.slot_tokens, prefix_cache=cfg.prefix_cache
            )
            self._lm, n_vocab = llama, llama.n_vocab
            self.backend = "llama.cpp"
            eos = eos_ids(base.path, self._tokenizer)
        else:
            model = self._given_model or self._load_torch(base.path)
            torch_lm = TorchLM(model)
            self._lm, n_vocab = torch_lm, torch_lm.n_vocab
            self.backend = "torch"
            eos = stop_token_ids(model, self._tokenizer)
        self._vocab = Vocabulary.from_tokenizer(self._tokenizer, eos, n_vocab=n_vocab)

    def _load_torch(self, base_dir: Path) -> Any:
        set_threads(self.config.threads)
        model = load_causal_lm(base_dir)
        model.eval()
        return model

    def _gguf_adapter(self, adapter: Adapter) -> Path:
        """The adapter's GGUF form, converted from the PEFT files on first use."""
        target = adapter.path.parent / GGUF_ADAPTER
        if not target.is_file():
            cfg = self.config
            base = cfg.base.resolve()
            gguf = cfg.base.serving_gguf()
            assert gguf is not None
            convert_adapter(adapter.path, base.path, gguf, target)
        return target

    def _use(self, adapter: Adapter | None) -> None:
        lm = self._lm
        if self.backend == "llama.cpp":
            assert isinstance(lm, LlamaCppLM)
            if adapter is not None and adapter.name not in self._loaded:
                with _loading(adapter):
                    lm.load_adapter(adapter.name, self._gguf_adapter(adapter))
                self._loaded.add(adapter.name)
            lm.use_adapter(adapter.name if adapter else None)
            return
        assert isinstance(lm, TorchLM)
        if adapter is None:
            raise BackendError("the torch engine serves adapters only")
        if adapter.name not in self._loaded and not _has_adapter(lm.model, adapter.name):
            from peft import PeftModel  # the train extra: the torch engine serves with PEFT

            with _loading(adapter):
                # read the files before PEFT touches the model: a PEFT load that fails after
                # injecting its layers leaves the base model half-wrapped, and every later
                # adapter would fail to load too
                _check_readable(adapter.path)
                if hasattr(lm.model, "load_adapter") and hasattr(lm.model, "peft_config"):
                    lm.model.load_adapter(str(adapter.path), adapter_name=adapter.name)
                else:
                    lm.set_model(
                        PeftModel.from_pretrained(
                            lm.model, str(adapter.path), adapter_name=adapter.name
                        )
                    )
            lm.model.eval()
        self._loaded.add(adapter.name)
        lm.model.set_adapter(adapter.name)

    # -- grammar -------------------------------------------------------------------------

    def grammar(
        self, task: Task[Any], inputs: Mapping[str, Any], *, bounds: bool = True
    ) -> Grammar | None:
        """The grammar of one call's answer, or ``None`` when the task has no enforceable
        schema (free text; a keyword llguidance cannot enforce: warned once per schema).

        ``bounds=False`` uses the type's schema without what the call knows (for comparison).
        """
        schema = task.call_schema(inputs) if bounds else task.output_schema
        if schema is None:
            return None
        assert self._vocab is not None
        try:
            return self._vocab.compiled(schema, uses_positional(task))
        except UnsupportedSchema as exc:
            key = json.dumps(schema, sort_keys=True)
            if key not in self._unsupported:
                log.warning("task %s: decoding without a grammar: %s", task.name, exc)
                self._unsupported[key] = str(exc)
                if len(self._unsupported) > 256:
                    self._unsupported.popitem(last=False)
            return None

    # -- generation ----------------------------------------------------------------------

    def prompt(self, task: Task[Any], inputs: Mapping[str, Any]) -> list[int]:
        return prompt_ids(self._tokenizer, task, dict(inputs))

    def generate(
        self,
        task: Task[Any],
        inputs: Mapping[str, Any],
        *,
        adapter: Adapter | None,
        sampling: Sampling,
        max_new_tokens: int,
        constrained: bool = True,
        bounds: bool = True,
        on_text: Callable[[str], None] | None = None,
    ) -> EngineOutput:
        """One typed call's answer from ``adapter`` (its prompt rendered as in training)."""

        def prepare() -> tuple[list[int], Grammar | None, Steer | None]:
            grammar = self.grammar(task, inputs, bounds=bounds) if constrained else None
            steer = task.steer(inputs) if grammar is not None and self.steering else None
            return self.prompt(task, inputs), grammar, steer

        return self._run(
            adapter, prepare, sampling, max_new_tokens, on_text, lambda raw: from_student(task, raw)
        )

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        adapter: Adapter | None,
        sampling: Sampling,
        max_new_tokens: int,
        schema: Mapping[str, Any] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> EngineOutput:
        """Free chat with an adapter (OpenAI clients); ``schema`` constrains a JSON answer.

        Raises :class:`UnsupportedSchema` (naming the keyword) for a schema the grammar cannot
        enforce: an answer that ignores the schema is never passed off as one that fits it.
        """

        def prepare() -> tuple[list[int], Grammar | None, Steer | None]:
            assert self._vocab is not None
            grammar = self._vocab.compiled(schema, False) if schema is not None else None
            prompt = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            return list(prompt), grammar, None

        return self._run(adapter, prepare, sampling, max_new_tokens, on_text, lambda raw: raw)

    def _run(
        self,
        adapter: Adapter | None,
        prepare: Callable[[], tuple[list[int], Grammar | None, Steer | None]],
        sampling: Sampling,
        max_new_tokens: int,
        on_text: Callable[[str], None] | None,
        as_answer: Callable[[str], str],
    ) -> EngineOutput:
        """Load, pick the adapter, decode: batched with other calls, or one at a time."""
        with self._lock:
            try:
                self._ensure()
                batcher = self._batcher
                if batcher is None:
                    self._use(adapter)
                    prompt, grammar, steer = prepare()
                    budget = self._budget(prompt, max_new_tokens)
                    done = self._decode(prompt, sampling, budget, grammar, on_text, steer)
                    return self._output(done, grammar is not None, as_answer)
                adapter_file = None
                if adapter is not None:
                    with _loading(adapter):
                        adapter_file = self._gguf_adapter(adapter)
                prompt, grammar, steer = prepare()
            except UnsupportedSchema:
                raise  # the caller's request is at fault, not the engine
            except (OSError, RuntimeError, ValueError) as exc:
                raise BackendError(f"engine ({self.backend}) failed: {exc}") from exc
        # batched: decoding happens on the batcher's thread, together with other calls
        assert self._vocab is not None
        decoding = Decoding(
            prompt,
            sampling,
            self._budget(prompt, max_new_tokens),
            self._vocab.eos_ids,
            grammar,
            steer,
            self._on_tokens(on_text),
        )
        name = adapter.name if adapter is not None else None
        done = batcher.run(decoding, prompt, name, adapter_file)
        return self._output(done, grammar is not None, as_answer)

    def _budget(self, prompt: list[int], max_new_tokens: int) -> int:
        """On llama.cpp a slot holds ``slot_tokens``, prompt and answer together: the answer
        stops (unfinished) where the slot is full, on either path."""
        if self.backend != "llama.cpp":
            return max_new_tokens
        return min(max_new_tokens, max(self.config.slot_tokens - len(prompt), 0))

    def _output(
        self, done: Decoded, constrained: bool, as_answer: Callable[[str], str]
    ) -> EngineOutput:
        raw = self._tokenizer.decode(done.tokens, skip_special_tokens=True).strip()
        return EngineOutput(
            text=as_answer(raw),
            raw=raw,
            tokens_in=done.prompt_tokens,
            tokens_out=len(done.tokens),
            sampled=done.sampled,
            steered=done.steered,
            constrained=constrained,
            finished=done.finished,
            confidence=done.confidence,
            first_token_s=done.first_token_s,
            total_s=done.total_s,
        )

    def _on_tokens(
        self, on_text: Callable[[str], None] | None
    ) -> Callable[[list[int]], None] | None:
        if on_text is None:
            return None
        decode_ids = self._tokenizer.decode

        def on_tokens(new: list[int]) -> None:
            on_text(decode_ids(new, skip_special_tokens=True))

        return on_tokens

    def _decode(
        self,
        prompt: list[int],
        sampling: Sampling,
        max_new_tokens: int,
        grammar: Grammar | None,
        on_text: Callable[[str], None] | None,
        steer: Steer | None = None,
    ) -> Decoded:
        assert self._lm is not None and self._vocab is not None
        on_tokens = self._on_tokens(on_text)
        return decode(
            self._lm,
            prompt,
            sampling=sampling,
            max_new_tokens=max_new_tokens,
            eos_ids=self._vocab.eos_ids,
            grammar=grammar,
            steer=steer,
            on_tokens=on_tokens,
        )


@contextmanager
def _loading(adapter: Adapter) -> Iterator[None]:
    """Any failure to load an adapter's files (a corrupt safetensors file raises the library's
    own error type) is a :class:`BackendError` naming the adapter: the router falls back."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(
            f"cannot load adapter {adapter.name} from {adapter.path}: {type(exc).__name__}: {exc}"
        ) from exc


def _check_readable(path: Path) -> None:
    """Raise unless the adapter's config parses and its weights load (a LoRA is a few MB)."""
    json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    weights = path / "adapter_model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file  # the train extra, like PEFT

        load_file(str(weights))
    elif not (path / "adapter_model.bin").is_file():
        raise FileNotFoundError(f"no adapter weights in {path}")


def _has_adapter(model: Any, name: str) -> bool:
    return name in (getattr(model, "peft_config", None) or {})
