"""The writer's settings in one frozen value, handed over whole by controller/runner.py. The defaults of the
flags that set them are written here once; controller/config.py takes them from this class."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.sync.plan import Bounds, Filters


@dataclass(frozen=True)
class WriterOptions:
    """The settings the writer uses; their defaults are the flags' (controller/config.py reads them)."""

    sync_delay: float = 0.1
    sync_max_delay: float = 1.0
    resync_interval: float = 60  # re-read the file and re-resolve LB hostnames; 0: never
    filters: Filters = field(default_factory=Filters)
    once: bool = False  # stop after the first successful sync
    dry_run: bool = False  # print the block and the diff instead of writing, then stop
    post_write_command: str | None = None  # run through the shell after each write (e.g. a DNS cache flush)
    post_write_timeout: float = 10
    kinds: tuple[str, ...] = ("Ingress",)  # watched kinds, for the watched_objects metric
    bounds: Bounds = field(default_factory=Bounds)  # the block's total size (--max-block-lines/-bytes)
