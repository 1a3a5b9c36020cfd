"""The rendered chart is accepted by a real kube-apiserver (v1.35): server-side apply with strict field
validation, and a real `helm install` / `helm uninstall` (admin kubeconfig). No kubelet: no pod starts."""

from __future__ import annotations

import json

import pytest

from tests.chart.conftest import CASES, CHART, RESOURCES, helm, is_helm_test, render

pytestmark = pytest.mark.integration


def creatable(docs: list[dict]) -> list[dict]:
    """The rendered objects minus the ServiceMonitor (no Prometheus Operator CRD here) and the test pod."""
    return [doc for doc in docs if doc["kind"] != "ServiceMonitor" and not is_helm_test(doc)]


@pytest.mark.parametrize("case", CASES)
def test_rendered_objects_are_created_in_the_api_server(case, tmp_path, applier, new_namespace):
    release_ns = new_namespace("rel")
    values = json.loads(json.dumps(CASES[case]))
    if "namespaces" in values:
        values["namespaces"] = [new_namespace(name) for name in values["namespaces"]]
    else:
        values["namespaces"] = [new_namespace("watched")]
    docs = render(tmp_path, values, release=release_ns, namespace=release_ns)
    objects = creatable(docs)
    assert {doc["kind"] for doc in objects} <= set(RESOURCES)
    order = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "DaemonSet",
    ]
    for doc in sorted(objects, key=lambda d: order.index(d["kind"])):
        applier.apply(doc)
    for doc in objects:
        status, stored = applier.get(doc)
        assert status == 200, stored
        assert stored["metadata"]["labels"] == doc["metadata"]["labels"]
        if doc["kind"] in ("Role", "ClusterRole"):
            assert stored["rules"] == doc["rules"]
        if doc["kind"] == "DaemonSet":
            pod = stored["spec"]["template"]["spec"]
            ctr = pod["containers"][0]
            assert ctr["args"] == doc["spec"]["template"]["spec"]["containers"][0]["args"]
            assert ctr["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
            assert pod["volumes"][0]["hostPath"]["type"] == "File"
            assert ctr["lifecycle"]["preStop"]["exec"]["command"][:2] == ["k8s-hosts-controller", "--cleanup"]


def test_helm_install_and_uninstall(tmp_path, control_plane, applier, new_namespace):
    release_ns = new_namespace("hosts-sync")
    watched = new_namespace("watched")
    release = f"hs-{release_ns[-6:]}"
    kubeconfig = control_plane.kubeconfig
    proc = helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        release_ns,
        "--set",
        f"namespaces={{{watched}}}",
        kubeconfig=kubeconfig,
    )
    assert proc.returncode == 0, proc.stderr
    assert "STATUS: deployed" in proc.stdout
    assert f"daemonset/{release}-k8s-hosts-controller" in proc.stdout, "NOTES.txt rendered"
    assert "#### BEGIN TYK-K8S-HOSTS ####" in proc.stdout
    name = f"{release}-k8s-hosts-controller"
    for path in (
        f"/apis/apps/v1/namespaces/{release_ns}/daemonsets/{name}",
        f"/api/v1/namespaces/{release_ns}/serviceaccounts/{name}",
        f"/api/v1/namespaces/{release_ns}/services/{name}-metrics",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{watched}/roles/{name}",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{watched}/rolebindings/{name}",
    ):
        status, body = control_plane.request("GET", path)
        assert status == 200, f"{path}: {body}"
    proc = helm("uninstall", release, "--namespace", release_ns, kubeconfig=kubeconfig)
    assert proc.returncode == 0, proc.stderr
    status, _ = control_plane.request("GET", f"/apis/apps/v1/namespaces/{release_ns}/daemonsets/{name}")
    assert status == 404
    status, _ = control_plane.request(
        "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{watched}/roles/{name}"
    )
    assert status == 404


def test_helm_install_refuses_a_missing_watched_namespace(tmp_path, control_plane, new_namespace):
    # The documented limitation of the per-namespace Roles (rbac.clusterWide is the way out).
    release_ns = new_namespace("hosts-sync")
    proc = helm(
        "install",
        "hs",
        str(CHART),
        "--namespace",
        release_ns,
        "--set",
        "namespaces={does-not-exist}",
        kubeconfig=control_plane.kubeconfig,
    )
    assert proc.returncode != 0
    assert 'namespaces "does-not-exist" not found' in proc.stderr
