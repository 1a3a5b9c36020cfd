"""The controller as a real process against the real API server, checked on the real file.

Each test follows a row of the user's "Expected Outcome" table or of the controller issue.
"""

from __future__ import annotations

import signal

import pytest
from kubernetes import client

from tests.helpers import block_lines, eventually, has_block, managed, run_cli

pytestmark = pytest.mark.integration


def test_expected_outcome_table(start_controller, ingresses, namespace, hosts_file):
    original = hosts_file.read_bytes()
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))

    # New Ingress created -> hostname -> IP added.
    ingresses.create(namespace, "dashboard", ["chart-dash.local"], ips=["172.18.0.200"])
    eventually(
        lambda: block_lines(hosts_file) == [f"172.18.0.200 chart-dash.local  # {namespace}/dashboard"],
        what="the dashboard line",
    )
    assert hosts_file.read_bytes().startswith(original), "user content before the block changed"

    # Ingress IP changes -> entry updated.
    ingresses.set_status(namespace, "dashboard", ["172.18.0.201"])
    eventually(lambda: managed(hosts_file) == {("chart-dash.local", "172.18.0.201")}, what="the new IP")

    # Hosts added to and removed from the rules -> lines follow.
    ingresses.set_hosts(namespace, "dashboard", ["chart-dash.local", "chart-api.local"])
    eventually(
        lambda: (
            managed(hosts_file) == {("chart-dash.local", "172.18.0.201"), ("chart-api.local", "172.18.0.201")}
        ),
        what="the added host",
    )
    ingresses.set_hosts(namespace, "dashboard", ["chart-api.local"])
    eventually(lambda: managed(hosts_file) == {("chart-api.local", "172.18.0.201")}, what="the removed host")

    # Ingress deleted -> entry removed (the block goes with its last entry).
    ingresses.delete(namespace, "dashboard")
    eventually(lambda: not has_block(hosts_file), what="the block to go")
    assert hosts_file.read_bytes() == original

    # Tool shutdown -> all managed entries removed, exit 0, the user's bytes intact.
    ingresses.create(namespace, "gateway", ["chart-gw.local"], ips=["172.18.0.200"])
    eventually(lambda: managed(hosts_file) == {("chart-gw.local", "172.18.0.200")}, what="the gateway line")
    assert ctl.stop(signal.SIGTERM) == 0
    assert hosts_file.read_bytes() == original
    assert "removed the TYK-K8S-HOSTS block" in ctl.log()


def test_nothing_until_the_load_balancer_has_an_address(start_controller, ingresses, namespace, hosts_file):
    original = hosts_file.read_bytes()
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    ingresses.create(namespace, "pending", ["pending.local"])
    eventually(
        lambda: ctl.metric("k8s_hosts_controller_watched_objects", kind="Ingress") == 1,
        what="the Ingress to be seen",
    )
    assert hosts_file.read_bytes() == original
    ingresses.set_status(namespace, "pending", ["172.18.0.9"])
    eventually(lambda: managed(hosts_file) == {("pending.local", "172.18.0.9")}, what="the line after status")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_remove_the_block(sig, start_controller, ingresses, namespace, hosts_file):
    original = hosts_file.read_bytes()
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    ingresses.create(namespace, "app", ["app.local"], ips=["10.1.2.3"])
    eventually(lambda: has_block(hosts_file), what="the block")
    assert ctl.stop(sig) == 0
    assert hosts_file.read_bytes() == original


def test_no_cleanup_on_exit_keeps_the_block_and_cleanup_flag_removes_it(
    start_controller, ingresses, namespace, hosts_file
):
    original = hosts_file.read_bytes()
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file), "--no-cleanup-on-exit")
    ingresses.create(namespace, "app", ["app.local"], ips=["10.1.2.3"])
    eventually(lambda: has_block(hosts_file), what="the block")
    assert ctl.stop(signal.SIGTERM) == 0
    assert managed(hosts_file) == {("app.local", "10.1.2.3")}

    done = run_cli("--cleanup", "--hosts-file", str(hosts_file))
    assert done.returncode == 0, done.stderr
    assert hosts_file.read_bytes() == original


def test_only_watched_namespaces_count(start_controller, ingresses, api, hosts_file):
    core = client.CoreV1Api(api)
    names = ["w-watched-a", "w-watched-b", "w-other"]
    for ns in names:
        core.create_namespace({"metadata": {"name": ns}})
    try:
        ctl = start_controller("--namespaces", "w-watched-a,w-watched-b", "--hosts-file", str(hosts_file))
        ingresses.create("w-watched-a", "a", ["a.local"], ips=["10.0.0.1"])
        ingresses.create("w-watched-b", "b", ["b.local"], ips=["10.0.0.2"])
        ingresses.create("w-other", "c", ["c.local"], ips=["10.0.0.3"])
        eventually(
            lambda: managed(hosts_file) == {("a.local", "10.0.0.1"), ("b.local", "10.0.0.2")},
            what="the watched namespaces' lines",
        )
        ctl.stop()

        everything = start_controller("--all-namespaces", "--hosts-file", str(hosts_file))
        eventually(lambda: ("c.local", "10.0.0.3") in managed(hosts_file), what="--all-namespaces")
        assert {("a.local", "10.0.0.1"), ("b.local", "10.0.0.2")} <= managed(hosts_file)
        everything.stop()
    finally:
        for ns in names:
            core.delete_namespace(ns)


def test_ipv4_ipv6_and_load_balancer_hostnames(start_controller, ingresses, namespace, hosts_file):
    ctl = start_controller(
        "--namespaces", namespace, "--hosts-file", str(hosts_file), "--resolve-timeout", "2"
    )
    ingresses.create(namespace, "dual", ["dual.local"], ips=["172.18.0.5", "fc00:f853:ccd:e793::5"])
    # Docker Desktop reports "localhost" as the LB hostname: resolved by the system resolver.
    ingresses.create(namespace, "desktop", ["desktop.local"], lb_hostnames=["localhost"])
    ingresses.create(namespace, "nowhere", ["nowhere.local"], lb_hostnames=["lb.does-not-exist.invalid"])
    eventually(
        lambda: (
            {
                ("dual.local", "172.18.0.5"),
                ("dual.local", "fc00:f853:ccd:e793::5"),
                ("desktop.local", "127.0.0.1"),
            }
            <= managed(hosts_file)
        ),
        what="dual-stack + resolved",
    )
    assert not any(host == "nowhere.local" for host, _ in managed(hosts_file))
    eventually(
        lambda: ctl.metric("k8s_hosts_controller_rejected_hosts", reason="unresolvable") == 1,
        what="the unresolvable refusal metric",
    )
    # The metric is set a moment before the refusal is logged, on the controller's side: wait, do not race.
    eventually(lambda: "lb.does-not-exist.invalid" in ctl.log(), what="the refusal in the log")


def events_for(api, namespace: str, name: str) -> list[client.CoreV1Event]:
    found = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return [e for e in found.items if e.reason == "HostRefused"]


def test_conflicts_oldest_wins_and_the_loser_is_told(start_controller, ingresses, api, namespace, hosts_file):
    ingresses.create(namespace, "first", ["shared.local"], ips=["10.9.0.1"])
    ingresses.create(namespace, "second", ["shared.local"], ips=["10.9.0.2"])  # younger, other address
    ingresses.create(namespace, "same", ["same.local"], ips=["10.9.0.3"])
    ingresses.create(namespace, "same-too", ["same.local"], ips=["10.9.0.3"])  # same address: one line
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    assert block_lines(hosts_file) == [
        f"10.9.0.1 shared.local  # {namespace}/first",
        f"10.9.0.3 same.local  # {namespace}/same",
    ]
    events = eventually(lambda: events_for(api, namespace, "second"), what="a HostRefused Event")
    assert events[0].type == "Warning" and "first" in events[0].message and "conflict" in events[0].message
    assert not events_for(api, namespace, "same-too")
    assert ctl.metric("k8s_hosts_controller_rejected_hosts", reason="conflict") == 1

    # The winner goes away: the other claim takes over.
    ingresses.delete(namespace, "first")
    eventually(lambda: managed(hosts_file) >= {("shared.local", "10.9.0.2")}, what="the takeover")


def test_refused_hosts_are_logged_counted_and_posted(start_controller, ingresses, api, namespace, hosts_file):
    hosts_file.write_bytes(hosts_file.read_bytes() + b"10.0.0.10 mine.example.local\n")
    ctl = start_controller(
        "--namespaces", namespace, "--hosts-file", str(hosts_file), "--domain-filter", "example.local"
    )
    ingresses.create(namespace, "wild", ["*.wild.example.local"], ips=["10.1.0.1"])
    ingresses.create(namespace, "outside", ["app.other.test"], ips=["10.1.0.2"])
    ingresses.create(namespace, "shadow", ["mine.example.local"], ips=["10.1.0.3"])
    ingresses.create(namespace, "fine", ["ok.example.local"], ips=["10.1.0.4"])
    eventually(
        lambda: managed(hosts_file) == {("ok.example.local", "10.1.0.4")}, what="only the allowed host"
    )
    for name, reason in (("wild", "wildcard"), ("outside", "domain-filter"), ("shadow", "shadowed")):
        events = eventually(lambda n=name: events_for(api, namespace, n), what=f"an Event on {name}")
        assert f"[{reason}]" in events[0].message
        assert ctl.metric("k8s_hosts_controller_rejected_hosts", reason=reason) == 1
        assert ctl.metric("k8s_hosts_controller_rejections_total", reason=reason) == 1
    assert ctl.log().count("refused mine.example.local") == 1  # once per change, not once per sync
    assert b"10.0.0.10 mine.example.local\n" in hosts_file.read_bytes()


def test_never_shadows_localhost(start_controller, ingresses, namespace, hosts_file):
    start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    ingresses.create(namespace, "evil", ["localhost", "fine.local"], ips=["10.6.6.6"])
    eventually(lambda: managed(hosts_file) == {("fine.local", "10.6.6.6")}, what="fine.local only")


def test_ingress_class_filter(start_controller, ingresses, namespace, hosts_file):
    start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file), "--ingress-class", "nginx")
    ingresses.create(namespace, "nginx", ["n.local"], ips=["10.2.0.1"], ingress_class="nginx")
    ingresses.create(namespace, "traefik", ["t.local"], ips=["10.2.0.2"], ingress_class="traefik")
    eventually(lambda: managed(hosts_file) == {("n.local", "10.2.0.1")}, what="the nginx Ingress only")


def test_restart_with_unchanged_cluster_does_not_rewrite(start_controller, ingresses, namespace, hosts_file):
    ingresses.create(namespace, "app", ["app.local"], ips=["10.3.0.1"])
    first = start_controller(
        "--namespaces", namespace, "--hosts-file", str(hosts_file), "--no-cleanup-on-exit"
    )
    assert managed(hosts_file) == {("app.local", "10.3.0.1")}
    first.stop()
    before = hosts_file.stat()
    second = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    after = hosts_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert second.metric("k8s_hosts_controller_writes_total", result="unchanged") == 1
    assert second.metric("k8s_hosts_controller_writes_total", result="written") == 0


def test_changes_while_down_are_applied_at_start(start_controller, ingresses, namespace, hosts_file):
    ingresses.create(namespace, "kept", ["kept.local"], ips=["10.4.0.1"])
    ingresses.create(namespace, "moved", ["moved.local"], ips=["10.4.0.2"])
    ingresses.create(namespace, "deleted", ["deleted.local"], ips=["10.4.0.3"])
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    assert len(managed(hosts_file)) == 3
    ctl.kill()  # SIGKILL: the block stays behind, stale from now on
    ingresses.set_status(namespace, "moved", ["10.4.0.22"])
    ingresses.delete(namespace, "deleted")
    ingresses.create(namespace, "new", ["new.local"], ips=["10.4.0.4"])
    start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    assert managed(hosts_file) == {
        ("kept.local", "10.4.0.1"),
        ("moved.local", "10.4.0.22"),
        ("new.local", "10.4.0.4"),
    }


def test_stale_block_removed_when_every_ingress_went_away(start_controller, ingresses, namespace, hosts_file):
    """The zero-objects case: no handler ever fires, yet the listing is complete and the block must go."""
    original = hosts_file.read_bytes()
    ingresses.create(namespace, "only", ["only.local"], ips=["10.5.0.1"])
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    ctl.kill()
    assert has_block(hosts_file)
    ingresses.delete(namespace, "only")
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    assert hosts_file.read_bytes() == original
    assert ctl.metric("k8s_hosts_controller_ready") == 1


def test_start_up_writes_once_after_the_complete_listing(start_controller, ingresses, namespace, hosts_file):
    for i in range(40):
        ingresses.create(namespace, f"app-{i}", [f"app-{i}.local"], ips=[f"10.7.0.{i + 1}"])
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    assert len(managed(hosts_file)) == 40
    assert ctl.metric("k8s_hosts_controller_writes_total", result="written") == 1
    assert ctl.metric("k8s_hosts_controller_managed_entries") == 40
    assert ctl.metric("k8s_hosts_controller_watched_objects", kind="Ingress") == 40


def test_controller_never_writes_to_ingresses(start_controller, ingresses, namespace, hosts_file):
    created = ingresses.create(namespace, "app", ["app.local", "*.wild.local"], ips=["10.8.0.1"])
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    eventually(
        lambda: ctl.metric("k8s_hosts_controller_rejections_total", reason="wildcard") == 1,
        what="the refusal to be reported",
    )
    ctl.stop()
    now = ingresses.read(namespace, "app")
    assert now.metadata.resource_version == created.metadata.resource_version
    assert not now.metadata.annotations and not now.metadata.finalizers
    assert [i.ip for i in now.status.load_balancer.ingress] == ["10.8.0.1"]


def test_metrics_after_known_changes(start_controller, ingresses, namespace, hosts_file):
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    assert ctl.metric("k8s_hosts_controller_ready") == 1
    ingresses.create(namespace, "a", ["a.local", "b.local"], ips=["10.10.0.1"])
    eventually(lambda: ctl.metric("k8s_hosts_controller_managed_entries") == 2, what="2 entries")
    ingresses.delete(namespace, "a")
    eventually(lambda: ctl.metric("k8s_hosts_controller_managed_entries") == 0, what="0 entries")
    m = ctl.metrics()
    assert m[("k8s_hosts_controller_writes_total", (("result", "written"),))] >= 2
    assert m[("k8s_hosts_controller_event_to_file_seconds_count", ())] >= 2
    assert m[("k8s_hosts_controller_sync_duration_seconds_count", ())] >= 3
    assert m[("k8s_hosts_controller_last_sync_timestamp_seconds", ())] > 1.7e9
    assert ctl.get("/healthz")[0] == 200


def test_once_and_dry_run(ingresses, namespace, hosts_file, kubeconfig):
    original = hosts_file.read_bytes()
    ingresses.create(namespace, "app", ["app.local"], ips=["10.11.0.1"])
    common = [
        "--namespaces",
        namespace,
        "--hosts-file",
        str(hosts_file),
        "--kubeconfig",
        str(kubeconfig),
        "--metrics-bind-address",
        "0",
    ]
    dry = run_cli(*common, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"10.11.0.1 app.local  # {namespace}/app" in dry.stdout and "+#### BEGIN" in dry.stdout
    assert hosts_file.read_bytes() == original

    once = run_cli(*common, "--once")
    assert once.returncode == 0, once.stderr
    assert managed(hosts_file) == {("app.local", "10.11.0.1")}


def test_wait_command(hosts_file):
    missing = run_cli("wait", "--hosts-file", str(hosts_file), "--host", "nope.local", "--timeout", "300ms")
    assert missing.returncode == 1
    assert "nope.local missing" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    usage = run_cli("wait", "--hosts-file", str(hosts_file))
    assert usage.returncode == 2 and "nothing to wait for" in usage.stderr
