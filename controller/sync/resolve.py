"""Resolves load-balancer hostnames (Docker Desktop reports "localhost", cloud LBs DNS names) to addresses.

The system resolver, bounded in time, cached: positive answers for a while, failures for less, so a
name that starts resolving later is picked up without hammering the resolver on every sync.

A lookup that never answers (a black-holed DNS server) keeps its thread inside getaddrinfo long after we
stopped waiting. So lookups run on a few threads of their own, never on the default executor that the
writer's file I/O uses, one lookup per name at a time (a later sync waits on the same lookup instead of
starting another), and a sync waits for each lookup at most ``timeout`` seconds from when that lookup
started: all of a sync's lookups together cost it at most ``timeout``, and a lookup still stuck from an
earlier sync costs it nothing.

The threads are shared fairly between objects: each name belongs to a group (the object that wants it), a
group runs at most ``per_group`` lookups at once, and waiting groups take turns, so one object's stuck names
cannot hold every thread. A name whose lookup has not answered in time keeps its last good answer (the
answer is ``pending``, not "does not resolve"), and so does one whose lookup ended without an answer; with no
good answer yet, the first is pending and the second does not resolve. Only an answer that says the name
does not exist drops a known address (docs/architecture.md, decision 11).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# Blocking: a name to its addresses, () when it does not exist; raises when there is no answer (a DNS
# server that does not answer: glibc's EAI_AGAIN), which keeps the last good answer.
Lookup = Callable[[str], tuple[str, ...]]
# Lookups at once, and per object: an object may have 16 LB hostnames, but while 4 of them are stuck the
# other 12 threads stay free for the other objects (it takes four objects all stuck at once to fill them).
LOOKUP_THREADS = 16
LOOKUPS_PER_OBJECT = 4


class NoAnswer(Exception):
    """The resolver gave no answer (timed out, temporary failure): not a sign that the name does not exist."""


def system_lookup(name: str) -> tuple[str, ...]:
    """The system resolver (getaddrinfo: /etc/hosts, DNS, ...), addresses sorted IPv4 first."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        if err.errno == socket.EAI_AGAIN:
            raise NoAnswer(str(err)) from None
        return ()
    except (OSError, UnicodeError):
        return ()
    addrs = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
    return tuple(str(a) for a in sorted(addrs, key=lambda a: (a.version, a)))


Job = tuple[Lookup, str, asyncio.AbstractEventLoop, asyncio.Future]


class _LookupThreads:
    """Daemon threads started on demand (at most ``size``): a lookup stuck in the C library can neither take
    a thread the writer needs nor hold back the exit of the process. Jobs wait in one queue per group; a
    free thread takes the next job of the first group (in turn) that runs fewer than ``per_group``."""

    def __init__(self, size: int, per_group: int) -> None:
        self._size = size
        self._per_group = per_group
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Job]] = {}  # non-empty queues; dict order is the turn order
        self._running: Counter[str] = Counter()
        self._total = 0

    def submit(self, group: str, lookup: Lookup, name: str, future: asyncio.Future) -> None:
        with self._lock:
            self._queues.setdefault(group, deque()).append((lookup, name, future.get_loop(), future))
            taken = self._take()
        for group_job in taken:
            threading.Thread(target=self._work, args=group_job, name="resolve", daemon=True).start()

    def _take(self) -> list[tuple[str, Job]]:
        """The jobs that may start now (called with the lock held)."""
        taken = []
        while self._total < self._size:
            group = next((g for g in self._queues if self._running[g] < self._per_group), None)
            if group is None:
                break
            jobs = self._queues.pop(group)
            taken.append((group, jobs.popleft()))
            if jobs:
                self._queues[group] = jobs  # to the back: the other groups go first
            self._running[group] += 1
            self._total += 1
        return taken

    def _work(self, group: str, job: Job) -> None:
        while True:
            lookup, name, loop, future = job
            addrs: tuple[str, ...] | None
            try:
                addrs = lookup(name)
            except Exception:  # NoAnswer, or an injected lookup's error: no answer, keep the last good one
                addrs = None
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, addrs)
            with self._lock:
                self._running[group] -= 1
                if not self._running[group]:
                    del self._running[group]
                self._total -= 1
                taken = self._take()
            if not taken:
                return
            for other in taken[1:]:
                threading.Thread(target=self._work, args=other, name="resolve", daemon=True).start()
            group, job = taken[0]


def _settle(future: asyncio.Future, addrs: tuple[str, ...] | None) -> None:
    if not future.done():
        future.set_result(addrs)


async def _settled(lookups: Iterable[tuple[float, asyncio.Future]]) -> None:
    """Until each lookup has answered or is past its own deadline: a lookup stuck since an earlier sync
    (its deadline passed) is not waited for, even while this sync waits for lookups of its own."""
    lookups = list(lookups)
    while True:
        now = time.monotonic()
        live = [(deadline, future) for deadline, future in lookups if not future.done() and deadline > now]
        if not live:
            return
        # asyncio.wait() on futures spawns no task (kopf waits at shutdown for tasks made while it ran).
        await asyncio.wait(
            {future for _, future in live},
            timeout=min(deadline for deadline, _ in live) - now,
            return_when=asyncio.FIRST_COMPLETED,
        )


class Answers(dict[str, tuple[str, ...]]):
    """Name -> addresses, () when it does not resolve. ``pending``: the names whose lookup gave no answer
    in time; their addresses are the last good answer (or () when there never was one)."""

    pending: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ResolveSettings:
    """``config.resolve``: the bound of a load-balancer hostname's lookup (each sync may wait this long)."""

    timeout: float = 2.0


class Resolver:
    @classmethod
    def from_settings(cls, settings: ResolveSettings) -> Resolver:
        return cls(settings.timeout)

    def __init__(
        self,
        timeout: float = ResolveSettings.timeout,
        ttl: float = 60.0,
        negative_ttl: float = 10.0,
        *,
        lookup: Lookup = system_lookup,
        threads: int = LOOKUP_THREADS,
        per_group: int = LOOKUPS_PER_OBJECT,
    ) -> None:
        self.timeout = timeout
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._lookup = lookup
        self._threads = _LookupThreads(threads, per_group)
        # name -> (expiry, answer); None: no answer (looked up again after negative_ttl, last good kept)
        self._cache: dict[str, tuple[float, tuple[str, ...] | None]] = {}
        self._last_good: dict[str, tuple[str, ...]] = {}
        self._running: dict[str, tuple[float, asyncio.Future]] = {}  # name -> (when we stop waiting, answer)
        self._retry_at: float | None = None  # pending names are asked about again then
        self._wanted: frozenset[str] = frozenset()

    async def resolve_all(self, names: Iterable[str] | Mapping[str, str]) -> Answers:
        """Every name's addresses; waits at most ``timeout``. ``names`` maps each name to its group (the
        object that wants it); a plain list makes each name a group of its own."""
        groups = dict(names) if isinstance(names, Mapping) else {n: n for n in names}
        wanted = sorted(groups)
        self._wanted = frozenset(wanted)
        now = time.monotonic()
        # Names no longer wanted are forgotten: their expired answers would otherwise keep next_expiry in
        # the past and the writer re-syncing.
        self._cache = {n: self._cache[n] for n in wanted if n in self._cache}
        self._last_good = {n: self._last_good[n] for n in wanted if n in self._last_good}
        answers = Answers()
        pending: set[str] = set()
        waiting: dict[str, tuple[float, asyncio.Future]] = {}
        for name in wanted:
            cached = self._cache.get(name)
            if cached and cached[0] > now:
                answers[name] = self._outcome(name, cached[1], pending)
            else:
                waiting[name] = self._start(name, groups[name], now)
        await _settled(waiting.values())
        now = time.monotonic()
        for name, (_, future) in waiting.items():
            if future.done():
                self._store(name, future.result(), now)
                answers[name] = self._outcome(name, future.result(), pending)
            else:  # not answered in time: pending, whether or not an address is known
                pending.add(name)
                answers[name] = self._last_good.get(name, ())
        answers.pending = frozenset(pending)
        self._retry_at = now + self.negative_ttl if pending else None
        return answers

    async def resolve(self, name: str) -> tuple[str, ...]:
        return (await self.resolve_all([name]))[name]

    @property
    def next_expiry(self) -> float | None:
        """Monotonic time when a cached answer expires or a pending name is due again (the writer
        re-resolves then)."""
        times = [expires for expires, _ in self._cache.values()]
        if self._retry_at is not None:
            times.append(self._retry_at)
        return min(times, default=None)

    def _outcome(self, name: str, addrs: tuple[str, ...] | None, pending: set[str]) -> tuple[str, ...]:
        """What a finished lookup gives: its addresses; after no answer (a DNS server that did not answer),
        the last good answer, as pending; without one, nothing (the name did not resolve)."""
        if addrs is not None:
            return addrs
        if name in self._last_good:
            pending.add(name)
            return self._last_good[name]
        return ()

    def _store(self, name: str, addrs: tuple[str, ...] | None, now: float) -> None:
        self._cache[name] = (now + (self.ttl if addrs else self.negative_ttl), addrs)
        if addrs:
            self._last_good[name] = addrs
        elif addrs is not None:  # the name does not exist (any more): its old answer must not come back
            self._last_good.pop(name, None)

    def _start(self, name: str, group: str, now: float) -> tuple[float, asyncio.Future]:
        """The running lookup of ``name``, or a new one; with the time after which nobody waits for it."""
        running = self._running.get(name)
        if running is not None:
            return running
        future = asyncio.get_running_loop().create_future()
        running = self._running[name] = (now + self.timeout, future)
        future.add_done_callback(lambda done: self._finished(name, done))
        self._threads.submit(group, self._lookup, name, future)
        return running

    def _finished(self, name: str, future: asyncio.Future) -> None:
        self._running.pop(name, None)
        addrs = future.result()
        if addrs is not None and name in self._wanted:  # a late answer is kept
            self._store(name, addrs, time.monotonic())
