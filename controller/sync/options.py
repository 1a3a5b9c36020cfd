"""The sync path's settings groups (``config.sync``, ``config.mode``), handed over whole by
controller/runner.py. Their defaults are written here once; the flags that set them are controller/config.py's
table, which reads these defaults."""

from __future__ import annotations

from dataclasses import dataclass

from controller.sync.plan import Filters
from controller.sync.share import MAX_BLOCK_BYTES, MAX_BLOCK_LINES, Bounds


@dataclass(frozen=True)
class SyncSettings:
    """When the writer writes, and what the planner lets into the block."""

    delay: float = 0.1  # a burst is written once no change came for this long
    max_delay: float = 1.0  # the longest a stream of changes may hold a write back
    resync_interval: float = 60  # re-read the file and re-resolve LB hostnames; 0: never
    max_block_lines: int = MAX_BLOCK_LINES
    max_block_bytes: int = MAX_BLOCK_BYTES
    domain_filters: tuple[str, ...] = ()  # only hostnames under these suffixes
    ingress_classes: tuple[str, ...] = ()  # only Ingresses of these classes

    @property
    def bounds(self) -> Bounds:
        return Bounds(self.max_block_lines, self.max_block_bytes)

    @property
    def filters(self) -> Filters:
        return Filters.create(self.domain_filters, self.ingress_classes)


@dataclass(frozen=True)
class ModeSettings:
    """How a run ends: --cleanup, --once or --dry-run (one at most); whether a signal removes the block."""

    cleanup: bool = False  # remove the block and exit
    once: bool = False  # stop after the first successful sync
    dry_run: bool = False  # print the block and the diff instead of writing, then stop
    cleanup_on_exit: bool = True  # SIGTERM/SIGINT/SIGHUP remove the block

    @property
    def one_shot(self) -> bool:
        return self.once or self.dry_run
