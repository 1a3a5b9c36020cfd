"""Load-balancer hostname lookups: bounded per sync, cached, and never on the threads the writer's file I/O
uses, even when the DNS server never answers (getaddrinfo blocks in the C library far past our timeout)."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

from controller.sync.resolve import Resolver

HANG_GUARD = 20.0  # seconds: only turns a hang (the bug) into a failure


class BlackHole:
    """socket.getaddrinfo for names under .blackhole.test blocks like a resolver that never answers (until
    released); other names resolve to 10.0.0.1. Counts the calls per name."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, host, port, *args, **kwargs):
        with self.lock:
            self.calls[host] = self.calls.get(host, 0) + 1
        if host.endswith(".blackhole.test"):
            self.release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 0))]


@pytest.fixture
def black_hole(monkeypatch) -> BlackHole:
    hole = BlackHole()
    monkeypatch.setattr(socket, "getaddrinfo", hole)
    yield hole
    hole.release.set()


def run(coro_fn):
    async def guarded():
        async with asyncio.timeout(HANG_GUARD):
            return await coro_fn()

    return asyncio.run(guarded())


STUCK = [f"lb{i}.blackhole.test" for i in range(40)]


def test_stuck_lookups_leave_the_default_executor_free_for_file_io(black_hole, tmp_path: Path):
    """Dozens of black-holed LB hostnames: the sync gets its answers (none) after the timeout, and reading
    the hosts file on the default executor, as the writer does, is not queued behind them."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    resolver = Resolver(timeout=0.2)

    async def scenario():
        try:
            assert await resolver.resolve_all(STUCK) == dict.fromkeys(STUCK, ())
            # the lookups are still blocked in their threads; file I/O must not wait for them
            for _ in range(20):
                assert await asyncio.to_thread(hosts.read_text) == "127.0.0.1 localhost\n"
        finally:
            black_hole.release.set()

    run(scenario)


def test_a_lookup_still_stuck_from_an_earlier_sync_costs_a_later_sync_nothing(black_hole):
    resolver = Resolver(timeout=0.3, negative_ttl=0.0)  # no negative cache: every sync asks again
    loop_time = []

    async def scenario():
        try:
            await resolver.resolve_all(STUCK[:3])
            loop = asyncio.get_running_loop()
            for _ in range(5):
                started = loop.time()
                assert await resolver.resolve_all(STUCK[:3]) == dict.fromkeys(STUCK[:3], ())
                loop_time.append(loop.time() - started)
        finally:
            black_hole.release.set()

    run(scenario)
    # one lookup per name however many syncs asked while it was stuck
    assert [black_hole.calls[name] for name in STUCK[:3]] == [1, 1, 1]
    assert all(t < 0.3 for t in loop_time), loop_time  # the lookups' deadlines had passed: no new wait


def test_a_name_that_answers_resolves_while_others_are_stuck(black_hole):
    resolver = Resolver(timeout=0.5)
    stuck = STUCK[:10]

    async def scenario():
        try:
            await resolver.resolve_all(stuck)
            return await resolver.resolve_all([*stuck, "ok.example"])
        finally:
            black_hole.release.set()

    assert run(scenario) == {**dict.fromkeys(stuck, ()), "ok.example": ("10.0.0.1",)}


def test_a_sync_waits_at_most_the_timeout_for_all_its_lookups_together(black_hole):
    resolver = Resolver(timeout=0.5, threads=2)  # 40 names on 2 threads: most never start in time
    waited = []

    async def scenario():
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await resolver.resolve_all(STUCK)
            waited.append(loop.time() - started)
        finally:
            black_hole.release.set()

    run(scenario)
    assert waited[0] < 0.5 + 1.0, waited  # the timeout the user set (--resolve-timeout), not 40 x it


def test_answers_are_cached_and_a_late_answer_is_kept():
    gate = threading.Event()
    calls: list[str] = []

    def lookup(name: str) -> tuple[str, ...]:
        calls.append(name)
        if name == "slow.example":
            gate.wait(10)
        return ("10.1.0.1",)

    resolver = Resolver(timeout=0.1, lookup=lookup)

    async def scenario():
        assert await resolver.resolve_all(["fast.example", "slow.example"]) == {
            "fast.example": ("10.1.0.1",),
            "slow.example": (),
        }
        gate.set()
        for _ in range(200):  # the late answer arrives on the loop
            await asyncio.sleep(0.01)
            if resolver._cache.get("slow.example", (0.0, None))[1]:
                break
        assert await resolver.resolve_all(["fast.example", "slow.example"]) == {
            "fast.example": ("10.1.0.1",),
            "slow.example": ("10.1.0.1",),
        }

    run(scenario)
    assert sorted(calls) == ["fast.example", "slow.example"]  # the second sync used the cache


def test_names_no_longer_wanted_are_forgotten():
    resolver = Resolver(timeout=0.5, ttl=0.0, negative_ttl=0.0, lookup=lambda name: ("10.2.0.1",))

    async def scenario():
        await resolver.resolve_all(["old.example"])
        await resolver.resolve_all(["new.example"])

    run(scenario)
    assert set(resolver._cache) == {"new.example"}  # an expired answer of a gone name keeps no timer due


def test_the_system_lookup_resolves_a_name_of_the_hosts_file():
    addrs = run(lambda: Resolver(timeout=5.0).resolve("localhost"))
    assert {"127.0.0.1", "::1"} & set(addrs), addrs
