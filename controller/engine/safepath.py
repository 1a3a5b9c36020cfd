"""Where the hosts file really is, and opening it safely (docs/architecture.md, decision 4).

A symlinked path (/etc/hosts -> /private/etc/hosts on macOS) is written through, but only when the kernel's
fs.protected_symlinks rule would follow that symlink too: run as root with --hosts-file in /tmp, a symlink
planted by another user must not point our writes at any file. The resolved path is opened with
O_NOFOLLOW (a symlink planted after the check is refused) and O_NONBLOCK (a FIFO never blocks open()), and
anything but a regular file is refused with one line. Stdlib only.
"""

from __future__ import annotations

import errno
import os
import stat

from controller.engine.errors import HostsFileError


def describe(path: str, err: OSError, target: str | None = None) -> str:
    """One line naming the file and what to do about the error (``target``: where a symlink led)."""
    code = err.errno
    if code in (errno.EACCES, errno.EPERM):
        if os.geteuid() == 0:  # sudo cannot help root: an attribute or the mount refuses
            return (
                f"{path}: permission denied even for root (an immutable or append-only file? lsattr shows "
                "it, chattr -i clears it; on macOS chflags nouchg); or pass --hosts-file"
            )
        return f"{path}: permission denied; run with sudo -E, or pass --hosts-file with a file you can write"
    if code == errno.EISDIR:
        return f"{path} is a directory; pass --hosts-file with the path of a hosts file"
    if code == errno.EROFS:
        return f"{path} is on a read-only file system; mount it read-write, or pass --hosts-file"
    if code in (errno.ENOENT, errno.ENOTDIR):
        via = f" (a symlink to {target})" if target and target != os.path.abspath(path) else ""
        parent = os.path.dirname(target or path) or "."
        return f"{path}{via}: directory {parent} does not exist; create it, or pass --hosts-file"
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}
        name = errno.errorcode[code]
        return f"{path}: {what.get(code, 'file too large')} ({name}); free some space on its file system"
    if code == errno.ELOOP:
        return f"{path}: too many levels of symbolic links (a loop?); pass --hosts-file with the real path"
    reason = (err.strerror or str(err)).replace("\n", " ")
    return f"{path}: {reason}; check the file and its directory, or pass --hosts-file"


_FILE_TYPES = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
MAX_SYMLINKS = 40  # as the kernel's path walk


def not_regular(path: str, mode: int) -> HostsFileError:
    what = _FILE_TYPES.get(stat.S_IFMT(mode), "a special file")
    return HostsFileError(
        f"{path} is {what}, not a regular file; pass --hosts-file with the path of a hosts file"
    )


def may_follow(link: str, link_st: os.stat_result, directory: str) -> str | None:
    """Why the kernel's fs.protected_symlinks rule would refuse to follow ``link``; None if it would not.

    A symlink in a sticky world-writable directory (/tmp) is followed only by its owner or when it belongs
    to the directory's owner: otherwise anyone could point root's writes at any file.
    """
    dir_st = os.stat(directory)
    sticky_and_open = dir_st.st_mode & stat.S_ISVTX and dir_st.st_mode & stat.S_IWOTH
    if not sticky_and_open or link_st.st_uid in (os.geteuid(), dir_st.st_uid):
        return None
    return (
        f"refusing to follow the symlink {link}: it belongs to uid {link_st.st_uid}, neither you nor the "
        f"owner of the world-writable sticky directory {directory} (the kernel's protected_symlinks rule)"
    )


def resolve(path: str) -> str:
    """The absolute path ``path`` names, with every symlink resolved the way the kernel may follow it.

    Like os.path.realpath, but a symlink the protected_symlinks rule forbids, a loop, or anything but a
    regular file at the end raise HostsFileError; a missing last part (or directory) is returned as is.
    The result is then opened with O_NOFOLLOW, so a symlink planted after this check is refused too.
    """
    pending = os.path.abspath(path).split(os.sep)[1:]
    done = os.sep
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            done = os.path.dirname(done)
            continue
        candidate = os.path.join(done, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            return os.path.join(candidate, *pending)
        except OSError as err:
            raise HostsFileError(describe(path, err, candidate)) from None
        if not stat.S_ISLNK(st.st_mode):
            if not pending and not stat.S_ISREG(st.st_mode):
                raise not_regular(path, st.st_mode)
            done = candidate
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            raise HostsFileError(describe(path, OSError(errno.ELOOP, "too many symbolic links")))
        refusal = may_follow(candidate, st, done)
        if refusal:
            raise HostsFileError(f"{path}: {refusal}; pass --hosts-file with the real path of the hosts file")
        link = os.readlink(candidate)
        if os.path.isabs(link):
            done = os.sep
        pending = link.split(os.sep) + pending
    return done


def open_regular(path: str, target: str, flags: int, mode: int = 0o644) -> int:
    """Open ``target`` (resolved) without following a symlink and without blocking; regular files only."""
    fd = os.open(target, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, st.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd
