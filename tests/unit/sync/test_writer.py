"""The debounced writer, driven with asyncio on a real temporary hosts file and a ClusterState."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile
from controller.model import CONFLICT, SHADOWED, WILDCARD, Listener, ObjectRef, ResourceId, Snapshot
from controller.serve.health import Health
from controller.serve.metrics import Metrics
from controller.sync.events import Notice
from controller.sync.options import ModeSettings, SyncSettings
from controller.sync.postwrite import PostWriteSettings
from controller.sync.resolve import Resolver
from controller.sync.state import ClusterState
from controller.sync.writer import Writer
from tests.helpers import LockHolder

USER = b"127.0.0.1 localhost\n# user's own line\n10.1.1.1 mine.local\n"
OLD_MTIME_NS = 1_000_000_000_000_000_000


def snap(
    name: str, *, hosts=("app.local",), ip="10.0.0.1", ns="ns", created="2024-01-01T00:00:00Z"
) -> Snapshot:
    return Snapshot(
        namespace=ns, name=name, uid=f"uid-{name}", created=created, hosts=tuple(hosts), ips=(ip,)
    )


class FixedResolver(Resolver):
    """The real cache, with a fixed answer instead of the system resolver."""

    def __init__(self, answers: dict[str, tuple[str, ...]]) -> None:
        super().__init__(lookup=self._answer)
        self.answers = answers
        self.lookups: list[str] = []

    def _answer(self, name: str) -> tuple[str, ...]:
        self.lookups.append(name)
        return self.answers.get(name, ())


@dataclass
class Events:
    """Records the Event notices the writer hands over (to the EventQueue in a real run)."""

    calls: list[Notice] = field(default_factory=list)

    def __call__(self, notice: Notice) -> None:
        self.calls.append(notice)


@dataclass
class Rig:
    state: ClusterState
    writer: Writer
    metrics: Metrics
    health: Health
    hosts: HostsFile
    events: Events

    def count(self, result: str) -> float:
        return self.metrics.registry.get_sample_value("k8s_hosts_controller_writes_total", {"result": result})

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(f"k8s_hosts_controller_{name}", labels)


# Quick bursts, no periodic re-read: a test says when the writer syncs.
TEST_SYNC = SyncSettings(delay=0.02, max_delay=2.0, resync_interval=0.0)


def make_rig(
    path: Path,
    scopes=("ns",),
    resolver: Resolver | None = None,
    sync: SyncSettings = TEST_SYNC,
    **groups,
) -> Rig:
    holder: list[Writer] = []
    state = ClusterState(scopes, on_change=lambda: holder[0].wake() if holder else None)
    metrics, health, events = Metrics(), Health(), Events()
    hosts = HostsFile(path)
    writer = Writer(
        state,
        hosts,
        settings=sync,
        **groups,
        metrics=metrics,
        health=health,
        resolver=resolver or FixedResolver({}),
        post_event=events,
    )
    holder.append(writer)
    return Rig(state, writer, metrics, health, hosts, events)


def list_scope(state: ClusterState, scope, *snaps: Snapshot) -> None:
    state.listing_started(scope)
    for s in snaps:
        state.listed_object(scope, s.uid)
    state.listing_complete(scope)
    for s in snaps:
        state.apply(None, s)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def drive(rig: Rig, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        task = asyncio.create_task(rig.writer.run())
        try:
            await scenario()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "hosts"
    p.write_bytes(USER)
    return p


def managed(path: Path) -> list[tuple[str, str, str]]:
    return [(e.address, e.hostname, e.owner) for e in HostsFile(path).parse().managed]


def age(path: Path) -> os.stat_result:
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    return os.stat(path)


# ------------------------------------------------------------------------------------------ listing gate


def test_nothing_is_written_until_the_state_is_listed(path):
    rig = make_rig(path, scopes=("ns", "other"))

    async def scenario():
        rig.state.apply("ADDED", snap("web"))  # an event before any listing
        rig.writer.wake()
        list_scope(rig.state, "ns", snap("web"))  # one of two namespaces listed
        await asyncio.sleep(0.3)
        assert path.read_bytes() == USER
        assert rig.count("written") == rig.count("unchanged") == 0
        assert not rig.health.ready
        list_scope(rig.state, "other")  # the empty namespace completes the listing
        await until(lambda: rig.count("written") == 1)
        assert managed(path) == [("10.0.0.1", "app.local", "ns/web")]
        assert rig.health.ready
        assert rig.value("ready") == 1
        assert rig.value("managed_entries") == 1
        assert rig.value("watched_objects", kind="Ingress") == 1

    drive(rig, scenario)
    assert path.read_bytes().startswith(USER)


def test_listed_but_unprocessed_objects_hold_the_write(path):
    rig = make_rig(path)

    async def scenario():
        rig.state.listing_started("ns")
        rig.state.listed_object("ns", "uid-a")
        rig.state.listed_object("ns", "uid-b")
        rig.state.listing_complete("ns")
        rig.state.apply(None, snap("a", hosts=("a.local",)))
        await asyncio.sleep(0.2)
        assert path.read_bytes() == USER  # b is listed but not yet processed: no partial block
        rig.state.apply(None, snap("b", hosts=("b.local",)))
        await until(lambda: rig.count("written") == 1)
        assert [h for _, h, _ in managed(path)] == ["a.local", "b.local"]

    drive(rig, scenario)


def test_empty_listing_removes_a_stale_block(path):
    HostsFile(path).sync([Entry("stale.local", "10.0.0.9", "ns/gone")])
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns")  # every Ingress was deleted while the controller was down
        await until(lambda: rig.count("written") == 1)

    drive(rig, scenario)
    assert path.read_bytes() == USER


# --------------------------------------------------------------------------------------------- coalescing


class GatedHostsFile(HostsFile):
    """The real engine; records what each sync wrote, and can hold a sync until the test opens the gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.synced: list[list[str]] = []  # the hostnames of each sync, in order
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def sync(self, entries):
        entries = list(entries)
        self.synced.append([e.hostname for e in entries])
        self.entered.set()
        self.gate.wait()
        return super().sync(entries)


def gated_rig(path: Path, **delays: float) -> tuple[Rig, GatedHostsFile]:
    rig = make_rig(path, sync=replace(TEST_SYNC, **delays))
    rig.writer.hosts = rig.hosts = GatedHostsFile(path)
    return rig, rig.hosts


async def entered(hosts: GatedHostsFile) -> None:
    await asyncio.to_thread(hosts.entered.wait, 5)
    assert hosts.entered.is_set()


def test_the_first_change_after_a_quiet_period_is_written_at_once(path):
    # An hour-long window: a write that happens at all can only be the leading edge.
    rig, hosts = gated_rig(path, delay=3600.0, max_delay=3600.0)

    async def scenario():
        list_scope(rig.state, "ns")
        await until(lambda: rig.health.ready)  # the first sync after the listing does not wait either
        for i in range(3):  # one change at a time, each after the previous one is in the file
            rig.state.apply("ADDED", snap(f"web{i}", hosts=(f"h{i}.local",), ip=f"10.0.1.{i}"))
            await until(lambda i=i: rig.count("written") == i + 1)
            assert [h for _, h, _ in managed(path)] == [f"h{j}.local" for j in range(i + 1)]
        assert hosts.synced == [
            [],
            ["h0.local"],
            ["h0.local", "h1.local"],
            ["h0.local", "h1.local", "h2.local"],
        ]
        assert rig.value("event_to_file_seconds_count") == 4

    drive(rig, scenario)


def test_a_change_while_a_write_is_reported_is_the_next_leading_edge(path):
    # Only a change made while the file is written starts a burst; one that arrives after the write, while its
    # log lines and Events are being reported, is a change of its own. With an hour-long window it can only
    # reach the file as the next leading edge (before the fix it waited out the window).
    rig, hosts = gated_rig(path, delay=3600.0, max_delay=3600.0)
    report_changes = rig.writer.report.changes
    injected: list[str] = []

    def changes_then_a_new_change(*args, **kwargs):
        report_changes(*args, **kwargs)
        if rig.health.ready and not injected:
            injected.append("late")
            rig.state.apply("ADDED", snap("late", hosts=("late.local",), ip="10.0.2.1"))

    rig.writer.report.changes = changes_then_a_new_change

    async def scenario():
        list_scope(rig.state, "ns")
        await until(lambda: rig.health.ready)
        rig.state.apply("ADDED", snap("first", hosts=("first.local",)))
        await until(lambda: rig.count("written") == 2)
        assert injected == ["late"]
        assert hosts.synced[1:] == [["first.local"], ["first.local", "late.local"]]

    drive(rig, scenario)


def test_changes_during_a_write_are_coalesced_into_one_trailing_write(path):
    rig, hosts = gated_rig(path, delay=0.05, max_delay=3600.0)

    async def scenario():
        list_scope(rig.state, "ns")
        await until(lambda: rig.health.ready)
        hosts.entered.clear()
        hosts.gate.clear()  # the next write is held until the burst has arrived
        rig.state.apply("ADDED", snap("first", hosts=("a-first.local",)))
        await entered(hosts)  # the leading write of the first change has started
        for i in range(100):
            rig.state.apply("ADDED", snap(f"web{i}", hosts=(f"h{i:03}.local",), ip=f"10.0.1.{i}"))
            await asyncio.sleep(0)
        hosts.gate.set()
        await until(lambda: len(managed(path)) == 101)
        await until(lambda: rig.count("written") == 2)  # the leading write, then one for the burst
        more = snap("late", hosts=("z-late.local",))
        rig.state.apply("ADDED", more)  # the burst is over: quiet again, written on its own
        await until(lambda: rig.count("written") == 3)
        assert [len(s) for s in hosts.synced] == [0, 1, 101, 102]
        assert hosts.synced[1] == ["a-first.local"]
        assert rig.value("managed_entries") == 102

    drive(rig, scenario)


def test_max_delay_bounds_a_continuous_stream(path):
    rig, hosts = gated_rig(path, delay=0.2, max_delay=0.3)

    async def scenario():
        list_scope(rig.state, "ns")
        await until(lambda: rig.health.ready)
        hosts.entered.clear()
        hosts.gate.clear()
        rig.state.apply("ADDED", snap("first", hosts=("first.local",)))
        await entered(hosts)
        rig.state.apply("ADDED", snap("second", hosts=("second.local",)))  # during the write: a burst
        hosts.gate.set()
        await until(lambda: rig.count("written") == 1)
        started = time.monotonic()
        i = 0
        while rig.count("written") < 3:  # a change every 50 ms never leaves 200 ms of quiet
            assert time.monotonic() - started < 5, "the stream postponed the write beyond sync_max_delay"
            rig.state.apply("ADDED", snap(f"w{i}", hosts=(f"s{i}.local",)))
            i += 1
            await asyncio.sleep(0.05)
        assert hosts.synced[1] == ["first.local"]
        assert "second.local" in hosts.synced[2]  # coalesced with the stream, not written on its own

    drive(rig, scenario)


# ---------------------------------------------------------------------------------------------- no-ops


def test_a_no_op_sync_counts_as_unchanged_and_leaves_the_file_alone(path):
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        await until(lambda: rig.count("written") == 1)
        before = age(path)
        result = await rig.writer.sync()
        assert result is not None
        assert rig.count("unchanged") == 1 and rig.count("written") == 1
        after = os.stat(path)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        # an identical MODIFIED event is not a change at all: no wake-up, no sync
        rig.state.apply("MODIFIED", snap("web"))
        await asyncio.sleep(0.2)
        assert rig.count("unchanged") == 1

    drive(rig, scenario)


def test_restart_with_an_unchanged_cluster_does_not_rewrite(path):
    objects = [snap("a", hosts=("a.local",)), snap("b", hosts=("b.local",), ip="fd00::2")]
    first = make_rig(path)

    async def write_once():
        list_scope(first.state, "ns", *objects)
        await until(lambda: first.count("written") == 1)

    drive(first, write_once)
    before = age(path)
    content = path.read_bytes()

    second = make_rig(path)

    async def restart():
        list_scope(second.state, "ns", *reversed(objects))
        await until(lambda: second.health.ready)

    drive(second, restart)
    after = os.stat(path)
    assert second.count("written") == 0 and second.count("unchanged") == 1
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert path.read_bytes() == content


# ------------------------------------------------------------------------------------------- rejections


def test_rejections_are_reported_once_per_change(path):
    rig = make_rig(path)

    async def scenario():
        bad = snap("bad", hosts=("*.wild.local", "ok.local"), ip="10.0.0.2")
        list_scope(rig.state, "ns", bad)
        await until(lambda: rig.health.ready)
        assert len(rig.events.calls) == 1
        notice = rig.events.calls[0]
        assert notice.snap == bad
        assert (notice.snap.owner, notice.hosts, notice.reason) == ("ns/bad", ("*.wild.local",), WILDCARD)
        assert notice.message.startswith("*.wild.local: wildcard host") and "[wildcard]" in notice.message
        assert rig.value("rejections_total", reason=WILDCARD) == 1
        assert rig.value("rejected_hosts", reason=WILDCARD) == 1
        # more syncs and unrelated changes: not reported again
        await rig.writer.sync()
        rig.state.apply("ADDED", snap("other", hosts=("other.local",)))
        await until(lambda: rig.count("written") == 2)
        assert len(rig.events.calls) == 1
        assert rig.value("rejections_total", reason=WILDCARD) == 1
        # the refusal goes away, then comes back: reported again
        rig.state.apply("MODIFIED", snap("bad", hosts=("ok.local",), ip="10.0.0.2"))
        await until(lambda: rig.value("rejected_hosts", reason=WILDCARD) == 0)
        rig.state.apply("MODIFIED", bad)
        await until(lambda: len(rig.events.calls) == 2)
        assert rig.value("rejections_total", reason=WILDCARD) == 2

    drive(rig, scenario)
    assert [h for _, h, _ in managed(path)] == ["ok.local", "other.local"]


def test_conflict_and_shadowing_are_reported_on_the_right_object(path):
    rig = make_rig(path)
    old = snap("old", hosts=("app.local",), ip="10.0.0.1", created="2024-01-01T00:00:00Z")
    new = snap("new", hosts=("app.local", "mine.local"), ip="10.0.0.2", created="2024-06-01T00:00:00Z")

    async def scenario():
        list_scope(rig.state, "ns", new, old)
        await until(lambda: rig.health.ready)

    drive(rig, scenario)
    reported = sorted((n.snap.name, *n.hosts, n.reason) for n in rig.events.calls)
    assert reported == [("new", "app.local", CONFLICT), ("new", "mine.local", SHADOWED)]
    assert managed(path) == [("10.0.0.1", "app.local", "ns/old")]
    assert b"10.1.1.1 mine.local\n" in path.read_bytes()  # the user's line is untouched


def test_class_and_domain_filters_apply(path):
    rig = make_rig(path, sync=replace(TEST_SYNC, domain_filters=("local",)))

    async def scenario():
        list_scope(rig.state, "ns", snap("a", hosts=("a.local", "a.example.com")))
        await until(lambda: rig.health.ready)

    drive(rig, scenario)
    assert [h for _, h, _ in managed(path)] == ["a.local"]
    assert rig.value("rejected_hosts", reason="domain-filter") == 1


def test_lb_hostnames_go_through_the_resolver_cache(path):
    resolver = FixedResolver({"lb.example": ("10.5.5.5",)})
    rig = make_rig(path, resolver=resolver)
    lb = Snapshot(
        "ns", "lb", "uid-lb", "2024-01-01T00:00:00Z", hosts=("lb.local",), lb_hostnames=("lb.example",)
    )

    async def scenario():
        list_scope(rig.state, "ns", lb)
        await until(lambda: rig.health.ready)
        await rig.writer.sync()

    drive(rig, scenario)
    assert managed(path) == [("10.5.5.5", "lb.local", "ns/lb")]
    assert resolver.lookups == ["lb.example"]  # the second sync used the cache


# ---------------------------------------------------------------------------------------- errors, modes


def test_a_failed_sync_counts_an_error_and_keeps_the_first_change(tmp_path):
    directory = tmp_path / "hosts"
    directory.mkdir()
    rig = make_rig(directory)

    async def scenario():
        rig.state.apply("ADDED", snap("web"))
        first = rig.state.first_unsynced_change
        assert await rig.writer.sync() is None
        assert rig.count("error") == 1
        assert rig.state.first_unsynced_change == first  # latency still measured from the original change
        assert not rig.health.ready

    asyncio.run(scenario())


def test_dry_run_prints_block_and_diff_and_touches_nothing(path, capsys):
    before = age(path)
    rig = make_rig(path, mode=ModeSettings(dry_run=True))

    async def scenario():
        list_scope(rig.state, "ns", snap("web"), snap("bad", hosts=("*.local",)))
        await until(lambda: rig.writer.done.is_set())

    drive(rig, scenario)
    out = capsys.readouterr().out
    assert "#### BEGIN TYK-K8S-HOSTS ####\n10.0.0.1 app.local  # ns/web\n#### END TYK-K8S-HOSTS ####\n" in out
    assert f"--- {path}\n" in out and f"+++ {path} (after sync)\n" in out
    assert "+10.0.0.1 app.local  # ns/web\n" in out
    assert "# refused *.local from ns/bad" in out
    after = os.stat(path)
    assert path.read_bytes() == USER
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert rig.count("written") == rig.count("unchanged") == 0
    assert rig.events.calls == []


def test_dry_run_on_an_up_to_date_file_says_so(path, capsys):
    HostsFile(path).sync([Entry("app.local", "10.0.0.1", "ns/web")])
    content = path.read_bytes()
    rig = make_rig(path, mode=ModeSettings(dry_run=True))

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        await until(lambda: rig.writer.done.is_set())

    drive(rig, scenario)
    out = capsys.readouterr().out
    assert "already up to date" in out
    assert "\n+" not in out and "\n-" not in out
    assert path.read_bytes() == content


def test_once_stops_after_the_first_sync_and_keeps_the_block(path):
    rig = make_rig(path, mode=ModeSettings(once=True))

    async def main():
        task = asyncio.create_task(rig.writer.run())
        list_scope(rig.state, "ns", snap("web"))
        await asyncio.wait_for(task, 5)  # run() returns by itself

    asyncio.run(main())
    assert rig.writer.done.is_set()
    assert managed(path) == [("10.0.0.1", "app.local", "ns/web")]
    assert rig.count("written") == 1


def test_post_write_command_runs_after_writes_only(path, tmp_path):
    log_file = tmp_path / "post-write.log"
    rig = make_rig(path, postwrite=PostWriteSettings(f"echo ran >> {log_file}"))

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        await until(lambda: rig.count("written") == 1)
        await until(lambda: log_file.exists())
        await rig.writer.sync()  # unchanged: no command
        assert rig.count("unchanged") == 1
        rig.state.apply("MODIFIED", snap("web", ip="10.0.0.2"))
        await until(lambda: rig.count("written") == 2)
        await until(lambda: log_file.read_text().count("ran") == 2)
        await asyncio.sleep(0.3)  # let the writer collect the command before it is cancelled

    drive(rig, scenario)
    assert log_file.read_text() == "ran\nran\n"


@pytest.mark.parametrize("command", ["exit 3", "echo oops >&2; false", "exec sleep 5"])
def test_a_failing_or_slow_post_write_command_does_not_fail_the_sync(path, command):
    rig = make_rig(path, postwrite=PostWriteSettings(command, 0.3))

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        started = time.monotonic()
        await rig.writer.sync()
        assert time.monotonic() - started < 3  # "exec sleep 5" is killed after the timeout

    asyncio.run(scenario())
    assert rig.count("written") == 1 and rig.count("error") == 0
    assert rig.health.ready
    assert managed(path) == [("10.0.0.1", "app.local", "ns/web")]


def test_post_write_timeout_bounds_a_command_with_child_processes(path):
    rig = make_rig(path, postwrite=PostWriteSettings("sleep 3; true", 0.3))

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        started = time.monotonic()
        await rig.writer.sync()  # completes (no cancellation), so no process is left behind
        assert time.monotonic() - started < 2

    asyncio.run(scenario())


def test_watched_objects_are_counted_per_kind(path):
    rig = make_rig(path, scopes=("ns",), kinds=("Ingress", "HTTPRoute", "Gateway"))
    gateways = ResourceId("gateway.networking.k8s.io", "gateways")
    gw = Snapshot(
        "ns",
        "gw",
        "uid-gw",
        "2024-01-01T00:00:00Z",
        resource=gateways,
        kind="Gateway",
        ips=("10.0.0.9",),
        listeners=(Listener("http", protocol="HTTP"),),
        gateway=ObjectRef(gateways, "ns", "gw"),
        lends=True,
    )
    route = Snapshot(
        "ns",
        "r",
        "uid-r",
        "2024-01-01T00:00:00Z",
        resource=ResourceId("gateway.networking.k8s.io", "httproutes"),
        kind="HTTPRoute",
        hosts=("r.local",),
        route_hosts=("r.local",),
        parents=(ObjectRef(gateways, "ns", "gw"),),
        class_filtered=False,
    )

    async def scenario():
        list_scope(rig.state, "ns", snap("web"), gw, route)
        await until(lambda: rig.health.ready)

    drive(rig, scenario)
    assert rig.value("watched_objects", kind="Ingress") == 1
    assert rig.value("watched_objects", kind="Gateway") == 1
    assert rig.value("watched_objects", kind="HTTPRoute") == 1
    assert managed(path) == [("10.0.0.1", "app.local", "ns/web"), ("10.0.0.9", "r.local", "ns/r")]


@pytest.mark.parametrize(("platform", "warned"), [("darwin", True), ("linux", False)])
def test_dot_local_names_warn_once_on_macos(path, monkeypatch, caplog, platform, warned):
    monkeypatch.setattr("controller.sync.report.sys.platform", platform)
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        await rig.writer.sync()
        rig.state.apply("MODIFIED", snap("web", hosts=("app.local", "api.local")))
        await rig.writer.sync()

    with caplog.at_level("WARNING", logger="controller"):
        asyncio.run(scenario())
    warnings = [r for r in caplog.records if "mDNS" in r.getMessage()]
    assert len(warnings) == (1 if warned else 0)
    assert managed(path) == [("10.0.0.1", "api.local", "ns/web"), ("10.0.0.1", "app.local", "ns/web")]


# ------------------------------------------------------------------------ post-write command off the path


@pytest.mark.timeout(120)
def test_a_slow_post_write_command_does_not_hold_back_the_next_writes(path, tmp_path):
    # Each run notes that it started, flags an overlap with another run, and waits until the test lets it go.
    runs, go = tmp_path / "runs", tmp_path / "go"
    runs.mkdir()
    go.mkdir()
    running, overlaps = tmp_path / "running", tmp_path / "overlaps"
    command = (
        f"mkdir {running} 2>/dev/null || echo overlap >> {overlaps}; "
        f"n=$(ls {runs} | grep -c started); touch {runs}/started-$n; "
        f"while [ ! -e {go}/$n ]; do sleep 0.02; done; "
        f"rmdir {running}; touch {runs}/done-$n"
    )
    rig = make_rig(path, postwrite=PostWriteSettings(command, 60))

    def lines() -> list[str]:
        return [a for a, _, _ in managed(path)]

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        await until(lambda: (runs / "started-0").exists())
        # The first command is running (and stays so until go/0): the next changes reach the file anyway.
        rig.state.apply("MODIFIED", snap("web", ip="10.0.0.2"))
        await until(lambda: lines() == ["10.0.0.2"])
        rig.state.apply("MODIFIED", snap("web", ip="10.0.0.3"))
        await until(lambda: lines() == ["10.0.0.3"])
        assert not (runs / "done-0").exists() and not (runs / "started-1").exists()
        # The counter follows the rename a moment later than the file does: wait for it, do not race it.
        await until(lambda: rig.count("written") == 3)
        # Latest wins: the two writes made meanwhile are followed by one more run, after the first.
        (go / "0").touch()
        await until(lambda: (runs / "started-1").exists())
        (go / "1").touch()
        await until(lambda: (runs / "done-1").exists())
        await asyncio.sleep(0.5)
        assert not (runs / "started-2").exists()
        assert rig.writer.post_write is not None and rig.writer.post_write.runs == 2

    try:
        drive(rig, scenario)
    finally:
        for n in range(3):
            (go / str(n)).touch()
    assert not overlaps.exists(), overlaps.read_text()


def test_once_waits_for_the_post_write_command_of_its_write(path, tmp_path):
    marker = tmp_path / "ran"
    rig = make_rig(
        path,
        mode=ModeSettings(once=True),
        postwrite=PostWriteSettings(f"sleep 0.3; touch {marker}", 30),
    )

    async def main():
        task = asyncio.create_task(rig.writer.run())
        list_scope(rig.state, "ns", snap("web"))
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    assert marker.exists()


# ---------------------------------------------------------------------------- readiness while writes fail


def test_not_ready_while_the_last_write_failed_with_the_reason_then_ready_again(path):
    rig = make_rig(path)

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        await until(lambda: rig.health.serving)
        assert rig.value("write_failing") == 0
        path.unlink()
        path.mkdir()  # the hosts path turned into a directory: every write fails
        rig.state.apply("MODIFIED", snap("web", ip="10.0.0.2"))
        await until(lambda: rig.count("error") >= 1)
        assert not rig.health.serving
        reason = rig.health.why_not_ready()
        assert "the last write of the hosts file failed" in reason and "directory" in reason, reason
        assert rig.value("write_failing") == 1
        path.rmdir()
        path.write_bytes(USER)  # fixed: the next retry (1 s) writes, and it is ready again
        await until(lambda: rig.health.serving, timeout=10)
        assert rig.value("write_failing") == 0
        assert managed(path) == [("10.0.0.2", "app.local", "ns/web")]

    drive(rig, scenario)


@pytest.mark.timeout(120)
def test_a_foreign_lock_is_waited_for_off_the_event_loop_reported_and_retried(path):
    rig = make_rig(path)
    rig.hosts.lock_timeout = 0.5
    beats: list[float] = []

    async def heartbeat():
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def scenario():
        list_scope(rig.state, "ns", snap("web"))
        await until(lambda: rig.health.serving)
        beating = asyncio.create_task(heartbeat())
        with LockHolder(path) as holder:
            rig.state.apply("MODIFIED", snap("web", ip="10.0.0.2"))
            before = len(beats)
            await until(lambda: rig.count("error") >= 1, timeout=30)
            assert len(beats) - before >= 3  # the loop kept running while the writer waited (in a thread)
            assert rig.value("lock_timeouts_total") >= 1
            assert not rig.health.serving
            assert f"held by pid {holder.pid}" in rig.health.why_not_ready()
            assert managed(path) == [("10.0.0.1", "app.local", "ns/web")]  # nothing written without it
            holder.release()
            await until(lambda: rig.health.serving, timeout=30)  # the retry writes
        beating.cancel()
        assert managed(path) == [("10.0.0.2", "app.local", "ns/web")]

    drive(rig, scenario)
