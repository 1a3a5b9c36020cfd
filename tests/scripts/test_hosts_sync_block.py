"""scripts/hosts-sync.sh reads the block only through the controller (`status --json`), never with a parser
of its own: a user's comment that names the marker is not a block, an indented marker line is one, and a
marker with quotes, commas, `=` or a backslash is matched as it is. Host-mode cases need no cluster (`stop`
without a running controller only looks at the file); the cluster-mode `stop` runs the real helm against the
test API server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from controller.engine.block import splice
from controller.engine.entries import Entry
from controller.engine.record import ClusterRecord
from testkit.controlplane import bin_dir
from testkit.tools import find_tool

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "hosts-sync.sh"
CONTROLLER = find_tool("k8s-hosts-controller")
USER_FILE = (
    b"127.0.0.1 localhost\n"
    b"# the controller writes #### BEGIN TYK-K8S-HOSTS #### ... below; do not edit it\n"
    b"  #### BEGIN TYK-K8S-HOSTS #### is the marker  \n"
)


def script(tmp_path: Path, hosts: Path, verb: str, **extra_env: str) -> subprocess.CompletedProcess:
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
        **extra_env,
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


# A marker the controller takes (printable, no '#'), with what a hand-made parser gets wrong: awk -v turns
# the backslash sequence into a tab, a shell word would split at the space or the quotes.
ODD_MARKER = 'MY\\tBLOCK "x",y=z'
ENTRY = [Entry("a.local", "10.0.0.1", "ns/a")]
# name: (file, marker, entries in the block as the controller counts them; 0: no block)
FILES = {
    "comment naming the marker": (USER_FILE, "TYK-K8S-HOSTS", 0),
    "indented marker lines": (
        b"127.0.0.1 localhost\n  #### BEGIN TYK-K8S-HOSTS ####\t\n10.0.0.1 a.local  # ns/a\n"
        b"\t#### END TYK-K8S-HOSTS ####\n",
        "TYK-K8S-HOSTS",
        1,
    ),
    "odd marker": (splice(USER_FILE, ENTRY, ODD_MARKER), ODD_MARKER, 1),
    "CR LF file": (splice(USER_FILE.replace(b"\n", b"\r\n"), ENTRY, "TYK-K8S-HOSTS"), "TYK-K8S-HOSTS", 1),
}


def controller_entries(hosts: Path, marker: str) -> int:
    out = subprocess.run(
        [CONTROLLER, "status", "--json", "--no-check", "--hosts-file", str(hosts), "--marker", marker],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(out.stdout)
    return answer["entries"] if answer["block"] else 0


@pytest.mark.parametrize("case", FILES)
def test_the_entry_count_is_the_controllers(tmp_path, case):
    content, marker, expected = FILES[case]
    hosts = tmp_path / "hosts"
    hosts.write_bytes(content)
    assert controller_entries(hosts, marker) == expected
    result = script(tmp_path, hosts, "status", HOSTS_SYNC_MARKER=marker)
    assert result.returncode == 3, result.stderr  # not running
    assert f"); {expected} entries in the block of {hosts}" in result.stdout, result.stdout + result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("case", FILES)
def test_cluster_stop_sees_the_block_the_controller_sees(tmp_path, kubeconfig, case):
    """Cluster mode without the controller installed (the usual case: the chart runs it), helm answering that
    the release is not installed: `stop` waits only for a block the controller would see. A comment naming
    the marker must not hold it for its whole timeout (a day here); a real block is reported after it."""
    content, marker, expected = FILES[case]
    hosts = tmp_path / "hosts"
    hosts.write_bytes(content)
    result = script(
        tmp_path,
        hosts,
        "stop",
        PATH=f"{bin_dir()}:{os.environ['PATH']}",
        HOSTS_SYNC_MODE="cluster",
        HOSTS_SYNC_BIN="no-such-k8s-hosts-controller",
        HOSTS_SYNC_KUBECONFIG=str(kubeconfig),
        HOSTS_SYNC_MARKER=marker,
        HOSTS_SYNC_RELEASE=f"absent-{uuid.uuid4().hex[:6]}",
        HOSTS_SYNC_TIMEOUT="24h" if expected == 0 else "1s",
    )
    assert "is not installed in" in result.stderr, result.stderr
    if expected == 0:
        assert result.returncode == 0, result.stderr
        assert "uninstalled; no" in result.stderr
    else:
        assert result.returncode == 1, result.stderr
        assert "block is still in" in result.stderr and "cleanup" in result.stderr
    assert hosts.read_bytes() == content
