"""Least privilege, for real: the chart's ServiceAccount and RBAC, created in the API server from the rendered
chart, and a TokenRequest token for that ServiceAccount, probed with raw API requests."""

from __future__ import annotations

import json

import pytest

from tests.chart.conftest import LEAST_RULES, render
from tests.helpers import eventually

pytestmark = pytest.mark.integration

SA = "hosts-sync-k8s-hosts-controller"
ING = "/apis/networking.k8s.io/v1"

INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "dashboard"},
    "spec": {"rules": [{"host": "chart-dash.local"}]},
}


def event(namespace: str, name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "name": "dashboard",
            "namespace": namespace,
        },
        "reason": "HostRejected",
        "message": "test",
        "type": "Warning",
        "source": {"component": "k8s-hosts-controller"},
    }


def install_rbac(tmp_path, applier, release_ns: str, values: dict) -> None:
    """Creates the rendered ServiceAccount and RBAC objects (nothing else: no pod runs here)."""
    docs = render(tmp_path, values, release="hosts-sync", namespace=release_ns)
    rbac_kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    for doc in docs:
        if doc["kind"] in rbac_kinds:
            applier.apply(doc)


def allowed_rules(cp, token: str, namespace: str) -> list[dict]:
    """The token's resource rules in ``namespace`` (SelfSubjectRulesReview), minus the self-review rules every
    authenticated user has (system:basic-user)."""
    status, body = cp.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        },
        token=token,
    )
    assert status == 201, body
    rules = json.loads(body)["status"]["resourceRules"]
    return [
        {"apiGroups": r["apiGroups"], "resources": r["resources"], "verbs": r["verbs"]}
        for r in rules
        if r["apiGroups"] not in (["authorization.k8s.io"], ["authentication.k8s.io"])
    ]


def test_listed_namespaces_token_is_least_privilege(tmp_path, control_plane, applier, new_namespace):
    cp = control_plane
    release_ns, watched, unwatched = new_namespace("rel"), new_namespace("watched"), new_namespace("other")
    install_rbac(tmp_path, applier, release_ns, {"namespaces": [watched]})
    for ns in (watched, unwatched):  # objects to read, created by the admin
        assert cp.request("POST", f"{ING}/namespaces/{ns}/ingresses", INGRESS)[0] == 201
    token = cp.mint_token(release_ns, SA)

    def status(method: str, path: str, body: dict | None = None) -> int:
        return cp.request(method, path, body, token=token)[0]

    # What the controller needs, in the watched namespace.
    assert status("GET", f"{ING}/namespaces/{watched}/ingresses") == 200
    assert status("GET", f"{ING}/namespaces/{watched}/ingresses?watch=true&timeoutSeconds=1") == 200
    assert status("GET", f"{ING}/namespaces/{watched}/ingresses/dashboard") == 200
    assert status("POST", f"/api/v1/namespaces/{watched}/events", event(watched, "e1")) == 201
    assert (
        cp.request(
            "PATCH",
            f"/api/v1/namespaces/{watched}/events/e1",
            {"count": 2},
            token=token,
            content_type="application/merge-patch+json",
        )[0]
        == 200
    )
    # Nothing else.
    denied = [
        ("GET", f"/api/v1/namespaces/{watched}/secrets"),
        ("GET", f"/api/v1/namespaces/{watched}/configmaps"),
        ("GET", f"/api/v1/namespaces/{watched}/pods"),
        ("GET", f"/api/v1/namespaces/{watched}/events"),
        ("DELETE", f"/api/v1/namespaces/{watched}/events/e1"),
        ("POST", f"{ING}/namespaces/{watched}/ingresses"),
        ("PUT", f"{ING}/namespaces/{watched}/ingresses/dashboard"),
        ("PATCH", f"{ING}/namespaces/{watched}/ingresses/dashboard"),
        ("PATCH", f"{ING}/namespaces/{watched}/ingresses/dashboard/status"),
        ("DELETE", f"{ING}/namespaces/{watched}/ingresses/dashboard"),
        ("GET", f"{ING}/namespaces/{unwatched}/ingresses"),
        ("GET", f"{ING}/namespaces/{unwatched}/ingresses?watch=true&timeoutSeconds=1"),
        ("GET", f"{ING}/namespaces/{release_ns}/ingresses"),
        ("GET", f"{ING}/ingresses"),
        ("POST", f"/api/v1/namespaces/{unwatched}/events"),
        ("GET", "/api/v1/namespaces"),
        ("GET", "/api/v1/secrets"),
    ]
    for method, path in denied:
        body = (
            {}
            if method in ("POST", "PUT")
            else ({"metadata": {"labels": {"x": "y"}}} if method == "PATCH" else None)
        )
        if method == "POST" and path.endswith("/events"):
            body = event(unwatched, "e2")
        elif method == "POST":
            body = {**INGRESS, "metadata": {"name": "new"}}
        got, text = cp.request(
            method,
            path,
            body,
            token=token,
            content_type=("application/merge-patch+json" if method == "PATCH" else "application/json"),
        )
        assert got == 403, f"{method} {path}: {got} {text[:200]}"
        assert json.loads(text)["reason"] == "Forbidden"
    # The exact rule set, as the API server's authorizer sees it.
    assert allowed_rules(cp, token, watched) == LEAST_RULES
    assert allowed_rules(cp, token, unwatched) == []


def test_all_namespaces_token_is_least_privilege(tmp_path, control_plane, applier, new_namespace):
    cp = control_plane
    release_ns, any_ns = new_namespace("rel"), new_namespace("any")
    install_rbac(tmp_path, applier, release_ns, {"allNamespaces": True})
    token = cp.mint_token(release_ns, SA)
    assert cp.request("GET", f"{ING}/ingresses", token=token)[0] == 200
    assert cp.request("GET", f"{ING}/ingresses?watch=true&timeoutSeconds=1", token=token)[0] == 200
    assert cp.request("GET", f"{ING}/namespaces/{any_ns}/ingresses", token=token)[0] == 200
    assert (
        cp.request("POST", f"/api/v1/namespaces/{any_ns}/events", event(any_ns, "e1"), token=token)[0] == 201
    )
    for method, path, body in [
        ("GET", "/api/v1/secrets", None),
        ("GET", "/api/v1/configmaps", None),
        ("GET", f"/api/v1/namespaces/{any_ns}/secrets", None),
        ("GET", f"/api/v1/namespaces/{any_ns}/configmaps", None),
        ("POST", f"{ING}/namespaces/{any_ns}/ingresses", INGRESS),
        ("DELETE", f"{ING}/namespaces/{any_ns}/ingresses/dashboard", None),
        ("GET", "/api/v1/namespaces", None),
    ]:
        assert cp.request(method, path, body, token=token)[0] == 403, f"{method} {path}"
    assert allowed_rules(cp, token, any_ns) == LEAST_RULES


def _not_429(status: int) -> int | None:
    return None if status == 429 else status


def test_gateway_sources_token_reads_routes_and_gateways_only(
    tmp_path, control_plane, applier, new_namespace, gateway_crds
):
    """sources=[gateway-httproute] (the end state of docs/usage.md, "Migrating from ingress-nginx"): the
    Gateways, ListenerSets and HTTPRoutes of the watched namespaces, not the Ingresses any more, nor other
    routes; and the list of Namespaces (their labels, for allowedRoutes selectors), nothing else of theirs."""
    cp = control_plane
    release_ns, watched = new_namespace("rel"), new_namespace("watched")
    install_rbac(tmp_path, applier, release_ns, {"namespaces": [watched], "sources": ["gateway-httproute"]})
    token = cp.mint_token(release_ns, SA)
    gw = f"/apis/gateway.networking.k8s.io/v1/namespaces/{watched}"
    for path in (
        f"{gw}/gateways",
        f"{gw}/httproutes",
        f"{gw}/httproutes?watch=true&timeoutSeconds=1",
        f"{gw}/listenersets",
        "/api/v1/namespaces",
        "/api/v1/namespaces?watch=true&timeoutSeconds=1",
    ):
        # 429 while a just-established CRD's storage starts ("storage is (re)initializing"): ask again.
        status = eventually(lambda p=path: _not_429(cp.request("GET", p, token=token)[0]), what=path)
        assert status == 200, path
    for path in (
        f"{ING}/namespaces/{watched}/ingresses",
        f"{gw}/grpcroutes",
        f"/api/v1/namespaces/{watched}/secrets",
        f"/api/v1/namespaces/{watched}/services",
        "/apis/gateway.networking.k8s.io/v1/httproutes",
        f"/api/v1/namespaces/{watched}",  # list and watch only, no get
    ):
        assert cp.request("GET", path, token=token)[0] == 403, path
    rules = allowed_rules(cp, token, watched)
    assert sorted(rules, key=str) == sorted(
        [
            {
                "apiGroups": ["gateway.networking.k8s.io"],
                "resources": ["gateways", "httproutes", "listenersets"],
                "verbs": ["get", "list", "watch"],
            },
            LEAST_RULES[1],  # events: create, patch
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        ],
        key=str,
    )


def test_the_pod_may_get_its_own_daemonset_and_no_other(tmp_path, control_plane, applier, new_namespace):
    """The owner Role (--owner-daemonset): get on the release's DaemonSet, by name; nothing else of apps."""
    cp = control_plane
    release_ns, watched = new_namespace("rel"), new_namespace("watched")
    docs = render(tmp_path, {"namespaces": [watched]}, release="hosts-sync", namespace=release_ns)
    install_rbac(tmp_path, applier, release_ns, {"namespaces": [watched]})
    (daemonset,) = [doc for doc in docs if doc["kind"] == "DaemonSet"]
    applier.apply(daemonset)
    other = {**daemonset, "metadata": {**daemonset["metadata"], "name": "someone-else"}}
    applier.apply(other)
    token = cp.mint_token(release_ns, SA)
    apps = f"/apis/apps/v1/namespaces/{release_ns}/daemonsets"

    assert cp.request("GET", f"{apps}/{daemonset['metadata']['name']}", token=token)[0] == 200
    for method, path, body in [
        ("GET", f"{apps}/someone-else", None),
        ("GET", apps, None),
        ("GET", f"{apps}?watch=true&timeoutSeconds=1", None),
        ("DELETE", f"{apps}/{daemonset['metadata']['name']}", None),
        ("PATCH", f"{apps}/{daemonset['metadata']['name']}", {"metadata": {"labels": {"x": "y"}}}),
        ("GET", f"/apis/apps/v1/namespaces/{watched}/daemonsets/{daemonset['metadata']['name']}", None),
        ("GET", f"/api/v1/namespaces/{release_ns}/pods", None),
    ]:
        got = cp.request(method, path, body, token=token, content_type="application/merge-patch+json")[0]
        assert got == 403, f"{method} {path}: {got}"
