"""Beyond Ingress: Gateway API routes, LoadBalancer Services, annotations and the post-write command,
with the controller as a real process against the real API server (Gateway API CRDs installed)."""

from __future__ import annotations

import pytest
from kubernetes import client

from controller.cluster.sources import GATEWAY, SOURCES
from tests.helpers import create_gateway, eventually, managed

pytestmark = pytest.mark.integration

GROUP, VERSION = GATEWAY.group, GATEWAY.version
NOW = "2026-01-01T00:00:00Z"
# Every declared source whose routes attach to Gateways: a new route source is tested here as it is declared.
ROUTES = {name: s.resources[0].plural for name, s in SOURCES.items() if GATEWAY in s.resources[1:]}
KINDS = {s.resources[0].plural: s.resources[0].kind for s in SOURCES.values()}


class Gateways:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def gateway(self, namespace: str, name: str, addresses: list[dict], protocol: str = "HTTP") -> None:
        # A TLSRoute attaches to TLS listeners only (the Gateway API spec's kinds by protocol).
        listener = {"name": "http", "port": 80, "protocol": "HTTP"}
        if protocol == "TLS":
            listener = {"name": "tls", "port": 443, "protocol": "TLS", "tls": {"mode": "Passthrough"}}
        create_gateway(self.custom, namespace, name, [listener], addresses)

    def set_gateway_addresses(self, namespace: str, name: str, addresses: list[dict]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "gateways", name, {"status": {"addresses": addresses}}
        )

    def route(
        self,
        plural: str,
        namespace: str,
        name: str,
        hostnames: list[str],
        parent: str,
        accepted: bool = True,
        annotations: dict | None = None,
    ) -> None:
        spec: dict = {"parentRefs": [{"name": parent}], "hostnames": hostnames}
        if plural == "tlsroutes":
            spec["rules"] = [{"backendRefs": [{"name": "backend", "port": 443}]}]
        self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            plural,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KINDS[plural],
                "metadata": {"name": name, "annotations": annotations or {}},
                "spec": spec,
            },
        )
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {
                "status": {
                    "parents": [
                        {
                            "parentRef": {"group": GROUP, "kind": "Gateway", "name": parent},
                            "controllerName": "example.com/gateway-controller",
                            "conditions": [
                                {
                                    "type": "Accepted",
                                    "status": "True" if accepted else "False",
                                    "reason": "Accepted" if accepted else "NotAllowedByListeners",
                                    "message": "",
                                    "lastTransitionTime": NOW,
                                    "observedGeneration": 1,
                                }
                            ],
                        }
                    ],
                }
            },
        )

    def delete(self, plural: str, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)


@pytest.fixture
def gateways(api, gateway_crds) -> Gateways:
    return Gateways(api)


@pytest.mark.parametrize("source", sorted(ROUTES))
def test_gateway_routes_appear_move_and_vanish(source, gateways, start_controller, namespace, hosts_file):
    plural = ROUTES[source]
    start_controller("--source", source, "--namespaces", namespace, "--hosts-file", str(hosts_file))
    gateways.gateway(
        namespace,
        "gw",
        [{"type": "IPAddress", "value": "172.18.0.50"}, {"type": "IPAddress", "value": "fc00::50"}],
        protocol="TLS" if plural == "tlsroutes" else "HTTP",
    )
    gateways.route(plural, namespace, "app", ["app.gw.local", "api.gw.local"], "gw")
    gateways.route(plural, namespace, "wild", ["*.gw.local"], "gw")
    gateways.route(plural, namespace, "rejected", ["rejected.gw.local"], "gw", accepted=False)
    expected = {(h, a) for h in ("app.gw.local", "api.gw.local") for a in ("172.18.0.50", "fc00::50")}
    eventually(lambda: managed(hosts_file) == expected, what=f"{source} entries")

    gateways.set_gateway_addresses(namespace, "gw", [{"type": "IPAddress", "value": "172.18.0.51"}])
    eventually(
        lambda: managed(hosts_file) == {("app.gw.local", "172.18.0.51"), ("api.gw.local", "172.18.0.51")},
        what="entries to follow the Gateway's address",
    )

    gateways.delete(plural, namespace, "app")
    eventually(lambda: managed(hosts_file) == set(), what="entries to vanish with the route")


def test_load_balancer_services_opt_in_with_the_annotation(api, start_controller, namespace, hosts_file):
    core = client.CoreV1Api(api)
    start_controller("--source", "service", "--namespaces", namespace, "--hosts-file", str(hosts_file))

    def service(name: str, kind: str, annotations: dict) -> None:
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"type": kind, "ports": [{"port": 80}], "selector": {"app": name}},
            },
        )
        core.patch_namespaced_service_status(
            name, namespace, {"status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.60"}]}}}
        )

    service("web", "LoadBalancer", {"k8s-hosts-controller.io/hostnames": "web.svc.local,www.svc.local"})
    service("plain", "LoadBalancer", {})  # no opt-in: no names
    eventually(
        lambda: managed(hosts_file) == {("web.svc.local", "172.18.0.60"), ("www.svc.local", "172.18.0.60")},
        what="the annotated Service's names",
    )
    core.patch_namespaced_service_status(
        "web", namespace, {"status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.61"}]}}}
    )
    eventually(lambda: ("web.svc.local", "172.18.0.61") in managed(hosts_file), what="the moved address")
    core.delete_namespaced_service("web", namespace)
    eventually(lambda: managed(hosts_file) == set(), what="the Service's names to vanish")


def test_annotations_ignore_target_hostnames_and_invalid(
    api, ingresses, start_controller, namespace, hosts_file
):
    net = client.NetworkingV1Api(api)

    def annotated(name: str, hosts: list[str], annotations: dict) -> None:
        net.create_namespaced_ingress(
            namespace,
            {
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"rules": [{"host": h} for h in hosts]},
            },
        )
        ingresses.set_status(namespace, name, ["10.40.0.1"])

    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    annotated("ignored", ["ignored.local"], {"k8s-hosts-controller.io/ignore": "true"})
    annotated("target", ["target.local"], {"k8s-hosts-controller.io/target": "127.0.0.1,::1"})
    annotated("extra", ["main.local"], {"k8s-hosts-controller.io/hostnames": "alias.local, other.local"})
    annotated("broken", ["broken.local"], {"k8s-hosts-controller.io/target": "not-an-ip"})
    expected = {
        ("target.local", "127.0.0.1"),
        ("target.local", "::1"),
        ("main.local", "10.40.0.1"),
        ("alias.local", "10.40.0.1"),
        ("other.local", "10.40.0.1"),
    }
    eventually(lambda: managed(hosts_file) == expected, what="annotation semantics")
    events = eventually(
        lambda: [
            e
            for e in client.CoreV1Api(api).list_namespaced_event(namespace).items
            if e.involved_object.name == "broken"
        ],
        what="an Event on the bad annotation",
    )
    assert "[invalid-annotation]" in events[0].message and "not-an-ip" in events[0].message
    assert ctl.metric("k8s_hosts_controller_rejected_hosts", reason="invalid-annotation") == 1


def test_several_sources_at_once_count_each_kind(
    gateways, ingresses, start_controller, namespace, hosts_file
):
    ctl = start_controller(
        "--source", "ingress,gateway-httproute", "--namespaces", namespace, "--hosts-file", str(hosts_file)
    )
    ingresses.create(namespace, "ing", ["ing.local"], ips=["10.50.0.1"])
    gateways.gateway(namespace, "gw", [{"type": "IPAddress", "value": "10.50.0.2"}])
    gateways.route("httproutes", namespace, "route", ["route.local"], "gw")
    eventually(
        lambda: managed(hosts_file) == {("ing.local", "10.50.0.1"), ("route.local", "10.50.0.2")},
        what="entries from both sources",
    )
    assert ctl.metric("k8s_hosts_controller_watched_objects", kind="Ingress") == 1
    assert ctl.metric("k8s_hosts_controller_watched_objects", kind="HTTPRoute") == 1
    assert ctl.metric("k8s_hosts_controller_watched_objects", kind="Gateway") == 1


SOURCE_RULES = {
    "ingress": [
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]}
    ],
    "service": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}],
    "gateway-httproute": [
        {
            "apiGroups": [GROUP],
            "resources": ["gateways", "httproutes", "listenersets"],
            "verbs": ["get", "list", "watch"],
        }
    ],
}
EVENTS_RULE = {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}
# Cluster-wide, with a Gateway source only: the labels allowedRoutes selectors match.
NAMESPACES_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}


def bind_cluster_rule(control_plane, namespace: str, service_account: str, rule: dict) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    name = f"{service_account}-{namespace}"
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    for plural, body in (
        ("clusterroles", {"metadata": {"name": name}, "rules": [rule]}),
        ("clusterrolebindings", {"metadata": {"name": name}, "roleRef": role_ref, "subjects": [subject]}),
    ):
        status, answer = control_plane.request("POST", f"{rbac}/{plural}", body)
        assert status == 201, (plural, status, answer)


@pytest.mark.parametrize(
    "combination", [("service",), ("gateway-httproute",), ("ingress", "service", "gateway-httproute")]
)
def test_each_source_combination_needs_only_its_own_rbac(
    combination, control_plane, api, gateway_crds, namespace, tmp_path, hosts_file, start_controller
):
    rules = [r for source in combination for r in SOURCE_RULES[source]] + [EVENTS_RULE]
    kubeconfig = control_plane.role_kubeconfig(tmp_path / "sync.kubeconfig", namespace, "sync", rules)
    if "gateway-httproute" in combination:
        bind_cluster_rule(control_plane, namespace, "sync", NAMESPACES_RULE)
    ctl = start_controller(
        "--source",
        ",".join(combination),
        "--namespaces",
        namespace,
        "--hosts-file",
        str(hosts_file),
        "--kubeconfig",
        str(kubeconfig),
    )
    # "403" alone would also match a timestamp's milliseconds (".403Z"); a denial always says "forbidden".
    assert "forbidden" not in ctl.log().lower(), ctl.log()

    # Enough: remove one rule and the controller can no longer complete its listing.
    token = control_plane.mint_token(namespace, "sync")
    for source in combination:
        for rule in SOURCE_RULES[source]:
            group = rule["apiGroups"][0]
            prefix = f"/apis/{group}/v1" if group else "/api/v1"
            for resource in rule["resources"]:
                status, _ = control_plane.request(
                    "GET", f"{prefix}/namespaces/{namespace}/{resource}", token=token
                )
                assert status == 200, (resource, status)
    assert control_plane.request("GET", f"/api/v1/namespaces/{namespace}/secrets", token=token)[0] == 403


def test_post_write_command_runs_after_each_write_and_failures_are_logged(
    ingresses, start_controller, namespace, hosts_file, tmp_path
):
    marker = tmp_path / "flushed"
    ctl = start_controller(
        "--namespaces",
        namespace,
        "--hosts-file",
        str(hosts_file),
        "--post-write-command",
        f"echo flushed >> {marker}",
    )
    ingresses.create(namespace, "a", ["a.local"], ips=["10.60.0.1"])
    eventually(lambda: marker.exists() and marker.read_text().count("flushed") == 1, what="the command's run")
    ingresses.set_status(namespace, "a", ["10.60.0.2"])
    eventually(lambda: marker.read_text().count("flushed") == 2, what="a second run after the second write")
    ctl.stop()

    failing = start_controller(
        "--namespaces",
        namespace,
        "--hosts-file",
        str(hosts_file),
        "--post-write-command",
        "echo cache flush failed; exit 3",
    )
    failure = "failed with exit code 3: 'cache flush failed'"  # the output tail is logged quoted
    eventually(lambda: failure in failing.log(), what="the failure log")
