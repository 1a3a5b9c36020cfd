"""Command-line tools the tests run, found where the running interpreter's environment installs scripts, then
on PATH: `python -m pytest` works from any environment that has the test extra, not only the checkout's."""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import Iterable
from pathlib import Path


def find_tool(name: str, first: Iterable[Path] = ()) -> str | None:
    """The executable ``name`` in ``first`` (directories to prefer), this environment's scripts, or PATH."""
    for directory in (*first, Path(sysconfig.get_path("scripts"))):
        candidate = directory / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)
