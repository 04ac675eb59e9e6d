"""Reading Python/Jac ``repr`` text back into plain data, safely (no ``eval``).

The original system logged calls as ``last_levels = [Level(name=3, difficulty=1, …)]`` and
sometimes answers as ``Map_tiles(level=Level(…), …)``. Constructor calls with keyword arguments
become dicts (the class name is dropped: the task's types give it back), everything else must
be a literal.
"""

from __future__ import annotations

import ast
import re
from typing import Any

_ARG_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*) = (.*)$")


class ReprError(ValueError):
    """The text is not a literal or a keyword-only constructor call."""


def parse_value(text: str) -> Any:
    """Parse one repr expression into JSON-like data."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ReprError(f"not a Python literal: {exc.msg}") from exc
    return _convert(node)


def _convert(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [_convert(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ReprError("'**' in a dict literal is not supported")
        return {_convert(k): _convert(v) for k, v in zip(node.keys, node.values, strict=True) if k}
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ReprError("only calls of a plain class name, like Level(...), are read")
        if node.args:
            raise ReprError("constructor calls must use keyword arguments only")
        if any(kw.arg is None for kw in node.keywords):
            raise ReprError("'**' in a constructor call is not supported")
        return {kw.arg: _convert(kw.value) for kw in node.keywords if kw.arg}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _convert(node.operand)
        if not isinstance(value, int | float):
            raise ReprError("unary sign on a non-number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name) and node.id in {"True", "False", "None"}:
        return {"True": True, "False": False, "None": None}[node.id]
    raise ReprError(f"unsupported expression: {type(node).__name__}")


def parse_byllm_call(text: str) -> dict[str, Any]:
    """The arguments of a call as byLLM renders it: the function's description, a blank
    line, then one ``name = (value, 'semstr')`` line per argument (value and meaning)."""
    _, sep, body = text.strip("\n").partition("\n\n")
    if not sep:
        raise ReprError("no blank line between the description and the arguments")
    values: dict[str, Any] = {}
    for name, raw in _raw_args(body.splitlines()).items():
        try:
            node = ast.parse(raw.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ReprError(f"argument {name!r}: not a Python literal: {exc.msg}") from exc
        if not (isinstance(node, ast.Tuple) and len(node.elts) == 2):
            raise ReprError(f"argument {name!r} is not byLLM's (value, meaning) pair")
        values[name] = _convert(node.elts[0])
    return values


def _raw_args(lines: list[str]) -> dict[str, str]:
    """``name = value`` lines; a line that starts no new pair continues the last value."""
    raw: dict[str, str] = {}
    current: str | None = None
    for line in lines:
        match = _ARG_LINE.match(line)
        if match:
            current = match.group(1)
            raw[current] = match.group(2)
        elif current is not None:
            raw[current] += "\n" + line
        elif line.strip():
            raise ReprError(f"expected 'name = value', got {line[:60]!r}")
    return raw


def parse_call_text(text: str) -> tuple[str, dict[str, Any]]:
    """Split a rendered user message into the function name and its arguments.

    Lines that do not start a new ``name = value`` pair continue the previous value, so a
    multi-line repr still parses.
    """
    lines = text.strip("\n").splitlines()
    if not lines or not lines[0].strip():
        raise ReprError("empty call text")
    func = lines[0].strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", func):
        raise ReprError(f"first line is not a function name: {func[:60]!r}")
    args: dict[str, Any] = {}
    for name, value in _raw_args(lines[1:]).items():
        try:
            args[name] = parse_value(value)
        except ReprError as exc:
            raise ReprError(f"argument {name!r}: {exc}") from exc
    return func, args
