"""The hosts file engine on a full file system: a failed write leaves every byte as it was.

A small real tmpfs is mounted under tmp_path (root only; skipped with the reason elsewhere) and filled up,
then a sync that grows the block must fail with one line naming ENOSPC, leave the file byte for byte as it
was, and succeed once space is freed. Both write modes, with user lines after the block (the in-place write
used to overwrite them before running out of space) and with the block at the end.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controller.engine.block import DEFAULT_MARKER, remove_block, splice
from controller.engine.entries import Entry
from controller.engine.errors import HostsFileError
from controller.engine.hostsfile import HostsFile

M = DEFAULT_MARKER
BASE = b"127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\r\n# caf\xe9\n"
# Hundreds of user lines after the block, the last one without a newline.
USER_AFTER = b"".join(
    b"10.9.%d.%d user-%d.example   # the user's own line\n" % (i // 250, i % 250, i) for i in range(600)
)
USER_AFTER += b"10.8.8.8 last.example"
FEW = [Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress")]
# Grows the file by about 150 kB: far more than the slack of its last page.
MANY = [Entry(f"svc-{i}.apps.local", f"172.18.{i // 250}.{i % 250 + 1}", f"ns/ing-{i}") for i in range(3000)]
FS_SIZE = "1m"


def sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


@contextmanager
def tmpfs(tmp_path: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted under tmp_path with ``options``; always unmounted."""
    if os.geteuid() != 0:
        pytest.skip(f"mounting a small tmpfs needs root; running as uid {os.geteuid()}")
    mount = tmp_path / "fs"
    mount.mkdir()
    proc = sh("mount", "-t", "tmpfs", "-o", f"{options},mode=0755", "k8s-hosts-test", str(mount))
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount
    finally:
        if sh("umount", str(mount)).returncode:
            sh("umount", "-l", str(mount))


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path, f"size={FS_SIZE}") as mount:
        yield mount


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = b"\0" * 65536
        while True:
            try:
                if os.write(fd, chunk) < len(chunk):
                    chunk = chunk[:4096]
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
                if len(chunk) == 1:
                    return
                chunk = chunk[: max(1, len(chunk) // 16)]
    finally:
        os.close(fd)


def one_line(err: pytest.ExceptionInfo[HostsFileError], path: Path) -> str:
    text = str(err.value)
    assert "\n" not in text and str(path) in text, text
    assert "ENOSPC" in text and "no space left" in text, text
    return text


@pytest.mark.parametrize("mode", ["rename", "inplace", "auto"])
@pytest.mark.parametrize("where", ["user lines after the block", "block at the end"])
def test_a_full_disk_changes_no_byte_and_the_next_sync_succeeds(
    small_fs: Path, mode: str, where: str
) -> None:
    path = small_fs / "hosts"
    original = splice(BASE, FEW, M) + (USER_AFTER if where.startswith("user") else b"")
    path.write_bytes(original)
    hosts = HostsFile(path, mode=mode)
    fill(small_fs / "filler")

    with pytest.raises(HostsFileError) as err:
        hosts.sync(MANY)
    assert path.read_bytes() == original  # every byte, inside the block too
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler", "hosts"]  # no temp file left
    text = one_line(err, path)
    assert "the file was left as it was" in text, text

    (small_fs / "filler").unlink()
    assert hosts.sync(MANY).changed
    assert path.read_bytes() == splice(original, MANY, M)
    assert remove_block(path.read_bytes(), M) == remove_block(original, M)


@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_removing_the_block_on_a_full_disk(small_fs: Path, mode: str) -> None:
    path = small_fs / "hosts"
    original = splice(BASE, MANY, M) + USER_AFTER
    path.write_bytes(original)
    fill(small_fs / "filler")
    hosts = HostsFile(path, mode=mode)
    # rename: the replacement file does not fit; in place: the undo record that makes moving the user's
    # lines after the block safe against a kill does not fit (decision 4). Nothing has changed.
    with pytest.raises(HostsFileError) as err:
        hosts.cleanup()
    assert path.read_bytes() == original
    assert "the file was left as it was" in one_line(err, path)
    (small_fs / "filler").unlink()
    assert hosts.cleanup().changed
    assert path.read_bytes() == remove_block(original, M)


def test_removing_a_block_that_ends_the_file_in_place_needs_no_space(small_fs: Path) -> None:
    path = small_fs / "hosts"
    original = splice(BASE, MANY, M)
    path.write_bytes(original)
    fill(small_fs / "filler")
    assert HostsFile(path, mode="inplace").cleanup().changed  # one truncate
    assert path.read_bytes() == BASE


@pytest.mark.parametrize("mode", ["rename", "auto", "inplace"])
def test_no_free_inode_for_the_temp_file(tmp_path: Path, mode: str) -> None:
    with tmpfs(tmp_path, f"size={FS_SIZE},nr_inodes=2") as mount:  # the root directory and the hosts file
        path = mount / "hosts"
        original = splice(BASE, FEW, M) + USER_AFTER
        path.write_bytes(original)
        hosts = HostsFile(path, mode=mode)
        if mode == "inplace":  # needs no new file
            assert hosts.sync(MANY).changed and path.read_bytes() == splice(original, MANY, M)
            return
        with pytest.raises(HostsFileError) as err:
            hosts.sync(MANY)
        assert path.read_bytes() == original
        assert "the file was left as it was" in one_line(err, path)
