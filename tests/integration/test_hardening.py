"""The controller as a real process against the real API server, given hostile files and signals.

--once and --dry-run give up on a file error after a bounded retry (exit 1, one line); SIGHUP stops the
controller like SIGTERM; port 0 serves metrics on a free port and says which; the post-write command does
not outlive the controller.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import eventually, has_block, managed

pytestmark = pytest.mark.integration

HANG_GUARD = 120  # seconds: only to turn a hang (the bug) into a failure; never a speed assertion


def finished(ctl) -> int:
    try:
        return ctl.proc.wait(HANG_GUARD)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after {HANG_GUARD}s (a hang):\n{ctl.tail(30)}") from None


def gave_up_with_one_line(ctl, *fragments: str) -> None:
    assert finished(ctl) == 1, ctl.tail(30)
    log = ctl.log()
    assert "Traceback" not in log, log
    [line] = [line for line in log.splitlines() if "giving up" in line]
    for fragment in fragments:
        assert fragment in line, line


def test_dry_run_on_a_directory_fails_after_a_bounded_retry(start_controller, namespace, tmp_path):
    directory = tmp_path / "hosts.d"
    directory.mkdir()
    ctl = start_controller(
        "--namespaces", namespace, "--hosts-file", str(directory), "--dry-run", ready=False
    )
    gave_up_with_one_line(ctl, str(directory), "is a directory")
    assert list(directory.iterdir()) == []


@pytest.mark.parametrize("what", ["symlink loop", "FIFO"])
def test_dry_run_on_a_bad_path_fails_after_a_bounded_retry(start_controller, namespace, tmp_path, what):
    link = tmp_path / "hosts"
    if what == "FIFO":
        os.mkfifo(link)
    else:
        link.symlink_to(tmp_path / "other")
        (tmp_path / "other").symlink_to(link)
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(link), "--dry-run", ready=False)
    gave_up_with_one_line(ctl, str(link), "FIFO" if what == "FIFO" else "symbolic links")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="chattr +i needs root")
def test_once_on_an_immutable_file_in_rename_mode_fails_with_the_reason(
    start_controller, ingresses, namespace, hosts_file
):
    original = hosts_file.read_bytes()
    ingresses.create(namespace, "app", ["app.local"], ips=["10.1.2.3"])
    if subprocess.run(["chattr", "+i", str(hosts_file)], check=False).returncode:
        pytest.skip("chattr +i is not supported on this file system")
    try:
        ctl = start_controller(
            "--namespaces", namespace, "--hosts-file", str(hosts_file), "--once", "--write-mode", "rename",
            ready=False,
        )  # fmt: skip
        gave_up_with_one_line(ctl, str(hosts_file), "immutable")
        assert "sudo" not in ctl.log()
    finally:
        subprocess.run(["chattr", "-i", str(hosts_file)], check=False)
    assert hosts_file.read_bytes() == original


def test_sighup_removes_the_block_like_sigterm(start_controller, ingresses, namespace, hosts_file):
    original = hosts_file.read_bytes()
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    ingresses.create(namespace, "app", ["app.local"], ips=["10.1.2.3"])
    eventually(lambda: has_block(hosts_file), what="the block")
    assert ctl.stop(signal.SIGHUP) == 0, ctl.tail(30)
    assert hosts_file.read_bytes() == original
    assert "SIGHUP received" in ctl.log()


def test_port_zero_serves_metrics_on_a_free_port_and_logs_it(start_controller, namespace, hosts_file):
    ctl = start_controller(
        "--namespaces", namespace, "--hosts-file", str(hosts_file), "--metrics-bind-address", "127.0.0.1:0",
        ready=False,
    )  # fmt: skip
    found: list[int] = []

    def port_logged() -> bool:
        match = re.search(r"serving /metrics, /healthz and /readyz on http://127\.0\.0\.1:(\d+)", ctl.log())
        if match:
            found.append(int(match.group(1)))
        return bool(match)

    eventually(port_logged, what="the metrics address in the log")
    assert found[0] != 0
    ctl.metrics_port = found[0]
    ctl.wait_ready()


def test_sigterm_kills_a_running_post_write_command(
    start_controller, ingresses, namespace, hosts_file, tmp_path
):
    original = hosts_file.read_bytes()
    pid_file = tmp_path / "post-write.pid"
    command = f"sh -c 'echo $$ > {pid_file}; exec sleep 300' & wait"
    ctl = start_controller(
        "--namespaces", namespace, "--hosts-file", str(hosts_file), "--post-write-command", command,
        "--post-write-timeout", "600",
    )  # fmt: skip
    ingresses.create(namespace, "app", ["app.local"], ips=["10.1.2.3"])
    eventually(lambda: managed(hosts_file) == {("app.local", "10.1.2.3")}, what="the line")
    eventually(lambda: pid_file.exists() and pid_file.read_text().strip() != "", what="the command to start")
    child = int(pid_file.read_text())
    try:
        assert ctl.stop(signal.SIGTERM) == 0, ctl.tail(30)
        eventually(lambda: not _alive(child), what="the post-write command to be killed")
        assert hosts_file.read_bytes() == original
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
