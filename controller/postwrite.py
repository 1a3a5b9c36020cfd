"""--post-write-command: a shell command run after each write (e.g. a DNS cache flush on macOS).

Bounded by --post-write-timeout, whatever the command does: its output is read through a pipe of our own
until the timeout, so a detached child that keeps the pipe open cannot hold the writer; on timeout, and when
the controller shuts down meanwhile, the command's whole process group is killed. Only the last
OUTPUT_TAIL bytes of its output are kept, and they are logged quoted (no raw control characters or NUL
bytes in the log). Failures are logged, never raised: the hosts file is already written. No kopf here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

log = logging.getLogger("k8s-hosts-controller")

OUTPUT_TAIL = 2048  # bytes of output kept (the end says why a command failed)
LOGGED_TAIL = 500  # characters of it in the log line


class _Tail(asyncio.Protocol):
    """Reads a pipe to its end, keeping only the last OUTPUT_TAIL bytes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data
        del self.data[:-OUTPUT_TAIL]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.eof.done():
            self.eof.set_result(None)


def safe_tail(data: bytes) -> str:
    """The end of the output as one quoted line: newlines, NUL and other control characters escaped."""
    text = data.decode(errors="replace").strip()[-LOGGED_TAIL:]
    return repr(text)


async def run_post_write_command(command: str, timeout: float) -> None:
    """Run ``command`` through the shell and log how it went; never raises (except on cancellation)."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    try:
        # A session of its own, so a timeout kills the shell and everything it started in its group.
        proc = await asyncio.create_subprocess_shell(
            command,
            stdout=write_fd,
            stderr=write_fd,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as err:
        os.close(read_fd)
        log.error("post-write command %r could not start: %s", command, err)
        return
    finally:
        os.close(write_fd)
    transport, tail = await loop.connect_read_pipe(_Tail, os.fdopen(read_fd, "rb", buffering=0))
    try:
        async with asyncio.timeout(timeout):
            await proc.wait()
            await tail.eof  # the output ends when every process holding the pipe has closed it
    except TimeoutError:
        exited = proc.returncode is not None
        _kill_group(proc.pid)
        await proc.wait()
        if exited:
            log.error(
                "post-write command %r exited, but a process it started kept its output open; stopped "
                "reading after %gs: %s",
                command,
                timeout,
                safe_tail(tail.data),
            )
        else:
            log.error(
                "post-write command %r killed after %gs (its process group): %s",
                command,
                timeout,
                safe_tail(tail.data),
            )
        return
    except BaseException:  # cancelled: the controller is shutting down; leave nothing running
        _kill_group(proc.pid)
        raise
    finally:
        transport.close()
    if proc.returncode:
        output = safe_tail(tail.data)
        log.error("post-write command %r failed with exit code %d: %s", command, proc.returncode, output)
    else:
        log.info("post-write command %r done", command)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
