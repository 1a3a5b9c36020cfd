"""Host mode records the cluster it watches in the block (the kubeconfig context's name and server) and
replaces another cluster's record on its first write, even when the names are the same."""

from __future__ import annotations

import pytest
from kubernetes import client, config

from controller.engine.block import block_record, splice
from controller.engine.entries import Entry
from controller.engine.record import ClusterRecord
from tests.helpers import managed, run_cli

pytestmark = pytest.mark.integration


def test_once_replaces_a_dead_clusters_record_with_its_own(kubeconfig, ingresses, namespace, hosts_file):
    ingresses.create(namespace, "app", ["app.local"], ips=["10.11.0.1"])
    original = hosts_file.read_bytes()
    old = ClusterRecord("kind-gone", "https://127.0.0.1:1")
    hosts_file.write_bytes(
        splice(original, [Entry("app.local", "10.11.0.1", f"{namespace}/app")], "TYK-K8S-HOSTS", old)
    )
    common = ["--namespaces", namespace, "--hosts-file", str(hosts_file), "--metrics-bind-address", "0"]

    once = run_cli(*common, "--kubeconfig", str(kubeconfig), "--once")
    assert once.returncode == 0, once.stderr
    _, active = config.list_kube_config_contexts(config_file=str(kubeconfig))
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    assert managed(hosts_file) == {("app.local", "10.11.0.1")}
    record = block_record(hosts_file.read_bytes(), "TYK-K8S-HOSTS")
    assert record == ClusterRecord(active["name"], configuration.host)

    flags = ["--cluster-name", "dev", "--cluster-server", "https://10.0.0.9:6443", "--node-name", "dev-node"]
    again = run_cli(*common, "--kubeconfig", str(kubeconfig), "--once", *flags)
    assert again.returncode == 0, again.stderr
    assert block_record(hosts_file.read_bytes(), "TYK-K8S-HOSTS") == ClusterRecord(
        "dev", "https://10.0.0.9:6443", "dev-node"
    )
    assert run_cli("--cleanup", "--hosts-file", str(hosts_file)).returncode == 0
    assert hosts_file.read_bytes() == original


def test_a_record_value_that_cannot_be_written_is_a_usage_error(hosts_file):
    bad = run_cli("--namespaces", "x", "--hosts-file", str(hosts_file), "--cluster-server", "127.0.0.1:6443")
    assert bad.returncode == 2
    assert "--cluster-server" in bad.stderr and "http" in bad.stderr and len(bad.stderr.splitlines()) == 1
