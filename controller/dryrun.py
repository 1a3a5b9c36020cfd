"""--dry-run: print the block and a diff of the hosts file instead of writing it."""

from __future__ import annotations

import difflib
import sys
from typing import TextIO

from controller.block import render_block
from controller.hostsfile import HostsFile
from controller.logs import printable
from controller.plan import Plan


def print_dry_run(hosts: HostsFile, result_plan: Plan, out: TextIO | None = None) -> None:
    """The block, a unified diff of the file (or "already up to date"), and one comment line per refusal."""
    current, new = hosts.preview(result_plan.entries)
    out = out or sys.stdout
    out.write(render_block(result_plan.entries, hosts.marker).decode(errors="replace"))
    diff = difflib.unified_diff(
        current.decode(errors="replace").splitlines(keepends=True),
        new.decode(errors="replace").splitlines(keepends=True),
        fromfile=str(hosts.path),
        tofile=f"{hosts.path} (after sync)",
    )
    text = "".join(diff)
    out.write(text if text else f"# {hosts.path} is already up to date\n")
    for r in result_plan.rejections:  # escaped: a newline in a name must not start a line of its own
        out.write(f"# refused {printable(r.host)} from {r.owner}: {printable(r.message)} [{r.reason}]\n")
    out.flush()
