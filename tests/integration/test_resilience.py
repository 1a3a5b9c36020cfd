"""Least privilege and API server outages, with the controller as a real process."""

from __future__ import annotations

import dataclasses
import time

import pytest
from kubernetes import client, config

from testkit.controlplane import ControlPlane
from testkit.ports import free_port
from tests.helpers import Ingresses, eventually, managed

pytestmark = pytest.mark.integration

MINIMAL_RULES = [
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def test_runs_with_only_the_minimal_rbac(
    control_plane, api, namespace, ingresses, hosts_file, tmp_path, start_controller
):
    core = client.CoreV1Api(api)
    sa_kubeconfig = control_plane.role_kubeconfig(
        tmp_path / "sa.kubeconfig", namespace, "hosts-sync", MINIMAL_RULES
    )
    token = control_plane.mint_token(namespace, "hosts-sync")
    assert control_plane.request("GET", f"/api/v1/namespaces/{namespace}/secrets", token=token)[0] == 403

    ingresses.create(namespace, "app", ["app.local", "*.wild.local"], ips=["10.20.0.1"])
    ctl = start_controller(
        "--namespaces", namespace, "--hosts-file", str(hosts_file), "--kubeconfig", str(sa_kubeconfig)
    )
    assert managed(hosts_file) == {("app.local", "10.20.0.1")}
    ingresses.set_status(namespace, "app", ["10.20.0.2"])
    eventually(lambda: managed(hosts_file) == {("app.local", "10.20.0.2")}, what="the update via the SA")
    events = eventually(
        lambda: [e for e in core.list_namespaced_event(namespace).items if e.reason == "HostRefused"],
        what="the refusal Event posted with the SA's token",
    )
    assert "*.wild.local" in events[0].message
    log = ctl.log()
    assert "forbidden" not in log.lower(), log  # not "403": a timestamp can hold it


@pytest.fixture
def own_control_plane(tmp_path):
    """A control plane of this test's own: it is going to be killed."""
    cp = ControlPlane(tmp_path / "cp").start()
    yield cp
    cp.stop()


def test_recovers_from_an_api_server_outage(own_control_plane, tmp_path, hosts_file, start_controller):
    cp = own_control_plane
    configuration = client.Configuration()
    config.load_kube_config(str(cp.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "outage"}})
    ings = Ingresses(api)
    ings.create("outage", "kept", ["kept.local"], ips=["10.30.0.1"])
    ings.create("outage", "moved", ["moved.local"], ips=["10.30.0.2"])
    ings.create("outage", "deleted", ["deleted.local"], ips=["10.30.0.3"])
    ctl = start_controller(
        "--namespaces", "outage", "--hosts-file", str(hosts_file), "--kubeconfig", str(cp.kubeconfig)
    )
    assert len(managed(hosts_file)) == 3

    # The controller's API server dies. Meanwhile the cluster changes through a second API server on the
    # same etcd: the deletion produces no event the controller could see, only a relisting shows it.
    cp.stop_apiserver()
    outage_started = time.monotonic()
    second = dataclasses.replace(cp, port=free_port(), apiserver=None, etcd=None)
    second.start_apiserver()
    second_config = client.Configuration()
    config.load_kube_config(
        str(second.write_kubeconfig(tmp_path / "second.kubeconfig", token=cp.admin_token, user="admin")),
        client_configuration=second_config,
    )
    second_ings = Ingresses(client.ApiClient(second_config))
    second_ings.set_status("outage", "moved", ["10.30.0.22"])
    second_ings.delete("outage", "deleted")
    second_ings.create("outage", "new", ["new.local"], ips=["10.30.0.4"])
    second.stop_apiserver()
    assert len(managed(hosts_file)) == 3, "nothing may change while the controller cannot see the cluster"
    time.sleep(max(0.0, 10 - (time.monotonic() - outage_started)))

    cp.start_apiserver()
    expected = {("kept.local", "10.30.0.1"), ("moved.local", "10.30.0.22"), ("new.local", "10.30.0.4")}
    eventually(lambda: managed(hosts_file) == expected, timeout=60, what="convergence after the outage")
    assert ctl.proc.poll() is None, "the controller must recover without restarting"
    ings.create("outage", "after", ["after.local"], ips=["10.30.0.5"])
    eventually(lambda: ("after.local", "10.30.0.5") in managed(hosts_file), what="watching again")
