"""What the controller says about each sync: its metrics and readiness (the only place a sync updates them),
change log lines, refusals (log line, metric, Warning Event), the macOS .local warning, the stale-file report
and the initial-sync line.

It remembers what it already said, so each change is reported once (docs/architecture.md, decision 5), not on
every sync, and it starts from the block found in the file, so a restart on an up-to-date file says nothing
and one after a crash names the stale entries it removes. Refusals are summarised per object and reason:
one log line and one Event notice (controller/sync/events.py), whatever the number of names. Values from the
cluster are printed through logs.printable() (no forged log lines). The writer (controller/sync/writer.py)
calls it at the start of each sync (:meth:`Reporter.watching`), then with its outcome (:meth:`Reporter.synced`
or :meth:`Reporter.failed`). While the last attempt to write the file failed, /readyz says so and why
(docs/architecture.md, decision 12). No kopf here.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from controller.engine.entries import Entry
from controller.engine.errors import HostsFileError, LockTimeout
from controller.engine.hostsfile import WriteResult
from controller.engine.printable import printable
from controller.model import Rejection, Snapshot
from controller.serve.health import Health, Reason
from controller.serve.metrics import Metrics
from controller.sync.events import Notice, names
from controller.sync.plan import Plan
from controller.sync.resolve import Answers
from controller.sync.share import Bounds

log = logging.getLogger(__name__)

# Takes a Warning Event about refused hostnames of one object, to be posted later (controller/sync/events.py);
# must not block.
EventSink = Callable[[Notice], None]
Lines = dict[str, tuple[tuple[str, ...], str]]  # host -> (addresses, owner)


ADDRESSES_SHOWN = 16  # per change line: a block found on disk may hold any number (keeps log lines short)


def _joined(addrs: tuple[str, ...]) -> str:
    shown = ", ".join(addrs[:ADDRESSES_SHOWN])
    return f"{shown} and {len(addrs) - ADDRESSES_SHOWN:,} more" if len(addrs) > ADDRESSES_SHOWN else shown


def _lines(entries: Iterable[Entry]) -> Lines:
    lines: Lines = {}
    for entry in entries:
        addrs, _ = lines.get(entry.hostname, ((), entry.owner))
        lines[entry.hostname] = ((*addrs, entry.address), entry.owner)
    return lines


@dataclass(frozen=True)
class Synced:
    """One successful sync, as the writer saw it (times: time.monotonic())."""

    plan: Plan
    result: WriteResult
    on_disk: tuple[Entry, ...]  # the block's entries as the file held them before the write
    snapshots: list[Snapshot]
    resolved: Answers
    started: float
    first_change: float | None  # the first change it writes, None when it writes none (a resync)


class Reporter:
    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        hosts_path: str,
        post_event: EventSink | None = None,
        *,
        kinds: Iterable[str] = ("Ingress",),
        bounds: Bounds | None = None,
        lookup_timeout: float = 0.0,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.hosts_path = hosts_path
        self.post_event = post_event
        self.kinds = tuple(kinds)  # watched kinds: each has a watched_objects sample, 0 when none is seen
        self.lookup_timeout = lookup_timeout  # for the pending-lookup warning
        bounds = bounds or Bounds()
        metrics.block_max_lines.set(bounds.lines)
        metrics.block_max_bytes.set(bounds.bytes)
        self._lines: Lines | None = None  # what is on disk; None until the first sync
        self._reported: set[tuple[str, str, str, str]] = set()
        self._groups: dict[tuple[str, str, str], frozenset[tuple[str, str]]] = {}
        self._stale_reported = False
        self._pending: frozenset[str] = frozenset()  # LB hostnames whose pending lookup was reported
        self._mdns_warned = False
        self._notes: frozenset[str] = frozenset()
        self._no_address_said = False

    def watching(self, snapshots: Iterable[Snapshot]) -> None:
        """The objects a sync starts from, per kind."""
        counts = Counter(s.kind for s in snapshots)
        for kind in {*self.kinds, *counts}:
            self.metrics.watched_objects.labels(kind).set(counts.get(kind, 0))

    def failed(self, err: HostsFileError) -> None:
        """The write failed: not ready while the file cannot be written, the cluster is watched but the names
        do not reach the file (docs/architecture.md, decision 12)."""
        self.metrics.writes.labels("error").inc()
        self.metrics.write_failing.set(1)
        if isinstance(err, LockTimeout):
            self.metrics.lock_timeouts.inc()
        self.health.set(Reason.WRITE, f"the last write of the hosts file failed: {err}")

    def synced(self, sync: Synced) -> None:
        """A sync succeeded: its metrics, its log lines and Events, and readiness after the first one."""
        result_plan, written = sync.plan, sync.result.changed
        self.metrics.write_failing.set(0)
        self.health.clear(Reason.WRITE)
        now = time.monotonic()
        self.metrics.writes.labels("written" if written else "unchanged").inc()
        self.metrics.sync_duration.observe(now - sync.started)
        if sync.first_change is not None:
            self.metrics.event_to_file.observe(now - sync.first_change)
        self.metrics.managed_entries.set(len(result_plan.entries))
        self.metrics.block_bytes.set(result_plan.size)
        self.metrics.last_sync.set(time.time())
        self.changes(result_plan, written, sync.result.mode, sync.on_disk)
        self.lookups_pending(sync.resolved.pending, sync.resolved, self.lookup_timeout)
        self.warn_about_mdns(result_plan)
        self.no_addresses(sync.snapshots)
        self.rejections(result_plan.rejections, sync.snapshots)  # Events are queued, not posted
        self.notes(result_plan.notes)
        if sync.result.stale:
            self.stale_file()
        if not self.health.ready:
            self.health.ready = True
            self.metrics.ready.set(1)
            self.initial_sync(result_plan, len(sync.snapshots), written)

    def changes(self, new_plan: Plan, written: bool, mode: str | None, on_disk: Iterable[Entry] = ()) -> None:
        """One line per added, removed or updated hostname, and one per write. ``on_disk``: the entries of
        the block as the first sync found it (a previous run's), the starting point of the comparison."""
        first = self._lines is None
        before = _lines(on_disk) if first else self._lines
        lines = _lines(new_plan.entries)
        for host in sorted(lines.keys() - before.keys()):
            addrs, owner = lines[host]
            log.info("added %s -> %s (%s)", host, _joined(addrs), owner)
        for host in sorted(before.keys() - lines.keys()):
            addrs, owner = before[host]
            if first:
                log.info("removed stale %s (was %s, %s; left by an earlier run)", host, _joined(addrs), owner)
            else:
                log.info("removed %s (was %s, %s)", host, _joined(addrs), owner)
        for host in sorted(lines.keys() & before.keys()):
            if lines[host] != before[host]:
                (old, old_owner), (new, owner) = before[host], lines[host]
                if owner == old_owner:
                    log.info("updated %s -> %s (was %s; %s)", host, _joined(new), _joined(old), owner)
                else:
                    log.info(
                        "updated %s -> %s (%s; was %s, %s)",
                        host,
                        _joined(new),
                        owner,
                        _joined(old),
                        old_owner,
                    )
        if written:
            log.info("wrote %s: %d entries (%s)", self.hosts_path, len(new_plan.entries), mode)
        self._lines = lines

    def notes(self, notes: Iterable[str]) -> None:
        """Each plan note (a name that several Gateways serve) once, when it first appears."""
        current = frozenset(notes)
        for note in sorted(current - self._notes):
            log.info("%s", printable(note))
        self._notes = current

    def rejections(self, rejections: tuple[Rejection, ...], snapshots: list[Snapshot]) -> None:
        """For each object and reason whose refusals changed since the last sync: one log line and one
        Event notice summarising its names; the metrics count every refused name."""
        self.metrics.set_rejected(r.reason for r in rejections)
        current = {(r.owner, r.host, r.reason, r.message) for r in rejections}
        for key in current - self._reported:
            self.metrics.rejections.labels(key[2]).inc()
        self._reported = current  # a refusal that goes away and comes back is reported again
        groups: dict[tuple[str, str, str], list[Rejection]] = {}
        for rejection in rejections:
            groups.setdefault((rejection.owner, rejection.uid, rejection.reason), []).append(rejection)
        by_uid = {s.uid: s for s in snapshots}
        reported = {}
        for key, group in groups.items():
            refused = frozenset((r.host, r.message) for r in group)
            reported[key] = refused
            if self._groups.get(key) == refused:
                continue
            owner, uid, reason = key
            hosts = tuple(r.host for r in group)
            if len(group) == 1:
                log.warning(
                    "refused %s from %s: %s [%s]",
                    printable(hosts[0]),
                    owner,
                    printable(group[0].message),
                    reason,
                )
            else:
                log.warning(
                    "refused %d hosts from %s [%s]: %s; first: %s",
                    len(group),
                    owner,
                    reason,
                    names(hosts),
                    printable(group[0].message),
                )
            snap = by_uid.get(uid)
            if self.post_event is not None and snap is not None:
                self.post_event(Notice(snap, reason, hosts, group[0].message))
        self._groups = reported

    def lookups_pending(
        self, pending: frozenset[str], answers: Mapping[str, tuple[str, ...]], timeout: float
    ) -> None:
        """Once per episode, each load-balancer hostname whose lookup has not answered in time (its pending
        set); ``answers`` holds what is used meanwhile: the last known address, or nothing."""
        self.metrics.lookups_pending.set(len(pending))
        for name in sorted(pending - self._pending):
            kept = answers.get(name, ())
            log.warning(
                "lookup of load-balancer hostname %s still pending (no answer within %gs): %s",
                printable(name, 80),
                timeout,
                f"keeping its last known address {_joined(kept)}"
                if kept
                else "its objects' names wait for it (no address known yet)",
            )
        self._pending = pending

    def warn_about_mdns(self, result_plan: Plan) -> None:
        if sys.platform != "darwin" or self._mdns_warned:
            return
        local = sorted({e.hostname for e in result_plan.entries if e.hostname.endswith(".local")})
        if local:
            self._mdns_warned = True
            log.warning(
                "macOS resolves .local names through mDNS first, which can add seconds per lookup "
                "(%s...): prefer another suffix, e.g. .test",
                local[0],
            )

    def no_addresses(self, snapshots: list[Snapshot]) -> None:
        """Once per run: objects with names exist but not one has an address. On a bare cluster (no load
        balancer, no Ingress controller) nothing ever fills status.loadBalancer, and an empty block says
        nothing about why."""
        if self._no_address_said:
            return
        named = [s for s in snapshots if s.hosts and not s.ignored]
        if named and not any(s.has_address or s.target for s in named):
            self._no_address_said = True
            log.info(
                "%d objects have hostnames but none has a load-balancer address yet (e.g. %s): the "
                "cluster needs a LoadBalancer implementation (e.g. MetalLB, cloud-provider-kind) and, for "
                "Ingresses, an Ingress controller that publishes one (scripts/create-cluster.sh builds a "
                "kind cluster with both)",
                len(named),
                printable(f"{named[0].kind} {named[0].owner}"),
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
