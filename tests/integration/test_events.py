"""Refusal Events against the real API server: bounded per object and reason, posted off the write path, and
counted on one Event across restarts and --once runs, with the chart's events rule (create, patch) only."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.helpers import eventually, managed, run_cli

pytestmark = pytest.mark.integration

# The chart's rules for the default source (chart/templates/_helpers.tpl).
CHART_RULES = [
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def refusal_events(api, namespace: str, name: str) -> list:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [e for e in items if e.reason == "HostRefused" and e.involved_object.name == name]


def test_a_huge_hostnames_annotation_does_not_stall_another_namespace(
    api, new_namespace, ingresses, hosts_file, start_controller
):
    """5,001 names in one annotation (34 kB, 100 of them invalid): one Event per reason on that object, a
    bounded log, and an unrelated Ingress in another namespace written while the controller is ready."""
    loud, quiet = new_namespace("loud"), new_namespace("quiet")
    names = [f"bad_{i}.local" for i in range(100)] + [f"n{i}.huge.local" for i in range(4901)]
    annotation = ",".join(names)
    assert len(annotation) > 34_000
    net = client.NetworkingV1Api(api)
    net.create_namespaced_ingress(
        loud,
        {
            "metadata": {"name": "huge", "annotations": {"k8s-hosts-controller.io/hostnames": annotation}},
            "spec": {"rules": [{"host": "huge.local"}]},
        },
    )
    ingresses.set_status(loud, "huge", ["10.70.0.1"])
    ctl = start_controller("--namespaces", f"{loud},{quiet}", "--hosts-file", str(hosts_file))
    ingresses.create(quiet, "web", ["web.quiet.local"], ips=["10.70.0.2"])
    eventually(lambda: ("web.quiet.local", "10.70.0.2") in managed(hosts_file), what="the unrelated Ingress")
    assert ctl.get("/readyz")[0] == 200
    events = eventually(
        lambda: (found := refusal_events(api, loud, "huge")) and len(found) >= 2 and found,
        what="the refusal Events of the huge Ingress",
    )
    # the queue is idle once both are posted: nothing else may follow
    eventually(lambda: ctl.metric("k8s_hosts_controller_rejected_hosts", reason="too-many-hosts") == 4746)
    events = refusal_events(api, loud, "huge")
    assert sorted(e.message.rsplit("[", 1)[-1].split("]")[0] for e in events) == [
        "invalid-hostname",
        "too-many-hosts",
    ], [e.message for e in events]
    assert all(len(e.message) <= 1024 for e in events)
    log = ctl.log()
    assert log.count("refused") == 2, log[-3000:]
    assert len(log) < 20_000


def test_a_refusal_keeps_one_event_across_restarts_and_once_runs(
    control_plane, api, namespace, ingresses, hosts_file, tmp_path, start_controller
):
    kubeconfig = control_plane.role_kubeconfig(tmp_path / "sa.kubeconfig", namespace, "sync", CHART_RULES)
    ingresses.create(namespace, "app", ["app.local", "*.wild.local"], ips=["10.71.0.1"])
    args = ("--namespaces", namespace, "--hosts-file", str(hosts_file), "--kubeconfig", str(kubeconfig))
    for run in range(2):
        ctl = start_controller(*args)
        eventually(lambda n=run + 1: [e.count for e in refusal_events(api, namespace, "app")] == [n])
        ctl.stop()
    for run in range(2):
        done = run_cli(*args, "--once")
        assert done.returncode == 0, done.stderr
        events = refusal_events(api, namespace, "app")
        assert [e.count for e in events] == [3 + run], [(e.metadata.name, e.count) for e in events]
    (event,) = refusal_events(api, namespace, "app")
    assert "*.wild.local" in event.message and "[wildcard]" in event.message
    assert event.last_timestamp >= event.first_timestamp
    assert "forbidden" not in done.stderr.lower()
