"""Warning Events about refused hosts, summarised and posted off the write path. No kopf, no API client.

One object can name thousands of hosts (a hostnames annotation holds 256 kB); its Events must never hold a
sync back (docs/architecture.md, decision 11), so:
- a ``Notice`` is one Event about one object and one refusal reason, with the names summarised and the
  message cut to ``MAX_MESSAGE`` characters;
- the writer only offers notices to an ``EventQueue`` (bounded, never blocks, a newer notice about the
  same object and reason replaces a queued one), which a background task drains through the poster
  (controller/cluster/kube.py: create the Event, or patch its count when it exists).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from controller.engine.printable import printable
from controller.model import Snapshot

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024  # characters of an Event message (events.k8s.io's limit for a note)
NAMES_SHOWN = 5  # names spelled out in a summary; the rest are counted
QUEUE_LIMIT = 1000  # distinct (object, reason) notices waiting to be posted


@dataclass(frozen=True)
class Notice:
    """One Warning Event: refused ``hosts`` of one object for one ``reason``."""

    snap: Snapshot
    reason: str
    hosts: tuple[str, ...]
    detail: str  # the refusal message (of the first host when there are several)

    @property
    def key(self) -> tuple[str, str]:
        return self.snap.uid, self.reason

    @property
    def message(self) -> str:
        return summary(self.hosts, self.detail, self.reason, MAX_MESSAGE)


def names(hosts: Iterable[str]) -> str:
    """'a', 'b', 'c' and 4,998 more: the first few names, escaped and cut, and a count of the rest."""
    hosts = list(hosts)
    shown = ", ".join(printable(h, 80) for h in hosts[:NAMES_SHOWN])
    rest = len(hosts) - NAMES_SHOWN
    return f"{shown} and {rest:,} more" if rest > 0 else shown


def summary(hosts: tuple[str, ...], detail: str, reason: str, limit: int) -> str:
    """'<host>: <detail> [reason]' for one host; '<n> hosts refused [reason]: <names>; <detail>' for more."""
    detail = printable(detail, None)
    if len(hosts) == 1:
        text = f"{printable(hosts[0], 80)}: {detail} [{reason}]"
    else:
        text = f"{len(hosts):,} hosts refused [{reason}]: {names(hosts)}; first: {detail}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class EventQueue:
    """Notices waiting to be posted; ``offer`` never blocks, ``run`` posts them one at a time."""

    def __init__(self, post: Callable[[Notice], None], limit: int = QUEUE_LIMIT) -> None:
        self._post = post  # blocking (an HTTP request): run in a thread
        self._limit = limit
        self._pending: OrderedDict[tuple[str, str], Notice] = OrderedDict()
        self._wake = asyncio.Event()
        self._busy = False
        self.dropped = 0
        self._dropped_logged_at = 0.0

    def offer(self, notice: Notice) -> None:
        if notice.key in self._pending:
            self._pending[notice.key] = notice  # the newer summary replaces the queued one
        elif len(self._pending) >= self._limit:
            self.dropped += 1
            now = time.monotonic()
            if now - self._dropped_logged_at > 60:
                self._dropped_logged_at = now
                log.warning(
                    "%d refusal Events waiting to be posted: dropped the one for %s (%d dropped so far; "
                    "the log lines and the rejected_hosts metric still count every refusal)",
                    self._limit,
                    notice.snap.owner,
                    self.dropped,
                )
            return
        else:
            self._pending[notice.key] = notice
        self._wake.set()

    def __len__(self) -> int:
        return len(self._pending) + self._busy

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                _, notice = self._pending.popitem(last=False)
                self._busy = True
                try:
                    await asyncio.to_thread(self._post, notice)
                finally:
                    self._busy = False

    async def flush(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until every queued notice is posted: --once, shutdown."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self):
                    await asyncio.sleep(0.02)
