"""The package's shape: layers that only import downward, no import cycle, kopf and kubernetes only at the
cluster edge, the engine on the standard library alone, unit tests that mirror the folders, and no big module
without a stated reason.

The layers, from the bottom up (docs/architecture.md, "The tree"):

    engine/    the hosts file; the standard library only
    model.py   the words every layer above shares: Snapshot, Rejection, the refusal reasons
    serve/     metrics, readiness, the HTTP server, the log format
    sync/      state, planner, writer, reports
    cluster/   sources, kopf hooks, API client, stream health
    top        cli, config, checks, runner (the wiring), wait, status, liveness, memory

A module may import its own layer and the layers below it, never one above.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "controller"
LAYERS = ("engine", "model", "serve", "sync", "cluster", "top")
SUBPACKAGES = ("engine", "serve", "sync", "cluster")
KUBE_LIBRARIES = ("kopf", "kubernetes")
KUBE_ALLOWED = {"runner"}  # outside cluster/: the wiring starts kopf's operator
MAX_LINES = 350


def module_name(path: Path) -> str:
    """controller/sync/plan.py -> "sync.plan"; controller/cli.py -> "cli"; an __init__.py names its folder."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "controller"


def layer(module: str) -> str:
    head = module.split(".")[0]
    if head in SUBPACKAGES:
        return head
    return "model" if module == "model" else "top"


def imported(tree: ast.AST) -> set[str]:
    """Every module name an import statement names, top-level or inside a function (lazy imports count)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports() -> dict[str, set[str]]:
    """module -> the modules of ours it imports ("sync.plan", "cli"; the package root is left out)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        ours = {
            name.removeprefix("controller.")
            for name in imported(ast.parse(path.read_text()))
            if name.startswith("controller.")
        }
        graph[module] = {name for name in ours if name in known} - {module, "controller"}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for dep in sorted(graph.get(module, ())):
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


def upward(graph: dict[str, set[str]]) -> list[str]:
    """The imports that go up a layer, as "sync.writer -> config"."""
    return [
        f"{module} -> {dep}"
        for module, deps in sorted(graph.items())
        for dep in sorted(deps)
        if LAYERS.index(layer(dep)) > LAYERS.index(layer(module))
    ]


def test_the_checkers_find_a_cycle_and_an_upward_import():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
    assert upward({"engine.block": {"sync.plan"}, "sync.plan": {"engine.block", "model"}}) == [
        "engine.block -> sync.plan"
    ]
    assert upward({"cluster.kube": {"sync.events"}, "cli": {"cluster.kube"}}) == []


def test_every_module_is_found_on_its_layer():
    graph = imports()
    assert {"cli", "config", "runner", "sync.writer", "engine.block", "engine.hostsfile"} <= graph.keys()
    assert "config" in graph["runner"] and "runner" in graph["cli"]  # the edges a cycle once ran along
    assert {layer(m) for m in graph} == set(LAYERS)
    # A new folder is placed on a layer here on purpose, not dropped on the top layer by default.
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == set(SUBPACKAGES)


def test_no_import_cycle_in_the_package():
    assert cycle(imports()) is None


def test_imports_only_go_down_the_layers():
    assert upward(imports()) == []


def test_the_engine_needs_the_standard_library_alone():
    for path in (PACKAGE / "engine").rglob("*.py"):
        for name in imported(ast.parse(path.read_text())):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith("controller.engine"), (path.name, name)


def test_kopf_and_kubernetes_only_at_the_cluster_edge():
    for module, path in modules().items():
        names = imported(ast.parse(path.read_text()))
        if any(name.split(".")[0] in KUBE_LIBRARIES for name in names):
            assert layer(module) == "cluster" or module in KUBE_ALLOWED, module


def test_unit_tests_mirror_the_package():
    unit = ROOT / "tests" / "unit"
    folders = {p.name for p in unit.iterdir() if p.is_dir() and list(p.glob("test_*.py"))}
    assert folders == set(SUBPACKAGES)


def test_the_engines_errors_are_in_one_module():
    """A caller learns what the engine raises from controller/engine/errors.py alone."""
    family = {"HostsFileError"}
    errors = ast.parse((PACKAGE / "engine" / "errors.py").read_text())
    family |= {node.name for node in ast.walk(errors) if isinstance(node, ast.ClassDef)}
    for path in PACKAGE.rglob("*.py"):
        if path != PACKAGE / "engine" / "errors.py":
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    assert not {ast.unparse(base) for base in node.bases} & family, (path.name, node.name)


def test_every_module_logs_under_its_own_name():
    """One scheme: ``logging.getLogger(__name__)``, so a log line names the module that wrote it
    (``controller.sync.report``) and "controller" is the package's logger. Only the log set-up names others.
    """
    for module, path in modules().items():
        if module == "serve.logs":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger":
                assert [ast.unparse(arg) for arg in node.args] == ["__name__"], (module, ast.unparse(node))


# Unit tests at the top of tests/unit that test no module of the top layer.
NOT_A_TOP_MODULE = {
    "test_layout.py": "the package's shape",
    "test_bench_pairs.py": "bench/workload.py",
    "test_version.py": "controller/__init__.py (__version__) and every artifact that carries it",
    "test_docs_drift.py": "the docs (README.md, docs/, the chart values table) against the code",
    "test_resilience_report.py": "tests/e2e/resilience_report.py",
}


def test_each_unit_test_sits_with_what_it_tests():
    """tests/unit/sync/test_x.py imports controller.sync; a test at the top is named for a top module."""
    unit = ROOT / "tests" / "unit"
    top = {module for module in modules() if layer(module) in ("top", "model") and module != "controller"}
    for path in unit.glob("*/test_*.py"):
        folder = path.parent.name
        names = imported(ast.parse(path.read_text()))
        assert any(name.startswith(f"controller.{folder}.") for name in names), f"{folder}/{path.name}"
    for path in unit.glob("test_*.py"):
        stem = path.stem.removeprefix("test_")
        named = any(stem == module or stem.startswith(f"{module}_") for module in top)
        assert named or path.name in NOT_A_TOP_MODULE, f"{path.name}: move it next to what it tests"


def test_big_modules_say_why_at_the_top():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert f"above {MAX_LINES} lines" in docstring, f"{path.name}: {text.count(chr(10))} lines"


def test_every_test_folder_is_a_package():
    """pytest names a test module by its path from the nearest folder without ``__init__.py``; without one
    in every folder, tests/unit/cluster/test_sources.py and tests/integration/test_sources.py are both
    ``test_sources`` and collecting the whole suite stops with "import file mismatch"."""
    tests = ROOT / "tests"
    for path in tests.rglob("test_*.py"):
        for folder in path.relative_to(tests).parents:
            assert (tests / folder / "__init__.py").is_file(), f"tests/{folder}: add an empty __init__.py"
