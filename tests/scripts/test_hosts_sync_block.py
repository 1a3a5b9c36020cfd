"""scripts/hosts-sync.sh asks the controller whether there is a block (`status`), instead of grepping for
the marker text: a user's comment that names the marker is not a block. No cluster needed: `stop` without a
running controller only looks at the file."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from controller.engine.block import splice
from controller.engine.entries import Entry
from controller.engine.record import ClusterRecord
from testkit.tools import find_tool

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "hosts-sync.sh"
CONTROLLER = find_tool("k8s-hosts-controller")
USER_FILE = (
    b"127.0.0.1 localhost\n"
    b"# the controller writes #### BEGIN TYK-K8S-HOSTS #### ... below; do not edit it\n"
    b"  #### BEGIN TYK-K8S-HOSTS #### is the marker  \n"
)


def script(tmp_path: Path, hosts: Path, verb: str) -> subprocess.CompletedProcess:
    if CONTROLLER is None:
        pytest.fail("k8s-hosts-controller not found: pip install -e .", pytrace=False)
    env = {
        **os.environ,
        "HOSTS_SYNC_BIN": CONTROLLER,
        "HOSTS_SYNC_HOSTS_FILE": str(hosts),
        "HOSTS_SYNC_PID_FILE": str(tmp_path / "controller.pid"),
        "HOSTS_SYNC_LOG_FILE": str(tmp_path / "controller.log"),
        "HOSTS_SYNC_SUDO": "never",
        "HOSTS_SYNC_TIMEOUT": "20s",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), verb],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_comment_naming_the_marker_is_no_block(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_bytes(USER_FILE)
    result = script(tmp_path, hosts, "stop")
    assert result.returncode == 0, result.stderr
    assert "removing the block" not in result.stderr  # nothing to remove: no --cleanup is run
    assert hosts.read_bytes() == USER_FILE

    # while a real block is found and removed
    hosts.write_bytes(splice(USER_FILE, [Entry("a.local", "10.0.0.1", "ns/a")], "TYK-K8S-HOSTS"))
    result = script(tmp_path, hosts, "stop")
    assert result.returncode == 0, result.stderr
    assert "removing the block" in result.stderr
    assert hosts.read_bytes() == USER_FILE


def test_status_names_a_stale_block(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    gone = f"https://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    hosts = tmp_path / "hosts"
    entries = [Entry("a.local", "10.0.0.1", "ns/a")]
    hosts.write_bytes(splice(USER_FILE, entries, "TYK-K8S-HOSTS", ClusterRecord("kind-gone", gone)))
    result = script(tmp_path, hosts, "status")
    assert result.returncode == 3  # not running
    assert "1 entries" in result.stdout and "STALE block" in result.stdout and "--cleanup" in result.stdout
