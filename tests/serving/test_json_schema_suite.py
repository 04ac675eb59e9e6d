"""The grammar against the public JSON-Schema-Test-Suite (draft 2020-12), not our schemas alone.

Every instance of every claimed keyword's file is written as compact JSON (how the student
writes it) and fed through the matcher as tokens: a ``"valid": true`` instance must be a
complete answer, a ``"valid": false`` one must be refused. The few places where a generator's
grammar differs from a validator on purpose are listed below with their reason, and checked
to still differ. A keyword the grammar cannot enforce must be refused at compile time with an
error naming it; a schema that admits nothing cannot be decoded and is refused too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from jarvis.serving.grammar import UnsupportedSchema, Vocabulary, compile_schema

SUITE = Path(__file__).parent / "json_schema_test_suite"

CLAIMED = [
    "additionalProperties",
    "allOf",
    "anchor",
    "anyOf",
    "boolean_schema",
    "const",
    "content",
    "default",
    "enum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "format",
    "infinite-loop-detection",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "multipleOf",
    "oneOf",
    "pattern",
    "patternProperties",
    "prefixItems",
    "properties",
    "ref",
    "required",
    "type",
]
"""Keywords (suite files) the grammar enforces."""

UNSUPPORTED = [
    "contains",
    "dependentRequired",
    "dependentSchemas",
    "dynamicRef",
    "if-then-else",
    "maxContains",
    "minContains",
    "not",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "uniqueItems",
]
"""Suite files of keywords the grammar refuses. (``refRemote`` needs a network; ``defs`` and
``vocabulary`` test the meta-schema itself: not run.)"""

UNSUPPORTED_KEYWORDS = {
    "contains",
    "maxContains",
    "minContains",
    "dependentRequired",
    "dependentSchemas",
    "$dynamicRef",
    "$dynamicAnchor",
    "if",
    "then",
    "else",
    "not",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "uniqueItems",
}
"""What a refusal may name as "Unimplemented keys"."""

# Why a compile may also refuse a group of a claimed file: the schema admits nothing
# (``false``), a bound is a decimal (``2.0``), a format it does not know, overlapping
# ``patternProperties`` (it needs each property name to have one schema), a ``$ref`` to a
# remote document (nothing is fetched).
OTHER_REFUSALS = re.compile(
    r"Unsatisfiable schema|Expected positive integer|too many digits|Unknown format|not disjoint"
    r"|retrieving it failed"
)


def named_keywords(message: str) -> set[str]:
    """The keywords a refusal names (``Unimplemented keys: ["if", "then"]``)."""
    found = re.search(r"Unimplemented keys: (\[.*?\])", message)
    return set(json.loads(found.group(1))) if found else set()


INTEGRAL_FLOATS = "the grammar writes an integral number as an integer: 1, never 1.0"
KEY_ORDER = "objects are written with their properties in the order the schema declares them"
FORMAT = "``format`` is enforced (a generator should write a real date), not an annotation"
ONE_OF = "``oneOf`` is enforced as ``anyOf``: exact for exclusive branches (pydantic's unions)"

DIFFERENCES: dict[tuple[str, str, str], str] = {
    ("type", "integer type matches integers", "a float with zero fractional part is an integer"): (
        INTEGRAL_FLOATS
    ),
    **{
        ("const", group, test): INTEGRAL_FLOATS
        for group, test in [
            ("const with 0 does not match other zero-like types", "float zero is valid"),
            ("const with 1 does not match true", "float one is valid"),
            ("const with -2.0 matches integer and float types", "float -2.0 is valid"),
            ("float and integers are equal up to 64-bit representation limits", "float is valid"),
        ]
    },
    **{
        ("enum", group, test): INTEGRAL_FLOATS
        for group, test in [
            ("enum with 0 does not match false", "float zero is valid"),
            ("enum with [0] does not match [false]", "[0.0] is valid"),
            ("enum with 1 does not match true", "float one is valid"),
            ("enum with [1] does not match [true]", "[1.0] is valid"),
        ]
    },
    ("const", "const with object", "same object with different property order is valid"): (
        KEY_ORDER
    ),
    ("allOf", "allOf", "allOf"): KEY_ORDER,
    ("allOf", "allOf with base schema", "valid"): KEY_ORDER,
    **{
        ("format", f"{name} format", f"invalid {name} string is only an annotation by default"): (
            FORMAT
        )
        for name in [
            "email",
            "ipv4",
            "ipv6",
            "hostname",
            "date",
            "date-time",
            "time",
            "uri",
            "uuid",
            "duration",
        ]
    },
    **{
        ("oneOf", group, test): ONE_OF
        for group, test in [
            ("oneOf", "both oneOf valid"),
            ("oneOf with base schema", "both oneOf valid"),
            ("oneOf with boolean schemas, all true", "any value is invalid"),
            ("oneOf with boolean schemas, more than one true", "any value is invalid"),
            ("oneOf complex types", "both oneOf valid (complex)"),
            ("oneOf with empty schema", "both valid - invalid"),
            ("oneOf with required", "both valid - invalid"),
            ("oneOf with missing optional property", "both oneOf valid"),
        ]
    },
}
"""(file, group, test) → why the grammar's verdict differs from the suite's, on purpose."""


def groups(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((SUITE / f"{name}.json").read_text("utf-8"))
    return loaded


def schema_of(group: dict[str, Any]) -> dict[str, Any]:
    schema = group["schema"]
    if isinstance(schema, bool):  # true: anything; false: nothing (refused as unsatisfiable)
        return {} if schema else {"anyOf": []}
    return dict(schema)


@pytest.mark.parametrize("name", CLAIMED)
def test_the_matcher_agrees_with_the_suite(vocab: Vocabulary, name: str) -> None:
    wrong: list[str] = []
    differing: set[tuple[str, str, str]] = set()
    for group in groups(name):
        try:
            grammar = compile_schema(schema_of(group), vocab)
        except UnsupportedSchema as exc:
            named = named_keywords(str(exc))
            assert (named and named <= UNSUPPORTED_KEYWORDS) or OTHER_REFUSALS.search(str(exc)), (
                f"{group['description']}: {exc}"
            )
            continue
        for case in group["tests"]:
            text = json.dumps(case["data"], separators=(",", ":"), ensure_ascii=False)
            if grammar.accepts(text) == case["valid"]:
                continue
            key = (name, group["description"], case["description"])
            if key in DIFFERENCES:
                differing.add(key)
            else:
                wrong.append(f"{group['description']} / {case['description']}: {text[:80]}")
    assert not wrong, "\n".join(wrong)
    listed = {key for key in DIFFERENCES if key[0] == name}
    assert differing == listed  # every listed difference still differs (none is stale)


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_an_unsupported_keyword_is_refused_by_name(vocab: Vocabulary, name: str) -> None:
    for group in groups(name):
        with pytest.raises(UnsupportedSchema) as refused:
            compile_schema(schema_of(group), vocab)
        message = str(refused.value)
        assert named_keywords(message) & UNSUPPORTED_KEYWORDS or OTHER_REFUSALS.search(message), (
            message
        )
