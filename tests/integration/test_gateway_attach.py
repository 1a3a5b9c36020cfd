"""Gateway API attachment with the controller as a real process against the real API server (the standard
Gateway API CRDs installed): which Gateway's address each route name gets, names inherited from listeners,
sectionName/port, allowedRoutes with Namespace labels, ListenerSet parents."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.helpers import create_gateway, eventually, managed

pytestmark = pytest.mark.integration

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
NOW = "2026-01-01T00:00:00Z"


def condition(kind: str = "Accepted", status: str = "True") -> dict:
    return {
        "type": kind,
        "status": status,
        "reason": kind if status == "True" else "NotAllowedByListeners",
        "message": "",
        "lastTransitionTime": NOW,
        "observedGeneration": 1,
    }


def http_listener(
    name: str, hostname: str | None = None, port: int = 80, namespaces: dict | None = None
) -> dict:
    listener: dict = {"name": name, "port": port, "protocol": "HTTP"}
    if hostname:
        listener["hostname"] = hostname
    if namespaces:
        listener["allowedRoutes"] = {"namespaces": namespaces}
    return listener


class GatewayApi:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def gateway(self, namespace: str, name: str, address: str, listeners: list[dict]) -> None:
        create_gateway(self.custom, namespace, name, listeners, [{"type": "IPAddress", "value": address}])

    def listener_set(self, namespace: str, name: str, gateway: str, listeners: list[dict]) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "listenersets",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ListenerSet",
                "metadata": {"name": name},
                "spec": {"parentRef": {"name": gateway}, "listeners": listeners},
            },
        )
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "listenersets", name, {"status": {"conditions": [condition()]}}
        )

    def route(self, namespace: str, name: str, hostnames: list[str], parents: list[dict]) -> None:
        """An HTTPRoute, accepted by every parent it names (a status entry per parentRef)."""
        self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "httproutes",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "HTTPRoute",
                "metadata": {"name": name},
                "spec": {"parentRefs": parents, "hostnames": hostnames},
            },
        )
        statuses = [
            {
                "parentRef": {"group": GROUP, "kind": "Gateway", **ref},
                "controllerName": "example.com/gateway-controller",
                "conditions": [condition()],
            }
            for ref in parents
        ]
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "httproutes", name, {"status": {"parents": statuses}}
        )


@pytest.fixture
def gateway_api(api, gateway_crds) -> GatewayApi:
    return GatewayApi(api)


def start(start_controller, hosts_file, *namespaces: str):
    return start_controller(
        "--source", "gateway-httproute", "--namespaces", ",".join(namespaces), "--hosts-file", str(hosts_file)
    )


def test_one_route_on_two_gateways_gets_each_name_at_its_own_gateway(
    gateway_api, start_controller, namespace, hosts_file
):
    start(start_controller, hosts_file, namespace)
    gateway_api.gateway(namespace, "one", "10.70.0.1", [http_listener("http", "*.one.internal")])
    gateway_api.gateway(namespace, "two", "10.70.0.2", [http_listener("http", "*.two.internal")])
    gateway_api.route(
        namespace, "both", ["test.one.internal", "test.two.internal"], [{"name": "one"}, {"name": "two"}]
    )
    expected = {("test.one.internal", "10.70.0.1"), ("test.two.internal", "10.70.0.2")}
    eventually(lambda: managed(hosts_file) == expected, what="one address per name")


def test_routes_inherit_a_concrete_listener_name_and_wildcards_are_refused_naming_the_listener(
    api, gateway_api, start_controller, namespace, hosts_file
):
    start(start_controller, hosts_file, namespace)
    gateway_api.gateway(
        namespace,
        "gw",
        "10.70.1.1",
        [http_listener("shop", "shop.example.com"), http_listener("any", port=8080)],
    )
    gateway_api.route(namespace, "bare", [], [{"name": "gw", "sectionName": "shop"}])
    gateway_api.route(namespace, "wild", ["*.example.com"], [{"name": "gw", "sectionName": "shop"}])
    gateway_api.route(namespace, "everything", [], [{"name": "gw", "sectionName": "any"}])
    eventually(lambda: managed(hosts_file) == {("shop.example.com", "10.70.1.1")}, what="the inherited name")

    def refusal():
        return [
            e.message
            for e in client.CoreV1Api(api).list_namespaced_event(namespace).items
            if e.involved_object.name == "everything"
        ]

    (message,) = eventually(
        refusal, what="an Event on the route that names no host on a listener without one"
    )
    assert "[wildcard]" in message and "listener 'any'" in message


def test_section_name_and_port_pick_one_of_several_listeners(
    gateway_api, start_controller, namespace, hosts_file
):
    start(start_controller, hosts_file, namespace)
    gateway_api.gateway(
        namespace,
        "gw",
        "10.70.2.1",
        [
            http_listener("a", "a.example.com", port=80),
            http_listener("b", "b.example.com", port=8080),
            http_listener("c", "c.example.com", port=8081),
        ],
    )
    gateway_api.route(namespace, "by-name", [], [{"name": "gw", "sectionName": "b"}])
    gateway_api.route(namespace, "by-port", [], [{"name": "gw", "port": 8081}])
    eventually(
        lambda: managed(hosts_file) == {("b.example.com", "10.70.2.1"), ("c.example.com", "10.70.2.1")},
        what="the listeners the parentRefs select, and no other",
    )


def test_allowed_routes_follow_namespace_labels(
    api, gateway_api, start_controller, new_namespace, hosts_file
):
    infra, apps = new_namespace("infra"), new_namespace("apps")
    start(start_controller, hosts_file, infra, apps)
    gateway_api.gateway(
        infra,
        "gw",
        "10.70.3.1",
        [
            http_listener("same", "same.example.com", port=80, namespaces={"from": "Same"}),
            http_listener("all", "all.example.com", port=81, namespaces={"from": "All"}),
            http_listener(
                "selected",
                "selected.example.com",
                port=82,
                namespaces={"from": "Selector", "selector": {"matchLabels": {"team": "web"}}},
            ),
        ],
    )
    gateway_api.route(apps, "r", [], [{"name": "gw", "namespace": infra}])
    eventually(lambda: managed(hosts_file) == {("all.example.com", "10.70.3.1")}, what="All only")

    core = client.CoreV1Api(api)
    core.patch_namespace(apps, {"metadata": {"labels": {"team": "web"}}})
    both = {("all.example.com", "10.70.3.1"), ("selected.example.com", "10.70.3.1")}
    eventually(lambda: managed(hosts_file) == both, what="the labelled namespace to be selected")

    core.patch_namespace(apps, {"metadata": {"labels": {"team": None}}})
    eventually(
        lambda: managed(hosts_file) == {("all.example.com", "10.70.3.1")}, what="the unlabelled one to leave"
    )


def test_a_listener_set_parent_lends_its_listeners_at_its_gateways_address(
    gateway_api, start_controller, namespace, hosts_file
):
    start(start_controller, hosts_file, namespace)
    gateway_api.gateway(namespace, "gw", "10.70.4.1", [http_listener("http", "*.gw.example.com")])
    gateway_api.listener_set(namespace, "team", "gw", [http_listener("shop", "shop.team.example.com")])
    gateway_api.route(namespace, "r", [], [{"kind": "ListenerSet", "name": "team"}])
    eventually(
        lambda: managed(hosts_file) == {("shop.team.example.com", "10.70.4.1")},
        what="the ListenerSet's listener name at its Gateway's address",
    )


def test_without_the_listener_set_crd_routes_still_attach_and_nothing_is_an_error(
    api, control_plane, gateway_api, start_controller, namespace, hosts_file
):
    ext = client.ApiextensionsV1Api(api)
    name = "listenersets.gateway.networking.k8s.io"
    saved = api.sanitize_for_serialization(ext.read_custom_resource_definition(name))
    ext.delete_custom_resource_definition(name)

    def served() -> bool:
        status, answer = control_plane.request("GET", f"/apis/{GROUP}/{VERSION}")
        resources = json.loads(answer).get("resources", []) if status == 200 else []
        return any(r.get("name") == "listenersets" for r in resources)

    def gone() -> bool:
        return name not in {c.metadata.name for c in ext.list_custom_resource_definition().items}

    try:
        eventually(lambda: gone() and not served(), timeout=60, what="the ListenerSet CRD to go")
        ctl = start(start_controller, hosts_file, namespace)
        gateway_api.gateway(namespace, "gw", "10.70.5.1", [http_listener("http", "*.gw.example.com")])
        gateway_api.route(namespace, "r", ["a.gw.example.com"], [{"name": "gw"}])
        eventually(
            lambda: managed(hosts_file) == {("a.gw.example.com", "10.70.5.1")}, what="the route's name"
        )
        assert " ERROR " not in ctl.log() and " WARNING " not in ctl.log(), ctl.log()
    finally:  # the other tests of this run use ListenerSets
        eventually(gone, timeout=60, what="the deleted CRD to be gone before it is put back")
        ext.create_custom_resource_definition(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": name, "annotations": saved["metadata"].get("annotations") or {}},
                "spec": saved["spec"],
            }
        )
        eventually(served, timeout=60, what="ListenerSets served again")
        listed = f"/apis/{GROUP}/{VERSION}/listenersets"  # 429 until the new CRD's storage is ready
        eventually(
            lambda: control_plane.request("GET", listed)[0] == 200, timeout=60, what="ListenerSets listed"
        )
