"""The block's total bound against the real API server and the real CLI: many objects at the per-object caps
in one namespace, more than the bound holds; the file stays within it, another namespace's Ingress is
written whole, and the objects over their share are refused (block-full) with a log line, a metric and a
Warning Event each."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from controller.engine.block import render_block
from controller.engine.entries import Entry
from controller.sync.plan import MAX_ADDRESSES_PER_OBJECT
from tests.helpers import eventually, managed

pytestmark = pytest.mark.integration

GREEDY = 20  # x 64 names x 16 addresses = 20,480 lines asked for
MAX_LINES, MAX_BYTES = 2_000, 100_000


def test_objects_over_the_block_bound_are_refused_fairly_and_another_namespace_is_written(
    api, new_namespace, ingresses, hosts_file, start_controller
):
    loud, quiet = new_namespace("loud"), new_namespace("quiet")
    addresses = [f"10.90.0.{i}" for i in range(MAX_ADDRESSES_PER_OBJECT)]
    for i in range(GREEDY):
        hosts = [f"h{j:02d}.greedy-{i:02d}.loud.test" for j in range(64)]
        ingresses.create(loud, f"greedy-{i:02d}", hosts, ips=addresses)
    ctl = start_controller(
        "--namespaces", f"{loud},{quiet}", "--hosts-file", str(hosts_file),
        "--max-block-lines", str(MAX_LINES), "--resync-interval", "1",
        env={"K8S_HOSTS_CONTROLLER_MAX_BLOCK_BYTES": str(MAX_BYTES)},
    )  # fmt: skip
    ingresses.create(quiet, "web", ["web.quiet.test"], ips=["10.70.0.2"])
    eventually(lambda: ("web.quiet.test", "10.70.0.2") in managed(hosts_file), what="the unrelated Ingress")

    lines = managed(hosts_file)
    assert 0 < len(lines) <= MAX_LINES
    owners = {host: host.split(".")[1] for host, _ in lines if host != "web.quiet.test"}
    entries = [Entry(host, ip, f"{loud}/{owners[host]}") for host, ip in lines if host != "web.quiet.test"]
    entries.append(Entry("web.quiet.test", "10.70.0.2", f"{quiet}/web"))
    assert len(render_block(entries, "M")) - len(render_block([], "M")) <= MAX_BYTES
    # equal shares: every greedy object keeps the same number of names
    per_object = {o: sum(1 for v in owners.values() if v == o) for o in set(owners.values())}
    assert len(per_object) == GREEDY and len(set(per_object.values())) == 1, per_object

    assert ctl.metric("k8s_hosts_controller_block_max_lines") == MAX_LINES
    assert ctl.metric("k8s_hosts_controller_block_max_bytes") == MAX_BYTES
    assert ctl.metric("k8s_hosts_controller_managed_entries") == len(lines)
    assert 0 < ctl.metric("k8s_hosts_controller_block_bytes") <= MAX_BYTES
    refused_names = GREEDY * 64 - len(owners)
    assert ctl.metric("k8s_hosts_controller_rejected_hosts", reason="block-full") == refused_names
    assert ctl.metric("k8s_hosts_controller_rejections_total", reason="block-full") == refused_names

    events = eventually(
        lambda: (
            (found := [
                e for e in client.CoreV1Api(api).list_namespaced_event(loud).items
                if e.reason == "HostRefused" and "[block-full]" in e.message
            ])
            and len(found) == GREEDY
            and found
        ),
        what="one block-full Event per greedy object",
    )  # fmt: skip
    assert {e.involved_object.name for e in events} == {f"greedy-{i:02d}" for i in range(GREEDY)}
    assert all(e.type == "Warning" for e in events)
    assert not [
        e for e in client.CoreV1Api(api).list_namespaced_event(quiet).items if e.reason == "HostRefused"
    ]
    # reported once per change: the periodic re-syncs (every second here) say nothing more
    time.sleep(3)
    assert ctl.log().count("[block-full]") == GREEDY, ctl.tail()
    assert ctl.get("/readyz")[0] == 200
