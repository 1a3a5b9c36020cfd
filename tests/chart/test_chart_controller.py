"""The controller run the way the chart runs it: the DaemonSet's args with the chart's ServiceAccount token (a
kubeconfig holding only that token), syncing Ingresses into a file. The preStop command and the stop of a pod:
tests/chart/test_chart_lifecycle.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from testkit.controlplane import REPO_ROOT
from testkit.ports import free_port
from tests.chart.conftest import container, render
from tests.chart.test_chart_rbac import SA, install_rbac

CONTAINER_PATH = "/host/etc/hosts"
DENIED = "is forbidden: User"
USER = b"# Existing entries...\r\n127.0.0.1 localhost\n::1 localhost\n192.168.1.10 nas.home  # my NAS\n"


def controller_argv0() -> list[str]:
    if not (REPO_ROOT / "controller" / "cli.py").exists():
        pytest.skip("pending: controller/cli.py does not exist yet (the controller is being written)")
    return [sys.executable, "-m", "controller"]


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("K8S_HOSTS_CONTROLLER_") and k != "KUBECONFIG"
    }
    env["HOME"] = str(tmp_path)  # no ~/.kube/config to fall back on
    return env


def replace_path(argv: list[str], hosts: Path) -> list[str]:
    out = [str(hosts) if a == CONTAINER_PATH else a for a in argv]
    return [f"--hosts-file={hosts}" if a == f"--hosts-file={CONTAINER_PATH}" else a for a in out]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:
        return 0, ""


def _wait(what: str, predicate, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if proc.poll() is not None:
            pytest.fail(
                f"controller exited with {proc.returncode} while waiting for {what}:\n{log.read_text()}"
            )
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{log.read_text()[-4000:]}")


def chart_argv(tmp_path, argv0, values, release_ns, hosts_file, kubeconfig) -> tuple[list[str], str]:
    """The DaemonSet's args, with the temp hosts file, a free loopback port and the SA kubeconfig."""
    args = container(render(tmp_path, values, namespace=release_ns))["args"]
    port = free_port()
    assert "--metrics-bind-address=:8080" in args
    args = [
        f"--metrics-bind-address=127.0.0.1:{port}" if a.startswith("--metrics-bind-address") else a
        for a in args
    ]
    argv = argv0 + replace_path(args, hosts_file) + ["--kubeconfig", str(kubeconfig)]
    assert f"--hosts-file={hosts_file}" in argv and "--write-mode=inplace" in argv
    return argv, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ingress(name: str, host: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {"rules": [{"host": host}]},
    }


@pytest.mark.integration
def test_controller_with_chart_args_and_serviceaccount_token_syncs(
    tmp_path, control_plane, applier, new_namespace, hosts_file
):
    argv0 = controller_argv0()
    cp = control_plane
    release_ns, watched, unwatched = new_namespace("rel"), new_namespace("watched"), new_namespace("other")
    values = {"namespaces": [watched]}
    install_rbac(tmp_path, applier, release_ns, values)
    kubeconfig = cp.service_account_kubeconfig(tmp_path / "sa.kubeconfig", release_ns, SA)
    assert json.loads(kubeconfig.read_text())["users"][0]["user"].keys() == {"token"}, "only the SA token"

    argv, base = chart_argv(tmp_path, argv0, values, release_ns, hosts_file, kubeconfig)
    original = hosts_file.read_bytes()

    def ing(ns: str, name: str, host: str, ip: str) -> None:
        path = f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
        assert cp.request("POST", path, _ingress(name, host))[0] == 201
        status = {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
        got = cp.request(
            "PATCH", f"{path}/{name}/status", status, content_type="application/merge-patch+json"
        )
        assert got[0] == 200, got

    log = tmp_path / "controller.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=clean_env(tmp_path))
    try:
        _wait("/readyz 200", lambda: _get(f"{base}/readyz")[0] == 200, 60, proc, log)
        assert _get(f"{base}/healthz")[0] == 200

        ing(watched, "dashboard", "chart-dash.local", "172.18.0.200")
        ing(unwatched, "elsewhere", "chart-other.local", "172.18.0.201")
        ing(watched, "wild", "*.wild.local", "172.18.0.202")

        line = re.compile(
            rb"^172\.18\.0\.200\s+chart-dash\.local\s+# " + watched.encode() + rb"/dashboard\s*$", re.M
        )
        _wait("the Ingress in the file", lambda: line.search(hosts_file.read_bytes()), 30, proc, log)
        content = hosts_file.read_bytes()
        assert content.startswith(original), "user lines untouched"
        assert b"#### BEGIN TYK-K8S-HOSTS ####" in content
        assert b"chart-other.local" not in content, "an unwatched namespace is not synced"
        assert b"wild.local" not in content

        # The metrics follow the rename a moment after the file shows the line: wait for them too.
        entries = re.compile(r"^k8s_hosts_controller_managed_entries 1(\.0)?$", re.M)
        _wait("managed_entries 1", lambda: entries.search(_get(f"{base}/metrics")[1]), 10, proc, log)

        def refused_event():
            status, body = cp.request("GET", f"/api/v1/namespaces/{watched}/events")
            items = json.loads(body)["items"] if status == 200 else []
            return [e for e in items if e["involvedObject"]["name"] == "wild" and e["type"] == "Warning"]

        # The Event is posted with the SA token: create on events in the watched namespace is enough.
        _wait("a Warning Event on the wildcard Ingress", refused_event, 30, proc, log)

    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()
    assert hosts_file.read_bytes() == original, "SIGTERM removed the block (cleanupOnExit defaults to true)"


@pytest.mark.integration
@pytest.mark.parametrize(
    "values", [{"namespaces": ["WATCHED"]}, {"allNamespaces": True}], ids=["listed", "all"]
)
def test_controller_needs_nothing_beyond_the_chart_rbac(
    values, tmp_path, control_plane, applier, new_namespace
):
    """With only the chart's RBAC the controller gets no RBAC denial at all and is ready within seconds
    (kopf must not scan namespaces/CRDs cluster-wide: settings.scanning.disabled,
    controller/cluster/handlers.py)."""
    argv0 = controller_argv0()
    release_ns = new_namespace("rel")
    if "namespaces" in values:
        values = {"namespaces": [new_namespace("watched")]}
    install_rbac(tmp_path, applier, release_ns, values)
    kubeconfig = control_plane.service_account_kubeconfig(tmp_path / "sa.kubeconfig", release_ns, SA)
    hosts = tmp_path / "hosts"
    hosts.write_bytes(USER)
    argv, base = chart_argv(tmp_path, argv0, values, release_ns, hosts, kubeconfig)
    log = tmp_path / "controller.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=clean_env(tmp_path))
    try:
        deadline = time.monotonic() + 20
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            if DENIED in log.read_text():
                break
            if _get(f"{base}/readyz")[0] == 200:
                ready = True
                time.sleep(1)  # anything forbidden right after the first sync shows up too
                break
            time.sleep(0.2)
        text = log.read_text()
        # An RBAC denial (not e.g. an Event refused in a namespace that another test is deleting).
        assert DENIED not in text, text[-3000:]
        assert ready, f"not ready within 20 s:\n{text[-3000:]}"
    finally:
        stop(proc)
