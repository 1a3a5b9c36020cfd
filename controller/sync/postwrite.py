"""--post-write-command: a shell command run after each write (e.g. a DNS cache flush on macOS).

Run off the write path (PostWriteCommand): the writer asks for a run and goes on with the next change; one
run at a time, and the writes made while one runs are followed by a single run after it (latest wins: the
command flushes a cache, once is enough for any number of writes). A slow command therefore delays only
itself, never the next write (docs/architecture.md, decision 2).

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
import subprocess
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

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
        # Started without an await: asyncio's create_subprocess_shell, cancelled while it starts the process
        # (a shutdown at that moment), can wait forever for the exit of a command that already ended.
        # A session of its own, so a timeout kills the shell and everything it started in its group.
        proc = subprocess.Popen(
            command,
            shell=True,
            stdout=write_fd,
            stderr=write_fd,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as err:
        os.close(read_fd)
        log.error("post-write command %r could not start: %s", command, err)
        return
    finally:
        os.close(write_fd)
    exited = _exit_of(proc, loop)
    output = os.fdopen(read_fd, "rb", buffering=0)
    transport: asyncio.BaseTransport | None = None
    try:
        transport, tail = await loop.connect_read_pipe(_Tail, output)
        async with asyncio.timeout(timeout):
            await asyncio.shield(exited)
            await tail.eof  # the output ends when every process holding the pipe has closed it
    except TimeoutError:
        done = exited.done()
        _kill_group(proc.pid)
        await exited
        if done:
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
        if transport is not None:
            transport.close()
        else:
            output.close()
    if exited.result():
        log.error(
            "post-write command %r failed with exit code %d: %s",
            command,
            exited.result(),
            safe_tail(tail.data),
        )
    else:
        log.info("post-write command %r done", command)


def _exit_of(proc: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> asyncio.Future[int]:
    """A future of the process's exit code, waited for in a thread of its own (one command at a time)."""
    future: asyncio.Future[int] = loop.create_future()

    def settle(code: int) -> None:
        if not future.done():
            future.set_result(code)

    def wait() -> None:
        code = proc.wait()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for it any more
            loop.call_soon_threadsafe(settle, code)

    threading.Thread(target=wait, name="post-write wait", daemon=True).start()
    return future


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass(frozen=True)
class PostWriteSettings:
    """``config.postwrite``: the command (None: none) and the bound of one run."""

    command: str | None = None
    timeout: float = 10


class PostWriteCommand:
    """Runs the command in the background after writes: never two at once, latest wins (see the top)."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        self.runs = 0  # started so far (for tests and logs)
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        """The file was written: run the command now, or once more after the current run ends."""
        if self._task is not None and not self._task.done():
            self._pending = True
            return
        self._task = asyncio.create_task(self._run(), name="post-write command")

    async def _run(self) -> None:
        while True:
            self._pending = False
            self.runs += 1
            await run_post_write_command(self.command, self.timeout)
            if not self._pending:
                return

    async def finish(self) -> None:
        """Wait for the current run and the one it owes (--once: the command of its write still runs)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Shutting down: kill a running command (its process group) and forget the owed run."""
        self._pending = False
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
