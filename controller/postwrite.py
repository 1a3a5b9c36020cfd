"""--post-write-command: a shell command run after each write (e.g. a DNS cache flush on macOS).

Bounded by --post-write-timeout; on timeout the whole process group is killed. Failures are logged, never
raised: the hosts file is already written. No kopf here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

log = logging.getLogger("k8s-hosts-controller")


async def run_post_write_command(command: str, timeout: float) -> None:
    """Run ``command`` through the shell and log how it went; never raises."""
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
        async with asyncio.timeout(timeout):
            output, _ = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        log.error("post-write command %r killed after %.0fs", command, timeout)
        return
    text = output.decode(errors="replace").strip()[-500:]
    if proc.returncode:
        log.error("post-write command %r failed with exit code %d: %s", command, proc.returncode, text)
    else:
        log.info("post-write command %r done", command)
