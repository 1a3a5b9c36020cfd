"""The docs checked against the code, so that they stay true: the README's flags table and every
K8S_HOSTS_CONTROLLER_* variable against `--help` and Config; every metric name against what the controller's
registry exposes; every HOSTS_SYNC_* variable against scripts/hosts-sync.sh's help; the chart's values table
against chart/values.yaml and its schema. A failure lists each drifted statement as file:line."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest

from controller.cli import build_parser
from controller.config import settings
from controller.engine.sizes import size_flag
from controller.serve.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
HOSTS_SYNC = REPO / "scripts" / "hosts-sync.sh"
DROP_IN = REPO / "examples" / "tyk" / "test-resilience-local.hosts-sync.sh"
CHART = REPO / "chart"
PREFIX = "k8s_hosts_controller_"


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


def lines(path: Path) -> Iterator[tuple[int, str]]:
    yield from enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)


def named_in_docs(pattern: str) -> Iterator[tuple[str, str]]:
    """(file:line, name) for every match of PATTERN in the docs."""
    for path in DOCS:
        for number, text in lines(path):
            for name in re.findall(pattern, text):
                yield where(path, number), name


def table(path: Path, first_header: str) -> tuple[int, list[tuple[int, list[str]]]]:
    """The rows (line, cells) of the first markdown table whose header's first cell is ``first_header``."""
    rows: list[tuple[int, list[str]]] = []
    start = 0
    for number, text in lines(path):
        cells = (
            [c.strip() for c in re.split(r"(?<!\\)\|", text.strip())[1:-1]] if text.startswith("|") else None
        )
        if not start:
            if cells and cells[0] == first_header:
                start = number
            continue
        if cells is None:
            break
        if not set(cells[0]) <= set("-: "):
            rows.append((number, cells))
    assert start, f"{path.relative_to(REPO)}: no table headed {first_header!r}"
    return start, rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def report(drift: list[str]) -> None:
    assert not drift, "the docs drifted from the code:\n" + "\n".join(drift)


# ---- flags and environment variables --------------------------------------------------------------------


def _default_words(default: Any, spec: Any) -> set[str]:
    """How a flags table may write this default."""
    if spec.kind == "switch":
        return {"false"}  # every switch, --no-cleanup-on-exit too, is off unless given
    words = {str(default)}
    if isinstance(default, tuple):
        words.add(",".join(default))
    if spec.kind == "size":
        words.add(size_flag(default))
    return words


def _default_differs(said: str, literal: bool, default: Any, spec: Any) -> bool:
    """A number, true/false or one `literal` in the default column that is not the code's default."""
    if re.fullmatch(r"[0-9.]+", said):
        return float(said) != float(default)
    return (literal or said in ("true", "false")) and said not in _default_words(default, spec)


def test_the_flags_table_is_the_help():
    parser_flags = {o for a in build_parser()._actions for o in a.option_strings}
    specs = {spec.flag: (field, spec) for field, spec in settings()}
    header, rows = table(REPO / "README.md", "Flag")
    drift, seen = [], set()
    for number, (flag_cell, default_cell, *_) in rows:
        flag = next((w for w in re.findall(r"--[a-z][a-z-]*", flag_cell)), None)
        if flag is None:
            drift.append(f"{where(REPO / 'README.md', number)}: no flag in {flag_cell!r}")
            continue
        seen.add(flag)
        if flag not in parser_flags:
            drift.append(f"{where(REPO / 'README.md', number)}: {flag} is not in k8s-hosts-controller --help")
            continue
        if flag not in specs:
            continue  # --version, -h
        field, spec = specs[flag]
        one = re.fullmatch(r"`([^`]*)`", default_cell)
        said = one.group(1) if one else default_cell
        wrong = f"{where(REPO / 'README.md', number)}: {flag} default {said}, code {field.default}"
        if _default_differs(said, bool(one), field.default, spec):
            drift.append(wrong)
    for flag in specs:
        if flag not in seen:
            drift.append(f"{where(REPO / 'README.md', header)}: the flags table lacks {flag}")
    report(drift)


def test_every_environment_variable_named_is_a_setting():
    known = {spec.env for _, spec in settings()}
    named = named_in_docs(r"K8S_HOSTS_CONTROLLER_[A-Z0-9_]*[A-Z0-9]")
    report([f"{at}: {name} is not a variable of any flag" for at, name in named if name not in known])


# ---- metrics --------------------------------------------------------------------------------------------


def exposed() -> tuple[dict[str, str], set[str]]:
    """(family name -> type, every sample name) of a fresh controller registry's /metrics text."""
    text = generate_latest(Metrics().registry).decode()
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    # a counter's or histogram's creation time is a series of its own family, not a metric
    created = {f"{name.removesuffix('_total')}_created" for name in families}
    families = {name: kind for name, kind in families.items() if name not in created}
    samples = set(re.findall(r"^([a-z_:]+)(?:\{| )", text, re.M))
    return families, samples


def test_every_metric_named_in_the_docs_is_exposed():
    families, samples = exposed()
    names = set(families) | samples
    named = named_in_docs(rf"{PREFIX}[a-z_]*[a-z]")
    report([f"{at}: metric {name} is not exposed (see /metrics)" for at, name in named if name not in names])


def test_the_metrics_table_is_the_registry():
    families, _ = exposed()
    header, rows = table(REPO / "README.md", "Metric")
    drift, documented = [], set()
    types = {"info": "gauge"}  # an Info is a gauge of value 1 with labels
    for number, (names_cell, type_cell, *_) in rows:
        for name in ticked(names_cell):
            full = PREFIX + name.split("{")[0]
            family = next((f for f in families if full in (f, f + "_total", f + "_info")), None)
            if family is None:
                drift.append(f"{where(REPO / 'README.md', number)}: {full} is not exposed")
                continue
            documented.add(family)
            if types.get(families[family], families[family]) != type_cell:
                drift.append(
                    f"{where(REPO / 'README.md', number)}: {full} is a {families[family]}, not a {type_cell}"
                )
    for family in sorted(set(families) - documented):
        drift.append(f"{where(REPO / 'README.md', header)}: the metrics table lacks {family}")
    report(drift)


# ---- scripts/hosts-sync.sh ------------------------------------------------------------------------------


def script_help() -> str:
    done = subprocess.run(["bash", str(HOSTS_SYNC), "--help"], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_every_variable_the_script_reads_is_in_its_help():
    helped = set(re.findall(r"HOSTS_SYNC_[A-Z_]*[A-Z]", script_help()))
    drift = [
        f"{where(HOSTS_SYNC, number)}: {name} is read but not in `hosts-sync.sh --help`"
        for number, text in lines(HOSTS_SYNC)
        for name in re.findall(r"\$\{?(HOSTS_SYNC_[A-Z_]*[A-Z])", text)
        if name not in helped
    ]
    report(sorted(set(drift)))


def test_every_hosts_sync_variable_in_the_docs_exists():
    """Named in a doc: in the script's help, or a setting of the example drop-in (named in its own text)."""
    helped = set(re.findall(r"HOSTS_SYNC_[A-Z_]*[A-Z]", script_help()))
    drop_in = set(re.findall(r"HOSTS_SYNC_[A-Z_]*[A-Z]", DROP_IN.read_text()))
    named = named_in_docs(r"HOSTS_SYNC_[A-Z_]*[A-Z]")
    known = helped | drop_in
    report(
        [f"{at}: {name} is not a setting of scripts/hosts-sync.sh" for at, name in named if name not in known]
    )


# ---- the chart's values table ---------------------------------------------------------------------------


def _lookup(tree: Any, dotted: str) -> tuple[bool, Any]:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _schema_has(schema: dict, dotted: str) -> bool:
    node = schema
    for part in dotted.split("."):
        props = node.get("properties", {})
        if part not in props:
            return bool(node.get("additionalProperties")) or "$ref" in node
        node = props[part]
    return True


def _yaml_word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    if value == "":
        return '""'
    return str(value)


def test_the_chart_values_table_is_values_yaml_and_the_schema():
    doc = REPO / "docs" / "in-cluster.md"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    header, rows = table(doc, "value")
    drift, covered = [], set()
    for number, (keys_cell, default_cell, *_) in rows:
        keys, parent = [], ""
        for key in ticked(keys_cell):
            key = parent + key if key.startswith(".") else key
            parent = key.rsplit(".", 1)[0] if "." in key else ""
            keys.append(key.removesuffix(".*"))
        defaults = [d.strip() for d in default_cell.split(" / ")]
        for i, key in enumerate(keys):
            covered.add(key.split(".")[0])
            found, value = _lookup(values, key)
            if not found:
                drift.append(f"{where(doc, number)}: {key} is not in chart/values.yaml")
                continue
            if not _schema_has(schema, key):
                drift.append(f"{where(doc, number)}: {key} is not in chart/values.schema.json")
            said = defaults[i] if len(defaults) == len(keys) else None
            literal = said and re.fullmatch(r"`[^`]*`", said) and not isinstance(value, dict)
            if literal and said.strip("`") != _yaml_word(value):
                drift.append(f"{where(doc, number)}: {key} default {said}, values.yaml {_yaml_word(value)}")
    for key in values:
        if key not in covered:
            drift.append(f"{where(doc, header)}: the values table lacks {key}")
    report(drift)
