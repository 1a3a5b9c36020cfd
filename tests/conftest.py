"""Shared fixtures: the real control plane (session scope), API clients, namespaces, temporary hosts files."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane.cluster import BUILD_COMMAND, ControlPlane, bin_dir, missing_binaries


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver with RBAC on, started once per test session and always stopped."""
    binaries = bin_dir()
    missing = missing_binaries(binaries)
    if missing:
        # Never a silent skip: CI must build them (the README's test command does).
        pytest.fail(
            f"control-plane binaries missing ({', '.join(missing)}); build them with: {BUILD_COMMAND}",
            pytrace=False,
        )
    cp = ControlPlane(tmp_path_factory.mktemp("controlplane"), binaries=binaries)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane):
    """An admin ApiClient of the official Python client, talking to the test API server."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(str(control_plane.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def namespace(api) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (lingers as Terminating: no namespace controller)."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def hosts_file(tmp_path: Path) -> Path:
    """A realistic hosts file with user content that must survive byte for byte."""
    path = tmp_path / "hosts"
    path.write_bytes(
        b"# Existing entries...\n127.0.0.1 localhost\n::1 localhost\n192.168.1.10 nas.home  # my NAS\n"
    )
    os.chmod(path, 0o644)
    return path


def pytest_report_header(config: pytest.Config) -> list[str]:
    binaries = bin_dir()
    state = "present" if not missing_binaries(binaries) else f"missing (run {BUILD_COMMAND})"
    return [f"control plane binaries: {binaries} ({state})"]


@pytest.fixture
def start_controller(tmp_path: Path, kubeconfig: Path) -> Iterator:
    """Start `python -m controller` processes (kubeconfig added unless given); all are killed at teardown."""
    from tests.helpers import ControllerProcess

    started: list[ControllerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True) -> ControllerProcess:
        argv = list(args)
        if not any(a.startswith("--kubeconfig") for a in argv):
            argv += ["--kubeconfig", str(kubeconfig)]
        proc = ControllerProcess(argv, tmp_path / f"controller-{len(started)}.log", env=env or {}).start()
        started.append(proc)
        if ready:
            proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.kill()


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

    from tests.controlplane.cluster import BUILD_SCRIPT

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failing test that used the control plane, attach the tail of the servers' logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or "control_plane" not in item.fixturenames:
        return
    cp = item.funcargs.get("control_plane")
    if cp is not None:
        for name in ("kube-apiserver", "etcd"):
            report.sections.append((f"{name} log (last lines, {cp.logs[name]})", cp.tail(name, 30)))
