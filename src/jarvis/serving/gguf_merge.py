"""Base GGUF + PEFT adapter → one merged GGUF, for llama.cpp or Ollama without JARVIS.

Every metadata field and every tensor of the base GGUF is copied as it is (the way gguf-py's
own ``gguf/scripts/gguf_new_metadata.py`` copies a file), except the weights the adapter
targets: each becomes ``W + (alpha / r) · B · A``. ``B`` and ``A`` come from
:func:`~jarvis.serving.gguf_lora.lora_tensors`, the same matrices the runtime GGUF LoRA holds,
so the names and the rotary row permutation of the q/k projections are the ones llama.cpp
applies at runtime; the scale is llama.cpp's too (alpha over the rank of each ``A``).

A merged weight keeps its base type when that type holds the change (F32, F16, BF16, Q8_0) and
is stored as F16 otherwise: re-quantizing to 4 bits would round most of a LoRA's change away.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from jarvis.core.errors import JarvisError
from jarvis.serving.gguf_lora import lora_tensors

__all__ = ["MergeError", "merge_adapter"]


class MergeError(JarvisError):
    """The adapter cannot be merged into this GGUF."""


def merge_adapter(
    adapter_dir: Path, base_dir: Path, base_gguf: Path, out: Path, *, name: str | None = None
) -> Path:
    """Write ``out``: ``base_gguf`` with the adapter's change merged into its weights; atomic.

    ``base_dir`` is the base's Hugging Face directory (its ``config.json`` gives the layer and
    head counts the tensor names and the q/k permutation need). ``name`` replaces
    ``general.name`` when given. Returns ``out``.
    """
    import gguf
    from gguf.quants import dequantize, quantize

    reader = gguf.GGUFReader(str(base_gguf))
    arch_name = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    alpha = float(json.loads((adapter_dir / "adapter_config.json").read_text())["lora_alpha"])
    lora = lora_tensors(adapter_dir, base_dir, arch_name)
    deltas: dict[str, np.ndarray] = {}
    for key, a in lora.items():
        if key.endswith(".lora_a"):
            target = key.removesuffix(".lora_a")
            b = lora.get(f"{target}.lora_b")
            if b is None:
                raise MergeError(f"the adapter has an A matrix but no B matrix for {target}")
            deltas[target] = (alpha / a.shape[0]) * (b @ a)

    keep = {
        gguf.GGMLQuantizationType.F32,
        gguf.GGMLQuantizationType.F16,
        gguf.GGMLQuantizationType.BF16,
        gguf.GGMLQuantizationType.Q8_0,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp_name, arch_name)
        for field in reader.fields.values():
            # the architecture and the GGUF.* header fields are written by GGUFWriter itself
            if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
                continue
            value = name if field.name == gguf.Keys.General.NAME and name else field.contents()
            kind = field.types[0]
            sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, value, kind, sub_type=sub)
        for tensor in reader.tensors:
            delta = deltas.pop(tensor.name, None)
            if delta is None:
                writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
                continue
            weight = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            if weight.shape != delta.shape:
                raise MergeError(
                    f"{tensor.name}: the base weight is {weight.shape}, the adapter's change "
                    f"{delta.shape}; is this adapter for this base model?"
                )
            qtype = (
                tensor.tensor_type if tensor.tensor_type in keep else gguf.GGMLQuantizationType.F16
            )
            writer.add_tensor(tensor.name, quantize(weight + delta, qtype), raw_dtype=qtype)
        if deltas:
            raise MergeError(f"the base GGUF has no tensors {sorted(deltas)[:3]}")
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp_name, 0o644)  # an export, for other programs (mkstemp makes it 0600)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out
