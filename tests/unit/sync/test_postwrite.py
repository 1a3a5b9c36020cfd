"""--post-write-command against commands that misbehave: real shells, real processes, no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import pytest

from controller.sync.postwrite import LOGGED_TAIL, run_post_write_command

LOGGER = "controller"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"
    return True


async def eventually(condition, what: str) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def kill(pid_file: Path) -> None:
    if pid_file.exists() and pid_file.read_text().strip():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.timeout(120)  # before the fix: the writer waited for the detached child (300 s)
def test_the_timeout_holds_when_a_detached_child_keeps_the_output_open(tmp_path, caplog):
    pid_file = tmp_path / "detached.pid"
    # setsid: a session of its own, out of reach of the process-group kill; it inherits stdout.
    command = f"echo before; setsid sh -c 'echo $$ > {pid_file}; exec sleep 300' & echo started"
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            asyncio.run(run_post_write_command(command, 1.0))
        assert "kept its output open" in caplog.text, caplog.text
        assert "started" in caplog.text
    finally:
        kill(pid_file)


@pytest.mark.timeout(120)
def test_a_command_that_does_not_finish_is_killed_with_its_group(tmp_path, caplog):
    pid_file = tmp_path / "child.pid"
    command = f"sh -c 'echo $$ > {pid_file}; exec sleep 300' & wait"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(run_post_write_command(command, 1.0))
    assert "killed after 1s" in caplog.text, caplog.text
    assert not alive(int(pid_file.read_text()))


@pytest.mark.timeout(120)  # before the fix: the shell and its child were left running
def test_the_command_and_its_group_are_killed_when_the_controller_shuts_down(tmp_path):
    pid_file = tmp_path / "child.pid"
    command = f"sh -c 'echo $$ > {pid_file}; exec sleep 300' & echo $$ > {pid_file}.shell; wait"

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(run_post_write_command(command, 600))
        shell_file = Path(f"{pid_file}.shell")
        await eventually(lambda: pid_file.exists() and shell_file.exists(), "the command started")
        await eventually(lambda: pid_file.read_text().strip() and shell_file.read_text().strip(), "pids")
        task.cancel()  # what the runner does with the writer on SIGTERM
        with pytest.raises(asyncio.CancelledError):
            await task
        pids = int(pid_file.read_text()), int(shell_file.read_text())
        await eventually(lambda: not any(alive(p) for p in pids), "the command's processes are gone")
        return pids

    try:
        asyncio.run(scenario())
    finally:
        kill(pid_file)


def test_output_is_bounded_and_logged_without_control_characters(caplog):
    # 50 MB of NUL bytes, then a line with an escape sequence and a forged log line.
    command = "head -c 50000000 /dev/zero; printf 'end\\033[31m\\nFAKE: line\\n'; exit 4"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(run_post_write_command(command, 120))
    [record] = [r for r in caplog.records if "post-write" in r.getMessage()]
    message = record.getMessage()
    assert "exit code 4" in message and "FAKE: line" in message
    assert "\x00" not in message and "\x1b" not in message and "\n" not in message, message[-200:]
    assert len(message) < LOGGED_TAIL * 5


def test_a_command_that_succeeds_is_logged_done(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(run_post_write_command("true", 30))
    assert "post-write command 'true' done" in caplog.text
