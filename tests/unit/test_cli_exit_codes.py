"""Exit codes of the real command line: 2 for what the command line must change, 1 for a failure at run time.

A full or a read-only file system is the machine's state, not a bad command line: `--cleanup` (and the start
of the controller) exits 1 there, with one line, leaving every byte. A bad namespace name is refused with
`--cleanup` as without it, like every other value `--cleanup` is given. Real tmpfs mounts (root only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.config import ENV_PREFIX, env_name
from controller.engine.block import DEFAULT_MARKER, splice
from controller.engine.entries import Entry
from tests.unit.engine.test_hostsfile_full_disk import FS_SIZE, MANY, USER_AFTER, fill, sh, tmpfs
from tests.unit.test_cli import USER_LINES, assert_usage_error, restore_logging  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_cluster_env")

PREFIX = "k8s-hosts-controller: error: "
WITH_BLOCK = splice(USER_LINES, [Entry("app.local", "10.0.0.1", "ns/app")], DEFAULT_MARKER)


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "KUBECONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "controller", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX) and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_cleanup_on_a_full_file_system_exits_1_a_directory_still_2(tmp_path: Path) -> None:
    with tmpfs(tmp_path, f"size={FS_SIZE}") as mount:
        path = mount / "hosts"
        original = splice(USER_LINES, MANY, DEFAULT_MARKER) + USER_AFTER
        path.write_bytes(original)
        fill(mount / "filler")
        # rename mode: the replacement file does not fit (in place, a shrink needs no space and succeeds)
        proc = run_cli("--cleanup", "--write-mode", "rename", "--hosts-file", str(path))
        one_line(proc, 1, str(path), "ENOSPC")
        assert path.read_bytes() == original
        # The same kind of engine error for a path that is no hosts file: the command line must change.
        one_line(run_cli("--cleanup", "--hosts-file", str(mount)), 2, "is a directory")


@pytest.fixture
def read_only_fs(tmp_path: Path):
    """A real tmpfs holding a hosts file with our block, then remounted read-only."""
    with tmpfs(tmp_path, "size=1m") as mount:
        (mount / "hosts").write_bytes(WITH_BLOCK)
        proc = sh("mount", "-o", "remount,ro", str(mount))
        if proc.returncode:
            pytest.skip(f"cannot remount the tmpfs read-only: {proc.stderr.strip()}")
        yield mount / "hosts"


@pytest.mark.parametrize("mode", ["auto", "rename", "inplace"])
def test_cleanup_on_a_read_only_file_system_exits_1(read_only_fs: Path, mode: str) -> None:
    proc = run_cli("--cleanup", "--write-mode", mode, "--hosts-file", str(read_only_fs))
    one_line(proc, 1, str(read_only_fs), "read-only file system")
    assert read_only_fs.read_bytes() == WITH_BLOCK


def test_the_controller_on_a_read_only_file_system_exits_1_before_it_starts(read_only_fs: Path) -> None:
    proc = run_cli("--namespaces", "a", "--hosts-file", str(read_only_fs), "--metrics-bind-address", "0")
    one_line(proc, 1, "read-only file system")
    assert "starting" not in proc.stderr
    assert read_only_fs.read_bytes() == WITH_BLOCK


@pytest.mark.parametrize("namespaces", ["a,../../etc", "UPPER", "a_b"])
def test_cleanup_refuses_a_bad_namespace_as_the_controller_does(capsys, tmp_path, namespaces) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_bytes(WITH_BLOCK)
    without = assert_usage_error(capsys, [f"--namespaces={namespaces}", "--hosts-file", str(hosts)])
    line = assert_usage_error(capsys, ["--cleanup", f"--namespaces={namespaces}", "--hosts-file", str(hosts)])
    assert line == without and "not a valid namespace name" in line
    assert hosts.read_bytes() == WITH_BLOCK  # refused before anything was removed
    # What to watch still does not matter to --cleanup: no namespaces, or both scopes, are fine.
    assert (
        run_cli("--cleanup", "--namespaces", "a", "--all-namespaces", "--hosts-file", str(hosts)).returncode
        == 0
    )
    assert hosts.read_bytes() == USER_LINES


def test_cleanup_refuses_a_bad_namespace_from_the_environment(capsys, monkeypatch, tmp_path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_bytes(WITH_BLOCK)
    monkeypatch.setenv(env_name("--namespaces"), "ok,Bad")
    line = assert_usage_error(capsys, ["--cleanup", "--hosts-file", str(hosts)], env_name("--namespaces"))
    assert "'Bad' is not a valid namespace name" in line
    assert hosts.read_bytes() == WITH_BLOCK
