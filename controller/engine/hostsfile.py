"""The hosts file itself: read it, and write our block into it safely (docs/architecture.md, decision 4).

Writes are skipped when nothing changes, go through temp file + rename when possible (owner, mode and extended
attributes carried over) and in place otherwise (a bind-mounted single file, with an undo record that a
killed writer leaves for the next one: controller/engine/undo.py), are serialised by an advisory lock on the
file and verified by reading back; a write that fails (a full disk) leaves the file as it was. A file above
the size bound is neither read nor written.
What the block looks like and where it goes in the content is controller/engine/block.py's job; this module
only moves bytes between that and the disk.

One class with its helpers, above 350 lines on purpose: the lock, the rename path and the in-place path
share the locked descriptor and the "rename does not work here" state; each step's failures are spelled out.
Pure library: stdlib only, no kopf or kubernetes imports.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum

from controller.engine.bindmounts import BindMount, find_bind_mounts
from controller.engine.block import (
    DEFAULT_MARKER,
    ParsedHosts,
    only_block_from,
    parse,
    remove_block,
    splice,
    validate_marker,
)
from controller.engine.entries import Entry
from controller.engine.errors import HostsFileError, HostsFileTooLarge
from controller.engine.filelock import LOCK_TIMEOUT, lock_exclusive
from controller.engine.record import ClusterRecord
from controller.engine.safepath import describe, open_regular, resolve
from controller.engine.sizes import format_size
from controller.engine.undo import record as undo_record
from controller.engine.undo import recover
from controller.engine.xattrs import CannotCopy
from controller.engine.xattrs import copy as copy_xattrs

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".k8s-hosts-controller.tmp"


class WriteMode(StrEnum):
    AUTO = "auto"
    RENAME = "rename"
    INPLACE = "inplace"


@dataclass(frozen=True)
class WriteResult:
    changed: bool
    mode: str | None
    bytes_written: int
    inode: int
    stale: bool


def _unreachable(st: os.stat_result, target: str) -> bool:
    """The file we hold is unlinked and our path still names it (a bind mount of a file the host replaced):
    our writes reach nobody. A file replaced by rename while a sync held it is not: the path names the new
    file, which the next sync opens."""
    if st.st_nlink != 0:
        return False
    try:
        now = os.stat(target)
    except OSError:
        return True
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


# rename() over a bind-mounted file fails with one of these: fall back to writing in place.
_RENAME_FALLBACK = frozenset({errno.EBUSY, errno.EXDEV, errno.EPERM})
# Creating the temp file fails with one of these when only the file, not its directory, is writable.
_TEMP_FALLBACK = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# A full file system or quota: a write fails part-way, after it has changed some bytes.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


DEFAULT_MAX_SIZE = 64 << 20  # far above any real hosts file (a big ad-blocking list is a few MB)


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def _read_all(fd: int, limit: int) -> bytes:
    """The whole file, read through ``fd``; _TooLarge when it has more than ``limit`` bytes.

    The size is checked before anything is read (a sparse 1 TiB file must not be loaded), and no more than
    ``limit + 1`` bytes are ever read: the file may grow while it is read.
    """
    size = os.fstat(fd).st_size
    if size > limit:
        raise _TooLarge(size)
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, min(max(size - offset, 65536), limit + 1 - offset), offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
        if offset > limit:
            raise _TooLarge(max(offset, os.fstat(fd).st_size))


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view = view[done:]
        offset += done


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, by halving (memcmp speed instead of a Python loop per byte)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _NeedInPlace(Exception):
    """rename is not possible here (bind mount, directory not writable, owner not keepable)."""


class HostsFile:
    """One hosts file and our block in it."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        marker: str = DEFAULT_MARKER,
        mode: WriteMode | str = "auto",
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.path = os.fspath(path)
        self.max_size = max_size  # a bigger file is refused (HostsFileTooLarge), never loaded
        self.marker = validate_marker(marker)
        try:
            self.mode = WriteMode(mode)
        except ValueError:
            choices = ", ".join(m.value for m in WriteMode)
            raise HostsFileError(f"{self.path}: unknown write mode {mode!r}; use one of {choices}") from None
        self._rename_failed = False  # auto mode remembers that rename does not work for this file
        # auto mode asks before each rename whether a container bind-mounts the file (engine/bindmounts.py)
        self.find_bind_mounts: Callable[[str], list[BindMount]] = find_bind_mounts
        self.lock_timeout = LOCK_TIMEOUT  # past it, a sync or cleanup fails with LockTimeout (filelock.py)
        self.record: ClusterRecord | None = None  # written into the block: which cluster wrote it

    def __repr__(self) -> str:
        return f"HostsFile({self.path!r}, marker={self.marker!r}, mode={self.mode.value!r})"

    # -- reading

    def _target(self) -> str:
        # Write through a symlinked path (e.g. /etc/hosts -> /private/etc/hosts) to the file it points at,
        # when the kernel would follow that symlink too (see resolve()).
        return resolve(self.path)

    def read(self) -> bytes:
        """Current content; b"" when the file does not exist."""
        target = self._target()
        try:
            fd = open_regular(self.path, target, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        except OSError as err:
            raise HostsFileError(describe(self.path, err, target)) from None
        try:
            content = self._read_fd(fd)
        except OSError as err:
            raise HostsFileError(describe(self.path, err, target)) from None
        finally:
            os.close(fd)
        # A write in place that was cut short: what the file said before it (the next sync puts it back).
        return self._recovered(content)

    def _read_fd(self, fd: int, limit: int | None = None) -> bytes:
        """The content through ``fd``, bounded by max_size (or by ``limit``, for a read-back)."""
        try:
            return _read_all(fd, self.max_size if limit is None else limit)
        except _TooLarge as big:
            if limit is not None:  # a read-back: the file grew meanwhile, not what we wrote
                return b""
            raise self.too_large(big.size) from None

    def too_large(
        self, size: int, what: str = "is", remedy: str = "check what wrote it, or raise"
    ) -> HostsFileTooLarge:
        return HostsFileTooLarge(
            f"{self.path} {what} {size} bytes ({format_size(size)}), above the bound of "
            f"{format_size(self.max_size)} for a hosts file: {remedy} --max-hosts-file-size"
        )

    def parse(self) -> ParsedHosts:
        return parse(self.read(), self.marker)

    def preview(self, entries: Iterable[Entry]) -> tuple[bytes, bytes]:
        """(current, new) content, without writing anything (for --dry-run)."""
        current = self.read()
        return current, splice(current, entries, self.marker, self.record)

    # -- locking

    @contextmanager
    def _locked(self, target: str, create: bool) -> Iterator[tuple[int, os.stat_result] | None]:
        """Hold an exclusive flock on the hosts file itself; yields (fd, stat) or None if missing.

        Why the file itself, not a sidecar lock file: the in-cluster controller sees the host's file through
        a hostPath mount of that single file, in a directory that is not the host's /etc. A sidecar lock would
        be two different files for the host process and the pod; the hosts file's inode is the one thing both
        share, and flock on it works across mount namespaces (and leaves no extra file in /etc). A rename-mode
        writer replaces that inode, so after getting the lock we check that the path still names the locked
        inode, and start over if not. The wait is bounded (controller/engine/filelock.py): any local user can
        hold this lock, as the file is world-readable.
        """
        deadline = time.monotonic() + self.lock_timeout  # for all the attempts together
        for _ in range(100):
            fd = self._open_for_lock(target, create)
            if fd is None:
                yield None
                return
            try:
                lock_exclusive(fd, self.path, self.lock_timeout, deadline)
                locked = os.fstat(fd)
                try:
                    current = os.lstat(target)
                except FileNotFoundError:
                    current = None
                if current and (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino):
                    yield fd, locked
                    return
            finally:
                os.close(fd)  # also releases the lock
        raise HostsFileError(f"{self.path}: replaced too often while waiting for the lock; try again")

    def _open_for_lock(self, target: str, create: bool) -> int | None:
        try:
            try:
                return open_regular(self.path, target, os.O_RDWR)
            except FileNotFoundError:
                if not create:
                    return None
                return self._create(target)
            except PermissionError:
                if self.mode is WriteMode.INPLACE:
                    raise
                # rename needs only the directory writable; a read-only descriptor is enough for flock.
                return open_regular(self.path, target, os.O_RDONLY)
        except OSError as err:
            raise HostsFileError(describe(self.path, err, target)) from None

    def _create(self, target: str) -> int:
        try:
            fd = open_regular(self.path, target, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        except FileExistsError:  # created meanwhile by someone else: use theirs
            return open_regular(self.path, target, os.O_RDWR)
        os.fchmod(fd, 0o644)  # whatever the umask
        log.info("created missing hosts file %s (mode 0644)", target)
        return fd

    # -- public writes

    def sync(self, entries: Iterable[Entry]) -> WriteResult:
        """Make the block hold exactly ``entries``; no write at all when the file already says so."""
        entries = list(entries)
        target = self._target()
        with self._locked(target, create=bool(entries)) as held:
            if held is None:
                return WriteResult(False, None, 0, 0, False)  # no file and nothing to add
            fd, st = held
            disk, current = self._read_current(fd)
            return self._apply(target, fd, st, disk, splice(current, entries, self.marker, self.record))

    def cleanup(self) -> WriteResult:
        """Remove the block (and the blank line we added); a file without a block is not touched."""
        target = self._target()
        with self._locked(target, create=False) as held:
            if held is None:
                return WriteResult(False, None, 0, 0, False)
            fd, st = held
            disk, current = self._read_current(fd)
            return self._apply(target, fd, st, disk, remove_block(current, self.marker))

    def check_writable(self) -> None:
        """Raise HostsFileError (with a remedy) unless sync() can write this path."""
        target = self._target()
        directory = os.path.dirname(target) or "."
        try:
            if not os.path.isdir(directory):
                raise FileNotFoundError(errno.ENOENT, "no directory")
            if os.path.lexists(target) and self.mode is not WriteMode.RENAME:
                os.close(open_regular(self.path, target, os.O_RDWR))
                return
            self._probe_directory(directory)
        except OSError as err:
            raise HostsFileError(describe(self.path, err, target)) from None

    @staticmethod
    def _probe_directory(directory: str) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".probe.", suffix=TEMP_SUFFIX)
        os.close(fd)
        os.unlink(name)

    # -- internals

    def _read_locked(self, fd: int) -> bytes:
        try:
            return self._read_fd(fd)
        except OSError as err:
            raise HostsFileError(describe(self.path, err)) from None

    def _read_current(self, fd: int) -> tuple[bytes, bytes]:
        """(what is on disk, what the file says): they differ when a write in place was cut short."""
        disk = self._read_locked(fd)
        current = self._recovered(disk)
        if current != disk:
            log.warning(
                "%s: a write in place was cut short (the writer was killed?); it is undone", self.path
            )
        return disk, current

    def _recovered(self, content: bytes) -> bytes:
        """What the file says: the content a killed write in place was changing (controller/engine/undo.py). A
        writer killed while it repaired such a file left a record of that file: undone in turn."""
        for _ in range(8):
            old = recover(content, self.marker)
            if old is None:
                break
            content = old
        return content

    def _apply(self, target: str, fd: int, st: os.stat_result, disk: bytes, new: bytes) -> WriteResult:
        """Write ``new`` over ``disk``; a record a killed writer left in it goes too: in place, by a write
        protected by a record of its own like any other (killed again, the next one undoes both)."""
        if self.mode is not WriteMode.INPLACE and not self._rename_failed:
            self._remove_stale_temps(*os.path.split(target))
        if new == disk:
            return WriteResult(False, None, 0, st.st_ino, _unreachable(st, target))
        if len(new) > self.max_size:  # what we write must be readable again
            raise self.too_large(len(new), "with the new block would be", "raise")
        if self.mode is WriteMode.AUTO and not self._rename_failed:
            self._check_bind_mounts(target)
        try:
            if self.mode is WriteMode.INPLACE or (self.mode is WriteMode.AUTO and self._rename_failed):
                return self._write_in_place(target, fd, disk, new)
            try:
                return self._write_by_rename(target, fd, st, new)
            except _NeedInPlace as why:
                if self.mode is WriteMode.RENAME and _read_only(fd):
                    raise HostsFileError(
                        f"{self.path}: cannot replace the file by rename ({why}), and it cannot be written "
                        f"in place either: {describe(self.path, PermissionError(errno.EACCES, 'denied'))}"
                    ) from None
                if self.mode is WriteMode.RENAME:
                    raise HostsFileError(
                        f"{self.path}: cannot replace the file by rename ({why}); "
                        "use write mode inplace or auto"
                    ) from None
                log.info("%s: rename not possible (%s); writing in place from now on", self.path, why)
                self._rename_failed = True
                return self._write_in_place(target, fd, disk, new)
        except OSError as err:
            raise HostsFileError(describe(self.path, err, target)) from None

    def _check_bind_mounts(self, target: str) -> None:
        """auto mode: a file bind-mounted into a container (a kind node) is written in place from now on, as
        a rename would leave that mount on the old file: the container and this machine would part ways."""
        mounts = self.find_bind_mounts(target)
        if mounts:
            first = mounts[0]
            log.info(
                "%s: bind-mounted elsewhere, e.g. into a kind node (process %d sees it at %s%s); writing in "
                "place from now on, as a rename would leave that mount on the old file",
                self.path,
                first.pid,
                first.mount_point,
                f", and {len(mounts) - 1} more" if len(mounts) > 1 else "",
            )
            self._rename_failed = True

    def _write_by_rename(self, target: str, fd: int, st: os.stat_result, new: bytes) -> WriteResult:
        directory, name = os.path.split(target)
        try:
            tmp_fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=TEMP_SUFFIX)
        except OSError as err:
            if err.errno in _TEMP_FALLBACK:
                raise _NeedInPlace(f"directory not writable: {err.strerror}") from None
            if err.errno in _NO_SPACE:
                raise HostsFileError(f"{describe(self.path, err)}; {_KEPT}") from None
            raise
        try:
            try:
                try:
                    self._fill_temp(tmp_fd, fd, st, new)
                except OSError as err:
                    if err.errno in _NO_SPACE:  # the temp file did not fit: the hosts file is untouched
                        raise HostsFileError(f"{describe(self.path, err)}; {_KEPT}") from None
                    raise
                # Lock the new file before it is published: our lock is on the old inode, and a writer that
                # opens the path after the rename must wait until our read-back is done. Nobody else knows
                # this file yet (mode 0600): never blocking, whoever could try.
                fcntl.flock(tmp_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                try:
                    os.rename(tmp_path, target)
                except OSError as err:
                    if err.errno in _RENAME_FALLBACK:
                        raise _NeedInPlace(f"rename failed: {err.strerror}") from None
                    raise
            except BaseException:
                _unlink_quietly(tmp_path)
                raise
            _fsync_dir(directory)
            self._verify_path(target, new)
            return WriteResult(True, WriteMode.RENAME.value, len(new), os.fstat(tmp_fd).st_ino, False)
        finally:
            os.close(tmp_fd)  # releases the lock on the new file

    @staticmethod
    def _fill_temp(tmp_fd: int, fd: int, st: os.stat_result, new: bytes) -> None:
        """The new content with the old file's owner, extended attributes (ACLs, labels) and mode."""
        _pwrite_all(tmp_fd, new, 0)
        if (os.getuid(), os.getgid()) != (st.st_uid, st.st_gid):
            try:
                os.fchown(tmp_fd, st.st_uid, st.st_gid)
            except PermissionError:
                raise _NeedInPlace("cannot keep the file's owner") from None
        try:
            copy_xattrs(fd, tmp_fd)
        except CannotCopy as why:
            raise _NeedInPlace(str(why)) from None
        os.fchmod(tmp_fd, stat.S_IMODE(st.st_mode))  # last: an ACL copied above also sets the group bits
        os.fsync(tmp_fd)

    @staticmethod
    def _remove_stale_temps(directory: str, name: str) -> None:
        """Temp files of writers killed before their rename; safe to delete, as we hold the lock."""
        prefix = f".{name}."
        try:
            with os.scandir(directory) as found:
                stale = [i.path for i in found if i.name.startswith(prefix) and i.name.endswith(TEMP_SUFFIX)]
            for item in stale:
                _unlink_quietly(item)
        except OSError as err:
            log.debug("%s: cannot remove stale temp files: %s", directory, err)

    def _write_in_place(self, target: str, fd: int, current: bytes, new: bytes) -> WriteResult:
        """Rewrite the file through ``fd``: write, truncate, fsync; a failed write is undone.

        Only the bytes after the common prefix are written. When nothing but our block follows that point
        (the block is at the end, where the engine puts it), truncate first. Otherwise (user lines after the
        block) an undo record (controller/engine/undo.py) is appended and fsynced first: a full disk fails
        there, before any old byte is overwritten, and a kill at any later point leaves a file the next sync
        or cleanup puts back exactly. Then write (when shrinking, what is left of the old end becomes blank
        lines, never a duplicated piece of a user line) and truncate, which drops the record in one step.
        A write that fails (full disk, quota) puts the old bytes back.
        """
        if _read_only(fd):
            # Only the directory was writable (see _open_for_lock), and rename is not possible after all.
            raise PermissionError(errno.EACCES, "file not writable")
        start = _common_prefix(current, new)
        # Nothing of the user's from ``start`` on: an append, or a change inside our block at the end.
        at_end = start < len(new) and (start == len(current) or only_block_from(current, start, self.marker))
        overwritten = len(current)  # bytes from here on may differ from ``current`` when a step fails
        try:
            if start == len(new):  # only removing the tail (our block at the end): one atomic truncate
                os.ftruncate(fd, len(new))
            elif at_end:
                # Cut back to the common prefix, then extend: whenever we are killed the file is a prefix
                # of the new content (an unterminated block that parse repairs), never a mix of old and new.
                overwritten = start
                os.ftruncate(fd, start)
                _pwrite_all(fd, new[start:], start)
            else:
                undo, blank_until = undo_record(current, start, len(new), self.marker)
                if len(current) + len(undo) > self.max_size:  # it must stay readable to be put back
                    size = len(current) + len(undo)
                    raise self.too_large(size, "written in place would need, for a moment,", "raise")
                _pwrite_all(fd, undo, len(current))
                os.fsync(fd)  # the record is on disk before the first old byte changes (and a full disk
                # on a network file system may show only here)
                overwritten = start
                _pwrite_all(fd, new[start:] + b"\n" * (blank_until - len(new)), start)
                os.ftruncate(fd, len(new))
            os.fsync(fd)
        except OSError as err:
            raise self._undo(fd, current, overwritten, at_end, err) from None
        if self._read_fd(fd, len(new)) != new:
            raise HostsFileError(
                f"{self.path}: read-back after writing in place did not match (changed by "
                "another program at the same time?); the next sync retries"
            )
        after = os.fstat(fd)
        stale = _unreachable(after, target)
        return WriteResult(True, WriteMode.INPLACE.value, len(new) - start, after.st_ino, stale)

    def _undo(self, fd: int, current: bytes, start: int, at_end: bool, err: OSError) -> HostsFileError:
        """Put ``current`` back after a failed in-place write from ``start``; the error to raise."""
        with suppress(OSError):
            if at_end:
                # Back to the common prefix first: should the old block not fit either, what is left is a
                # prefix of the old content, which parse repairs.
                os.ftruncate(fd, start)
            _pwrite_all(fd, current[start:], start)
            os.ftruncate(fd, len(current))
            os.fsync(fd)
        try:
            kept = self._read_fd(fd, len(current)) == current
        except OSError:
            kept = False
        reason = describe(self.path, err)
        if kept:
            return HostsFileError(f"{reason}; {_KEPT}")
        if at_end:
            return HostsFileError(
                f"{reason}; the block was left cut short (every line outside it is intact), the next sync "
                "repairs it"
            )
        return HostsFileError(
            f"{reason}; the write in place was cut short and could not be undone: the lines after the block "
            f"may be damaged, check {self.path}"
        )

    def _verify_path(self, target: str, new: bytes) -> None:
        fd = open_regular(self.path, target, os.O_RDONLY)
        try:
            if self._read_fd(fd, len(new)) != new:
                raise HostsFileError(
                    f"{self.path}: read-back after rename did not match (changed by another "
                    "program at the same time?); the next sync retries"
                )
        finally:
            os.close(fd)


_KEPT = "the file was left as it was, the next sync retries"


def _read_only(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY


def _unlink_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
