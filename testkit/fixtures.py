"""pytest fixtures on the kit: the real control plane (session scope), an API client, namespaces per test
(always deleted), controller processes (always killed), and the servers' log tails on a failing test.

Loaded by tests/conftest.py through ``pytest_plugins``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit.controlplane import BUILD_COMMAND, ControlPlane, bin_dir, missing_binaries
from testkit.process import ControllerProcess, controller_command


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
def new_namespace(control_plane: ControlPlane) -> Iterator[Callable[[str], str]]:
    """Namespaces made on demand, all deleted after the test: new_namespace("watched") -> "watched-1a2b3c4d"
    (they linger as Terminating: no namespace controller)."""
    created: list[str] = []

    def create(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        status, answer = control_plane.request("POST", "/api/v1/namespaces", body)
        assert status == 201, f"namespace {name}: {status} {answer}"
        created.append(name)
        return name

    try:
        yield create
    finally:
        for name in created:
            control_plane.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def namespace(new_namespace: Callable[[str], str]) -> str:
    """A fresh namespace for the test, deleted afterwards."""
    return new_namespace("t")


@pytest.fixture
def start_controller(tmp_path: Path, kubeconfig: Path) -> Iterator[Callable[..., ControllerProcess]]:
    """Start `python -m controller` processes (kubeconfig added unless given); all are killed at teardown."""
    started: list[ControllerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True) -> ControllerProcess:
        argv = list(args)
        if not any(a.startswith("--kubeconfig") for a in argv):
            argv += ["--kubeconfig", str(kubeconfig)]
        log = tmp_path / f"controller-{len(started)}.log"
        proc = ControllerProcess(controller_command(*argv), log, env=env).start()
        started.append(proc)
        if ready:
            proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.kill()


def pytest_report_header(config: pytest.Config) -> list[str]:
    binaries = bin_dir()
    state = "present" if not missing_binaries(binaries) else f"missing (run {BUILD_COMMAND})"
    return [f"control plane binaries: {binaries} ({state})"]


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
