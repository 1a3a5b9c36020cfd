"""Smoke tests of the test control plane itself: a real kube-apiserver with RBAC and TokenRequest."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration


def test_apiserver_reports_a_real_version(control_plane, capsys):
    version = control_plane.version()
    with capsys.disabled():
        print(f"\n[control plane] kube-apiserver {version} at {control_plane.url}")
    assert version.startswith("v1.") and version != "v0.0.0"


def test_ingress_status_subresource_round_trip(api, namespace):
    net = client.NetworkingV1Api(api)
    net.create_namespaced_ingress(
        namespace,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "dashboard"},
            "spec": {"rules": [{"host": "chart-dash.local"}]},
        },
    )
    net.patch_namespaced_ingress_status(
        "dashboard",
        namespace,
        {
            "status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.200"}]}},
        },
    )
    got = net.read_namespaced_ingress("dashboard", namespace)
    assert got.spec.rules[0].host == "chart-dash.local"
    assert got.status.load_balancer.ingress[0].ip == "172.18.0.200"


def test_service_account_without_rbac_is_denied(control_plane, api, namespace):
    client.CoreV1Api(api).create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = control_plane.mint_token(namespace, "nobody")
    status, body = control_plane.request(
        "GET", f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses", token=token
    )
    assert status == 403, body
    assert json.loads(body)["reason"] == "Forbidden"


def test_service_account_with_a_role_may_list_but_not_write(control_plane, api, namespace):
    rbac = client.RbacAuthorizationV1Api(api)
    client.CoreV1Api(api).create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "ingress-reader"},
            "rules": [
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["ingresses"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "ingress-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ingress-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    token = control_plane.mint_token(namespace, "reader")
    path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses"
    status, _ = control_plane.request("GET", path, token=token)
    assert status == 200
    status, _ = control_plane.request("POST", path, {"metadata": {"name": "x"}, "spec": {}}, token=token)
    assert status == 403
    with pytest.raises(ApiException):
        # The admin client still works, proving the 403 above came from RBAC and not a broken server.
        client.NetworkingV1Api(api).read_namespaced_ingress("does-not-exist", namespace)
