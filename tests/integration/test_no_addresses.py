"""A bare cluster (no load balancer, no Ingress controller) gives no Ingress an address: the block stays
empty, and the log says once what is missing, against the real API server."""

from __future__ import annotations

import pytest

from tests.helpers import eventually, managed, run_cli

pytestmark = pytest.mark.integration

HINT = "none has a load-balancer address yet"


def test_objects_without_any_address_are_explained_once(ingresses, namespace, hosts_file, start_controller):
    ingresses.create(namespace, "app", ["app.local"])  # no status: nothing publishes an address
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    ingresses.create(namespace, "web", ["web.local"])  # another sync, still nothing with an address
    eventually(lambda: ctl.metric("k8s_hosts_controller_watched_objects", kind="Ingress") == 2)
    eventually(lambda: HINT in ctl.log(), what="the line about missing addresses")
    ingresses.set_status(namespace, "web", ["10.80.0.1"])
    eventually(lambda: ("web.local", "10.80.0.1") in managed(hosts_file), what="web.local written")
    said = [line for line in ctl.log().splitlines() if HINT in line]
    assert len(said) == 1, said
    assert "LoadBalancer" in said[0] and "Ingress controller" in said[0]
    assert "scripts/create-cluster.sh" in said[0]


def test_nothing_is_said_when_an_object_has_an_address(ingresses, namespace, hosts_file, kubeconfig):
    ingresses.create(namespace, "app", ["app.local"], ips=["10.80.0.2"])
    ingresses.create(namespace, "web", ["web.local"])  # waiting for its address, like any new object
    once = run_cli(
        "--namespaces", namespace, "--hosts-file", str(hosts_file), "--kubeconfig", str(kubeconfig), "--once",
        "--metrics-bind-address", "0",
    )  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert HINT not in once.stderr
    assert managed(hosts_file) == {("app.local", "10.80.0.2")}
