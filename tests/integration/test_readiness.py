"""/readyz tells the truth: not ready while a watch stream cannot be established (a token that may list
but not watch), and not ready with a cause when the listing hook never fires (a kopf change)."""

from __future__ import annotations

import sys

import pytest

from testkit.ports import free_port
from testkit.process import ControllerProcess
from tests.helpers import eventually, has_block, managed

pytestmark = pytest.mark.integration

LIST_BUT_NOT_WATCH = [
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def test_not_ready_while_the_token_may_list_but_not_watch(
    control_plane, namespace, ingresses, hosts_file, tmp_path, start_controller
):
    kubeconfig = control_plane.role_kubeconfig(
        tmp_path / "sa.kubeconfig", namespace, "sync", LIST_BUT_NOT_WATCH
    )
    ingresses.create(namespace, "app", ["app.local"], ips=["10.72.0.1"])
    ctl = start_controller(
        "--namespaces",
        namespace,
        "--hosts-file",
        str(hosts_file),
        "--kubeconfig",
        str(kubeconfig),
        ready=False,
    )
    # The listing is allowed: its entries are written; the watch is not: never ready, and the log says why.
    eventually(lambda: managed(hosts_file) == {("app.local", "10.72.0.1")}, what="the listed entry")
    eventually(lambda: "cannot watch ingresses" in ctl.log(), what="the log line naming the verb")
    line = next(line for line in ctl.log().splitlines() if "cannot watch ingresses" in line)
    assert f"namespace {namespace}" in line and "forbidden" in line and "'watch' verb" in line
    status, body = ctl.get("/readyz")
    assert status == 503 and "cannot watch ingresses" in body
    assert ctl.metric("k8s_hosts_controller_ready") == 0
    assert ctl.log().count("cannot watch ingresses") == 1  # once per episode, not per retry
    # Granting watch heals it: ready, and changes arrive again.
    token_rules = [{**LIST_BUT_NOT_WATCH[0], "verbs": ["get", "list", "watch"]}, LIST_BUT_NOT_WATCH[1]]
    status, answer = control_plane.request(
        "PUT",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/sync",
        {"metadata": {"name": "sync", "namespace": namespace}, "rules": token_rules},
    )
    assert status == 200, answer
    ctl.wait_ready(timeout=60)
    ingresses.set_status(namespace, "app", ["10.72.0.2"])
    eventually(lambda: managed(hosts_file) == {("app.local", "10.72.0.2")}, what="a change after the grant")
    assert "the watch request for ingresses in namespace" in ctl.log()


HOOK_DISABLED = (
    "import sys, controller.cluster.listing as listing, controller.runner as runner\n"
    "listing.observe = lambda observer: (lambda: None)  # as if a kopf release no longer had the internal\n"
    "runner.LISTING_BOUND = 1.0\n"
    "from controller.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_a_listing_hook_that_never_fires_is_reported_and_keeps_not_ready(
    kubeconfig, namespace, ingresses, hosts_file, tmp_path
):
    ingresses.create(namespace, "app", ["app.local"], ips=["10.73.0.1"])
    port = free_port()
    argv = [sys.executable, "-c", HOOK_DISABLED, "--namespaces", namespace, "--hosts-file", str(hosts_file)]
    argv += ["--kubeconfig", str(kubeconfig), "--metrics-bind-address", f"127.0.0.1:{port}"]
    ctl = ControllerProcess(argv, tmp_path / "controller.log").start()
    try:
        eventually(lambda: "no listing" in ctl.log(), what="the error about the listing hook")
        line = next(line for line in ctl.log().splitlines() if "no listing" in line)
        assert "ERROR" in line and "kopf " in line and "listing.py" in line
        status, body = ctl.get("/readyz")
        assert status == 503 and "listing" in body
        assert ctl.alive() and not has_block(hosts_file)
    finally:
        ctl.kill()
