"""Reading Gateway API objects (controller/cluster/gatewayapi.py, through sources.py's snapshots)."""

from __future__ import annotations

from controller.cluster import sources
from controller.model import Listener, ParentRef, Selector

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
    snap = sources.gateway_snapshot(body)
    assert snap.listeners == (
        Listener("plain", port=80, protocol="HTTP"),
        Listener(
            "picky",
            hostname="*.example.com",
            port=443,
            protocol="HTTPS",
            namespaces="Selector",
            selector=Selector((("team", "web"),), (("env", "In", ("prod",)),)),
            kinds=((GROUP, "HTTPRoute"),),
        ),
    )


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
        ParentRef("Gateway", "infra", "gw", section="http"),
        ParentRef("ListenerSet", "apps", "team"),
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
    assert sources.listenerset_snapshot(body).gateway == ("apps", "gw")
    body["status"]["conditions"][0]["status"] = "False"
    assert sources.listenerset_snapshot(body).gateway is None


def test_a_namespace_lends_its_labels():
    body = {"metadata": {"name": "apps", "uid": "u", "labels": {"team": "web"}}}
    snap = sources.snapshot(sources.NAMESPACE, body)
    assert (snap.kind, snap.name, snap.labels) == ("Namespace", "apps", (("team", "web"),))
    assert not sources.NAMESPACE.namespaced
