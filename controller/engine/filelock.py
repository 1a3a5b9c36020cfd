"""The hosts file's lock: an exclusive flock, waited for a bounded time (docs/architecture.md, decision 4).

The hosts file is world-readable, so any local user can open it and hold flock(LOCK_EX) on it. A blocking
flock would then stop every update, the shutdown cleanup and SIGTERM for as long as that user likes. The
lock is therefore polled (LOCK_NB, a few ms apart at first) until a deadline; past it, LockTimeout says who
holds the lock (from /proc/locks, where the kernel shows it) and nothing is written: writing without the
lock could overwrite what a cooperating editor is writing under it. The caller reports and retries.
Pure library: stdlib only.
"""

from __future__ import annotations

import fcntl
import os
import time

from controller.engine.errors import LockTimeout
from controller.engine.printable import printable

# How long a sync or a cleanup waits for the lock. A cooperating writer holds it for milliseconds (one write
# and its read-back); a holder past this bound is reported and the attempt fails (the writer retries).
LOCK_TIMEOUT = 5.0
_FIRST_POLL, _MAX_POLL = 0.001, 0.05  # seconds between attempts: quick for a short wait, cheap for a long one


def lock_exclusive(fd: int, path: str, timeout: float = LOCK_TIMEOUT, deadline: float | None = None) -> None:
    """flock(LOCK_EX) on ``fd`` within ``timeout`` seconds (or by ``deadline``, a time.monotonic() value
    shared by several attempts), or raise LockTimeout naming the holder."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    pause = _FIRST_POLL
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            st = os.fstat(fd)
            raise LockTimeout(
                f"{path}: another process has held its lock for more than {timeout:g}s "
                f"({holder(st.st_dev, st.st_ino)}); nothing was written"
            )
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _MAX_POLL)


def holder(dev: int, ino: int) -> str:
    """Who holds a flock on (dev, ino), as far as /proc/locks and /proc/PID tell: "held by pid 123 'vim'
    (uid 1000)"; a process of another pid namespace (a pod's view of a host process) shows no pid."""
    wanted = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    try:
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return "holder unknown"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; waiters are listed as "1: -> FLOCK ..."
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[5] != wanted:
            continue
        pid = fields[4]
        if not pid.isdigit() or pid == "0":
            return "held by a process outside this pid namespace"
        return f"held by pid {pid}{_describe(pid)}"
    return "holder unknown"


def _describe(pid: str) -> str:
    """The " 'comm' (uid N)" of a process, best effort; comm is chosen by the process's owner: escaped."""
    try:
        with open(f"/proc/{pid}/comm") as comm:
            name = comm.read().strip()
        with open(f"/proc/{pid}/status") as status:
            uid = next((line.split()[1] for line in status if line.startswith("Uid:")), "?")
    except (OSError, IndexError):
        return ""
    return f" '{printable(name, 40)}' (uid {uid})"
