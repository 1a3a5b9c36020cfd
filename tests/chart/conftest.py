"""Chart test helpers: helm (from scripts/build-controlplane.sh), rendering, applying to the API server."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from testkit.controlplane import BUILD_COMMAND, REPO_ROOT, ControlPlane, bin_dir

CHART = REPO_ROOT / "chart"
KUBE_VERSION = "1.35.4"  # helm template otherwise assumes v1.20.0, below the chart's kubeVersion
HOOK = "helm.sh/hook"

# The values matrix every render/lint/apply test runs over.
CASES: dict[str, dict] = {
    "defaults": {},
    "all-namespaces": {"allNamespaces": True},
    "listed-namespaces": {"namespaces": ["tyk", "tyk-dp-1", "tyk-dp-2"]},
    "metrics-off": {"metrics": {"enabled": False}},
    "servicemonitor-on": {"metrics": {"serviceMonitor": {"enabled": True}}},
}

# The least-privilege rules for the default source (ingress), exactly: README.md, "What it does".
LEAST_RULES = [
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def helm_binary() -> Path:
    path = bin_dir() / "helm"
    if not path.exists():
        pytest.fail(f"helm missing at {path}; build it with: {BUILD_COMMAND}", pytrace=False)
    return path


def helm(*args: str, kubeconfig: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    env_args = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    proc = subprocess.run([str(helm_binary()), *args, *env_args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def values_file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / f"values-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(json.dumps(values))  # JSON is YAML
    return path


def lint(tmp_path: Path, values: dict) -> subprocess.CompletedProcess:
    """`helm lint --strict` of the chart with these values."""
    return helm(
        "lint",
        "--strict",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "-f",
        str(values_file(tmp_path, values)),
    )


def template(
    tmp_path: Path,
    values: dict,
    *,
    release: str = "hosts-sync",
    namespace: str = "hosts",
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    return helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        "-f",
        str(values_file(tmp_path, values)),
        *extra,
    )


def render(
    tmp_path: Path, values: dict, *, release: str = "hosts-sync", namespace: str = "hosts"
) -> list[dict]:
    proc = template(tmp_path, values, release=release, namespace=namespace)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def kinds(docs: list[dict]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


def only(docs: list[dict], kind: str) -> dict:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def is_helm_test(doc: dict) -> bool:
    return (doc.get("metadata", {}).get("annotations") or {}).get(HOOK) == "test"


def container(docs: list[dict]) -> dict:
    pod = only(docs, "DaemonSet")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return pod["containers"][0]


# ---- the real API server ---------------------------------------------------------------------------------

# kind -> (API path prefix, plural, namespaced)
RESOURCES = {
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Service": ("/api/v1", "services", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}


def object_path(doc: dict) -> str:
    prefix, plural, namespaced = RESOURCES[doc["kind"]]
    name = quote(doc["metadata"]["name"])
    if namespaced:
        return f"{prefix}/namespaces/{doc['metadata']['namespace']}/{plural}/{name}"
    return f"{prefix}/{plural}/{name}"


class Applier:
    """Server-side apply of rendered objects (strict field validation); deletes cluster-scoped ones after."""

    def __init__(self, control_plane: ControlPlane):
        self.cp = control_plane
        self.cluster_scoped: list[str] = []

    def apply(self, doc: dict) -> dict:
        path = object_path(doc)
        status, body = self.cp.request(
            "PATCH",
            f"{path}?fieldManager=chart-tests&force=true&fieldValidation=Strict",
            doc,
            content_type="application/apply-patch+yaml",
        )
        assert status in (200, 201), f"apply {doc['kind']} {doc['metadata']['name']}: {status} {body}"
        if not RESOURCES[doc["kind"]][2]:
            self.cluster_scoped.append(path)
        return json.loads(body)

    def get(self, doc: dict) -> tuple[int, dict]:
        status, body = self.cp.request("GET", object_path(doc))
        return status, json.loads(body)

    def cleanup(self) -> None:
        for path in reversed(self.cluster_scoped):
            self.cp.request("DELETE", path)


@pytest.fixture
def applier(control_plane: ControlPlane) -> Iterator[Applier]:
    applier = Applier(control_plane)
    try:
        yield applier
    finally:
        applier.cleanup()
