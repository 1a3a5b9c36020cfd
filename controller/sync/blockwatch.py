"""Notice promptly when the hosts file no longer holds our block, say so on /readyz, and have it repaired.

Another program (`k8s-hosts-controller --cleanup`, an editor, a configuration tool) may remove or change the
block while the controller runs. The file is watched by polling its stat every POLL_INTERVAL seconds
(device, inode, size, modification and change times): one system call, nothing read while the file does not
change. Only a changed file is read and compared with what the writer last wrote; one without our block (or
with another one) makes /readyz 503 with the reason, and the writer is woken for a normal sync (debounced,
under the file's lock) once the file has been quiet for a moment. The block must come back before /readyz is
200 again. A program that keeps removing the block is not fought in a loop: each time it is removed again
soon after a repair, the quiet time asked for grows (REPAIR_DELAYS).

Why polling and not inotify (docs/architecture.md, decision 12): a bind-mounted file changed on the host
side sends no inotify event through Docker Desktop's or a VM's file sharing, nor over NFS, and inotify
instances are a per-user limit shared with the host; a stat a second costs nothing measurable.
No kopf here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence

from controller.engine.block import parse, splice
from controller.engine.entries import Entry
from controller.engine.errors import HostsFileError
from controller.engine.hostsfile import HostsFile
from controller.serve.health import Health, Reason
from controller.serve.metrics import Metrics
from controller.sync.writer import Writer

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # seconds between two looks at the file's stat
# How long the file must be quiet before a repair: the first time, then when the block is removed again
# within REPEAT_WINDOW seconds of its last repair (another program keeps removing it: do not fight it).
REPAIR_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
REPEAT_WINDOW = 60.0
MISSING = "the block is missing from the file, repairing"
CHANGED = "the block in the file was changed by another program, repairing"

Signature = tuple[int, ...] | None


def signature(path: str) -> Signature:
    """What changes whenever the file does: another inode (a rename), its size, its times; None if missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        return (-1, err.errno or 0)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def damage(hosts: HostsFile, written: Sequence[Entry]) -> str | None:
    """Why the file does not hold the block as ``written`` (MISSING or CHANGED); None when it does, or when it
    cannot be read (the writer reports that)."""
    try:
        content = hosts.read()
    except HostsFileError:
        return None
    if splice(content, written, hosts.marker, hosts.record) == content:
        return None
    return CHANGED if parse(content, hosts.marker).has_block else MISSING


class BlockWatch:
    """Watches ``hosts`` while ``writer`` keeps it; run() until cancelled."""

    def __init__(
        self, hosts: HostsFile, writer: Writer, health: Health, metrics: Metrics, poll: float = POLL_INTERVAL
    ) -> None:
        self.hosts = hosts
        self.writer = writer
        self.health = health
        self.metrics = metrics
        self.poll = poll
        self.damage: str | None = None  # why the file lacks our block, while it does
        self._repair_at = 0.0  # when the file will have been quiet long enough for the repair
        self._asked = False  # the writer was woken for this repair
        self._streak = 0  # removals soon after the previous repair, in a row
        self._repaired_at = -REPEAT_WINDOW  # when the block was last seen back after a repair
        self._delay = REPAIR_DELAYS[0]  # the quiet time this episode asks for

    async def run(self) -> None:
        failing = False
        while True:
            try:
                await self._watch()
            except Exception as err:  # never the end of the watch: the periodic resync still runs, too
                if not failing:
                    log.error("watching %s failed: %r; trying again", self.hosts.path, err)
                failing = True
                await asyncio.sleep(self.poll)

    async def _watch(self) -> None:
        seen: Signature | bool = False  # False: not looked at yet
        checked_syncs = -1
        while True:
            await asyncio.sleep(self.poll)
            writer = self.writer
            if not self.health.ready or writer.syncing or writer.written is None:
                continue  # the writer is writing, or has not written yet: nothing to compare with
            current = await asyncio.to_thread(signature, self.hosts.path)
            if current != seen or (self.damage is not None and writer.syncs != checked_syncs):
                seen, checked_syncs = current, writer.syncs
                found = await asyncio.to_thread(damage, self.hosts, writer.written)
                if writer.syncing or writer.syncs != checked_syncs:
                    seen = False  # our own sync came in between: look again
                    continue
                self._found(found)
            if self.damage is not None and not self._asked and time.monotonic() >= self._repair_at:
                self._repair()

    def _found(self, found: str | None) -> None:
        now = time.monotonic()
        if found is None:
            if self.damage is not None:
                log.info("the %s block is back in %s", self.hosts.marker, self.hosts.path)
                self.health.clear(Reason.BLOCK)
                self._repaired_at = now
            self.damage = None
            return
        if self.damage is None:  # a new episode
            self._streak = self._streak + 1 if now - self._repaired_at < REPEAT_WINDOW else 0
            delay = REPAIR_DELAYS[min(self._streak, len(REPAIR_DELAYS) - 1)]
            again = (
                f"; {self._streak + 1} times in a row now, each within {REPEAT_WINDOW:.0f}s of a repair: "
                "another program keeps removing or changing it, so each repair waits longer"
                if self._streak
                else ""
            )
            log.warning("%s: %s in %gs, once the file is quiet%s", self.hosts.path, found, delay, again)
            self._delay = delay
        self.damage = found
        self.health.set(Reason.BLOCK, found)
        # Every change of the file postpones the repair: another program may be in the middle of its edit.
        self._repair_at = now + self._delay
        self._asked = False

    def _repair(self) -> None:
        self._asked = True
        if self.health.blocked_by(Reason.WRITE):
            return  # the writer is failing and retries on its own schedule: its next success repairs it
        self.metrics.block_repairs.inc()
        self.writer.wake()
