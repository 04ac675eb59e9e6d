"""A JSON Schema subset compiled to a character automaton: the grammar of constrained decoding.

The student must write JSON that parses and fits the task's type, and, where a call knows
more (a map's coordinates lie inside *this* level's grid, it has exactly ``num_enemies``
enemies), fits that too. :func:`compile_schema` turns a JSON Schema (the task's output schema,
or a per-call schema with tighter bounds) into a tree of nodes; a decoding *state* is an
immutable stack of ``(node, data)`` frames, and :func:`feed` moves it by one character or
returns ``None`` when the character cannot continue any valid answer. States are hashable, so
token masks computed for a state are cached across steps and calls (:mod:`.guide`).

Supported: objects (properties in declaration order, all written), arrays (``items``,
``prefixItems``, ``minItems``/``maxItems``), integers with ``minimum``/``maximum`` (also
exclusive), numbers, strings (``minLength``/``maxLength``), booleans, null, ``enum``,
``const``, ``anyOf``/``oneOf`` whose branches start with different characters (``Optional``),
``$ref`` into ``$defs``. JSON is written without whitespace, as the student is trained. With
``positional=True`` objects are written as arrays of their values (:mod:`jarvis.core.codec`).
Anything else raises :class:`UnsupportedSchema`, and the caller decodes without a grammar.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jarvis.core.codec import positional_value

__all__ = ["Grammar", "Node", "State", "UnsupportedSchema", "compile_schema", "feed"]

Frame = tuple["Node", Any]
State = tuple[Frame, ...]

# what Node.step answers
_REJECT = 0
_STAY = 1  # consumed the character, frame data replaced
_CLOSE = 2  # consumed the character and the node is complete: pop it
_POP = 3  # complete without the character: pop and give it to the parent
_ENTER = 4  # replace own data, push a child, give the character to the child
_BECOME = 5  # replace own frame by a child's start frame, give it the character

_DIGITS = frozenset("0123456789")
_INT_LIMIT = 10**18


class UnsupportedSchema(ValueError):
    """The schema uses a feature this grammar cannot enforce."""


class Node:
    """One grammar element. ``first`` is the set of characters it can start with."""

    first: frozenset[str] = frozenset()

    def start(self) -> Any:
        return None

    def step(self, data: Any, ch: str) -> tuple[int, Any]:
        raise NotImplementedError

    def can_end(self, data: Any) -> bool:
        """True when the node, in this state, is a complete value."""
        return False

    def free_text(self, data: Any) -> bool:
        """True inside a string body, where almost every character is allowed."""
        return False


class Literal(Node):
    """Exact text: punctuation, keys, constants."""

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("empty literal")
        self.text = text
        self.first = frozenset(text[0])

    def start(self) -> int:
        return 0

    def step(self, pos: int, ch: str) -> tuple[int, Any]:
        if self.text[pos] != ch:
            return _REJECT, None
        pos += 1
        return (_CLOSE, None) if pos == len(self.text) else (_STAY, pos)


class Choice(Node):
    """One of several exact texts (``enum``, booleans), possibly prefixes of each other."""

    def __init__(self, options: list[str]) -> None:
        if not options or any(not o for o in options):
            raise ValueError("empty choice")
        self.options = sorted(set(options))
        self.first = frozenset(o[0] for o in self.options)

    def start(self) -> str:
        return ""

    def step(self, prefix: str, ch: str) -> tuple[int, Any]:
        grown = prefix + ch
        longer = [o for o in self.options if o.startswith(grown)]
        if longer:
            if longer == [grown]:
                return _CLOSE, None
            return _STAY, grown
        return (_POP, None) if prefix in self.options else (_REJECT, None)

    def can_end(self, prefix: str) -> bool:
        return prefix in self.options


class Integer(Node):
    """A JSON integer within ``[low, high]``; a prefix is kept only if some bound fits it."""

    def __init__(self, low: int | None, high: int | None) -> None:
        self.low = -_INT_LIMIT if low is None else low
        self.high = _INT_LIMIT if high is None else high
        if self.low > self.high:
            raise UnsupportedSchema(f"empty integer range [{low}, {high}]")
        self.first = frozenset(_DIGITS | ({"-"} if self.low < 0 else set()))

    def start(self) -> str:
        return ""

    def _viable(self, prefix: str) -> bool:
        negative = prefix.startswith("-")
        digits = prefix[1:] if negative else prefix
        if not digits:
            return negative and self.low < 0
        if digits[0] == "0" and (len(digits) > 1 or negative):
            return False
        # magnitudes allowed on this side of zero
        if negative:
            lo, hi = max(1, -min(self.high, -1)), -self.low
        else:
            lo, hi = max(0, self.low), self.high
        if lo > hi:
            return False
        head = int(digits)
        scale = 1
        while head * scale <= hi:
            if (head + 1) * scale - 1 >= lo:
                return True
            if digits == "0":
                return False
            scale *= 10
        return False

    def can_end(self, prefix: str) -> bool:
        if prefix in ("", "-") or not self._viable(prefix):
            return False
        return self.low <= int(prefix) <= self.high

    def step(self, prefix: str, ch: str) -> tuple[int, Any]:
        if ch in _DIGITS or (ch == "-" and not prefix):
            grown = prefix + ch
            if self._viable(grown):
                return _STAY, grown
        return (_POP, None) if self.can_end(prefix) else (_REJECT, None)


class Number(Node):
    """A JSON number (no bounds): sign, integer part, fraction, exponent."""

    # states: 0 start, 1 minus, 2 zero, 3 int, 4 dot, 5 frac, 6 e, 7 e-sign, 8 exp
    _END = frozenset({2, 3, 5, 8})
    first = frozenset(_DIGITS | {"-"})

    def start(self) -> int:
        return 0

    def step(self, s: int, ch: str) -> tuple[int, Any]:
        nxt = self._move(s, ch)
        if nxt is not None:
            return _STAY, nxt
        return (_POP, None) if s in self._END else (_REJECT, None)

    @staticmethod
    def _move(s: int, ch: str) -> int | None:
        digit = ch in _DIGITS
        if s in (0, 1):
            if ch == "-" and s == 0:
                return 1
            return (2 if ch == "0" else 3) if digit else None
        if s in (2, 3):
            if digit and s == 3:
                return 3
            return 4 if ch == "." else 6 if ch in "eE" else None
        if s in (4, 5):
            if digit:
                return 5
            return 6 if ch in "eE" and s == 5 else None
        if s == 6:
            return 7 if ch in "+-" else 8 if digit else None
        if s in (7, 8):
            return 8 if digit else None
        return None

    def can_end(self, s: int) -> bool:
        return s in self._END


class String(Node):
    """A JSON string with optional length bounds (counted in characters, escapes as one)."""

    first = frozenset('"')

    def __init__(self, min_length: int = 0, max_length: int | None = None) -> None:
        self.min_length = min_length
        self.max_length = max_length

    def start(self) -> tuple[int, int]:
        return (0, 0)  # (phase, length): 0 before the quote, 1 body, 2 after \, 3-6 \u hex

    def step(self, data: tuple[int, int], ch: str) -> tuple[int, Any]:
        phase, length = data
        counted = self.max_length is not None or self.min_length > 0
        if phase == 0:
            return (_STAY, (1, 0)) if ch == '"' else (_REJECT, None)
        if phase == 1:
            if ch == '"':
                return (_CLOSE, None) if length >= self.min_length else (_REJECT, None)
            if self.max_length is not None and length >= self.max_length:
                return _REJECT, None
            if ch == "\\":
                return _STAY, (2, length)
            if ord(ch) < 0x20:
                return _REJECT, None
            return _STAY, (1, length + 1 if counted else 0)
        if phase == 2:
            if ch in '"\\/bfnrt':
                return _STAY, (1, length + 1 if counted else 0)
            return (_STAY, (3, length)) if ch == "u" else (_REJECT, None)
        if ch in "0123456789abcdefABCDEF":
            if phase == 6:
                return _STAY, (1, length + 1 if counted else 0)
            return _STAY, (phase + 1, length)
        return _REJECT, None

    def free_text(self, data: tuple[int, int]) -> bool:
        return data[0] == 1 and self.max_length is None and self.min_length == 0


class Sequence(Node):
    """Children one after another: an object's keys and values, a fixed-length array."""

    def __init__(self, children: list[Node]) -> None:
        if not children:
            raise ValueError("empty sequence")
        self.children = children
        self.first = children[0].first

    def start(self) -> int:
        return 0

    def step(self, i: int, ch: str) -> tuple[int, Any]:
        if i == len(self.children):
            return _POP, None
        return _ENTER, (i + 1, self.children[i])

    def can_end(self, i: int) -> bool:
        return i == len(self.children)


class Array(Node):
    """``[item,item,…]`` with between ``min_items`` and ``max_items`` items."""

    first = frozenset("[")

    def __init__(self, item: Node, min_items: int, max_items: int | None) -> None:
        if max_items is not None and min_items > max_items:
            raise UnsupportedSchema(f"empty array length range [{min_items}, {max_items}]")
        self.item = item
        self.min_items = min_items
        self.max_items = max_items

    def start(self) -> tuple[int, int]:
        return (0, 0)  # (phase, count): 0 before [, 1 after [, 2 after an item, 3 after a comma

    def step(self, data: tuple[int, int], ch: str) -> tuple[int, Any]:
        phase, count = data
        room = self.max_items is None or count < self.max_items
        if phase == 0:
            return (_STAY, (1, 0)) if ch == "[" else (_REJECT, None)
        if phase in (1, 2) and ch == "]":
            return (_CLOSE, None) if count >= self.min_items else (_REJECT, None)
        if phase == 2:
            return (_STAY, (3, count)) if ch == "," and room else (_REJECT, None)
        if room and ch in self.item.first:  # phase 1 or 3: an item starts
            return _ENTER, ((2, count + 1), self.item)
        return _REJECT, None


class Alternatives(Node):
    """``anyOf``: the first character picks the branch (e.g. ``null`` or a value)."""

    def __init__(self, options: list[Node]) -> None:
        seen: set[str] = set()
        for option in options:
            if seen & option.first:
                raise UnsupportedSchema("anyOf branches that start with the same character")
            seen |= option.first
        self.options = options
        self.first = frozenset(seen)

    def step(self, data: None, ch: str) -> tuple[int, Any]:
        for option in self.options:
            if ch in option.first:
                return _BECOME, option
        return _REJECT, None


def feed(state: State, ch: str) -> State | None:
    """The state after one more character, or ``None`` if no valid answer continues so."""
    stack = list(state)
    while stack:
        node, data = stack[-1]
        action, value = node.step(data, ch)
        if action == _STAY:
            stack[-1] = (node, value)
            return tuple(stack)
        if action == _CLOSE:
            stack.pop()
            return tuple(stack)
        if action == _POP:
            stack.pop()
            continue
        if action == _ENTER:
            own, child = value
            stack[-1] = (node, own)
            stack.append((child, child.start()))
            continue
        if action == _BECOME:
            stack[-1] = (value, value.start())
            continue
        return None
    return None  # the answer is already complete: nothing may follow


def accepts(state: State) -> bool:
    """True when the text so far is a complete answer."""
    return all(node.can_end(data) for node, data in state)


class Grammar:
    """A compiled answer grammar: its root node and start state."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.initial: State = ((root, root.start()),)


def compile_schema(schema: Mapping[str, Any], *, positional: bool = False) -> Grammar:
    """Compile a JSON Schema; raises :class:`UnsupportedSchema` for what it cannot enforce."""
    defs = dict(schema.get("$defs", {}))
    return Grammar(_Compiler(defs, positional).node(schema))


class _Compiler:
    def __init__(self, defs: dict[str, Any], positional: bool) -> None:
        self.defs = defs
        self.positional = positional
        self.depth = 0

    def node(self, schema: Mapping[str, Any]) -> Node:
        self.depth += 1
        if self.depth > 64:
            raise UnsupportedSchema("schema nests too deeply (recursive $ref?)")
        try:
            return self._node(schema)
        finally:
            self.depth -= 1

    def _node(self, schema: Mapping[str, Any]) -> Node:
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            if name not in self.defs:
                raise UnsupportedSchema(f"unknown $ref {schema['$ref']!r}")
            merged = {**self.defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.node(merged)
        if "const" in schema:
            return Literal(self._dump(schema["const"]))
        if "enum" in schema:
            return Choice([self._dump(v) for v in schema["enum"]])
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                return Alternatives([self.node(s) for s in schema[combinator]])
        kind = schema.get("type")
        if isinstance(kind, list):
            return Alternatives([self.node({**schema, "type": k}) for k in kind])
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return Number()
        if kind == "string":
            if "pattern" in schema or "format" in schema:
                raise UnsupportedSchema("string pattern/format")
            return String(int(schema.get("minLength", 0)), schema.get("maxLength"))
        if kind == "boolean":
            return Choice(["true", "false"])
        if kind == "null":
            return Literal("null")
        if kind == "array":
            return self._array(schema)
        if kind == "object":
            return self._object(schema)
        raise UnsupportedSchema(f"schema without a supported type: {dict(schema)!r:.80}")

    def _integer(self, schema: Mapping[str, Any]) -> Node:
        low = schema.get("minimum")
        high = schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = int(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema:
            high = int(schema["exclusiveMaximum"]) - 1
        return Integer(None if low is None else int(low), None if high is None else int(high))

    def _array(self, schema: Mapping[str, Any]) -> Node:
        prefix = schema.get("prefixItems")
        if prefix is not None:
            if schema.get("items", False) is not False:
                raise UnsupportedSchema("prefixItems followed by more items")
            return self._fixed([self.node(s) for s in prefix])
        items = schema.get("items")
        if not isinstance(items, Mapping):
            raise UnsupportedSchema("array without an item schema")
        return Array(self.node(items), int(schema.get("minItems", 0)), schema.get("maxItems"))

    def _object(self, schema: Mapping[str, Any]) -> Node:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        if not properties or schema.get("additionalProperties") not in (None, False):
            raise UnsupportedSchema("objects without fixed properties (dicts)")
        values = [self.node(s) for s in properties.values()]
        if self.positional:
            return self._fixed(values)
        keys = [json.dumps(k, ensure_ascii=False) for k in properties]
        children: list[Node] = []
        for i, (key, value) in enumerate(zip(keys, values, strict=True)):
            children += [Literal(("{" if i == 0 else ",") + key + ":"), value]
        return Sequence([*children, Literal("}")])

    @staticmethod
    def _fixed(values: list[Node]) -> Node:
        if not values:
            return Literal("[]")
        children: list[Node] = []
        for i, value in enumerate(values):
            children += [Literal("[" if i == 0 else ","), value]
        return Sequence([*children, Literal("]")])

    def _dump(self, value: Any) -> str:
        if self.positional:
            value = positional_value(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
