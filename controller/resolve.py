"""Resolves load-balancer hostnames (Docker Desktop reports "localhost", cloud LBs DNS names) to addresses.

The system resolver, bounded in time, cached: positive answers for a while, failures for less, so a
name that starts resolving later is picked up without hammering the resolver on every sync.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable


class Resolver:
    def __init__(self, timeout: float = 2.0, ttl: float = 60.0, negative_ttl: float = 10.0) -> None:
        self.timeout = timeout
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def resolve_all(self, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
        wanted = sorted(set(names))
        results = await asyncio.gather(*(self.resolve(n) for n in wanted))
        return dict(zip(wanted, results, strict=True))

    async def resolve(self, name: str) -> tuple[str, ...]:
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        addrs = await self._lookup(name)
        self._cache[name] = (now + (self.ttl if addrs else self.negative_ttl), addrs)
        return addrs

    @property
    def next_expiry(self) -> float | None:
        """Monotonic time when a cached answer expires (the writer re-resolves then)."""
        return min((expires for expires, _ in self._cache.values()), default=None)

    async def _lookup(self, name: str) -> tuple[str, ...]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError):
            return ()
        addrs = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
        return tuple(str(a) for a in sorted(addrs, key=lambda a: (a.version, a)))
