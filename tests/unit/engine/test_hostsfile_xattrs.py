"""Rename mode keeps the hosts file's extended attributes: user.* attributes, POSIX ACLs, security labels.

Real files on tmp_path (skipped with the reason where the file system has no user xattrs or ACLs). A POSIX
ACL is set through its xattr (system.posix_acl_access) directly, so no setfacl is needed. An attribute the
writer cannot give the new file (a security.* one, for a writer without CAP_SYS_ADMIN, like an SELinux label
without the relabel permission) is reported; auto mode then writes in place, which keeps every attribute.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.engine.block import DEFAULT_MARKER, splice
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile
from tests.helpers import NOBODY, as_nobody

M = DEFAULT_MARKER
BASE = b"127.0.0.1\tlocalhost\n"
E1 = Entry("chart-dash.local", "172.18.0.200", "tyk/dashboard-ingress")
E2 = Entry("gw.local", "172.18.0.201", "tyk/gateway")

LABEL = "security.k8s-hosts-test"

# struct posix_acl_xattr_header / _entry (linux/posix_acl_xattr.h)
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
UNDEFINED_ID = 0xFFFFFFFF


def acl(*entries: tuple[int, int, int]) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, uid) for tag, perm, uid in entries)


# u::rw-, u:1234:rw-, g::r--, m::rw-, o::r--  (what `setfacl -m u:1234:rw` gives a 0644 file)
ACCESS_ACL = acl(
    (ACL_USER_OBJ, 6, UNDEFINED_ID),
    (ACL_USER, 6, 1234),
    (ACL_GROUP_OBJ, 4, UNDEFINED_ID),
    (ACL_MASK, 6, UNDEFINED_ID),
    (ACL_OTHER, 4, UNDEFINED_ID),
)


def xattrs(path: Path) -> dict[str, bytes]:
    return {name: os.getxattr(path, name) for name in sorted(os.listxattr(path))}


def set_or_skip(path: Path, name: str, value: bytes) -> None:
    try:
        os.setxattr(path, name, value)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            pytest.skip(f"the file system of {path.parent} does not take {name}: {err.strerror}")
        raise


@pytest.fixture
def hosts_path(tmp_path: Path) -> Path:
    if not hasattr(os, "setxattr"):
        pytest.skip("no extended attribute calls on this platform")
    path = tmp_path / "hosts"
    path.write_bytes(BASE)
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("mode", ["rename", "auto"])
def test_rename_keeps_a_user_xattr_and_a_posix_acl(hosts_path: Path, mode: str) -> None:
    set_or_skip(hosts_path, "user.origin", b"set by the user \x00\xff")
    set_or_skip(hosts_path, "system.posix_acl_access", ACCESS_ACL)
    before, mode_before, inode = xattrs(hosts_path), hosts_path.stat().st_mode, hosts_path.stat().st_ino
    assert set(before) == {"user.origin", "system.posix_acl_access"}

    result = HostsFile(hosts_path, mode=mode).sync([E1])
    assert result.mode == "rename" and hosts_path.stat().st_ino != inode  # really replaced
    assert hosts_path.read_bytes() == splice(BASE, [E1], M)
    assert xattrs(hosts_path) == before
    assert hosts_path.stat().st_mode == mode_before == stat.S_IFREG | 0o664  # the ACL mask shows as g+w
    assert sorted(p.name for p in hosts_path.parent.iterdir()) == ["hosts"]


def test_an_acl_inherited_from_the_directory_is_not_added(tmp_path: Path) -> None:
    directory = tmp_path / "etc"
    directory.mkdir()
    path = directory / "hosts"
    path.write_bytes(BASE)  # created before the directory got its default ACL: no ACL of its own
    path.chmod(0o644)
    default = acl((ACL_USER_OBJ, 7, UNDEFINED_ID), (ACL_USER, 7, 1234), (ACL_GROUP_OBJ, 5, UNDEFINED_ID),
                  (ACL_MASK, 7, UNDEFINED_ID), (ACL_OTHER, 5, UNDEFINED_ID))  # fmt: skip
    set_or_skip(directory, "system.posix_acl_default", default)
    HostsFile(path, mode="rename").sync([E1])
    assert "system.posix_acl_access" not in os.listxattr(path)  # user 1234 gained no access
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ------------------------------------------------------------------------------- an attribute we cannot copy


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user may write (tmp_path's parents are 0700)."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to set a security.* attribute and drop to uid {NOBODY}")
    directory = Path(tempfile.mkdtemp(prefix="hosts-xattr-"))
    directory.chmod(0o777)
    yield directory
    shutil.rmtree(directory)


@pytest.mark.parametrize("mode", ["rename", "auto"])
def test_an_attribute_that_cannot_be_copied_is_reported_and_auto_writes_in_place(
    shared_dir: Path, mode: str
) -> None:
    path = shared_dir / "hosts"
    path.write_bytes(BASE)
    os.chown(path, NOBODY, NOBODY)
    set_or_skip(path, "user.origin", b"kept")
    set_or_skip(path, LABEL, b"system_u:object_r:net_conf_t:s0")  # only CAP_SYS_ADMIN may set security.*
    before, inode = xattrs(path), path.stat().st_ino

    (outcome,) = as_nobody([lambda: HostsFile(path, mode=mode).sync([E1, E2])])
    assert path.stat().st_ino == inode and xattrs(path) == before  # never replaced: nothing lost
    if mode == "rename":
        assert "\n" not in outcome and str(path) in outcome, outcome
        assert f"cannot copy the extended attribute {LABEL}" in outcome, outcome
        assert "use write mode inplace or auto" in outcome, outcome
        assert path.read_bytes() == BASE
    else:
        assert outcome == "no error"
        assert path.read_bytes() == splice(BASE, [E1, E2], M)
    assert sorted(p.name for p in shared_dir.iterdir()) == ["hosts"]
