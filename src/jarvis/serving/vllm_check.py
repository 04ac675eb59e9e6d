"""Will vLLM load this adapter? The checks vLLM's LoRA loader makes, made here without vLLM.

A version's ``adapter/`` directory is a standard PEFT adapter, which ``vllm serve
--enable-lora --lora-modules NAME=DIR`` loads. What vLLM requires, as its own code states it
(vllm-project/vllm, read for this module):

* ``vllm/lora/peft_helper.py`` — ``PEFTHelper.from_local_dir`` reads ``adapter_config.json``;
  ``from_dict`` requires ``r``, ``lora_alpha`` and ``target_modules``; ``__post_init__``
  requires ``r > 0``; ``_validate_features`` rejects ``modules_to_save`` ("vLLM only supports
  modules_to_save being None.") and DoRA ("vLLM does not yet support DoRA."); ``validate_legal``
  rejects ``r > max_lora_rank`` and any ``bias`` other than ``"none"`` ("Adapter bias is not
  supported."; older releases: only with ``bias_enabled``). One scale, ``lora_alpha / r``
  (``/ sqrt(r)`` with rsLoRA), serves every module: PEFT's per-module ``rank_pattern`` and
  ``alpha_pattern`` are not read.
* ``vllm/config/lora.py`` — ``MaxLoRARanks = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]``,
  the only values ``--max-lora-rank`` takes (default 16).
* ``vllm/lora/lora_model.py`` (``vllm/lora/models.py`` before) — ``LoRAModel.
  from_local_checkpoint`` reads ``adapter_model.safetensors`` (else ``adapter_model.bin`` or
  ``.pt``; else "doesn't contain tensors"), parses every tensor name and refuses any module
  whose last name part is not an expected LoRA module; ``lora_A`` is ``[r, in]``, ``lora_B``
  ``[out, r]``.
* ``vllm/lora/utils.py`` — ``parse_fine_tuned_lora_name``: after an optional
  ``base_model.model.`` prefix a name must end in ``.lora_A.weight`` / ``.lora_B.weight`` (or
  ``.lora_embedding_A`` / ``.lora_embedding_B``); anything else is "unsupported LoRA weight".
  ``is_base_embedding_weights`` skips ``*.embed_tokens.base_layer.weight`` and
  ``*.lm_head.base_layer.weight``.
* ``vllm/lora/worker_manager.py`` with ``vllm/model_executor/models/llama.py`` — the expected
  modules are the model's LoRA-capable layers with packed ones unpacked: for
  ``LlamaForCausalLM`` (SmolLM2, Llama) ``qkv_proj`` → ``q_proj k_proj v_proj``,
  ``gate_up_proj`` → ``gate_proj up_proj``, plus ``o_proj``, ``down_proj`` and the embedding
  modules ``embed_tokens`` and ``lm_head``.

These are static checks: they do not run vLLM (which needs a GPU and is not installed here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["LLAMA_LORA_MODULES", "VLLM_MAX_LORA_RANKS", "vllm_max_lora_rank", "vllm_problems"]

VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm/config/lora.py
LLAMA_LORA_MODULES = frozenset(
    {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
        "embed_tokens",
        "lm_head",
    }
)
_PREFIX = "base_model.model."
_BASE_EMBEDDINGS = (".embed_tokens.base_layer.weight", ".lm_head.base_layer.weight")


def vllm_max_lora_rank(rank: int) -> int | None:
    """The smallest ``--max-lora-rank`` vLLM accepts that fits ``rank`` (None: too large)."""
    return next((m for m in VLLM_MAX_LORA_RANKS if m >= rank), None)


def vllm_problems(adapter_dir: Path, max_lora_rank: int = 16) -> list[str]:
    """Why vLLM (``--enable-lora --max-lora-rank max_lora_rank``) would refuse this adapter
    directory, one sentence each; empty when it would load it."""
    problems: list[str] = []
    if max_lora_rank not in VLLM_MAX_LORA_RANKS:
        problems.append(
            f"vLLM accepts --max-lora-rank only as one of {list(VLLM_MAX_LORA_RANKS)}, "
            f"not {max_lora_rank}."
        )
    config = _config(adapter_dir, problems)
    rank = _check_config(config, max_lora_rank, problems) if config is not None else None
    _check_weights(adapter_dir, rank, problems)
    return problems


def _config(adapter_dir: Path, problems: list[str]) -> dict[str, Any] | None:
    path = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path} is missing: vLLM reads the adapter's configuration from it.")
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path} is not readable JSON ({exc}).")
        return None
    if not isinstance(config, dict):
        problems.append(f"{path} is not a JSON object.")
        return None
    return config


def _check_config(config: dict[str, Any], max_lora_rank: int, problems: list[str]) -> int | None:
    """The configuration's checks; returns the rank when it is a usable one."""
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(
            f"peft_type is {config['peft_type']!r}: vLLM serves LoRA adapters only (LORA)."
        )
    missing = [k for k in ("r", "lora_alpha", "target_modules") if k not in config]
    if missing:
        problems.append(f"adapter_config.json lacks {', '.join(missing)}, which vLLM requires.")
    rank = config.get("r")
    if "r" in config and (not isinstance(rank, int) or isinstance(rank, bool) or rank <= 0):
        problems.append(f"the rank r is {rank!r}; vLLM requires a positive integer.")
        rank = None
    elif isinstance(rank, int) and rank > max_lora_rank:
        fits = vllm_max_lora_rank(rank)
        hint = (
            f"serve with --max-lora-rank {fits}"
            if fits
            else f"vLLM's largest is {VLLM_MAX_LORA_RANKS[-1]}: train a smaller rank"
        )
        problems.append(
            f"the LoRA rank {rank} is greater than max_lora_rank {max_lora_rank} ({hint})."
        )
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        problems.append(
            "rank_pattern / alpha_pattern are set: vLLM uses one rank and one lora_alpha for "
            "every module and ignores them."
        )
    if config.get("bias", "none") != "none":
        problems.append(f"bias is {config['bias']!r}: vLLM supports only bias 'none'.")
    if config.get("use_dora"):
        problems.append("the adapter uses DoRA (use_dora), which vLLM does not support.")
    if config.get("modules_to_save"):
        problems.append(
            f"modules_to_save is {config['modules_to_save']!r}: vLLM supports only none "
            "(fully trained extra modules cannot be served as a LoRA)."
        )
    targets = config.get("target_modules")
    if isinstance(targets, list):
        unknown = sorted(str(t) for t in targets if str(t).split(".")[-1] not in LLAMA_LORA_MODULES)
        if unknown:
            problems.append(
                f"target_modules {unknown} are not among the Llama modules vLLM serves LoRA "
                f"on ({', '.join(sorted(LLAMA_LORA_MODULES))})."
            )
    return rank if isinstance(rank, int) and rank > 0 else None


def _check_weights(adapter_dir: Path, rank: int | None, problems: list[str]) -> None:
    from safetensors import safe_open

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        if not any((adapter_dir / f"adapter_model.{ext}").is_file() for ext in ("bin", "pt")):
            problems.append(f"{path} is missing: the adapter has no weights vLLM can load.")
        return  # vLLM also reads .bin / .pt (torch pickles): their tensors are not checked here
    try:
        with safe_open(str(path), "np") as fh:
            shapes = {key: list(fh.get_slice(key).get_shape()) for key in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        problems.append(f"{path} is not a readable safetensors file ({exc}).")
        return
    if not shapes:
        problems.append(f"{path} holds no tensors.")
    pairs: dict[str, dict[str, list[int]]] = {}
    for key, shape in sorted(shapes.items()):
        if key.endswith(_BASE_EMBEDDINGS):
            continue  # vLLM skips these (is_base_embedding_weights)
        parsed = _parse_name(key)
        if parsed is None:
            problems.append(
                f"tensor {key!r}: vLLM cannot parse this name (it expects "
                "'<module>.lora_A.weight' or '<module>.lora_B.weight')."
            )
            continue
        module, kind = parsed
        if module.split(".")[-1] not in LLAMA_LORA_MODULES:
            problems.append(
                f"tensor {key!r} targets {module.split('.')[-1]!r}, not one of the Llama "
                "modules vLLM serves LoRA on."
            )
            continue
        pairs.setdefault(module, {})[kind] = shape
    for module, found in sorted(pairs.items()):
        a, b = found.get("A"), found.get("B")
        if a is None or b is None:
            problems.append(f"module {module} has only lora_{'A' if a else 'B'}; vLLM needs both.")
            continue
        if len(a) != 2 or len(b) != 2:
            problems.append(f"module {module}: lora_A {a} and lora_B {b} are not matrices.")
        elif rank is not None and (a[0] != rank or b[1] != rank):
            problems.append(
                f"module {module}: lora_A is {a} and lora_B is {b}, but r is {rank} "
                "(vLLM expects lora_A [r, in] and lora_B [out, r])."
            )


def _parse_name(key: str) -> tuple[str, str] | None:
    """vLLM's ``parse_fine_tuned_lora_name``: (module, "A" or "B"), or None if it refuses."""
    start = 2 if key.startswith(_PREFIX) else 0
    parts = key.split(".")
    if len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in ("lora_A", "lora_B"):
        return ".".join(parts[start:-2]), parts[-2][-1]
    if parts[-1] in ("lora_embedding_A", "lora_embedding_B"):
        return ".".join(parts[start:-1]), parts[-1][-1]
    return None
