"""The managed block on bytes: render it, find and parse it, splice it into a file's content, remove it.

Block format::

    #### BEGIN TYK-K8S-HOSTS ####
    172.18.0.200 chart-dash.local  # tyk/dashboard-ingress
    #### END TYK-K8S-HOSTS ####

Guarantees (docs/architecture.md, decision 3):
- every byte outside the block is preserved (line endings, missing final newline, non-UTF-8 bytes, other
  tools' blocks); the content is handled as bytes throughout and only the block is ever generated;
- markers match only as whole lines (surrounding whitespace ignored), never inside a comment;
- duplicate blocks collapse into the first one; a BEGIN without END (a crashed writer) is repaired by removing
  the BEGIN line and only the managed-looking lines right after it.

Pure functions of (content, entries, marker): no file I/O (that is controller/hostsfile.py), stdlib only.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from controller.entries import Entry, HostsFileError, InvalidEntryError

DEFAULT_MARKER = "TYK-K8S-HOSTS"
MAX_MARKER_LEN = 200


class InvalidMarkerError(HostsFileError, ValueError):
    """A marker that would break the block format."""


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


def block_names(content: bytes, marker: str) -> frozenset[str]:
    """Every name on an `IP name...` line inside our block(s), in our format or another tool's (e.g.
    `IP<TAB>HOST` lines under `# Ingress: ns/name` comments): what a resolver reading the file would find.
    For `wait`; the writer replaces such a block with its own."""
    spans = _spans(content, marker)
    inside = b"".join(content[span.start : span.end] for span in spans)
    return _outside_names(inside)


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


def only_block_from(content: bytes, offset: int, marker: str) -> bool:
    """True when everything from ``offset`` on is our block, past its BEGIN line (it ends the file)."""
    spans = _spans(content, marker)
    if not spans or spans[-1].end != len(content):
        return False
    return offset >= _next_line(content, spans[-1].start)
