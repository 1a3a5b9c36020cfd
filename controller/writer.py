"""The single writer: coalesces bursts of changes into one plan, one render and at most one write.

Handlers only update the state and wake the writer (DESIGN.md, decision 2). The writer writes nothing before
the first complete listing of every watched scope, and the engine skips the write when the file already
holds the rendered content. No kopf here.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from controller.block import render_block
from controller.config import Config
from controller.entries import HostsFileError
from controller.hostsfile import HostsFile
from controller.metrics import Health, Metrics
from controller.model import Rejection, Snapshot
from controller.plan import Filters, Plan, plan
from controller.resolve import Resolver
from controller.state import ClusterState

log = logging.getLogger("k8s-hosts-controller")

EventSink = Callable[[Snapshot, Rejection], Awaitable[None]]
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class WriterOptions:
    """The settings the writer uses; the defaults are the command line's (controller/config.py)."""

    sync_delay: float = Config.sync_delay
    sync_max_delay: float = Config.sync_max_delay
    resync_interval: float = Config.resync_interval  # re-read the file and re-resolve LB hostnames; 0: never
    filters: Filters = field(default_factory=Filters)
    once: bool = False  # stop after the first successful sync
    dry_run: bool = False  # print the block and the diff instead of writing, then stop
    post_write_command: str | None = None  # run through the shell after each write (e.g. a DNS cache flush)
    post_write_timeout: float = Config.post_write_timeout
    kinds: tuple[str, ...] = ("Ingress",)  # watched kinds, for the watched_objects metric


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
        self.post_event = post_event
        self.done = asyncio.Event()  # set after the first sync in --once / --dry-run mode
        self._wake = asyncio.Event()
        self._failures = 0
        self._lines: dict[str, tuple[tuple[str, ...], str]] = {}  # host -> (addresses, owner) on disk
        self._reported: set[tuple[str, str, str, str]] = set()
        self._stale_reported = False
        self._mdns_warned = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self.done.is_set():
            await self._wait_for_work()
            if not self.state.listed:
                continue  # the listing signal wakes us again
            await self._coalesce()
            await self.sync()

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
            return RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1]
        timers = []
        if self.options.resync_interval > 0:
            timers.append(self.options.resync_interval)
        expiry = self.resolver.next_expiry
        if expiry is not None and any(s.lb_hostnames for s in self.state.snapshots()):
            timers.append(max(0.0, expiry - time.monotonic()))
        return min(timers, default=None)

    async def _coalesce(self) -> None:
        """Wait until no change came for sync_delay, or sync_max_delay has passed."""
        deadline = time.monotonic() + self.options.sync_max_delay
        while True:
            remaining = min(self.options.sync_delay, deadline - time.monotonic())
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            except TimeoutError:
                return
            self._wake.clear()

    # ---- one sync ----------------------------------------------------------------------------------

    async def sync(self) -> Plan | None:
        started = time.monotonic()
        first_change = self.state.take_first_change()
        snapshots = self.state.snapshots()
        counts = Counter(s.kind for s in snapshots)
        for kind in {*self.options.kinds, *counts}:
            self.metrics.watched_objects.labels(kind).set(counts.get(kind, 0))
        resolved = await self.resolver.resolve_all(n for s in snapshots for n in s.lb_hostnames)
        try:
            parsed = await asyncio.to_thread(self.hosts.parse)
            result_plan = plan(
                snapshots,
                defined_outside=parsed.outside_names,
                resolved=resolved,
                filters=self.options.filters,
            )
            if self.options.dry_run:
                self._print_dry_run(result_plan)
                self.done.set()
                return result_plan
            result = await asyncio.to_thread(self.hosts.sync, result_plan.entries)
        except HostsFileError as err:
            self._failures += 1
            self.metrics.writes.labels("error").inc()
            delay = RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1]
            log.error("sync failed: %s (retrying in %.0fs)", err, delay)
            if first_change is not None:  # keep measuring from the original change
                self.state.first_unsynced_change = first_change
            return None

        self._failures = 0
        now = time.monotonic()
        self.metrics.writes.labels("written" if result.changed else "unchanged").inc()
        self.metrics.sync_duration.observe(now - started)
        if first_change is not None:
            self.metrics.event_to_file.observe(now - first_change)
        self.metrics.managed_entries.set(len(result_plan.entries))
        self.metrics.last_sync.set(time.time())
        self._log_changes(result_plan, result.changed, result.mode)
        self._warn_about_mdns(result_plan)
        if result.changed and self.options.post_write_command:
            await self._run_post_write_command()
        await self._report_rejections(result_plan.rejections, snapshots)
        if result.stale:
            self.metrics.stale_file.inc()
            if not self._stale_reported:
                self._stale_reported = True
                log.error(
                    "%s was replaced on the host (our view is an orphaned inode, st_nlink=0): entries "
                    "no longer reach the host; restart the pod or re-create the kind cluster",
                    self.hosts.path,
                )
        if not self.health.ready:
            self.health.ready = True
            self.metrics.ready.set(1)
            log.info(
                "initial sync complete: %d entries from %d objects (%s)",
                len(result_plan.entries),
                len(snapshots),
                "written" if result.changed else "file already up to date",
            )
        if self.options.once:
            self.done.set()
        return result_plan

    def _log_changes(self, new_plan: Plan, written: bool, mode: str | None) -> None:
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
            log.info("wrote %s: %d entries (%s)", self.hosts.path, len(new_plan.entries), mode)
        self._lines = lines

    async def _report_rejections(self, rejections: tuple[Rejection, ...], snapshots: list[Snapshot]) -> None:
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

    def _warn_about_mdns(self, result_plan: Plan) -> None:
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

    async def _run_post_write_command(self) -> None:
        command = self.options.post_write_command or ""
        try:
            # A session of its own, so a timeout kills the shell and everything it started.
            proc = await asyncio.create_subprocess_shell(
                command,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as err:
            log.error("post-write command %r could not start: %s", command, err)
            return
        try:
            async with asyncio.timeout(self.options.post_write_timeout):
                output, _ = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            log.error("post-write command %r killed after %.0fs", command, self.options.post_write_timeout)
            return
        text = output.decode(errors="replace").strip()[-500:]
        if proc.returncode:
            log.error("post-write command %r failed with exit code %d: %s", command, proc.returncode, text)
        else:
            log.info("post-write command %r done", command)

    def _print_dry_run(self, result_plan: Plan) -> None:
        current, new = self.hosts.preview(result_plan.entries)
        out = sys.stdout
        out.write(render_block(result_plan.entries, self.hosts.marker).decode(errors="replace"))
        diff = difflib.unified_diff(
            current.decode(errors="replace").splitlines(keepends=True),
            new.decode(errors="replace").splitlines(keepends=True),
            fromfile=str(self.hosts.path),
            tofile=f"{self.hosts.path} (after sync)",
        )
        text = "".join(diff)
        out.write(text if text else f"# {self.hosts.path} is already up to date\n")
        for r in result_plan.rejections:
            out.write(f"# refused {r.host} from {r.owner}: {r.message} [{r.reason}]\n")
        out.flush()
