"""The student's answer encoding: positional JSON, 2-3x fewer tokens than keyed JSON.

A pydantic object is written as the list of its field values in declaration order, so

    {"level":{"name":1,…},"walls":[{"start_pos":{"x":8,"y":7},"end_pos":{"x":9,"y":7}},…],…}

becomes ``[[1,…],[[[8,7],[9,7]],…],…]``. The keys carry no information a per-task adapter
needs, and on a CPU every token costs training time and serving time (a difficulty-20 map:
1229 tokens keyed, 526 positional, with SmolLM2's tokenizer). The teacher, the store, the API
and every validator still see the ordinary typed answer: only the student's own text is
positional, and it is decoded back before anything judges it.

Types without a fixed layout (unions of objects, ``Any``) have no positional form; such tasks
keep keyed JSON (``supports_positional`` says which).
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Union

from pydantic import BaseModel

from jarvis.core.tasks import Task


class CodecError(ValueError):
    """A positional answer does not fit the output type's layout."""


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def supports_positional(tp: Any) -> bool:
    """True when every object inside ``tp`` has a fixed field layout."""
    tp, _ = _strip_optional(tp)
    if _is_model(tp):
        return all(supports_positional(f.annotation) for f in tp.model_fields.values())
    origin = typing.get_origin(tp)
    if origin in (list, tuple, set, frozenset):
        return all(supports_positional(a) for a in typing.get_args(tp) if a is not Ellipsis)
    if origin is dict:
        return supports_positional(typing.get_args(tp)[1])
    # unions of several types and Any have no fixed layout; scalars, enums, literals do
    return not (origin in (Union, types.UnionType) or tp is Any)


def encode(tp: Any, value: Any) -> Any:
    """The JSON form of ``value`` (already JSON-dumped by pydantic) in positional layout."""
    tp, _ = _strip_optional(tp)
    if value is None:
        return None
    if _is_model(tp):
        return [encode(f.annotation, value[name]) for name, f in tp.model_fields.items()]
    origin = typing.get_origin(tp)
    if origin in (list, set, frozenset):
        (item,) = typing.get_args(tp) or (Any,)
        return [encode(item, v) for v in value]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return [encode(args[0], v) for v in value]
        return [encode(a, v) for a, v in zip(args, value, strict=True)]
    if origin is dict:
        item = typing.get_args(tp)[1]
        return {k: encode(item, v) for k, v in value.items()}
    return value


def decode(tp: Any, data: Any, where: str = "answer") -> Any:
    """Back from positional layout to the keyed JSON form pydantic validates."""
    tp, optional = _strip_optional(tp)
    if data is None and optional:
        return None
    if _is_model(tp):
        fields = list(tp.model_fields.items())
        if not isinstance(data, list) or len(data) != len(fields):
            raise CodecError(f"{where}: expected a list of {len(fields)} values for {tp.__name__}")
        return {
            name: decode(f.annotation, v, f"{where}.{name}")
            for (name, f), v in zip(fields, data, strict=True)
        }
    origin = typing.get_origin(tp)
    if origin in (list, set, frozenset):
        if not isinstance(data, list):
            raise CodecError(f"{where}: expected a list")
        (item,) = typing.get_args(tp) or (Any,)
        return [decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is tuple:
        if not isinstance(data, list):
            raise CodecError(f"{where}: expected a list")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return [decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
        if len(args) != len(data):
            raise CodecError(f"{where}: expected {len(args)} values")
        return [
            decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True))
        ]
    if origin is dict:
        if not isinstance(data, dict):
            raise CodecError(f"{where}: expected an object")
        item = typing.get_args(tp)[1]
        return {k: decode(item, v, f"{where}.{k}") for k, v in data.items()}
    return data


def uses_positional(task: Task[Any]) -> bool:
    return not task.is_free_text and supports_positional(task.output_type)


def student_answer(task: Task[Any], output: Any) -> str:
    """The answer text the student is trained to write."""
    if task.is_free_text:
        return str(output)
    dumped = task.dump_output(output)
    body = encode(task.output_type, dumped) if uses_positional(task) else dumped
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def from_student(task: Task[Any], text: str) -> str:
    """The student's text as the ordinary answer text (keyed JSON) the validator judges.

    Text that cannot be decoded is returned unchanged, so the validator rejects it with its
    own reason (the router then retries or falls back).
    """
    if not uses_positional(task):
        return text
    try:
        keyed = decode(task.output_type, json.loads(text))
    except (json.JSONDecodeError, CodecError, RecursionError):
        return text
    return json.dumps(keyed, separators=(",", ":"), ensure_ascii=False)


def positional_schema(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """A keyed JSON Schema rewritten for the positional layout (objects become ``prefixItems``).

    For servers that enforce a schema themselves (vLLM's guided decoding, an OpenAI
    ``response_format``) while the student writes positional JSON. ``$ref`` are inlined.
    """
    if not isinstance(schema, dict):
        return schema
    defs = defs if defs is not None else dict(schema.get("$defs", {}))
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        merged = {**defs.get(name, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
        return positional_schema(merged, defs)
    if "const" in schema:
        return {"const": positional_value(schema["const"])}
    out = {k: v for k, v in schema.items() if k not in ("$defs", "title", "description")}
    if schema.get("type") == "object" and "properties" in schema:
        values = [positional_schema(s, defs) for s in schema["properties"].values()]
        return {
            "type": "array",
            "prefixItems": values,
            "items": False,
            "minItems": len(values),
            "maxItems": len(values),
        }
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = positional_schema(out[key], defs)
    for key in ("anyOf", "oneOf", "prefixItems"):
        if key in out:
            out[key] = [positional_schema(s, defs) for s in out[key]]
    return out


def positional_value(value: Any) -> Any:
    """A constant in the positional layout: objects become the list of their values."""
    if isinstance(value, dict):
        return [positional_value(v) for v in value.values()]
    if isinstance(value, list):
        return [positional_value(v) for v in value]
    return value
