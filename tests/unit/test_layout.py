"""The package's shape: no import cycle, kopf only at the edge, no big module without a stated reason."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "controller"
KOPF_MODULES = {"handlers", "listing", "runner"}  # the edge: everything else runs without kopf
MAX_LINES = 350


def imports() -> dict[str, set[str]]:
    """module -> the controller modules it imports, at the top or inside functions (lazy imports count)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "controller":
                    found.update(alias.name for alias in node.names)
                elif node.module.startswith("controller."):
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("controller."))
        graph[path.stem] = {m for m in found if (PACKAGE / f"{m}.py").exists()} - {path.stem}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for dep in sorted(graph[module]):
            found = visit(dep, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_the_checker_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    graph = imports()
    assert {"cli", "config", "runner", "writer", "block", "hostsfile"} <= graph.keys()
    assert "config" in graph["runner"] and "runner" in graph["cli"]  # the edges the cycle used to run along
    assert cycle(graph) is None


def test_kopf_is_imported_only_at_the_edge():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        if any(name == "kopf" or name.startswith("kopf.") for name in names):
            assert path.stem in KOPF_MODULES, path.name


def test_big_modules_say_why_at_the_top():
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert f"above {MAX_LINES} lines" in docstring, f"{path.name}: {text.count(chr(10))} lines"
