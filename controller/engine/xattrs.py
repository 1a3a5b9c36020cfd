"""Extended attributes of the hosts file, carried over to its replacement in rename mode
(docs/architecture.md, decision 4).

`user.*` attributes, POSIX ACLs (`system.posix_acl_access`) and security labels (`security.selinux`) are
extended attributes: a file created to replace the hosts file has none of them, or the directory's defaults.
copy() gives the replacement exactly the original's set, or says which one it cannot; the caller then writes
in place instead, which keeps them all. Stdlib only; a no-op where the platform has no xattr calls.
"""

from __future__ import annotations

import errno
import os

# The file system has no extended attributes at all: nothing to copy.
_UNSUPPORTED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP})
_GONE = frozenset({getattr(errno, "ENODATA", errno.ENOENT), getattr(errno, "ENOATTR", errno.ENOENT)})


class CannotCopy(Exception):
    """An attribute the replacement cannot be given; ``str()`` names it and the reason, in one line."""


def _names(fd: int) -> list[str]:
    try:
        return os.listxattr(fd)
    except OSError as err:
        if err.errno in _UNSUPPORTED:
            return []
        raise CannotCopy(f"cannot list the extended attributes: {err.strerror}") from None


def copy(src_fd: int, dst_fd: int) -> None:
    """Give ``dst_fd`` the extended attributes of ``src_fd``, and only those; raise CannotCopy if impossible.

    Attributes in the `security.` namespace that only the new file has are left alone: a security module
    labels every new file, and the original's label, when it has one, is copied over it.
    """
    if not hasattr(os, "listxattr"):
        return
    wanted = _names(src_fd)
    present = set(_names(dst_fd))
    for name in wanted:
        try:
            value = os.getxattr(src_fd, name)
        except OSError as err:
            if err.errno in _GONE:
                continue  # removed meanwhile
            raise CannotCopy(f"cannot read the extended attribute {name}: {err.strerror}") from None
        if name in present and _value(dst_fd, name) == value:
            continue  # already right (e.g. the same label): setting it could need a permission we lack
        try:
            os.setxattr(dst_fd, name, value)
        except OSError as err:
            raise CannotCopy(f"cannot copy the extended attribute {name}: {err.strerror}") from None
    for name in sorted(present - set(wanted)):
        if name.startswith("security."):
            continue
        try:
            os.removexattr(dst_fd, name)  # e.g. an ACL inherited from the directory's default ACL
        except OSError as err:
            if err.errno not in _GONE:
                raise CannotCopy(f"cannot remove the extended attribute {name}: {err.strerror}") from None


def _value(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError:
        return None
