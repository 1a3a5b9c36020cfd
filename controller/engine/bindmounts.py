"""Is the hosts file bind-mounted somewhere: a kind node's `extraMounts`, any container's `-v /etc/hosts:...`?

A bind mount of one file pins its inode, not its name: replacing the file by rename leaves every such mount on
the old inode, and from then on that container and this machine see two different files, with no error
anywhere. `auto` write mode asks this module before a rename and writes in place when the answer is yes.

How: every mount namespace's /proc/PID/mountinfo lists its mounts with the device and the path, inside that
device's file system, of what is mounted (the "root" field). The hosts file is bind-mounted somewhere when a
mount of the same device has the file's own path as its root. Stdlib only; processes whose mountinfo cannot
be read (another user's, without privileges) are skipped: the answer is then "not that we can see".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

PROC = "/proc"


@dataclass(frozen=True)
class Mount:
    """One line of a mountinfo file (proc(5)): what is mounted (device, root) and where (mount_point)."""

    device: str  # "major:minor"
    root: str  # the mounted path inside the device's file system
    mount_point: str


@dataclass(frozen=True)
class BindMount:
    """A mount of the hosts file itself, seen by process ``pid`` at ``mount_point``."""

    pid: int
    mount_point: str


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as \040, \011, \012, \134.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of one mountinfo file, in its order (a later mount hides an earlier one at the same place).
    Lines that do not have the documented shape are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 10 or "-" not in fields[6:] or ":" not in fields[2]:
            continue
        mounts.append(Mount(fields[2], _unescape(fields[3]), _unescape(fields[4])))
    return mounts


def _under(path: str, mount_point: str) -> str | None:
    """``path`` relative to ``mount_point`` ("" for the mount point itself), None when not under it."""
    if path == mount_point:
        return ""
    prefix = mount_point if mount_point.endswith("/") else mount_point + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def locate(path: str, mounts: Iterable[Mount]) -> tuple[str, str] | None:
    """(device, path inside the device's file system) of the absolute, symlink-free ``path``, from the mounts
    of the namespace that sees it; None when no mount holds it."""
    best: tuple[Mount, str] | None = None
    for mount in mounts:  # the deepest mount point wins; at equal depth the later mount (on top)
        rest = _under(path, mount.mount_point)
        if rest is not None and (best is None or len(mount.mount_point) >= len(best[0].mount_point)):
            best = (mount, rest)
    if best is None:
        return None
    mount, rest = best
    inside = os.path.normpath(os.path.join(mount.root, rest)) if rest else mount.root
    return mount.device, inside


def mounts_of(device: str, inside: str, mounts: Iterable[Mount]) -> list[Mount]:
    """The mounts whose source is exactly that file: the same device, its path as their root."""
    return [m for m in mounts if m.device == device and m.root == inside]


def find_bind_mounts(path: str | os.PathLike[str], proc: str = PROC) -> list[BindMount]:
    """The mounts of ``path`` (one file) in every mount namespace this process can read, its own included
    (a second mount of the file in the same namespace is stranded by a rename just as well); one per
    namespace and mount point. Empty when /proc is not there (not Linux)."""
    try:
        own = parse_mountinfo(_read(os.path.join(proc, "self", "mountinfo")))
    except OSError:
        return []
    where = locate(os.path.realpath(path), own)
    if where is None:
        return []
    device, inside = where
    found: list[BindMount] = []
    seen: set[str] = set()
    for pid in _pids(proc):
        try:
            namespace = os.readlink(os.path.join(proc, pid, "ns", "mnt"))
            if namespace in seen:
                continue
            text = _read(os.path.join(proc, pid, "mountinfo"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        seen.add(namespace)
        mounts = mounts_of(device, inside, parse_mountinfo(text))
        found.extend(BindMount(int(pid), m.mount_point) for m in mounts)
    return found


def _pids(proc: str) -> list[str]:
    try:
        return sorted((name for name in os.listdir(proc) if name.isdigit()), key=int)
    except OSError:
        return []


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()
