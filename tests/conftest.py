"""Fixtures of the tests. The kit's (control plane, API client, namespace, controller processes) are in
testkit/fixtures.py; here: temporary hosts files, a kubeconfig that names no reachable server, an environment
without the machine's settings, Ingress writes through the official client, Gateway CRDs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.config import ENV_PREFIX
from testkit.controlplane import BUILD_COMMAND

pytest_plugins = ["testkit.fixtures"]


# Two contexts on one server that is never asked: for the CLI's own checks of --kubeconfig and --context.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: not-a-real-token
contexts:
- name: kind-test
  context:
    cluster: test
    user: admin
- name: other
  context:
    cluster: test
    user: admin
current-context: kind-test
"""


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """KUBECONFIG's contexts in a file (not the kit's `kubeconfig`, which reaches the test control plane)."""
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


@pytest.fixture
def no_controller_env(monkeypatch) -> None:
    """No K8S_HOSTS_CONTROLLER_* variable of the machine's reaches the code under test."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


@pytest.fixture
def no_cluster_env(no_controller_env, monkeypatch) -> None:
    """Nor the machine's cluster: no KUBECONFIG, no in-cluster service, a HOME without ~/.kube/config."""
    for key in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")


@pytest.fixture
def hosts_file(tmp_path: Path) -> Path:
    """A realistic hosts file with user content that must survive byte for byte."""
    path = tmp_path / "hosts"
    path.write_bytes(
        b"# Existing entries...\n127.0.0.1 localhost\n::1 localhost\n192.168.1.10 nas.home  # my NAS\n"
    )
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def ingresses(api):
    from tests.helpers import Ingresses

    return Ingresses(api)


@pytest.fixture(scope="session")
def gateway_crds(api) -> list[str]:
    """The Gateway API CRDs (standard channel, fetched by the build script) installed and established."""
    import subprocess
    import time

    import yaml
    from kubernetes import client

    from testkit.controlplane import BUILD_SCRIPT

    crd_dir = Path(
        subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--crds"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    files = sorted(crd_dir.glob("*.yaml"))
    if not files:
        pytest.fail(f"Gateway API CRDs missing in {crd_dir}; fetch them with: {BUILD_COMMAND}", pytrace=False)
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            names.append(doc["metadata"]["name"])
            try:
                ext.create_custom_resource_definition(doc)
            except client.ApiException as err:
                if err.status != 409:
                    raise
    deadline = time.monotonic() + 60
    for name in names:
        while True:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            assert time.monotonic() < deadline, f"CRD {name} not established"
            time.sleep(0.1)
    return names
