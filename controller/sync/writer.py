"""The single writer: a lone change written at once, a burst coalesced into a few plans, renders and writes.

Handlers only update the state and wake the writer (docs/architecture.md, decision 2). The writer writes
nothing before the first complete listing of every watched scope, and the engine skips the write when the
file already holds the rendered content. This module is the timing (debounce, retries, periodic re-reads)
and the sync itself; what is said about a sync is controller/sync/report.py, the post-write command
controller/sync/postwrite.py (run in the background: a slow one never holds back the next write), the
--dry-run output controller/sync/dryrun.py. It updates no metric and no readiness itself: the reporter does,
from each sync's outcome. No kopf here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from controller.engine.entries import Entry
from controller.engine.errors import HostsFileError
from controller.engine.hostsfile import HostsFile
from controller.serve.health import Health
from controller.serve.metrics import Metrics
from controller.sync.dryrun import print_dry_run
from controller.sync.options import ModeSettings, SyncSettings
from controller.sync.plan import Plan, lookups, plan
from controller.sync.postwrite import PostWriteCommand, PostWriteSettings
from controller.sync.report import EventSink, Reporter, Synced
from controller.sync.resolve import Resolver
from controller.sync.state import ClusterState

log = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# --once and --dry-run give up on a file error after this many attempts (about 3 s): a CI job must not hang.
ONE_SHOT_ATTEMPTS = 3


class Writer:
    def __init__(
        self,
        state: ClusterState,
        hosts: HostsFile,
        *,
        metrics: Metrics,
        health: Health,
        settings: SyncSettings | None = None,
        mode: ModeSettings | None = None,
        postwrite: PostWriteSettings | None = None,
        kinds: tuple[str, ...] = ("Ingress",),  # watched kinds, for the watched_objects metric
        resolver: Resolver | None = None,
        post_event: EventSink | None = None,
    ) -> None:
        self.state = state
        self.hosts = hosts
        self.settings = settings or SyncSettings()
        self.mode = mode or ModeSettings()
        self.filters, self.bounds = self.settings.filters, self.settings.bounds
        self.health = health  # read only: the reporter sets it
        self.resolver = resolver or Resolver()
        self.report = Reporter(
            metrics,
            health,
            hosts.path,
            post_event,
            kinds=kinds,
            bounds=self.bounds,
            lookup_timeout=self.resolver.timeout,
        )
        self.done = asyncio.Event()  # set after the first sync in --once / --dry-run mode
        self.error: str | None = None  # why --once / --dry-run gave up (the exit code is 1 then)
        postwrite = postwrite or PostWriteSettings()
        self.post_write = (
            PostWriteCommand(postwrite.command, postwrite.timeout) if postwrite.command else None
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
        if self.settings.resync_interval > 0:
            timers.append(self.settings.resync_interval)
        expiry = self.resolver.next_expiry
        if expiry is not None and any(s.lb_hostnames for s in self.state.snapshots()):
            timers.append(max(0.0, expiry - time.monotonic()))
        return min(timers, default=None)

    def _retry_delay(self) -> float:
        return RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1]

    async def _coalesce(self) -> bool:
        """Wait until no change came for the sync delay (the burst is over: False), or until the max delay has
        passed (a stream that is still going: True, so the next change is coalesced too)."""
        deadline = time.monotonic() + self.settings.max_delay
        while True:
            remaining = min(self.settings.delay, deadline - time.monotonic())
            if remaining <= 0:
                return True
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            except TimeoutError:
                return remaining < self.settings.delay
            self._wake.clear()

    # ---- one sync ----------------------------------------------------------------------------------

    async def sync(self) -> Plan | None:
        started = time.monotonic()
        self._changed_while_writing = False
        first_change = self.state.take_first_change()
        generation = self.state.generation
        snapshots = self.state.snapshots()
        self.report.watching(snapshots)
        resolved = await self.resolver.resolve_all(lookups(snapshots))
        try:
            parsed = await asyncio.to_thread(self.hosts.parse)
            result_plan = plan(
                snapshots,
                defined_outside=parsed.outside_names,
                resolved=resolved,
                pending=resolved.pending,
                filters=self.filters,
                bounds=self.bounds,
            )
            if self.mode.dry_run:
                print_dry_run(self.hosts, result_plan)
                self.done.set()
                return result_plan
            result = await asyncio.to_thread(self.hosts.sync, result_plan.entries)
            # Only changes up to the write count: what comes after it (while this sync is reported) is a
            # change of its own, the next write's leading edge.
            self._changed_while_writing = self.state.generation != generation
        except HostsFileError as err:
            self._failures += 1
            self.report.failed(err)
            if self.mode.one_shot and self._failures >= ONE_SHOT_ATTEMPTS:
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
        if result.changed and self.post_write is not None:
            self.post_write.request()  # in the background: the next change need not wait for it
        self.report.synced(
            Synced(result_plan, result, parsed.managed, snapshots, resolved, started, first_change)
        )
        if self.mode.once:
            self.done.set()
        return result_plan
