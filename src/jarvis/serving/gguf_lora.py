"""PEFT LoRA adapter → GGUF LoRA adapter, so llama.cpp can serve what torch trained.

The adapter stays the standard PEFT one in the registry; this writes a sibling
``adapter.gguf`` the llama.cpp engine loads next to the base GGUF (no merge, so one base in
memory serves every task). Two details matter and are tested against the torch model's
outputs:

* tensor names follow gguf-py's own HF→GGUF map for the base's architecture;
* llama.cpp's converter permutes the rows of Llama's q/k projections (rotary layout); the
  ``B`` matrices of LoRAs on them get the same permutation, or the adapter is silently wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from jarvis.core.errors import JarvisError

__all__ = ["convert_adapter", "gguf_architecture", "lora_tensors"]

_PERMUTED = {"llama": ("q_proj", "k_proj")}  # architectures whose q/k rows llama.cpp permutes


class ConversionError(JarvisError):
    """The adapter cannot be written in llama.cpp's format."""


def gguf_architecture(gguf_path: Path) -> str:
    """``general.architecture`` of a GGUF file."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_path)).fields["general.architecture"]
    return bytes(field.parts[field.data[0]]).decode()


def _permute(rows: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary re-ordering of a projection's output rows, for ``heads`` heads."""
    shape = rows.shape
    return rows.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def lora_tensors(adapter_dir: Path, base_dir: Path, arch_name: str) -> dict[str, np.ndarray]:
    """The adapter's A and B matrices under llama.cpp's names (``blk.0.attn_q.weight.lora_a``),
    float32, with the rotary permutation already applied to the B of q/k projections.
    ``arch_name`` is the base GGUF's ``general.architecture``."""
    import gguf
    from safetensors import safe_open

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("use_dora") or config.get("use_rslora"):
        raise ConversionError("DoRA / rsLoRA adapters have no llama.cpp form here")
    base_config = json.loads((base_dir / "config.json").read_text())
    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name), None)
    if arch is None:
        raise ConversionError(f"unknown GGUF architecture {arch_name!r}")
    names = gguf.get_tensor_name_map(arch, int(base_config["num_hidden_layers"]))
    heads = int(base_config["num_attention_heads"])
    kv_heads = int(base_config.get("num_key_value_heads") or heads)
    permuted = _PERMUTED.get(arch_name, ())

    tensors: dict[str, np.ndarray] = {}
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "np") as fh:
        for key in fh.keys():  # noqa: SIM118 (safe_open is not a dict)
            if ".lora_A." not in key and ".lora_B." not in key:
                raise ConversionError(f"unsupported adapter tensor {key}")
            module, kind = key.split(".lora_")
            hf_name = module.removeprefix("base_model.model.")
            name = names.get_name(hf_name)
            if name is None:
                raise ConversionError(f"no GGUF name for {hf_name}")
            value = fh.get_tensor(key).astype(np.float32)
            if kind.startswith("B") and module.endswith(permuted):
                value = _permute(value, heads if module.endswith("q_proj") else kv_heads)
            tensors[f"{name}.weight.lora_{kind[0].lower()}"] = value
    return tensors


def convert_adapter(adapter_dir: Path, base_dir: Path, base_gguf: Path, out: Path) -> Path:
    """Write ``out`` (GGUF LoRA) from a PEFT adapter directory; atomic."""
    import gguf

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    arch_name = gguf_architecture(base_gguf)
    tensors = lora_tensors(adapter_dir, base_dir, arch_name)

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp_name, arch_name)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(config["lora_alpha"]))
        for name, value in sorted(tensors.items()):
            writer.add_tensor(name, value)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out
