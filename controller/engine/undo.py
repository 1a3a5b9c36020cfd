"""The undo record of an in-place write: appended before the first old byte is overwritten, so that a writer
killed at any point leaves a file the next one puts back exactly (docs/architecture.md, decision 4).

An in-place write that moves the user's lines after the block (the block grew or shrank) cannot be atomic.
Before it overwrites anything it appends, at the old end of the file::

    #### UNDO <marker> <start> <old size> <SHA-256 of the old content> ####
    #|every byte of the old content from <start> on,
    #|one line per line, each behind "#|"

then fsyncs, overwrites, and truncates to the new size, which removes the record in one step. Every line of
it is a comment (resolvers skip it; the user's last line, if it had no newline, is ended first so nothing is
glued to it), and the engine recognises it only when the hash proves it: the old content rebuilt from the
record (a kill after the overwrite began), or the bytes before it (a kill while the record was appended,
before anything was overwritten). A write that grows the file would overwrite the header, so the header is
repeated after the new end. Pure functions on bytes, stdlib only.
"""

from __future__ import annotations

import hashlib
import re

_LINE = b"#|"  # never the start of a header line ("#### "), even for a user line that looks like one
_HEADER = re.compile(rb"#### UNDO (\S++) (\d{1,19}+) (\d{1,19}+) ([0-9a-f]{64}+) ####\n")
_TRIES = 3  # header candidates looked at, from the end: the last two are ours, a third bounds the work


def _header(marker: str, start: int, old: bytes) -> bytes:
    digest = hashlib.sha256(old).hexdigest()
    return b"#### UNDO %s %d %d %s ####\n" % (marker.encode(), start, len(old), digest.encode())


def record(old: bytes, start: int, new_size: int, marker: str) -> tuple[bytes, int]:
    """What to append at ``len(old)`` before ``old`` is overwritten from ``start``, to ``new_size`` bytes;
    and the offset up to which the overwrite must put blank lines after the new content.

    Those blank lines cover what is left of the old content (a shrink) or of the first header (a small
    growth), so that nothing but comments and blank lines ever follows the new content's last line, which
    may have no newline. A growth would overwrite the header, so it is repeated past the new end.
    """
    end = b"\n" if old and not old.endswith(b"\n") else b""  # the user's last line ends before our line
    header = _header(marker, start, old)
    copy = b"".join(_LINE + line + b"\n" for line in old[start:].split(b"\n"))
    if new_size < len(old):  # at least one blank line, so the header starts a line whatever new ends with
        return end + header + copy, len(old)
    first_header_end = len(old) + len(end) + len(header)
    second_header_at = max(new_size + 1, first_header_end)  # a newline at new_size ends the last line
    filler = b"\n" * (second_header_at - first_header_end)
    return end + header + filler + header + copy, max(new_size, first_header_end)


def recover(content: bytes, marker: str) -> bytes | None:
    """What the file says when ``content`` holds an undo record the hash confirms; None otherwise.

    That is the old content, followed (on a line of its own) by whatever was appended after the whole record
    once its writer was gone (``tee -a`` before the next sync): those bytes are the user's.
    """
    key = b"\n#### UNDO " + marker.encode() + b" "
    pos = content.rfind(key)
    for _ in range(_TRIES):
        if pos == -1:
            return None
        found = _HEADER.match(content, pos + 1)
        if found and found[1] == marker.encode():
            start, size, digest = int(found[2]), int(found[3]), found[4].decode()
            if start <= size <= pos + 1:
                copy = _decode(content, found.end(), size - start)
                if copy is not None:
                    old = content[:start] + copy[0]
                    if hashlib.sha256(old).hexdigest() == digest:  # killed after the overwrite began
                        after = content[copy[1] :]
                        return old + (b"\n" if after and old and not old.endswith(b"\n") else b"") + after
                if hashlib.sha256(content[:size]).hexdigest() == digest:
                    return content[:size]  # killed while the record was appended: nothing overwritten yet
        pos = content.rfind(key, 0, pos)
    return None


def _decode(content: bytes, offset: int, size: int) -> tuple[bytes, int] | None:
    """The ``size`` bytes the record's copy from ``offset`` stands for, and where the copy ends; None when
    it is not a whole copy (cut short)."""
    pieces: list[bytes] = []
    total = -1  # the decoded length: the pieces and the newlines between them
    while total < size:
        end = content.find(b"\n", offset)
        if end == -1 or not content.startswith(_LINE, offset):
            return None
        pieces.append(content[offset + len(_LINE) : end])
        total += end - offset - len(_LINE) + 1
        offset = end + 1
    return (b"\n".join(pieces), offset) if total == size else None
