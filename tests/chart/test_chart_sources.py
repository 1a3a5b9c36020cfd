"""The chart follows the source declarations (controller/cluster/sources.py): its values schema offers exactly
the declared sources, and the RBAC it renders for each grants exactly what the declaration's rules say: the
Role (or ClusterRole) of the watched namespaces what ``rules_for`` says, the ClusterRole of cluster-scoped
resources (``-namespaces``: Namespaces' labels for allowedRoutes selectors) what ``cluster_rules_for`` says,
and none where that is empty. A source declared without the chart following fails here."""

from __future__ import annotations

import json

import pytest
import yaml

from controller.cluster.sources import SOURCES, cluster_rules_for, rules_for
from tests.chart.conftest import CHART, LEAST_RULES, container, render

EVENTS_RULE = LEAST_RULES[1]  # not a source's: every release posts its refusal Events


def grants(rules: list[dict]) -> set[tuple[str, str, tuple[str, ...]]]:
    """(API group, resource, verbs) of each resource a rule list names: rules may group them differently."""
    return {
        (group, resource, tuple(sorted(rule["verbs"])))
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


OWN_ROLES = ("-owner", "-namespaces")  # the pod's own DaemonSet; cluster-scoped resources (cluster_rules)


def source_rules(docs: list[dict], kind: str) -> list[dict]:
    (role,) = [d for d in docs if d["kind"] == kind and not d["metadata"]["name"].endswith(OWN_ROLES)]
    assert EVENTS_RULE in role["rules"]
    return [rule for rule in role["rules"] if rule != EVENTS_RULE]


def cluster_rules(docs: list[dict]) -> list[dict]:
    """The rules of the ClusterRole on cluster-scoped resources, bound to the release's ServiceAccount; none
    when the chart renders no such role."""
    roles = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-namespaces")]
    if not roles:
        return []
    (role,) = roles
    (binding,) = [
        d
        for d in docs
        if d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding["roleRef"]["kind"] == "ClusterRole"
    return role["rules"]


def test_the_values_schema_offers_exactly_the_declared_sources():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["sources"]["items"]["enum"] == list(SOURCES)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["sources"]
    assert set(defaults) <= SOURCES.keys()


@pytest.mark.parametrize("name", SOURCES)
def test_the_role_of_each_source_grants_what_it_declares(name, tmp_path):
    docs = render(tmp_path, {"namespaces": ["tyk"], "sources": [name]})
    assert grants(source_rules(docs, "Role")) == grants(rules_for([name]))
    assert grants(cluster_rules(docs)) == grants(cluster_rules_for([name]))
    assert container(docs)["args"][1] == f"--source={name}"


def test_the_cluster_role_of_all_sources_grants_what_they_declare(tmp_path):
    docs = render(tmp_path, {"allNamespaces": True, "sources": list(SOURCES)})
    assert grants(source_rules(docs, "ClusterRole")) == grants(rules_for(SOURCES))
    assert grants(cluster_rules(docs)) == grants(cluster_rules_for(SOURCES))
