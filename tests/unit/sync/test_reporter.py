"""The reporter (controller/sync/report.py) alone, on real plans and a real temporary hosts file: a sync's
metrics and readiness are set there, from the outcome the writer hands it, and nowhere else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller.engine.errors import HostsFileError, LockTimeout
from controller.engine.hostsfile import HostsFile
from controller.model import Snapshot
from controller.serve.health import Health, Reason
from controller.serve.metrics import Metrics
from controller.sync.plan import plan
from controller.sync.report import Reporter, Synced
from controller.sync.resolve import Answers
from controller.sync.share import Bounds


@pytest.fixture
def hosts(tmp_path: Path) -> HostsFile:
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\n")
    return HostsFile(path)


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(f"k8s_hosts_controller_{name}", labels)


def snap(name: str, kind: str = "Ingress", hosts=("app.local",)) -> Snapshot:
    return Snapshot(
        "ns", name, f"uid-{name}", "2024-01-01T00:00:00Z", hosts=hosts, ips=("10.0.0.1",), kind=kind
    )


def reporter(hosts: HostsFile, **how) -> tuple[Reporter, Metrics, Health]:
    metrics, health = Metrics(), Health()
    return Reporter(metrics, health, hosts.path, **how), metrics, health


def synced(hosts: HostsFile, snapshots: list[Snapshot], first_change: float | None = None) -> Synced:
    result_plan = plan(snapshots)
    on_disk = hosts.parse().managed
    result = hosts.sync(result_plan.entries)
    return Synced(result_plan, result, on_disk, snapshots, Answers(), time.monotonic(), first_change)


def test_bounds_and_watched_kinds_are_set_from_what_it_is_given(hosts):
    report, metrics, _ = reporter(hosts, kinds=("Ingress", "HTTPRoute"), bounds=Bounds(7, 700))
    assert (value(metrics, "block_max_lines"), value(metrics, "block_max_bytes")) == (7, 700)
    report.watching([snap("a"), snap("b"), snap("gw", kind="Gateway")])
    assert value(metrics, "watched_objects", kind="Ingress") == 2
    assert value(metrics, "watched_objects", kind="HTTPRoute") == 0  # watched, none seen: 0, not absent
    assert value(metrics, "watched_objects", kind="Gateway") == 1


def test_a_failed_write_is_counted_and_blocks_readiness(hosts):
    report, metrics, health = reporter(hosts)
    health.ready = True
    report.failed(HostsFileError("cannot write /x: read-only file system"))
    assert value(metrics, "writes_total", result="error") == 1 and value(metrics, "write_failing") == 1
    assert value(metrics, "lock_timeouts_total") == 0
    assert health.message(Reason.WRITE) == (
        "the last write of the hosts file failed: cannot write /x: read-only file system"
    )
    assert not health.serving
    report.failed(LockTimeout("the lock of /x is held by pid 1"))
    assert value(metrics, "lock_timeouts_total") == 1 and value(metrics, "writes_total", result="error") == 2


def test_a_sync_sets_its_metrics_and_the_first_one_readiness(hosts):
    report, metrics, health = reporter(hosts)
    report.failed(HostsFileError("a failure before"))
    report.synced(synced(hosts, [snap("a", hosts=("a.local", "b.local"))], first_change=time.monotonic()))
    assert health.ready and health.serving and not health.blocked_by(Reason.WRITE)
    assert value(metrics, "ready") == 1 and value(metrics, "write_failing") == 0
    assert value(metrics, "writes_total", result="written") == 1
    assert value(metrics, "managed_entries") == 2
    assert value(metrics, "block_bytes") == plan([snap("a", hosts=("a.local", "b.local"))]).size > 0
    assert value(metrics, "sync_duration_seconds_count") == 1
    assert value(metrics, "event_to_file_seconds_count") == 1
    assert value(metrics, "last_sync_timestamp_seconds") > 0
    # The same entries again: unchanged, and no change to measure from.
    report.synced(synced(hosts, [snap("a", hosts=("a.local", "b.local"))]))
    assert value(metrics, "writes_total", result="unchanged") == 1
    assert value(metrics, "event_to_file_seconds_count") == 1


def test_refusals_are_counted_by_reason(hosts):
    report, metrics, _ = reporter(hosts)
    report.synced(synced(hosts, [snap("a", hosts=("ok.local", "bad_name.local"))]))
    assert value(metrics, "rejected_hosts", reason="invalid-hostname") == 1
    assert value(metrics, "rejections_total", reason="invalid-hostname") == 1
