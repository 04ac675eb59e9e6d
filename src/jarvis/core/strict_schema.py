"""A schema as strict as the program's own type.

A program that declares ``obj Triage { has category: Category, priority: int; }`` (``Category``
an enum) rejects ``{"category": "Billing"}``; byLLM's schema for it describes the enum only in
prose (``"The value *should* be one in this list: [...]"``) and would accept it. Judged by
that schema, JARVIS would store answers the program then crashes on, and train a student on
them. So the schema JARVIS validates, stores, sends to the teacher and compiles into the
student's grammar is built from the program's type itself (pydantic reads Jac objects, which
are dataclasses, and enums), and keeps what the prose says that the type cannot:

* an enum written only in prose becomes ``enum`` (when the type is not at hand);
* a range in a field's note ("from 1 (low) to 5 (critical)", "between 0 and 100",
  "at least 1") becomes ``minimum`` / ``maximum`` on an integer or number.
"""

from __future__ import annotations

import ast
import copy
import re
from typing import Any

from pydantic import PydanticSchemaGenerationError, TypeAdapter

__all__ = [
    "WRAPPER",
    "add_ranges",
    "enums_from_prose",
    "inline_refs",
    "strict_schema",
    "type_schema",
]

WRAPPER = "schema_object_wrapper"
"""The property byLLM wraps an answer that is not an object in."""

Schema = dict[str, Any]

_LIST_IN_PROSE = re.compile(r"should\*?\s+be\s+one\s+in\s+this\s+list:\s*(\[[^\]]*\])", re.I)
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_RANGES = [  # (pattern, which bounds its groups give)
    (re.compile(rf"\bfrom\s+{_NUMBER}\b[^.;]*?\bto\s+{_NUMBER}", re.I), ("min", "max")),
    (re.compile(rf"\bbetween\s+{_NUMBER}\s+and\s+{_NUMBER}", re.I), ("min", "max")),
    (
        re.compile(rf"(?<![\w.-]){_NUMBER}\s*(?:-|–|to|\.\.)\s*{_NUMBER}(?![\w.])", re.I),
        ("min", "max"),
    ),
    (
        re.compile(rf"\b(?:at\s+least|no\s+less\s+than|minimum(?:\s+of)?)\s+{_NUMBER}", re.I),
        ("min",),
    ),
    (
        re.compile(
            rf"\b(?:at\s+most|no\s+more\s+than|maximum(?:\s+of)?|up\s+to)\s+{_NUMBER}", re.I
        ),
        ("max",),
    ),
]


def type_schema(program_type: Any) -> Schema | None:
    """The JSON schema of the program's own output type, or ``None`` if pydantic cannot read
    the type (then the prose is all there is)."""
    try:
        schema: Schema = TypeAdapter(program_type).json_schema()
    except (PydanticSchemaGenerationError, TypeError, ValueError, NameError):
        return None
    return schema


def strict_schema(described: Schema, program_type: Any = None) -> Schema:
    """``described`` (byLLM's schema, with the notes) made as strict as ``program_type``.

    The type's schema replaces the described one where pydantic can read the type (byLLM's
    wrapper around a non-object answer is kept, since the answer is parsed in that form); the
    notes' descriptions are carried over, and ranges and prose enums applied.
    """
    typed = type_schema(program_type) if program_type is not None else None
    if typed is None:
        result = copy.deepcopy(described)
    elif WRAPPER in (described.get("properties") or {}):
        result = {
            "type": "object",
            "properties": {WRAPPER: _carry_notes(typed, described["properties"][WRAPPER])},
            "required": [WRAPPER],
            "additionalProperties": False,
        }
    else:
        result = _carry_notes(typed, described)
    return add_ranges(enums_from_prose(inline_refs(result)))


def inline_refs(schema: Schema) -> Schema:
    """The schema with each ``$ref`` into ``$defs`` replaced by what it names, so servers whose
    schema support stops short of references (llama-cpp-python's grammar) take it; a type
    that refers to itself keeps its references."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict) or not defs:
        return schema

    def expand(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.rsplit("/", 1)[-1]
                if name in seen or name not in defs:
                    raise _Recursive
                target = dict(defs[name])
                target.update({k: v for k, v in node.items() if k != "$ref"})
                return expand(target, (*seen, name))
            return {k: expand(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [expand(v, seen) for v in node]
        return node

    try:
        inlined: Schema = expand(schema, ())
    except _Recursive:
        return schema
    return inlined


class _Recursive(Exception):
    """A reference that leads back to itself: it cannot be written out."""


def _carry_notes(typed: Schema, described: Schema) -> Schema:
    """``typed`` with the descriptions of ``described``, field by field (refs resolved)."""
    out = copy.deepcopy(typed)
    defs = dict(out.get("$defs", {}))

    def merge(target: Schema, source: Schema) -> None:
        source = _resolve(source, described.get("$defs", {}))
        if isinstance(source.get("description"), str) and "description" not in target:
            target["description"] = source["description"]
        own = _resolve(target, defs)
        for name, sub in (own.get("properties") or {}).items():
            theirs = (source.get("properties") or {}).get(name)
            if isinstance(theirs, dict) and isinstance(sub, dict):
                merge(sub, theirs)

    merge(out, described)
    return out


def _resolve(schema: Schema, defs: dict[str, Any]) -> Schema:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        found = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(found, dict):
            return found
    return schema


def enums_from_prose(schema: Schema) -> Schema:
    """String fields whose note lists their values ("should be one in this list: [...]")
    get those values as ``enum``."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            note = node.get("description")
            if node.get("type") == "string" and "enum" not in node and isinstance(note, str):
                found = _LIST_IN_PROSE.search(note)
                values = _literal_list(found.group(1)) if found else None
                if values:
                    node["enum"] = values
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def _literal_list(text: str) -> list[Any] | None:
    try:
        values = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return list(values)
    return None


def add_ranges(schema: Schema) -> Schema:
    """Integer and number fields whose note states a range get ``minimum`` / ``maximum``
    (a bound the schema already has is kept)."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            note = node.get("description")
            if node.get("type") in ("integer", "number") and isinstance(note, str):
                for key, value in _bounds(note).items():
                    node.setdefault(key, int(value) if node["type"] == "integer" else value)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def _bounds(note: str) -> dict[str, float]:
    """The first range the note states: {"minimum": a, "maximum": b} (either may be absent)."""
    for pattern, kinds in _RANGES:
        found = pattern.search(note)
        if found is None:
            continue
        values = [float(g) for g in found.groups()]
        bounds = dict(zip(kinds, values, strict=True))
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            continue  # "10-2" is not a range
        return {{"min": "minimum", "max": "maximum"}[k]: v for k, v in bounds.items()}
    return {}
