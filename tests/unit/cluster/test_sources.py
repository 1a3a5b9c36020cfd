"""The source declarations (controller/cluster/sources.py): each resource's identity, reader and RBAC rule in
one place, and the kopf hook registered from them."""

from __future__ import annotations

import pytest

from controller.cluster import handlers, sources
from controller.cluster.sources import (
    GATEWAY,
    HTTPROUTE,
    INGRESS,
    LISTENERSET,
    NAMESPACE,
    SERVICE,
    SOURCES,
    Resource,
)
from controller.model import ObjectRef, ResourceId
from controller.sync.state import ClusterState

DECLARED = (*sources.resources_for(SOURCES), *sources.optional_for(SOURCES))
READ = ["get", "list", "watch"]


def body(name: str = "o") -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": "2024"}}


@pytest.mark.parametrize("resource", DECLARED, ids=lambda r: r.plural)
def test_a_resources_objects_carry_its_identity(resource: Resource):
    snap = sources.snapshot(resource, body())
    assert snap.resource == resource.id == ResourceId(resource.group, resource.plural)
    assert (snap.kind, snap.api_version) == (resource.kind, resource.api_version)
    # Only Gateways, ListenerSets and Namespaces lend (addresses, listeners, labels), only Ingresses are
    # filtered by class: their declarations say so.
    assert snap.lends == (resource in (GATEWAY, LISTENERSET, NAMESPACE))
    assert snap.class_filtered == (resource is INGRESS)


def test_every_declared_resource_is_one_identity():
    ids = [r.id for r in DECLARED]
    assert len(set(ids)) == len(ids) == len(DECLARED)
    assert all(r.id is r.id for r in DECLARED)  # one shared instance per resource, not one per object


@pytest.mark.parametrize("name", SOURCES)
def test_a_source_names_hosts_with_its_first_resource_the_others_lend_addresses(name: str):
    first, *others = SOURCES[name].resources
    assert SOURCES[name].name == name
    assert not sources.snapshot(first, body()).lends
    assert all(sources.snapshot(r, body()).lends for r in others)


def test_rbac_rules_follow_the_declarations():
    assert sources.rules_for(["ingress"]) == [
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": READ}
    ]
    assert sources.cluster_rules_for(["ingress", "service"]) == []
    chosen = ["service", "gateway-httproute", "gateway-tlsroute"]
    assert sources.rules_for(chosen) == [
        {"apiGroups": [""], "resources": ["services"], "verbs": READ},
        {
            "apiGroups": [GATEWAY.group],
            "resources": ["httproutes", "gateways", "tlsroutes", "listenersets"],
            "verbs": READ,
        },
    ]
    # Namespaces: cluster-scoped, so not in the watched namespaces' Role; list and watch, no get.
    assert sources.cluster_rules_for(chosen) == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
    ]


def test_routes_name_gateway_api_gateways_only():
    route = body("r")
    route["spec"] = {
        "parentRefs": [
            {"name": "gw"},
            {"name": "istio-gw", "group": "networking.istio.io", "kind": "Gateway"},
        ]
    }
    route["status"] = {
        "parents": [
            {"parentRef": ref, "conditions": [{"type": "Accepted", "status": "True"}]}
            for ref in route["spec"]["parentRefs"]
        ]
    }
    assert sources.snapshot(HTTPROUTE, route).parents == (ObjectRef(GATEWAY.id, "ns", "gw"),)


def test_the_kopf_hook_watches_each_declared_resource_by_group_version_and_plural():
    registry = handlers.build_registry(ClusterState([]), DECLARED, lambda: None)
    watched = {
        (h.selector.group, h.selector.version, h.selector.any_name)
        for h in registry._watching.get_all_handlers()
    }
    assert watched == {(r.group, r.version, r.plural) for r in DECLARED}
    assert (SERVICE.group, SERVICE.version) == ("", "v1")  # the core group: /api/v1
