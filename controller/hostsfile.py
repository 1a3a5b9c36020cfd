"""The hosts file engine: one marked block in a hosts file, and nothing else touched.

Block format::

    #### BEGIN TYK-K8S-HOSTS ####
    172.18.0.200 chart-dash.local  # tyk/dashboard-ingress
    #### END TYK-K8S-HOSTS ####

Guarantees (DESIGN.md decisions 3 and 4):
- every byte outside the block is preserved (line endings, missing final newline, non-UTF-8 bytes, other
  tools' blocks); the content is handled as bytes throughout and only the block is ever generated;
- markers match only as whole lines (surrounding whitespace ignored), never inside a comment;
- duplicate blocks collapse into the first one; a BEGIN without END (a crashed writer) is repaired by removing
  the BEGIN line and only the managed-looking lines right after it;
- writes are skipped when nothing changes, go through temp file + rename when possible and in place otherwise
  (a bind-mounted single file), are serialised by an advisory lock and verified by reading back.

Pure library: stdlib only, no kopf or kubernetes imports.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import itertools
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

log = logging.getLogger(__name__)

DEFAULT_MARKER = "TYK-K8S-HOSTS"
MAX_MARKER_LEN = 200
TEMP_SUFFIX = ".k8s-hosts-controller.tmp"


# --------------------------------------------------------------------------------------------------- errors


class HostsFileError(Exception):
    """Any failure of the engine. ``str(e)`` is one line naming the file and the remedy."""


class InvalidEntryError(HostsFileError, ValueError):
    """A hostname, address or owner that cannot be written to a hosts file."""


class InvalidMarkerError(HostsFileError, ValueError):
    """A marker that would break the block format."""


# ----------------------------------------------------------------------------------------------- validation

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_LABEL_CHARS = re.compile(r"[a-z0-9-]*\Z")
_OWNER = re.compile(r"[^\s#/]+/[^\s#]+\Z")


def validate_marker(marker: str) -> str:
    """Return the marker if it can be used in ``#### BEGIN <marker> ####`` lines; raise otherwise."""
    if not isinstance(marker, str) or not marker:
        raise InvalidMarkerError(f"invalid marker {marker!r}: it must be a non-empty string")
    if marker != marker.strip():
        raise InvalidMarkerError(f"invalid marker {marker!r}: no leading or trailing whitespace")
    if "#" in marker:
        # "####" frames the marker; a '#' inside would make the BEGIN/END lines ambiguous.
        raise InvalidMarkerError(f"invalid marker {marker!r}: it must not contain '#'")
    if any(not ch.isprintable() for ch in marker):
        raise InvalidMarkerError(f"invalid marker {marker!r}: no newlines or control characters")
    if len(marker) > MAX_MARKER_LEN:
        raise InvalidMarkerError(f"invalid marker {marker!r}: longer than {MAX_MARKER_LEN} characters")
    return marker


def _hostname_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if "*" in name:
        return "wildcards cannot be written to a hosts file"
    if name.endswith("."):
        return "it must not end with a dot"
    if len(name) > 253:
        return f"it is {len(name)} characters long (at most 253)"
    labels = name.split(".")
    for label in labels:
        if not label:
            return "it has an empty label"
        if len(label) > 63:
            return f"label {label[:20]!r}... is {len(label)} characters long (at most 63)"
        if not _LABEL_CHARS.match(label):
            return f"label {label!r} has characters other than a-z, 0-9 and '-'"
        if not _LABEL.match(label):
            return f"label {label!r} starts or ends with '-'"
    if labels[-1].isdigit():
        return "it looks like an IP address or has a numeric top-level label"
    return None


def validate_hostname(name: str) -> str:
    """Return the hostname (lowercased) if it is a valid RFC 1123 name; raise InvalidEntryError otherwise."""
    if not isinstance(name, str):
        raise InvalidEntryError(f"invalid hostname {name!r}: not a string")
    return _checked_hostname(name)


@lru_cache(maxsize=65536)  # the same names are validated on every sync and every parse
def _checked_hostname(name: str) -> str:
    lowered = name.lower()
    problem = _hostname_problem(lowered) if lowered.isascii() else "it has non-ASCII characters"
    if problem:
        raise InvalidEntryError(f"invalid hostname {name!r}: {problem}")
    return lowered


@lru_cache(maxsize=65536)
def _parse_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(address)


def validate_address(address: str) -> str:
    """Return the normalised IPv4/IPv6 address (e.g. ``::1``); raise InvalidEntryError otherwise."""
    if not isinstance(address, str) or address != address.strip() or "%" in address:
        raise InvalidEntryError(f"invalid address {address!r}: not a plain IPv4 or IPv6 address")
    try:
        return str(_parse_address(address))
    except ValueError:
        raise InvalidEntryError(f"invalid address {address!r}: not an IPv4 or IPv6 address") from None


def validate_owner(owner: str) -> str:
    if not isinstance(owner, str) or not _OWNER.match(owner) or not owner.isprintable():
        raise InvalidEntryError(f"invalid owner {owner!r}: expected 'namespace/name' without spaces or '#'")
    return owner


@dataclass(frozen=True, order=True)
class Entry:
    """One line of the block. Validated and normalised on construction, so an Entry is always writable."""

    hostname: str
    address: str
    owner: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "hostname", validate_hostname(self.hostname))
        object.__setattr__(self, "address", validate_address(self.address))
        object.__setattr__(self, "owner", validate_owner(self.owner))
        # The render order, computed once here (the address is parsed anyway) rather than on every render.
        ip = _parse_address(self.address)
        object.__setattr__(self, "_sort_key", (self.hostname, ip.version, int(ip), self.owner))


# --------------------------------------------------------------------------------------------------- render


def begin_line(marker: str) -> str:
    return f"#### BEGIN {validate_marker(marker)} ####"


def end_line(marker: str) -> str:
    return f"#### END {validate_marker(marker)} ####"


def _unique_sorted(entries: Iterable[Entry]) -> list[Entry]:
    # hostname, then address (IPv4 before IPv6, numeric order), then owner: see Entry.__post_init__
    ordered = sorted(entries, key=lambda e: e._sort_key)
    unique: list[Entry] = []
    for entry in ordered:
        if unique and unique[-1].hostname == entry.hostname and unique[-1].address == entry.address:
            continue  # same line from another object: keep the first owner
        unique.append(entry)
    return unique


def render_block(entries: Iterable[Entry], marker: str, newline: bytes = b"\n") -> bytes:
    """The block, deterministic whatever the order of ``entries``; every line ends with ``newline``."""
    if newline not in (b"\n", b"\r\n"):
        raise ValueError(f"newline must be b'\\n' or b'\\r\\n', not {newline!r}")
    entries = list(entries)
    for entry in entries:
        if not isinstance(entry, Entry):
            raise InvalidEntryError(f"invalid entry {entry!r}: not an Entry")
    nl = newline.decode()
    lines = [begin_line(marker)]
    for entry in _unique_sorted(entries):
        lines.append(f"{entry.address} {entry.hostname}  # {entry.owner}")
    lines.append(end_line(marker))
    return (nl.join(lines) + nl).encode()


# ---------------------------------------------------------------------------------------------------- parse

# A line written by render_block: "ADDR HOST  # ns/name" (whitespace tolerated).
_MANAGED = re.compile(
    rb"[ \t]*([0-9A-Fa-f:.]+)[ \t]+([A-Za-z0-9.-]+)[ \t]+#[ \t]*([^\s#/]+/[^\s#]+)[ \t\r]*\Z"
)
# A prefix of such a line: what a write cut short leaves at the end of the file.
_MANAGED_PREFIX = re.compile(rb"[ \t]*[0-9A-Fa-f:.]+(?:[ \t]+[A-Za-z0-9.-]*(?:[ \t]+(?:#[ \t]*\S*)?)?)?\r?\Z")
# "IP name [aliases...]" outside the block, for the names the planner must not shadow.
_HOSTS_LINE = re.compile(
    rb"^[ \t]*(?=[0-9A-Fa-f]*[.:])[0-9A-Fa-f:.]+(?:%[^\s#]+)?[ \t]+([^#\r\n]*)", re.MULTILINE
)


@dataclass(frozen=True)
class _Span:
    start: int  # byte offset of the BEGIN line
    end: int  # byte offset just after the last line of the span (END line, or the repaired run)
    terminated: bool


@dataclass(frozen=True)
class ParsedHosts:
    managed: tuple[Entry, ...]
    outside_names: frozenset[str]
    has_block: bool
    newline: bytes


def detect_newline(content: bytes) -> bytes:
    """CRLF when most line breaks are CRLF, LF otherwise (and for an empty file)."""
    crlf = content.count(b"\r\n")
    return b"\r\n" if crlf and crlf * 2 > content.count(b"\n") else b"\n"


def _marker_lines(content: bytes, text: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line whose trimmed content is exactly ``text``; a fast scan, no per-line work."""
    found = []
    pos = content.find(text)
    while pos != -1:
        start = content.rfind(b"\n", 0, pos) + 1
        end = content.find(b"\n", pos)
        end = len(content) if end == -1 else end + 1
        if not content[start:pos].strip() and not content[pos + len(text) : end].strip():
            found.append((start, end))
        pos = content.find(text, pos + len(text))
    return found


def _next_line(content: bytes, pos: int) -> int:
    end = content.find(b"\n", pos)
    return len(content) if end == -1 else end + 1


def _repair_end(content: bytes, pos: int, limit: int, end_text: bytes) -> int:
    """End of the managed-looking lines from ``pos`` (before ``limit``), for an unterminated block."""
    while pos < limit:
        end = _next_line(content, pos)
        line = content[pos:end]
        if line.endswith(b"\n"):
            if not _MANAGED.match(line.rstrip(b"\n")):
                break
        elif not _is_fragment(line, end_text):
            break
        pos = end
    return pos


def _is_fragment(line: bytes, end_text: bytes) -> bool:
    """A last line without newline that starts like a managed line or an END line: a cut-short write."""
    text = line.strip()
    return bool(_MANAGED_PREFIX.match(line)) or (bool(text) and end_text.startswith(text))


def _spans(content: bytes, marker: str) -> list[_Span]:
    begins = _marker_lines(content, begin_line(marker).encode())
    if not begins:
        return []
    end_text = end_line(marker).encode()
    ends = _marker_lines(content, end_text)
    spans: list[_Span] = []
    end_idx = 0
    for i, (b_start, b_end) in enumerate(begins):
        if spans and b_start < spans[-1].end:
            continue  # a BEGIN inside a block we already took
        next_begin = begins[i + 1][0] if i + 1 < len(begins) else len(content)
        while end_idx < len(ends) and ends[end_idx][0] < b_end:
            end_idx += 1  # stray END lines before this block stay where they are
        if end_idx < len(ends) and ends[end_idx][0] < next_begin:
            stop = ends[end_idx][1]
            # Repeated END lines right after the block are ours too.
            while end_idx + 1 < len(ends) and ends[end_idx + 1][0] == stop:
                end_idx += 1
                stop = ends[end_idx][1]
            spans.append(_Span(b_start, stop, True))
        else:
            spans.append(_Span(b_start, _repair_end(content, b_end, next_begin, end_text), False))
    return spans


def _without_spans(content: bytes, spans: list[_Span], first_replacement: bytes) -> bytes:
    pieces = [content[: spans[0].start], first_replacement]
    for prev, span in itertools.pairwise(spans):
        pieces.append(content[prev.end : span.start])
    pieces.append(content[spans[-1].end :])
    return b"".join(pieces)


def _managed_entries(content: bytes, spans: list[_Span]) -> tuple[Entry, ...]:
    found = []
    for span in spans:
        for raw in content[span.start : span.end].splitlines():
            match = _MANAGED.match(raw)
            if not match:
                continue
            try:
                host, addr, owner = (g.decode() for g in (match[2], match[1], match[3]))
                found.append(Entry(hostname=host, address=addr, owner=owner))
            except (UnicodeDecodeError, InvalidEntryError):
                continue  # a damaged line inside our block: it is replaced on the next write
    return tuple(found)


def _outside_names(outside: bytes) -> frozenset[str]:
    # One decode and split over all name fields at once: per-line work is what makes a 1 MB file slow.
    fields = b" ".join(_HOSTS_LINE.findall(outside))
    return frozenset(fields.decode("utf-8", "replace").lower().split())


def parse(content: bytes, marker: str) -> ParsedHosts:
    spans = _spans(content, marker)
    outside = _without_spans(content, spans, b"") if spans else content
    return ParsedHosts(
        managed=_managed_entries(content, spans),
        outside_names=_outside_names(outside),
        has_block=bool(spans),
        newline=detect_newline(content),
    )


# --------------------------------------------------------------------------------------------------- splice


def splice(content: bytes, entries: Iterable[Entry], marker: str) -> bytes:
    """New content with our block replaced where it is, or appended after one blank line.

    With no entries the block is removed: an empty block is never written.
    """
    entries = list(entries)
    if not entries:
        return remove_block(content, marker)
    nl = detect_newline(content)
    block = render_block(entries, marker, nl)
    spans = _spans(content, marker)
    if spans:
        first = spans[0]
        if first.terminated and first.end == len(content) and not content.endswith(b"\n"):
            block = block[: -len(nl)]  # the file ended without a newline after our END line: keep it so
        return _without_spans(content, spans, block)
    if not content:
        return block
    if content.endswith(b"\n"):
        return content + nl + block
    # No final newline: terminate the last line, add the blank line, and mirror the missing final newline
    # at the end of the block so that remove_block can give back the exact original bytes.
    return content + nl + nl + block[: -len(nl)]


def remove_block(content: bytes, marker: str) -> bytes:
    """Content without our block(s) and the blank line the engine put before it; unchanged if no block."""
    spans = _spans(content, marker)
    if not spans:
        return content
    nl = detect_newline(content)
    first = spans[0]
    prefix = content[: first.start]
    if prefix.endswith(b"\n" + nl):
        prefix = prefix[: -len(nl)]  # the blank line we added when appending
    rest = _without_spans(content, spans, b"")[first.start :]
    if not rest and spans[-1].terminated and not content.endswith(b"\n") and prefix.endswith(nl):
        prefix = prefix[: -len(nl)]  # we terminated the user's last line when appending: undo that
    return prefix + rest


# ---------------------------------------------------------------------------------------------------- write


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


# rename() over a bind-mounted file fails with one of these: fall back to writing in place.
_RENAME_FALLBACK = frozenset({errno.EBUSY, errno.EXDEV, errno.EPERM})
# Creating the temp file fails with one of these when only the file, not its directory, is writable.
_TEMP_FALLBACK = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def _describe(path: str, err: OSError) -> str:
    """One line naming the file and what to do about the error."""
    code = err.errno
    if code in (errno.EACCES, errno.EPERM):
        return f"{path}: permission denied; run with sudo -E, or pass --hosts-file with a file you can write"
    if code == errno.EISDIR:
        return f"{path} is a directory; pass --hosts-file with the path of a hosts file"
    if code == errno.EROFS:
        return f"{path} is on a read-only file system; mount it read-write, or pass --hosts-file"
    if code in (errno.ENOENT, errno.ENOTDIR):
        parent = os.path.dirname(path) or "."
        return f"{path}: directory {parent} does not exist; create it, or pass --hosts-file"
    reason = (err.strerror or str(err)).replace("\n", " ")
    return f"{path}: {reason}; check the file and its directory, or pass --hosts-file"


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, max(size - offset, 65536), offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


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
        self, path: str | os.PathLike[str], marker: str = DEFAULT_MARKER, mode: WriteMode | str = "auto"
    ) -> None:
        self.path = os.fspath(path)
        self.marker = validate_marker(marker)
        try:
            self.mode = WriteMode(mode)
        except ValueError:
            choices = ", ".join(m.value for m in WriteMode)
            raise HostsFileError(f"{self.path}: unknown write mode {mode!r}; use one of {choices}") from None
        self._rename_failed = False  # auto mode remembers that rename does not work for this file

    def __repr__(self) -> str:
        return f"HostsFile({self.path!r}, marker={self.marker!r}, mode={self.mode.value!r})"

    # -- reading

    def _target(self) -> str:
        # Write through a symlinked path (e.g. /etc/hosts -> /private/etc/hosts) to the file it points at.
        return os.path.realpath(self.path)

    def read(self) -> bytes:
        """Current content; b"" when the file does not exist."""
        try:
            with open(self._target(), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return b""
        except OSError as err:
            raise HostsFileError(_describe(self.path, err)) from None

    def parse(self) -> ParsedHosts:
        return parse(self.read(), self.marker)

    def preview(self, entries: Iterable[Entry]) -> tuple[bytes, bytes]:
        """(current, new) content, without writing anything (for --dry-run)."""
        current = self.read()
        return current, splice(current, entries, self.marker)

    # -- locking

    @contextmanager
    def _locked(self, target: str, create: bool) -> Iterator[tuple[int, os.stat_result] | None]:
        """Hold an exclusive flock on the hosts file itself; yields (fd, stat) or None if missing.

        Why the file itself, not a sidecar lock file: the in-cluster controller sees the host's file through
        a hostPath mount of that single file, in a directory that is not the host's /etc. A sidecar lock would
        be two different files for the host process and the pod; the hosts file's inode is the one thing both
        share, and flock on it works across mount namespaces (and leaves no extra file in /etc). A rename-mode
        writer replaces that inode, so after getting the lock we check that the path still names the locked
        inode, and start over if not.
        """
        for _ in range(100):
            fd = self._open_for_lock(target, create)
            if fd is None:
                yield None
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                locked = os.fstat(fd)
                try:
                    current = os.stat(target)
                except FileNotFoundError:
                    current = None
                if current and (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino):
                    yield fd, locked
                    return
            finally:
                os.close(fd)  # also releases the lock
        raise HostsFileError(f"{self.path}: replaced too often while waiting for the lock; try again")

    def _open_for_lock(self, target: str, create: bool) -> int | None:
        flags = os.O_RDWR | os.O_CLOEXEC
        try:
            if os.path.isdir(target):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            try:
                return os.open(target, flags)
            except FileNotFoundError:
                if not create:
                    return None
                return self._create(target)
            except PermissionError:
                if self.mode is WriteMode.INPLACE:
                    raise
                # rename needs only the directory writable; a read-only descriptor is enough for flock.
                return os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise HostsFileError(_describe(self.path, err)) from None

    def _create(self, target: str) -> int:
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
            current = self._read_locked(fd)
            return self._apply(target, fd, st, current, splice(current, entries, self.marker))

    def cleanup(self) -> WriteResult:
        """Remove the block (and the blank line we added); a file without a block is not touched."""
        target = self._target()
        with self._locked(target, create=False) as held:
            if held is None:
                return WriteResult(False, None, 0, 0, False)
            fd, st = held
            current = self._read_locked(fd)
            return self._apply(target, fd, st, current, remove_block(current, self.marker))

    def check_writable(self) -> None:
        """Raise HostsFileError (with a remedy) unless sync() can write this path."""
        target = self._target()
        directory = os.path.dirname(target) or "."
        try:
            if os.path.isdir(target):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            if not os.path.isdir(directory):
                raise FileNotFoundError(errno.ENOENT, "no directory")
            if os.path.exists(target) and self.mode is not WriteMode.RENAME:
                os.close(os.open(target, os.O_RDWR | os.O_CLOEXEC))
                return
            self._probe_directory(directory)
        except OSError as err:
            raise HostsFileError(_describe(self.path, err)) from None

    @staticmethod
    def _probe_directory(directory: str) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".probe.", suffix=TEMP_SUFFIX)
        os.close(fd)
        os.unlink(name)

    # -- internals

    def _read_locked(self, fd: int) -> bytes:
        try:
            return _read_all(fd)
        except OSError as err:
            raise HostsFileError(_describe(self.path, err)) from None

    def _apply(self, target: str, fd: int, st: os.stat_result, current: bytes, new: bytes) -> WriteResult:
        if self.mode is not WriteMode.INPLACE and not self._rename_failed:
            self._remove_stale_temps(*os.path.split(target))
        if new == current:
            return WriteResult(False, None, 0, st.st_ino, st.st_nlink == 0)
        try:
            if self.mode is WriteMode.INPLACE or (self.mode is WriteMode.AUTO and self._rename_failed):
                return self._write_in_place(fd, current, new)
            try:
                return self._write_by_rename(target, st, new)
            except _NeedInPlace as why:
                if self.mode is WriteMode.RENAME:
                    raise HostsFileError(
                        f"{self.path}: cannot replace the file by rename ({why}); "
                        "use write mode inplace or auto"
                    ) from None
                log.info("%s: rename not possible (%s); writing in place from now on", self.path, why)
                self._rename_failed = True
                return self._write_in_place(fd, current, new)
        except OSError as err:
            raise HostsFileError(_describe(self.path, err)) from None

    def _write_by_rename(self, target: str, st: os.stat_result, new: bytes) -> WriteResult:
        directory, name = os.path.split(target)
        try:
            tmp_fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=TEMP_SUFFIX)
        except OSError as err:
            if err.errno in _TEMP_FALLBACK:
                raise _NeedInPlace(f"directory not writable: {err.strerror}") from None
            raise
        try:
            try:
                self._fill_temp(tmp_fd, st, new)
            finally:
                os.close(tmp_fd)
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
        return WriteResult(True, WriteMode.RENAME.value, len(new), os.stat(target).st_ino, False)

    @staticmethod
    def _fill_temp(tmp_fd: int, st: os.stat_result, new: bytes) -> None:
        _pwrite_all(tmp_fd, new, 0)
        os.fchmod(tmp_fd, stat.S_IMODE(st.st_mode))
        if (os.getuid(), os.getgid()) != (st.st_uid, st.st_gid):
            try:
                os.fchown(tmp_fd, st.st_uid, st.st_gid)
            except PermissionError:
                raise _NeedInPlace("cannot keep the file's owner") from None
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

    def _write_in_place(self, fd: int, current: bytes, new: bytes) -> WriteResult:
        """Rewrite the file through ``fd``: one write, truncate, fsync.

        Only the bytes after the common prefix are written. When nothing but our block follows that point
        (the block is at the end, where the engine puts it), truncate first. Otherwise (user lines after the
        block) write first and, when shrinking, pad the end with newlines: a kill before the truncate leaves
        only blank lines, never a duplicated piece of a user line. A kill in the middle of a multi-page write
        can still mix old and new bytes in that case: in place is never atomic, which is why rename is
        preferred.
        """
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            # Only the directory was writable (see _open_for_lock), and rename is not possible after all.
            raise PermissionError(errno.EACCES, "file not writable")
        start = _common_prefix(current, new)
        shrink = len(current) - len(new)
        if start == len(new):
            os.ftruncate(fd, len(new))  # only removing the tail (our block at the end): one atomic truncate
        elif self._only_block_after(current, start):
            # Cut back to the common prefix, then extend: whenever we are killed the file is a prefix of the
            # new content (an unterminated block that parse repairs), never a mix of old and new lines.
            os.ftruncate(fd, start)
            _pwrite_all(fd, new[start:], start)
        elif shrink > 0:
            _pwrite_all(fd, new[start:] + b"\n" * shrink, start)
            os.ftruncate(fd, len(new))
        else:
            _pwrite_all(fd, new[start:], start)
        os.fsync(fd)
        if _read_all(fd) != new:
            raise HostsFileError(
                f"{self.path}: read-back after writing in place did not match (changed by "
                "another program at the same time?); the next sync retries"
            )
        after = os.fstat(fd)
        return WriteResult(True, WriteMode.INPLACE.value, len(new) - start, after.st_ino, after.st_nlink == 0)

    def _only_block_after(self, content: bytes, offset: int) -> bool:
        """True when everything from ``offset`` on is our block, past its BEGIN line."""
        spans = _spans(content, self.marker)
        if not spans or spans[-1].end != len(content):
            return False
        return offset >= _next_line(content, spans[-1].start)

    def _verify_path(self, target: str, new: bytes) -> None:
        with open(target, "rb") as handle:
            if handle.read() != new:
                raise HostsFileError(
                    f"{self.path}: read-back after rename did not match (changed by another "
                    "program at the same time?); the next sync retries"
                )


def _unlink_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
