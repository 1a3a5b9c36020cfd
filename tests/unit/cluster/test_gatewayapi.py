"""Reading Gateway API objects (controller/cluster/gatewayapi.py, through sources.py's snapshots)."""

from __future__ import annotations

from controller.cluster import sources
from controller.model import Listener, ObjectRef, Selector

GROUP = "gateway.networking.k8s.io"


def accepted(ref: dict) -> dict:
    return {"parentRef": ref, "conditions": [{"type": "Accepted", "status": "True"}]}


def test_listeners_keep_hostname_port_and_allowed_routes():
    body = {
        "metadata": {"name": "gw", "namespace": "infra", "uid": "u"},
        "spec": {
            "listeners": [
                {"name": "plain", "port": 80, "protocol": "HTTP"},
                {
                    "name": "picky",
                    "port": 443,
                    "protocol": "HTTPS",
                    "hostname": "*.example.com",
                    "allowedRoutes": {
                        "namespaces": {
                            "from": "Selector",
                            "selector": {
                                "matchLabels": {"team": "web"},
                                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
                            },
                        },
                        "kinds": [{"kind": "HTTPRoute"}],
                    },
                },
            ]
        },
    }
    snap = sources.snapshot(sources.GATEWAY, body)
    assert snap.listeners == (
        Listener("plain", port=80, protocol="HTTP", kinds=(sources.HTTPROUTE.id, sources.GRPCROUTE.id)),
        Listener(
            "picky",
            hostname="*.example.com",
            port=443,
            protocol="HTTPS",
            namespaces="Selector",
            selector=Selector((("team", "web"),), (("env", "In", ("prod",)),)),
            kinds=(sources.HTTPROUTE.id,),
        ),
    )
    assert snap.gateway == ObjectRef(sources.GATEWAY.id, "infra", "gw")  # its listeners, its addresses


def test_listener_kinds_are_resources_of_ours_or_none():
    """allowedRoutes.kinds and the protocol become the route resources a listener takes: a kind of no source
    here takes none of ours; a protocol the spec does not define is left open."""

    def kinds(listener: dict) -> tuple | None:
        body = {"metadata": {"name": "gw", "namespace": "infra"}, "spec": {"listeners": [listener]}}
        (only,) = sources.snapshot(sources.GATEWAY, body).listeners
        return only.kinds

    assert kinds({"name": "t", "protocol": "TLS"}) == (sources.TLSROUTE.id,)
    assert kinds({"name": "t", "protocol": "TCP"}) == ()
    assert kinds({"name": "x", "protocol": "example.com/custom"}) is None
    other = {"kinds": [{"kind": "TCPRoute"}, {"group": "example.com", "kind": "HTTPRoute"}]}
    assert kinds({"name": "h", "protocol": "HTTP", "allowedRoutes": other}) == ()


def test_route_parents_carry_section_and_port_and_need_their_own_acceptance():
    body = {
        "metadata": {"name": "r", "namespace": "apps", "uid": "u"},
        "spec": {
            "hostnames": ["a.example.com"],
            "parentRefs": [
                {"name": "gw", "namespace": "infra", "sectionName": "http"},
                {"name": "gw", "namespace": "infra", "sectionName": "https"},
                {"kind": "ListenerSet", "group": GROUP, "name": "team"},
                {"kind": "Service", "group": "", "name": "svc"},
            ],
        },
        "status": {
            "parents": [
                accepted({"name": "gw", "namespace": "infra", "sectionName": "http"}),
                {"parentRef": {"name": "gw", "namespace": "infra", "sectionName": "https"}, "conditions": []},
                accepted({"kind": "ListenerSet", "group": GROUP, "name": "team"}),
                accepted({"kind": "Service", "group": "", "name": "svc"}),
            ]
        },
    }
    snap = sources.route_snapshot(sources.HTTPROUTE, body)
    assert snap.parents == (
        ObjectRef(sources.GATEWAY.id, "infra", "gw", section="http"),
        ObjectRef(sources.LISTENERSET.id, "apps", "team"),
    )
    assert snap.route_hosts == ("a.example.com",)


def test_a_listener_set_names_its_gateway_only_once_accepted():
    body = {
        "metadata": {"name": "team", "namespace": "apps", "uid": "u"},
        "spec": {
            "parentRef": {"name": "gw"},
            "listeners": [{"name": "shop", "port": 80, "protocol": "HTTP"}],
        },
        "status": {"conditions": [{"type": "Accepted", "status": "True"}]},
    }
    assert sources.snapshot(sources.LISTENERSET, body).gateway == ObjectRef(sources.GATEWAY.id, "apps", "gw")
    body["status"]["conditions"][0]["status"] = "False"
    assert sources.snapshot(sources.LISTENERSET, body).gateway is None
    body["status"]["conditions"][0]["status"] = "True"
    body["spec"]["parentRef"] = {"group": "networking.istio.io", "kind": "Gateway", "name": "gw"}
    assert sources.snapshot(sources.LISTENERSET, body).gateway is None  # not a Gateway API Gateway


def test_a_namespace_lends_its_labels():
    body = {"metadata": {"name": "apps", "uid": "u", "labels": {"team": "web"}}}
    snap = sources.snapshot(sources.NAMESPACE, body)
    assert (snap.kind, snap.name, snap.labels) == ("Namespace", "apps", (("team", "web"),))
    assert snap.lends and snap.resource == sources.NAMESPACE.id
    assert not sources.NAMESPACE.namespaced
