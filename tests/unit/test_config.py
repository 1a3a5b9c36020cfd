"""One path per setting (controller/config.py): every field of a component's settings group has exactly one
flag, the flags carry no default of their own, and no default is written twice in the package."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from controller.cli import build_parser
from controller.cluster.settings import ClusterSettings
from controller.config import GROUP_TYPES, SETTINGS, Config, resolve

PACKAGE = Path(__file__).resolve().parents[2] / "controller"


def group_fields() -> dict[str, dataclasses.Field]:
    return {f"{group}.{f.name}": f for group, cls in GROUP_TYPES.items() for f in dataclasses.fields(cls)}


def test_every_group_field_has_exactly_one_flag():
    paths = [spec.path for spec in SETTINGS]
    assert len(paths) == len(set(paths))
    assert set(paths) == set(group_fields())
    assert len({spec.flag for spec in SETTINGS}) == len(SETTINGS)


def test_config_is_made_of_groups_only():
    """Config holds no setting of its own: each field is a component's group, built from that group's
    defaults."""
    for field in dataclasses.fields(Config):
        assert field.default is dataclasses.MISSING and dataclasses.is_dataclass(field.default_factory)
    assert Config().file == GROUP_TYPES["file"]()


def test_nothing_given_gives_the_groups_defaults():
    """The parser's defaults are all None ("not given"): what applies is the group's default, and only it."""
    parser = build_parser()
    paths = {spec.path for spec in SETTINGS}
    actions = [action for action in parser._actions if action.dest in paths]
    assert len(actions) == len(paths) and all(action.default is None for action in actions)
    given = vars(parser.parse_args(["--all-namespaces"]))
    assert resolve(given, {}) == Config(cluster=ClusterSettings(all_namespaces=True))


def test_help_shows_the_groups_defaults():
    fields = group_fields()
    for spec in SETTINGS:
        assert spec.default == fields[spec.path].default
        if spec.kind in ("seconds", "count", "choice") and spec.shown_default is None:
            assert f"(default: {fields[spec.path].default}" in spec.help_text(spec.default), spec.flag


def _literal_defaults(tree: ast.AST) -> list[tuple[str, object, int]]:
    """(name, value, line) of every literal default: function parameters and class-level fields."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            found += [(a.arg, d.value, d.lineno) for a, d in pairs if isinstance(d, ast.Constant)]
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                named = isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                if named and isinstance(item.value, ast.Constant):
                    found.append((item.target.id, item.value.value, item.lineno))
    return found


def test_no_default_is_written_twice():
    """A parameter or field named like a setting may not repeat its default as a literal (it takes it from
    the group, e.g. ``timeout: float = ResolveSettings.timeout``): the group's field is the one place."""
    defaults: dict[str, set[tuple[type, object]]] = {}
    for path, field in group_fields().items():
        value = field.default
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value not in ("", 0):
            defaults.setdefault(path.split(".")[1], set()).add((type(value), value))
    group_classes = {cls.__name__ for cls in GROUP_TYPES.values()}
    repeated = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        ours = [
            (item.lineno, item.end_lineno or item.lineno)
            for item in ast.walk(tree)
            if isinstance(item, ast.ClassDef) and item.name in group_classes
        ]
        for name, value, line in _literal_defaults(tree):
            if any(start <= line <= end for start, end in ours):
                continue
            if (type(value), value) in defaults.get(name, ()):
                repeated.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name}={value!r}")
    assert repeated == []
