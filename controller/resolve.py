"""Resolves load-balancer hostnames (Docker Desktop reports "localhost", cloud LBs DNS names) to addresses.

The system resolver, bounded in time, cached: positive answers for a while, failures for less, so a
name that starts resolving later is picked up without hammering the resolver on every sync.

A lookup that never answers (a black-holed DNS server) keeps its thread inside getaddrinfo long after we
stopped waiting. So lookups run on a few threads of their own, never on the default executor that the
writer's file I/O uses, one lookup per name at a time (a later sync waits on the same lookup instead of
starting another), and a sync waits for each lookup at most ``timeout`` seconds from when that lookup
started: all of a sync's lookups together cost it at most ``timeout``, and a lookup still stuck from an
earlier sync costs it nothing (docs/architecture.md, decision 11).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable

Lookup = Callable[[str], tuple[str, ...]]  # blocking: a name to its addresses, () when it does not resolve
# Lookups at once (an object has at most 16 addresses, so one object's names all run at once); more names wait
# for a free thread, which a lookup stuck on a black-holed DNS server frees after glibc's ~10-30 s.
LOOKUP_THREADS = 16


def system_lookup(name: str) -> tuple[str, ...]:
    """The system resolver (getaddrinfo: /etc/hosts, DNS, ...), addresses sorted IPv4 first."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    addrs = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
    return tuple(str(a) for a in sorted(addrs, key=lambda a: (a.version, a)))


class _LookupThreads:
    """Daemon threads started on demand (at most ``size``): a lookup stuck in the C library can neither take
    a thread the writer needs nor hold back the exit of the process."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._unfinished = 0  # jobs queued or running

    def submit(self, lookup: Lookup, name: str, future: asyncio.Future) -> None:
        with self._lock:
            self._unfinished += 1
            start = self._unfinished > self._threads and self._threads < self._size
            if start:
                self._threads += 1
        self._jobs.put((lookup, name, future.get_loop(), future))
        if start:
            threading.Thread(target=self._work, name=f"resolve-{self._threads}", daemon=True).start()

    def _work(self) -> None:
        while True:
            lookup, name, loop, future = self._jobs.get()
            try:
                addrs = lookup(name)
            except Exception:  # an injected lookup; the system one returns () on errors
                addrs = ()
            with self._lock:
                self._unfinished -= 1
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, addrs)


def _settle(future: asyncio.Future, addrs: tuple[str, ...]) -> None:
    if not future.done():
        future.set_result(addrs)


class Resolver:
    def __init__(
        self,
        timeout: float = 2.0,
        ttl: float = 60.0,
        negative_ttl: float = 10.0,
        *,
        lookup: Lookup = system_lookup,
        threads: int = LOOKUP_THREADS,
    ) -> None:
        self.timeout = timeout
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._lookup = lookup
        self._threads = _LookupThreads(threads)
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._running: dict[str, tuple[float, asyncio.Future]] = {}  # name -> (when we stop waiting, answer)

    async def resolve_all(self, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Every name's addresses (() when it did not resolve in time); waits at most ``timeout``."""
        wanted = sorted(set(names))
        now = time.monotonic()
        # Names no longer wanted are forgotten: their expired answers would otherwise keep next_expiry in
        # the past and the writer re-syncing.
        self._cache = {n: self._cache[n] for n in wanted if n in self._cache}
        answers: dict[str, tuple[str, ...]] = {}
        waiting: dict[str, tuple[float, asyncio.Future]] = {}
        for name in wanted:
            cached = self._cache.get(name)
            if cached and cached[0] > now:
                answers[name] = cached[1]
            else:
                waiting[name] = self._start(name, now)
        pending = {future for _, future in waiting.values() if not future.done()}
        until = max((deadline for deadline, _ in waiting.values()), default=now)
        if pending and until > now:
            # asyncio.wait() on futures spawns no task (kopf waits at shutdown for tasks made while it ran).
            await asyncio.wait(pending, timeout=until - now)
        now = time.monotonic()
        for name, (_, future) in waiting.items():
            addrs = future.result() if future.done() else ()
            self._cache[name] = (now + (self.ttl if addrs else self.negative_ttl), addrs)
            answers[name] = addrs
        return answers

    async def resolve(self, name: str) -> tuple[str, ...]:
        return (await self.resolve_all([name]))[name]

    @property
    def next_expiry(self) -> float | None:
        """Monotonic time when a cached answer expires (the writer re-resolves then)."""
        return min((expires for expires, _ in self._cache.values()), default=None)

    def _start(self, name: str, now: float) -> tuple[float, asyncio.Future]:
        """The running lookup of ``name``, or a new one; with the time after which nobody waits for it."""
        running = self._running.get(name)
        if running is not None:
            return running
        future = asyncio.get_running_loop().create_future()
        running = self._running[name] = (now + self.timeout, future)
        future.add_done_callback(lambda done: self._finished(name, done))
        self._threads.submit(self._lookup, name, future)
        return running

    def _finished(self, name: str, future: asyncio.Future) -> None:
        self._running.pop(name, None)
        addrs = future.result()
        if addrs and name in self._cache and not self._cache[name][1]:  # a late answer is kept
            self._cache[name] = (time.monotonic() + self.ttl, addrs)
