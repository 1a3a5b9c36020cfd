"""Names follow the release, not the pod (docs/architecture.md, decision 13): the chart's preStop command and
the controller with the chart's args, run with the chart's ServiceAccount token against a real API server that
holds the chart's RBAC and its DaemonSet object (no pod runs there). The block stays while the DaemonSet
exists and when the API server cannot be asked; it goes, byte-identical, when the DaemonSet is deleted or
being deleted, or when the release's RBAC went with it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit.controlplane import ControlPlane
from testkit.ports import free_port
from tests.chart.conftest import Applier, container, object_path, render
from tests.chart.test_chart_controller import (
    USER,
    _get,
    _ingress,
    chart_argv,
    clean_env,
    controller_argv0,
    replace_path,
    stop,
)
from tests.chart.test_chart_rbac import SA, install_rbac
from tests.helpers import eventually

pytestmark = pytest.mark.integration

KEPT = "still exists: leaving the block to the next pod"
OTHER_TOOL = b"# BEGIN other-tool\n10.0.0.1 other.example\n# END other-tool\n"
HOLD = "k8s-hosts-controller.test/hold"  # a finalizer nobody removes: the DaemonSet stays "being deleted"


def with_block(marker: str = "TYK-K8S-HOSTS") -> bytes:
    block = (
        f"#### BEGIN {marker} ####\n172.18.0.200 chart-dash.local  # tyk/dashboard\n#### END {marker} ####\n"
    )
    return USER + OTHER_TOOL + b"\n" + block.encode()


@dataclass
class Release:
    """The chart's RBAC and DaemonSet in a fresh release namespace; a kubeconfig with only its SA token."""

    cp: ControlPlane
    applier: Applier
    tmp_path: Path
    namespace: str
    values: dict
    daemonset: dict
    kubeconfig: Path

    @property
    def token(self) -> str:
        return json.loads(self.kubeconfig.read_text())["users"][0]["user"]["token"]

    def prestop(self, hosts: Path, kubeconfig: Path | None = None, **values) -> subprocess.CompletedProcess:
        """The chart's preStop command, on HOSTS, with the SA kubeconfig (in a pod: the mounted token)."""
        docs = render(self.tmp_path, {**self.values, **values}, namespace=self.namespace)
        command = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "k8s-hosts-controller"
        argv = controller_argv0() + replace_path(command[1:], hosts)
        argv += ["--kubeconfig", str(kubeconfig or self.kubeconfig)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env(self.tmp_path))

    def delete_daemonset(self) -> None:
        status, body = self.cp.request("DELETE", object_path(self.daemonset))
        assert status in (200, 202), body

    def daemonset_now(self) -> tuple[int, dict]:
        status, body = self.cp.request("GET", object_path(self.daemonset))
        return status, json.loads(body)


@pytest.fixture
def release(tmp_path, control_plane, applier, new_namespace) -> Iterator[Release]:
    release_ns, watched = new_namespace("rel"), new_namespace("watched")
    values = {"namespaces": [watched]}
    install_rbac(tmp_path, applier, release_ns, values)
    (daemonset,) = [d for d in render(tmp_path, values, namespace=release_ns) if d["kind"] == "DaemonSet"]
    applier.apply(daemonset)
    kubeconfig = control_plane.service_account_kubeconfig(tmp_path / "sa.kubeconfig", release_ns, SA)
    made = Release(control_plane, applier, tmp_path, release_ns, values, daemonset, kubeconfig)
    try:
        yield made
    finally:  # a held DaemonSet would never go
        control_plane.request(
            "PATCH",
            object_path(daemonset),
            {"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
        )


def hosts_with_block(tmp_path: Path, marker: str = "TYK-K8S-HOSTS") -> Path:
    hosts = tmp_path / "hosts"
    hosts.write_bytes(with_block(marker))
    hosts.chmod(0o644)
    return hosts


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def test_prestop_leaves_the_block_to_the_next_pod_while_the_daemonset_exists(release, tmp_path):
    hosts = hosts_with_block(tmp_path)
    before = hosts.read_bytes(), hosts.stat().st_mtime_ns
    proc = release.prestop(hosts)
    assert proc.returncode == 0, output(proc)
    assert (hosts.read_bytes(), hosts.stat().st_mtime_ns) == before, "the file is not even rewritten"
    assert f"the DaemonSet {release.namespace}/{release.daemonset['metadata']['name']} {KEPT}" in output(proc)


@pytest.mark.parametrize("marker", ["TYK-K8S-HOSTS", "MY-BLOCK"])
def test_prestop_removes_the_block_when_the_daemonset_is_deleted(release, tmp_path, marker):
    hosts = hosts_with_block(tmp_path, marker)
    release.delete_daemonset()
    assert release.daemonset_now()[0] == 404
    # The second run (SIGTERM's cleanup after the preStop hook) must change nothing.
    for run in ("preStop", "again"):
        proc = release.prestop(hosts, marker=marker)
        assert proc.returncode == 0, (run, output(proc))
        assert hosts.read_bytes() == USER + OTHER_TOOL, f"{run}: the block (and only the block) is gone"
        assert "is gone: removing the block" in output(proc)


def test_prestop_removes_the_block_while_the_daemonset_is_being_deleted(release, tmp_path):
    """`kubectl delete --cascade=foreground`, or a finalizer of someone else's: deletionTimestamp is set."""
    hosts = hosts_with_block(tmp_path)
    status, body = release.cp.request(
        "PATCH",
        object_path(release.daemonset),
        {"metadata": {"finalizers": [HOLD]}},
        content_type="application/merge-patch+json",
    )
    assert status == 200, body
    release.delete_daemonset()
    status, held = release.daemonset_now()
    assert status == 200 and held["metadata"]["deletionTimestamp"], held["metadata"]
    proc = release.prestop(hosts)
    assert proc.returncode == 0, output(proc)
    assert hosts.read_bytes() == USER + OTHER_TOOL
    assert "is being deleted: removing the block" in output(proc)


@pytest.mark.parametrize(("gone", "answer"), [("rolebindings", 403), ("serviceaccounts", 401)])
def test_prestop_removes_the_block_when_the_releases_rbac_went_first(release, tmp_path, gone, answer):
    """`helm uninstall` deletes the DaemonSet, then at once its RoleBindings, Roles and ServiceAccount: by the
    time the pod's preStop asks, the answer is often 403 or 401, not 404."""
    hosts = hosts_with_block(tmp_path)
    release.delete_daemonset()
    name = f"{release.daemonset['metadata']['name']}-owner" if gone == "rolebindings" else SA
    prefix = "/apis/rbac.authorization.k8s.io/v1" if gone == "rolebindings" else "/api/v1"
    status, body = release.cp.request("DELETE", f"{prefix}/namespaces/{release.namespace}/{gone}/{name}")
    assert status == 200, body
    path = object_path(release.daemonset)
    eventually(
        lambda: release.cp.request("GET", path, token=release.token)[0] == answer,
        30,
        what=f"{answer} for the SA",
    )
    proc = release.prestop(hosts)
    assert proc.returncode == 0, output(proc)
    assert hosts.read_bytes() == USER + OTHER_TOOL
    assert f"({answer} " in output(proc) and "removing the block" in output(proc)


def _unreachable_kubeconfig(release: Release, tmp_path: Path, port: int) -> Path:
    config = json.loads(release.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_prestop_leaves_the_block_when_the_api_server_cannot_be_asked(release, tmp_path, server):
    """Err on keeping the names: a replaced pod while the API server is away is far likelier than an
    uninstall then; the next pod takes the block over, --cleanup removes it. A server that accepts the
    connection and never answers is given up on (bounded), not waited for."""
    hosts = hosts_with_block(tmp_path)
    before = hosts.read_bytes()
    with socket.socket() as silent:
        if server == "silent":  # the kernel completes the handshake; nobody ever reads or answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
        else:
            port = free_port()
        proc = release.prestop(hosts, _unreachable_kubeconfig(release, tmp_path, port))
    assert proc.returncode == 0, output(proc)
    assert hosts.read_bytes() == before
    assert "cannot tell whether the DaemonSet" in output(proc), output(proc)
    assert "leaving the block to the next pod" in output(proc)


def test_sigterm_leaves_the_block_to_the_next_pod_and_the_last_pod_removes_it(release, tmp_path):
    """The rollout the chart's maxSurge 1 makes: the next pod starts while the old one runs; both keep the
    same block (the second writes nothing); the old pod's SIGTERM neither removes nor rewrites it; the next
    pod carries on; once the DaemonSet is deleted, its SIGTERM removes the block, byte-identical."""
    argv0 = controller_argv0()
    cp, ns = release.cp, release.values["namespaces"][0]
    hosts = tmp_path / "hosts"
    hosts.write_bytes(USER)
    original = hosts.read_bytes()

    def ingress(name: str, host: str) -> None:
        path = f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
        assert cp.request("POST", path, _ingress(name, host))[0] == 201
        status = {"status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.200"}]}}}
        got = cp.request(
            "PATCH", f"{path}/{name}/status", status, content_type="application/merge-patch+json"
        )
        assert got[0] == 200, got

    def start(name: str) -> tuple[subprocess.Popen, str, Path]:
        argv, base = chart_argv(tmp_path, argv0, release.values, release.namespace, hosts, release.kubeconfig)
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=clean_env(tmp_path))
        return proc, base, log

    def ready(base: str) -> bool:
        return _get(f"{base}/readyz")[0] == 200

    ingress("dashboard", "chart-dash.local")
    old, old_base, old_log = start("old")
    new: subprocess.Popen | None = None
    try:
        eventually(lambda: b"chart-dash.local" in hosts.read_bytes(), 60, what="the old pod's block")
        eventually(lambda: ready(old_base), 30, what="the old pod ready")
        written = hosts.read_bytes(), hosts.stat().st_mtime_ns

        new, new_base, new_log = start("new")
        eventually(lambda: ready(new_base) or new.poll() is not None, 60, what="the next pod ready")
        assert new.poll() is None, new_log.read_text()
        assert (hosts.read_bytes(), hosts.stat().st_mtime_ns) == written, "two pods, one block, no rewrite"

        old.send_signal(signal.SIGTERM)
        assert old.wait(timeout=60) == 0, old_log.read_text()
        assert (hosts.read_bytes(), hosts.stat().st_mtime_ns) == written, "neither removed nor rewritten"
        assert KEPT in old_log.read_text()
        assert "at start" not in old_log.read_text(), "the pod may read its DaemonSet: no warning"

        ingress("gateway", "chart-gw.local")  # the next pod has taken over
        eventually(lambda: b"chart-gw.local" in hosts.read_bytes(), 60, what="the next pod's write")

        release.delete_daemonset()
        new.send_signal(signal.SIGTERM)
        assert new.wait(timeout=60) == 0, new_log.read_text()
        assert hosts.read_bytes() == original, new_log.read_text()
        assert "is gone: removing the block" in new_log.read_text()
    finally:
        stop(old)
        if new is not None:
            stop(new)


@pytest.mark.parametrize("wrong", ["name", "role"])
def test_a_pod_that_could_not_tell_a_replacement_says_so_at_start(release, tmp_path, wrong):
    """A wrong --owner-daemonset, or no get on it (rbac.create=false without the grant), would make every
    replacement remove the block: the controller warns at start, naming the fix, and runs on."""
    argv, base = chart_argv(
        tmp_path,
        controller_argv0(),
        release.values,
        release.namespace,
        tmp_path / "hosts",
        release.kubeconfig,
    )
    (tmp_path / "hosts").write_bytes(USER)
    if wrong == "name":
        owner = f"--owner-daemonset={release.namespace}/{release.daemonset['metadata']['name']}"
        argv = [f"{owner}-typo" if a == owner else a for a in argv]
    else:
        name = f"{release.daemonset['metadata']['name']}-owner"
        path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{release.namespace}/rolebindings/{name}"
        assert release.cp.request("DELETE", path)[0] == 200
        path = object_path(release.daemonset)
        eventually(lambda: release.cp.request("GET", path, token=release.token)[0] == 403, 30, what="403")
    log = tmp_path / "controller.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=clean_env(tmp_path))
    try:
        said = "every stop of this pod, a replacement too, would remove the block"
        eventually(lambda: said in log.read_text() or proc.poll() is not None, 60, what="the warning")
        assert said in log.read_text() and "WARNING" in log.read_text(), log.read_text()
        assert proc.poll() is None, log.read_text()
        eventually(lambda: _get(f"{base}/readyz")[0] == 200, 60, what="ready all the same")
    finally:
        stop(proc)
