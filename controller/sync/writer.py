"""The single writer: a lone change written at once, a burst coalesced into a few plans, renders and writes.

Handlers only update the state and wake the writer (docs/architecture.md, decision 2). The writer writes
nothing before the first complete listing of every watched scope, and the engine skips the write when the
file already holds the rendered content. This module is the timing (debounce, retries, periodic re-reads)
and the sync itself; what is said about a sync is controller/sync/report.py, the post-write command
controller/sync/postwrite.py (run in the background: a slow one never holds back the next write), the
--dry-run output controller/sync/dryrun.py. While the last attempt to write the file failed, /readyz says so
and why (docs/architecture.md, decision 12). No kopf here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

from controller.engine.entries import Entry, HostsFileError
from controller.engine.filelock import LockTimeout
from controller.engine.hostsfile import HostsFile
from controller.serve.metrics import Health, Metrics
from controller.sync.dryrun import print_dry_run
from controller.sync.options import WriterOptions
from controller.sync.plan import Plan, lookups, plan
from controller.sync.postwrite import PostWriteCommand
from controller.sync.report import EventSink, Reporter
from controller.sync.resolve import Resolver
from controller.sync.state import ClusterState

log = logging.getLogger("k8s-hosts-controller")

RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# --once and --dry-run give up on a file error after this many attempts (about 3 s): a CI job must not hang.
ONE_SHOT_ATTEMPTS = 3
WRITE_BLOCKER = "hosts file"  # the key of a failing write in Health.blockers


class Writer:
    def __init__(
        self,
        state: ClusterState,
        hosts: HostsFile,
        *,
        options: WriterOptions,
        metrics: Metrics,
        health: Health,
        resolver: Resolver | None = None,
        post_event: EventSink | None = None,
    ) -> None:
        self.state = state
        self.hosts = hosts
        self.options = options
        self.metrics = metrics
        self.health = health
        self.resolver = resolver or Resolver()
        self.report = Reporter(metrics, hosts.path, post_event)
        metrics.block_max_lines.set(options.bounds.lines)
        metrics.block_max_bytes.set(options.bounds.bytes)
        self.done = asyncio.Event()  # set after the first sync in --once / --dry-run mode
        self.error: str | None = None  # why --once / --dry-run gave up (the exit code is 1 then)
        self.post_write = (
            PostWriteCommand(options.post_write_command, options.post_write_timeout)
            if options.post_write_command
            else None
        )
        self._wake = asyncio.Event()
        self._failures = 0
        # For controller/sync/blockwatch.py: what the last successful sync left in the block, and whether a
        # sync is under way (a look at the file that overlapped one is taken again).
        self.written: tuple[Entry, ...] | None = None
        self.syncing = False
        self.syncs = 0
        # Leading edge (docs/architecture.md, decision 2): while quiet, a change is written at once; a change
        # that arrives while a write is being made means a burst, which is coalesced until it is over.
        self._burst = False
        self._changed_while_writing = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self.done.is_set():
                await self._wait_for_work()
                if not self.state.listed:
                    continue  # the listing signal wakes us again
                if self._burst:
                    self._burst = await self._coalesce()
                self.syncing = True
                try:
                    await self.sync()
                finally:
                    self.syncing = False
                    self.syncs += 1
                if self._changed_while_writing:  # changes came in while we wrote: a burst has started
                    self._burst = True
            if self.post_write is not None:  # --once: its write's command still runs to its end
                await self.post_write.finish()
        finally:
            if self.post_write is not None:  # cancelled (shutdown): leave no command running
                await self.post_write.stop()

    async def _wait_for_work(self) -> None:
        timeout = self._next_timer()
        # A timeout means a retry, a re-resolve or a periodic re-read is due. asyncio.timeout(), unlike
        # wait_for(), spawns no task: kopf waits 5 s at shutdown for tasks spawned while it ran.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        self._wake.clear()

    def _next_timer(self) -> float | None:
        if not self.health.ready and not self._failures:
            return None
        if self._failures:
            return self._retry_delay()
        timers = []
        if self.options.resync_interval > 0:
            timers.append(self.options.resync_interval)
        expiry = self.resolver.next_expiry
        if expiry is not None and any(s.lb_hostnames for s in self.state.snapshots()):
            timers.append(max(0.0, expiry - time.monotonic()))
        return min(timers, default=None)

    def _retry_delay(self) -> float:
        return RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1]

    async def _coalesce(self) -> bool:
        """Wait until no change came for sync_delay (the burst is over: False), or until sync_max_delay has
        passed (a stream that is still going: True, so the next change is coalesced too)."""
        deadline = time.monotonic() + self.options.sync_max_delay
        while True:
            remaining = min(self.options.sync_delay, deadline - time.monotonic())
            if remaining <= 0:
                return True
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            except TimeoutError:
                return remaining < self.options.sync_delay
            self._wake.clear()

    # ---- one sync ----------------------------------------------------------------------------------

    async def sync(self) -> Plan | None:
        started = time.monotonic()
        self._changed_while_writing = False
        first_change = self.state.take_first_change()
        generation = self.state.generation
        snapshots = self.state.snapshots()
        counts = Counter(s.kind for s in snapshots)
        for kind in {*self.options.kinds, *counts}:
            self.metrics.watched_objects.labels(kind).set(counts.get(kind, 0))
        resolved = await self.resolver.resolve_all(lookups(snapshots))
        try:
            parsed = await asyncio.to_thread(self.hosts.parse)
            result_plan = plan(
                snapshots,
                defined_outside=parsed.outside_names,
                resolved=resolved,
                pending=resolved.pending,
                filters=self.options.filters,
                bounds=self.options.bounds,
            )
            if self.options.dry_run:
                print_dry_run(self.hosts, result_plan)
                self.done.set()
                return result_plan
            result = await asyncio.to_thread(self.hosts.sync, result_plan.entries)
            # Only changes up to the write count: what comes after it (while this sync is reported) is a
            # change of its own, the next write's leading edge.
            self._changed_while_writing = self.state.generation != generation
        except HostsFileError as err:
            self._failures += 1
            self.metrics.writes.labels("error").inc()
            self.metrics.write_failing.set(1)
            if isinstance(err, LockTimeout):
                self.metrics.lock_timeouts.inc()
            # Not ready while the file cannot be written: the cluster is watched, but the names do not
            # reach the file (docs/architecture.md, decision 12).
            self.health.blockers[WRITE_BLOCKER] = f"the last write of the hosts file failed: {err}"
            if (self.options.once or self.options.dry_run) and self._failures >= ONE_SHOT_ATTEMPTS:
                self.error = str(err)
                log.error("sync failed: %s (giving up after %d attempts)", err, self._failures)
                self.done.set()
                return None
            log.error("sync failed: %s (retrying in %.0fs)", err, self._retry_delay())
            if first_change is not None:  # keep measuring from the original change
                self.state.first_unsynced_change = first_change
            return None

        self._failures = 0
        self.written = tuple(result_plan.entries)
        self.metrics.write_failing.set(0)
        self.health.blockers.pop(WRITE_BLOCKER, None)
        now = time.monotonic()
        self.metrics.writes.labels("written" if result.changed else "unchanged").inc()
        self.metrics.sync_duration.observe(now - started)
        if first_change is not None:
            self.metrics.event_to_file.observe(now - first_change)
        self.metrics.managed_entries.set(len(result_plan.entries))
        self.metrics.block_bytes.set(result_plan.size)
        self.metrics.last_sync.set(time.time())
        self.report.changes(result_plan, result.changed, result.mode, parsed.managed)
        self.report.lookups_pending(resolved.pending, resolved, self.resolver.timeout)
        self.report.warn_about_mdns(result_plan)
        if result.changed and self.post_write is not None:
            self.post_write.request()  # in the background: the next change need not wait for it
        self.report.rejections(result_plan.rejections, snapshots)  # Events are queued, not posted
        self.report.notes(result_plan.notes)
        if result.stale:
            self.report.stale_file()
        if not self.health.ready:
            self.health.ready = True
            self.metrics.ready.set(1)
            self.report.initial_sync(result_plan, len(snapshots), result.changed)
        if self.options.once:
            self.done.set()
        return result_plan
