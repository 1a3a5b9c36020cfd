"""The hosts file engine against hostile paths: planted symlinks, FIFOs, devices, immutable files.

Symlinks are followed only where the kernel's fs.protected_symlinks rule would follow them: a symlink in a
world-writable sticky directory (/tmp) only when it belongs to us or to the directory's owner. Anything but a
regular file is refused with one line, without ever blocking in open().
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.engine.block import DEFAULT_MARKER, render_block, splice
from controller.engine.entries import Entry
from controller.engine.errors import HostsFileError
from controller.engine.hostsfile import HostsFile

E1 = Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress")
BASE = b"127.0.0.1\tlocalhost\n"
SECRET = b"root only\n"
OTHER_UID = 4321

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create files owned by another user")


def calls(hosts: HostsFile) -> dict:
    return {
        "sync": lambda: hosts.sync([E1]),
        "cleanup": hosts.cleanup,
        "check_writable": hosts.check_writable,
        "read": hosts.read,
    }


def one_line(err: pytest.ExceptionInfo[HostsFileError], *fragments: str) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


@pytest.fixture
def sticky() -> Iterator[Path]:
    """A world-writable sticky directory like /tmp, owned by root (tmp_path's parents are 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="hosts-sticky-"))
    directory.chmod(0o1777)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------------------------------------ symlinks


@needs_root
@pytest.mark.parametrize("mode", ["auto", "rename", "inplace"])
def test_a_symlink_planted_by_another_user_in_a_sticky_directory_is_not_followed(
    sticky: Path, victim: Path, mode: str
) -> None:
    link = sticky / "hosts"
    link.symlink_to(victim)
    os.lchown(link, OTHER_UID, OTHER_UID)
    hosts = HostsFile(link, mode=mode)
    for name, call in calls(hosts).items():
        with pytest.raises(HostsFileError) as err:
            call()
        one_line(err, str(link), "protected_symlinks", "--hosts-file")
        assert victim.read_bytes() == SECRET, name
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert sorted(p.name for p in victim.parent.iterdir()) == ["secret"]


@needs_root
def test_a_planted_symlink_further_up_the_path_is_not_followed_either(sticky: Path, victim: Path) -> None:
    (sticky / "dir").symlink_to(victim.parent)
    os.lchown(sticky / "dir", OTHER_UID, OTHER_UID)
    with pytest.raises(HostsFileError) as err:
        HostsFile(sticky / "dir" / "secret").sync([E1])
    one_line(err, "protected_symlinks")
    assert victim.read_bytes() == SECRET


@needs_root
def test_symlinks_the_kernel_would_follow_are_followed(sticky: Path, tmp_path: Path) -> None:
    real = tmp_path / "hosts"
    real.write_bytes(BASE)
    # Ours (the follower's own symlink) in a sticky directory.
    own = sticky / "own"
    own.symlink_to(real)
    HostsFile(own).sync([E1])
    assert real.read_bytes() == splice(BASE, [E1], DEFAULT_MARKER) and own.is_symlink()
    # Another user's symlink in a sticky directory that user owns.
    theirs = sticky / "theirs"
    theirs.mkdir()
    os.chown(theirs, OTHER_UID, OTHER_UID)
    theirs.chmod(0o1777)
    link = theirs / "hosts"
    link.symlink_to(real)
    os.lchown(link, OTHER_UID, OTHER_UID)
    HostsFile(link).cleanup()
    assert real.read_bytes() == BASE
    # Another user's symlink in a directory that is not world-writable (/etc/hosts -> /private/etc/hosts).
    plain = tmp_path / "etc"
    plain.mkdir()
    (plain / "hosts").symlink_to(real)
    os.lchown(plain / "hosts", OTHER_UID, OTHER_UID)
    HostsFile(plain / "hosts", mode="rename").sync([E1])
    assert real.read_bytes() == splice(BASE, [E1], DEFAULT_MARKER) and (plain / "hosts").is_symlink()


def test_a_symlink_loop_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for call in calls(HostsFile(tmp_path / "a")).values():
        with pytest.raises(HostsFileError) as err:
            call()
        one_line(err, str(tmp_path / "a"), "symbolic links")


def test_a_dangling_symlink_names_the_directory_it_points_into(tmp_path: Path) -> None:
    link = tmp_path / "hosts"
    link.symlink_to(tmp_path / "gone" / "hosts")
    for call in (lambda h: h.sync([E1]), lambda h: h.check_writable()):
        with pytest.raises(HostsFileError) as err:
            call(HostsFile(link))
        one_line(err, str(link), f"directory {tmp_path / 'gone'} does not exist")


def test_a_dangling_symlink_into_an_existing_directory_creates_the_target(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "hosts"
    link.symlink_to(tmp_path / "real" / "hosts")
    HostsFile(link).sync([E1])
    assert link.is_symlink()
    assert (tmp_path / "real" / "hosts").read_bytes() == render_block([E1], DEFAULT_MARKER)


# ------------------------------------------------------------------------------------------ not regular files


@pytest.mark.timeout(60)  # before the fix: open() of a FIFO blocked forever
@pytest.mark.parametrize("mode", ["auto", "rename", "inplace"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, mode: str) -> None:
    fifo = tmp_path / "hosts"
    os.mkfifo(fifo)
    for call in calls(HostsFile(fifo, mode=mode)).values():
        with pytest.raises(HostsFileError) as err:
            call()
        one_line(err, str(fifo), "FIFO", "not a regular file", "--hosts-file")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@needs_root
@pytest.mark.parametrize("mode", ["auto", "rename", "inplace"])
def test_a_character_device_is_refused_and_never_replaced(tmp_path: Path, mode: str) -> None:
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    for call in calls(HostsFile(device, mode=mode)).values():
        with pytest.raises(HostsFileError) as err:
            call()
        one_line(err, str(device), "character device", "not a regular file")
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_a_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "hosts").symlink_to(tmp_path / "fifo")
    with pytest.raises(HostsFileError) as err:
        HostsFile(tmp_path / "hosts").sync([E1])
    one_line(err, "FIFO")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "hosts"))
        with pytest.raises(HostsFileError) as err:
            HostsFile(tmp_path / "hosts").read()
        one_line(err, "is a socket, not a regular file")


# ------------------------------------------------------------------------------------------------ messages


def chattr(path: Path, flag: str) -> bool:
    chattr_bin = shutil.which("chattr")
    if chattr_bin is None:
        return False
    return subprocess.run([chattr_bin, flag, str(path)], capture_output=True, check=False).returncode == 0


@needs_root
@pytest.mark.parametrize("mode", ["auto", "rename", "inplace"])
def test_an_immutable_file_tells_root_about_the_attribute_not_sudo(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    if not chattr(path, "+i"):
        pytest.skip("chattr +i is not supported here")
    try:
        for name, call in calls(HostsFile(path, mode=mode)).items():
            if name == "read":
                assert call() == BASE
                continue
            if name == "check_writable" and mode == "rename":
                call()  # rename needs only the directory; the attribute shows when renaming (sync)
                continue
            if name == "cleanup" and mode != "inplace":
                assert not call().changed  # no block: nothing to write, the read-only descriptor is enough
                continue
            with pytest.raises(HostsFileError) as err:
                call()
            text = one_line(err, str(path), "immutable")
            assert "sudo" not in text and "use write mode inplace or auto" not in text, text
    finally:
        chattr(path, "-i")
    assert path.read_bytes() == BASE
