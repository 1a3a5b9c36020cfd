"""What the controller says about each sync: change log lines, refusals (log line, metric, Warning Event),
the macOS .local warning, the stale-file report and the initial-sync line.

It remembers what it already said, so each change is reported once (docs/architecture.md, decision 5), not on
every sync, and it starts from the block found in the file, so a restart on an up-to-date file says nothing
and one after a crash names the stale entries it removes. Refusals are summarised per object and reason:
one log line and one Event notice (controller/sync/events.py), whatever the number of names. Values from the
cluster are printed through logs.printable() (no forged log lines). The writer (controller/sync/writer.py)
calls it after each sync. No kopf here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping

from controller.engine.entries import Entry
from controller.engine.printable import printable
from controller.model import Rejection, Snapshot
from controller.serve.metrics import Metrics
from controller.sync.events import Notice, names
from controller.sync.plan import Plan

log = logging.getLogger("k8s-hosts-controller")

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


class Reporter:
    def __init__(self, metrics: Metrics, hosts_path: str, post_event: EventSink | None = None) -> None:
        self.metrics = metrics
        self.hosts_path = hosts_path
        self.post_event = post_event
        self._lines: Lines | None = None  # what is on disk; None until the first sync
        self._reported: set[tuple[str, str, str, str]] = set()
        self._groups: dict[tuple[str, str, str], frozenset[tuple[str, str]]] = {}
        self._stale_reported = False
        self._pending: frozenset[str] = frozenset()  # LB hostnames whose pending lookup was reported
        self._mdns_warned = False
        self._notes: frozenset[str] = frozenset()

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
