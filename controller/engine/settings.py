"""The hosts file's settings (``config.file``): which file, which block, how it is written, how big it may be.
Their defaults are written here once; the flags that set them are controller/config.py's table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.engine.block import DEFAULT_MARKER
from controller.engine.hostsfile import DEFAULT_MAX_SIZE, HostsFile, WriteMode


@dataclass(frozen=True)
class FileSettings:
    path: Path = Path("/etc/hosts")
    marker: str = DEFAULT_MARKER
    write_mode: str = WriteMode.AUTO.value
    max_size: int = DEFAULT_MAX_SIZE  # bytes; a bigger file is refused, never loaded

    def open(self) -> HostsFile:
        return HostsFile(self.path, self.marker, self.write_mode, self.max_size)
