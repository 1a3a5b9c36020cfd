"""values.schema.json (and the chart's own checks) refuse bad values with a message that names the value."""

from __future__ import annotations

import pytest

from tests.chart.conftest import lint, template

BAD = {
    "empty namespaces": ({"namespaces": []}, ["at '/namespaces'", "minItems: got 0, want 1"]),
    "namespaces not a list": ({"namespaces": "tyk,tyk-dp-1"}, ["at '/namespaces'", "got string, want array"]),
    "namespace not a DNS label": (
        {"namespaces": ["Tyk_CP"]},
        ["at '/namespaces/0'", "does not match pattern"],
    ),
    "allNamespaces not a boolean": (
        {"allNamespaces": "yes"},
        ["at '/allNamespaces'", "got string, want boolean"],
    ),
    "bad logFormat": ({"logFormat": "xml"}, ["at '/logFormat'", "value must be one of 'text', 'json'"]),
    "bad writeMode": ({"writeMode": "copy"}, ["at '/writeMode'", "value must be one of"]),
    "syncDelay not a number": ({"syncDelay": "fast"}, ["at '/syncDelay'", "got string, want number"]),
    "negative syncDelay": ({"syncDelay": -1}, ["at '/syncDelay'", "minimum"]),
    # the controller's ranges (README flags table): the pod would only exit 2 with them
    "syncDelay over a minute": ({"syncDelay": 61}, ["at '/syncDelay'", "maximum"]),
    "syncMaxDelay over five minutes": ({"syncMaxDelay": 301}, ["at '/syncMaxDelay'", "maximum"]),
    "port as a string": ({"metrics": {"port": "8080"}}, ["at '/metrics/port'", "got string, want integer"]),
    "port out of range": ({"metrics": {"port": 70000}}, ["at '/metrics/port'", "maximum"]),
    "metrics.enabled not a boolean": (
        {"metrics": {"enabled": "no"}},
        ["at '/metrics/enabled'", "want boolean"],
    ),
    "marker with spaces": ({"marker": "MY BLOCK"}, ["at '/marker'", "does not match pattern"]),
    "relative node path": ({"hostsFile": {"nodePath": "etc/hosts"}}, ["at '/hostsFile/nodePath'"]),
    "domainFilter not a list": ({"domainFilter": "local"}, ["at '/domainFilter'", "want array"]),
    "extraArgs not strings": ({"extraArgs": [1]}, ["at '/extraArgs/0'", "got number, want string"]),
    "privileged": (
        {"securityContext": {"privileged": True}},
        ["at '/securityContext/privileged'", "value must be false"],
    ),
    "misspelled key": ({"allnamespaces": True}, ["additional properties 'allnamespaces' not allowed"]),
    "bad pullPolicy": ({"image": {"pullPolicy": "Sometimes"}}, ["at '/image/pullPolicy'"]),
}


@pytest.mark.parametrize("case", BAD)
def test_schema_rejects(case, tmp_path):
    values, fragments = BAD[case]
    proc = template(tmp_path, values)
    assert proc.returncode != 0, f"{case}: accepted"
    assert "values don't meet the specifications of the schema" in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_lint_strict_rejects_bad_values_too(tmp_path):
    proc = lint(tmp_path, {"namespaces": [], "logFormat": "xml"})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "/namespaces" in out and "/logFormat" in out


def test_all_namespaces_needs_no_namespace_list(tmp_path):
    proc = template(tmp_path, {"allNamespaces": True, "namespaces": []})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"namespaces": []},
            "namespaces is empty: list at least one namespace to watch, or set allNamespaces=true",
        ),
        ({"hostsFile": {"containerPath": "/etc/hosts"}}, "hostsFile.containerPath must not be /etc/hosts"),
        (
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "metrics.serviceMonitor.enabled needs metrics.enabled and metrics.service.enabled",
        ),
    ],
)
def test_template_checks_beyond_the_schema(values, message, tmp_path):
    # The schema catches an empty list first; with --skip-schema-validation the template refuses it.
    proc = template(tmp_path, values, extra=("--skip-schema-validation",))
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
