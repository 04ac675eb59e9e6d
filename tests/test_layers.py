"""The package stands in layers: no import circle, and no import of ``jarvis`` hidden inside a
function body (where it would hide a circle from Python and from these checks).

The layers themselves (which package may import which) are import-linter's contracts in
pyproject.toml, checked by ``lint-imports`` in scripts/test.sh.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

import jarvis

SRC = Path(jarvis.__file__).parent


def circles(graph: grimp.ImportGraph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0

    def visit(module: str) -> None:
        nonlocal counter
        index[module] = low[module] = counter
        counter += 1
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_jarvis_is_part_of_an_import_circle() -> None:
    # type-checking imports count too: a circle drawn only for mypy is still a circle
    graph = grimp.build_graph("jarvis", exclude_type_checking_imports=False, cache_dir=None)
    assert len(graph.modules) > 100  # the whole package was read
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert circles(graph) == [{"pkg.a", "pkg.b"}]


def function_body_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of jarvis inside a function or class body."""
    found: list[tuple[int, str]] = []

    class Visitor(ast.NodeVisitor):
        depth = 0

        def visit_scope(self, node: ast.AST) -> None:
            self.depth += 1
            self.generic_visit(node)
            self.depth -= 1

        visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_scope

        def visit_Import(self, node: ast.Import) -> None:
            if self.depth:
                found.extend((node.lineno, a.name) for a in node.names if _ours(a.name))

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if self.depth and node.level == 0 and _ours(node.module or ""):
                found.append((node.lineno, node.module or ""))

    Visitor().visit(ast.parse(source))
    return found


def _ours(module: str) -> bool:
    return module == "jarvis" or module.startswith("jarvis.")


def test_no_function_body_imports_jarvis() -> None:
    hidden = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if (lines := function_body_imports(path.read_text(encoding="utf-8")))
    }
    assert hidden == {}


def test_the_scan_sees_an_import_inside_a_function() -> None:
    source = "import os\n\ndef f():\n    from jarvis.core import tasks\n    import json\n"
    assert function_body_imports(source) == [(4, "jarvis.core")]
