"""What the controller says about each sync: change log lines, refusals (log line, metric, Warning Event),
the macOS .local warning, the stale-file report and the initial-sync line.

It remembers what it already said, so each change is reported once (docs/architecture.md, decision 5), not on
every sync. The writer (controller/writer.py) calls it after each sync. No kopf here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable

from controller.metrics import Metrics
from controller.model import Rejection, Snapshot
from controller.plan import Plan

log = logging.getLogger("k8s-hosts-controller")

# Posts a Warning Event about a refused hostname on the object that named it (controller/kube.py).
EventSink = Callable[[Snapshot, Rejection], Awaitable[None]]


class Reporter:
    def __init__(self, metrics: Metrics, hosts_path: str, post_event: EventSink | None = None) -> None:
        self.metrics = metrics
        self.hosts_path = hosts_path
        self.post_event = post_event
        self._lines: dict[str, tuple[tuple[str, ...], str]] = {}  # host -> (addresses, owner) on disk
        self._reported: set[tuple[str, str, str, str]] = set()
        self._stale_reported = False
        self._mdns_warned = False

    def changes(self, new_plan: Plan, written: bool, mode: str | None) -> None:
        """One line per added, removed or updated hostname, and one per write."""
        lines: dict[str, tuple[tuple[str, ...], str]] = {}
        for entry in new_plan.entries:
            addrs, _ = lines.get(entry.hostname, ((), entry.owner))
            lines[entry.hostname] = ((*addrs, entry.address), entry.owner)
        for host in sorted(lines.keys() - self._lines.keys()):
            addrs, owner = lines[host]
            log.info("added %s -> %s (%s)", host, ", ".join(addrs), owner)
        for host in sorted(self._lines.keys() - lines.keys()):
            addrs, owner = self._lines[host]
            log.info("removed %s (was %s, %s)", host, ", ".join(addrs), owner)
        for host in sorted(lines.keys() & self._lines.keys()):
            if lines[host] != self._lines[host]:
                (old, old_owner), (new, owner) = self._lines[host], lines[host]
                log.info(
                    "updated %s -> %s (%s; was %s, %s)",
                    host,
                    ", ".join(new),
                    owner,
                    ", ".join(old),
                    old_owner,
                )
        if written:
            log.info("wrote %s: %d entries (%s)", self.hosts_path, len(new_plan.entries), mode)
        self._lines = lines

    async def rejections(self, rejections: tuple[Rejection, ...], snapshots: list[Snapshot]) -> None:
        """Log, count and post an Event for each refusal that is new since the last sync."""
        self.metrics.set_rejected(r.reason for r in rejections)
        current = {(r.owner, r.host, r.reason, r.message) for r in rejections}
        by_uid = {s.uid: s for s in snapshots}
        for rejection in rejections:
            key = (rejection.owner, rejection.host, rejection.reason, rejection.message)
            if key in self._reported:
                continue
            log.warning(
                "refused %s from %s: %s [%s]",
                rejection.host,
                rejection.owner,
                rejection.message,
                rejection.reason,
            )
            self.metrics.rejections.labels(rejection.reason).inc()
            snap = by_uid.get(rejection.uid)
            if self.post_event is not None and snap is not None:
                await self.post_event(snap, rejection)
        self._reported = current  # a refusal that goes away and comes back is reported again

    def warn_about_mdns(self, result_plan: Plan) -> None:
        if sys.platform != "darwin" or self._mdns_warned:
            return
        local = sorted({e.hostname for e in result_plan.entries if e.hostname.endswith(".local")})
        if local:
            self._mdns_warned = True
            log.warning(
                "macOS resolves .local names through mDNS first, which can add seconds per lookup "
                "(%s...): prefer another suffix, e.g. .test or .localhost",
                local[0],
            )

    def stale_file(self) -> None:
        """The write went to an inode the host no longer has at that path (a replaced bind-mounted file)."""
        self.metrics.stale_file.inc()
        if not self._stale_reported:
            self._stale_reported = True
            log.error(
                "%s was replaced on the host (our view is an orphaned inode, st_nlink=0): entries "
                "no longer reach the host; restart the pod or re-create the kind cluster",
                self.hosts_path,
            )

    def initial_sync(self, result_plan: Plan, objects: int, written: bool) -> None:
        log.info(
            "initial sync complete: %d entries from %d objects (%s)",
            len(result_plan.entries),
            objects,
            "written" if written else "file already up to date",
        )
