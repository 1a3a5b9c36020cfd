"""Load-balancer hostname lookups shared fairly between objects, and what a lookup that has not answered
costs: one object whose names sit behind a DNS server that never answers must not hold every lookup thread,
and a name not answered in time keeps its last known address and is said to be pending, not unresolvable.

The black hole is real where it matters: a UDP socket that receives DNS queries and never answers, read by
the lookup callable the Resolver is given (the system resolver's own configuration cannot be pointed at it
from a test)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.engine.hostsfile import HostsFile
from controller.model import Snapshot
from controller.serve.health import Health
from controller.serve.metrics import Metrics
from controller.sync.options import SyncSettings
from controller.sync.resolve import Resolver, system_lookup
from controller.sync.state import ClusterState
from controller.sync.writer import Writer

HANG_GUARD = 20.0  # seconds: only turns a hang (the bug) into a failure
GREEDY = {f"lb{i}.blackhole.test": "Ingress greedy/many-lbs" for i in range(16)}


def run(coro):
    async def guarded():
        async with asyncio.timeout(HANG_GUARD):
            return await coro

    return asyncio.run(guarded())


def dns_query(name: str) -> bytes:
    """A standard DNS query for the A record of ``name`` (RFC 1035, 4.1)."""
    header = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + labels + struct.pack(">HH", 1, 1)


class UdpBlackHole:
    """A DNS server address that receives queries and never answers. ``lookup`` sends the names in
    ``black_holed`` there and waits for the answer as a stub resolver does (``attempt`` seconds, then no
    answer); the other names go to ``answers`` when listed there, else to the system resolver."""

    def __init__(self, attempt: float = 3.0) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.server.bind(("127.0.0.1", 0))
        self.attempt = attempt
        self.black_holed: set[str] = set()
        self.answers: dict[str, tuple[str, ...]] = {}

    def lookup(self, name: str) -> tuple[str, ...]:
        if name not in self.black_holed and not name.endswith(".blackhole.test"):
            return self.answers.get(name) or system_lookup(name)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(self.attempt)
            client.sendto(dns_query(name), self.server.getsockname())
            client.recv(512)  # TimeoutError: no answer, as glibc's EAI_AGAIN
        raise AssertionError("the black hole answered")

    def queries_received(self) -> int:
        """The queries that reached the server socket (read without answering)."""
        self.server.setblocking(False)
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self.server.recv(512)
                count += 1
        return count

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def hole() -> Iterator[UdpBlackHole]:
    h = UdpBlackHole()
    yield h
    h.close()


# ------------------------------------------------------------------------------------------ the Resolver


def test_one_objects_stuck_lookups_leave_threads_for_the_others():
    """An injected lookup that blocks: 16 names of one object, then the names of two other objects in two
    later syncs (the first object's lookups still stuck), each resolves."""
    release = threading.Event()

    def lookup(name: str) -> tuple[str, ...]:
        if name.endswith(".blackhole.test"):
            release.wait(HANG_GUARD)
            raise TimeoutError(name)
        return ("10.0.0.7",)

    resolver = Resolver(timeout=0.5, lookup=lookup)

    async def scenario():
        try:
            first = await resolver.resolve_all({**GREEDY, "a.example": "Ingress other/a"})
            later = await resolver.resolve_all({**GREEDY, "b.example": "Ingress other/b"})
            return first, later
        finally:
            release.set()

    first, later = run(scenario())
    assert first["a.example"] == ("10.0.0.7",)
    assert later["b.example"] == ("10.0.0.7",)
    assert first.pending == later.pending == frozenset(GREEDY)  # pending, not "does not resolve"


def test_a_name_not_answered_in_time_keeps_its_last_good_answer_across_syncs():
    mode = {"now": "answer"}
    release = threading.Event()

    def lookup(name: str) -> tuple[str, ...]:
        if mode["now"] == "hang":
            release.wait(HANG_GUARD)
            raise TimeoutError(name)
        return ("10.0.0.8",) if mode["now"] == "answer" else ()

    resolver = Resolver(timeout=0.2, ttl=0.0, negative_ttl=0.0, lookup=lookup)  # every sync asks again
    seen = []

    async def scenario():
        seen.append(await resolver.resolve_all(["lb.example"]))
        mode["now"] = "hang"
        seen.append(await resolver.resolve_all(["lb.example"]))
        seen.append(await resolver.resolve_all(["lb.example"]))  # the same lookup, still stuck
        release.set()
        while resolver._running:
            await asyncio.sleep(0.01)
        seen.append(await resolver.resolve_all(["lb.example"]))  # it ended without an answer
        mode["now"] = "gone"  # an answer that says the name does not exist drops it
        seen.append(await resolver.resolve_all(["lb.example"]))

    run(scenario())
    assert [dict(a) for a in seen] == [{"lb.example": ("10.0.0.8",)}] * 4 + [{"lb.example": ()}]
    assert [a.pending for a in seen] == [frozenset(), *[frozenset({"lb.example"})] * 3, frozenset()]


def test_a_lookup_that_ends_without_an_answer_and_no_address_known_does_not_resolve():
    """Nothing to keep: the name does not resolve (refused as before), it is not left pending forever."""

    def lookup(name: str) -> tuple[str, ...]:
        raise TimeoutError(name)

    answers = run(Resolver(timeout=5.0, lookup=lookup).resolve_all(["lb.example"]))
    assert dict(answers) == {"lb.example": ()} and answers.pending == frozenset()


def test_the_system_lookup_tells_no_answer_from_no_such_name(monkeypatch):
    def getaddrinfo(host, *args, **kwargs):
        code = socket.EAI_AGAIN if host == "again.example" else socket.EAI_NONAME
        raise socket.gaierror(code, "test")

    from controller.sync.resolve import NoAnswer  # here: the rest of the module runs on older code too

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(NoAnswer):
        system_lookup("again.example")
    assert system_lookup("nxdomain.example") == ()


def test_a_sync_with_a_lookup_of_its_own_does_not_wait_for_one_stuck_since_an_earlier_sync():
    """The stuck lookup's deadline has passed: the next sync waits for its own new name only (with the
    timeout raised to 60 s for it, waiting for the stuck one would run into the hang guard)."""
    release = threading.Event()

    def lookup(name: str) -> tuple[str, ...]:
        if name.endswith(".blackhole.test"):
            release.wait(HANG_GUARD * 2)
            raise TimeoutError(name)
        return ("10.0.0.9",)

    resolver = Resolver(timeout=0.2, lookup=lookup)

    async def scenario():
        try:
            await resolver.resolve_all({"x.blackhole.test": "Ingress loud/x"})
            resolver.timeout = 60.0
            return await resolver.resolve_all(
                {"x.blackhole.test": "Ingress loud/x", "web.example": "Ingress q/w"}
            )
        finally:
            release.set()

    answers = run(scenario())
    assert dict(answers) == {"x.blackhole.test": (), "web.example": ("10.0.0.9",)}
    assert answers.pending == {"x.blackhole.test"}


def test_a_real_udp_black_hole_does_not_starve_another_objects_lookup(hole: UdpBlackHole):
    """16 names whose DNS queries go to a UDP socket that never answers, and an unrelated object's
    `localhost` (the system resolver): localhost resolves, the 16 are pending."""
    resolver = Resolver(timeout=1.0, lookup=hole.lookup)
    answers = run(resolver.resolve_all({**GREEDY, "localhost": "Ingress other/docker-desktop"}))
    assert {"127.0.0.1", "::1"} & set(answers["localhost"]), answers
    assert answers.pending == frozenset(GREEDY)
    assert 0 < hole.queries_received() <= 4  # the object's share of the threads, no more


# ------------------------------------------------------------------------------------------ the writer


def lb_snap(name: str, ns: str, hosts: tuple[str, ...], lb_hostnames: tuple[str, ...]) -> Snapshot:
    return Snapshot(
        ns, name, f"uid-{ns}-{name}", "2024-01-01T00:00:00Z", hosts=hosts, lb_hostnames=lb_hostnames
    )


def sync_twice(path: Path, resolver: Resolver, *snaps: Snapshot, between=lambda: None) -> None:
    state = ClusterState(["ns"])
    state.listing_started("ns")
    for s in snaps:
        state.listed_object("ns", s.uid)
    state.listing_complete("ns")
    for s in snaps:
        state.apply(None, s)
    writer = Writer(
        state,
        HostsFile(path),
        settings=SyncSettings(resync_interval=0.0),
        metrics=Metrics(),
        health=Health(),
        resolver=resolver,
    )

    async def scenario():
        await writer.sync()
        between()
        await writer.sync()

    run(scenario())


def names_in(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for e in HostsFile(path).parse().managed:
        found.setdefault(e.hostname, set()).add(e.address)
    return found


def test_an_unrelated_objects_name_is_written_beside_a_black_holed_object(
    hole: UdpBlackHole, tmp_path: Path, caplog
):
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    greedy = lb_snap("many-lbs", "ns", ("greedy.test",), tuple(GREEDY))
    other = lb_snap("web", "ns", ("web.test",), ("web-lb.example",))
    hole.answers["web-lb.example"] = ("10.9.0.1",)
    caplog.set_level(logging.INFO, logger="controller")
    sync_twice(path, Resolver(timeout=1.0, lookup=hole.lookup), greedy, other)
    assert names_in(path) == {"web.test": {"10.9.0.1"}}
    assert "lookup of load-balancer hostname lb0.blackhole.test still pending" in caplog.text
    assert "did not resolve" not in caplog.text
    assert "refused" not in caplog.text  # pending is not a refusal


def test_a_name_whose_lookup_goes_unanswered_keeps_its_last_known_address_in_the_file(
    hole: UdpBlackHole, tmp_path: Path, caplog
):
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    web = lb_snap("web", "ns", ("web.test",), ("web-lb.example",))
    hole.answers["web-lb.example"] = ("10.9.0.1",)
    caplog.set_level(logging.INFO, logger="controller")
    resolver = Resolver(timeout=0.5, ttl=0.0, lookup=hole.lookup)  # the second sync asks again
    seen = []

    def black_hole_it():
        seen.append(names_in(path))
        hole.black_holed.add("web-lb.example")

    sync_twice(path, resolver, web, between=black_hole_it)
    assert seen == [{"web.test": {"10.9.0.1"}}]
    assert names_in(path) == {"web.test": {"10.9.0.1"}}  # still there, not removed
    assert hole.queries_received() == 1  # it was asked, and never answered
    assert "lookup of load-balancer hostname web-lb.example still pending" in caplog.text
    assert "keeping its last known address 10.9.0.1" in caplog.text
    assert "removed" not in caplog.text and "did not resolve" not in caplog.text


def test_the_black_hole_receives_the_query_and_never_answers(hole: UdpBlackHole):
    hole.attempt = 0.2
    with pytest.raises(TimeoutError):
        hole.lookup("x.blackhole.test")
    assert hole.queries_received() == 1
