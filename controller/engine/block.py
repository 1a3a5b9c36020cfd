"""The managed block on bytes: render it, find and parse it, splice it into a file's content, remove it.

Block format::

    #### BEGIN TYK-K8S-HOSTS ####
    # cluster: name=kind-dev server=https://127.0.0.1:40123
    172.18.0.200 chart-dash.local  # tyk/dashboard-ingress
    #### END TYK-K8S-HOSTS ####

Guarantees (docs/architecture.md, decision 3):
- every byte outside the block is preserved (line endings, missing final newline, non-UTF-8 bytes, other
  tools' blocks); the content is handled as bytes throughout and only the block is ever generated;
- markers match only as whole lines (spaces and tabs around them ignored, nothing else), never in a comment;
- duplicate blocks collapse into the first one; a BEGIN without END (a crashed writer) is repaired by removing
  the BEGIN line and only the lines right after it that are byte for byte what render_block writes (and, at
  the very end of the file, the start of one: a write cut short); the first other line and all after it stay;
- the optional cluster record (controller/engine/record.py) is the line right after BEGIN, and only there
  is it ours;
- the block ends with a newline (a line appended after it stays its own); splice appends it after one line
  end (a blank line, or a tab after BEGIN says it ended the last line), remove_block is its exact inverse;
- parsing is linear in the file size: no regex may backtrack, no line is scanned twice.

Pure functions of (content, entries, marker): no file I/O (that is controller/engine/hostsfile.py), stdlib
only; above 350 lines on purpose: the format, its parser and its exact inverse are one promise, tested
together.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from controller.engine.entries import Entry
from controller.engine.errors import InvalidEntryError, InvalidMarkerError
from controller.engine.record import ClusterRecord, record_written
from controller.engine.record import parse_line as parse_record

DEFAULT_MARKER = "TYK-K8S-HOSTS"
MAX_MARKER_LEN = 200


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


def _entry_line(entry: Entry) -> str:
    """One line of the block, without its line ending; managed_entry() recognises exactly this text."""
    return f"{entry.address} {entry.hostname}  # {entry.owner}"


def render_block(
    entries: Iterable[Entry], marker: str, newline: bytes = b"\n", record: ClusterRecord | None = None
) -> bytes:
    """The block, deterministic whatever the order of ``entries``; every line ends with ``newline``; the
    cluster record, if any, right after the BEGIN line."""
    if newline not in (b"\n", b"\r\n"):
        raise ValueError(f"newline must be b'\\n' or b'\\r\\n', not {newline!r}")
    entries = list(entries)
    for entry in entries:
        if not isinstance(entry, Entry):
            raise InvalidEntryError(f"invalid entry {entry!r}: not an Entry")
    nl = newline.decode()
    lines = [begin_line(marker)]
    if record:
        lines.append(record.line())
    for entry in _unique_sorted(entries):
        lines.append(_entry_line(entry))
    lines.append(end_line(marker))
    return (nl.join(lines) + nl).encode()


# ---------------------------------------------------------------------------------------------------- parse

# Possessive quantifiers throughout: no pattern may backtrack, so parsing stays linear in the file size.
# A prefix of a line written by render_block ("ADDR HOST  # ns/name", then CR LF or LF), with its exact
# characters and spacing: what a write cut short leaves at the end of the file.
_CUT_MANAGED = re.compile(
    rb"[0-9a-f:.]++(?: (?:[a-z0-9.-]++(?: (?: (?:#(?: (?:[^\s#/]++(?:/(?:[^\s#]++\r?+)?)?)?)?)?)?)?)?)?"
)
# "IP name [aliases...]" outside the block, for the names the planner must not shadow.
_HOSTS_LINE = re.compile(
    rb"^[ \t]*+(?=[0-9A-Fa-f]*+[.:])[0-9A-Fa-f:.]++(?:%[^\s#]++)?[ \t]++([^#\r\n]*+)", re.MULTILINE
)
# Longest address and name a valid entry can have: anything longer is not ours and is not even decoded.
_MAX_ADDRESS, _MAX_HOSTNAME = 45, 253


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


def _line_text(line: bytes) -> bytes:
    """A line without its line ending (LF, or CR LF)."""
    if line.endswith(b"\n"):
        line = line[:-1]
    return line[:-1] if line.endswith(b"\r") else line


@lru_cache(maxsize=16)
def _marker_pattern(text: bytes) -> re.Pattern[bytes]:
    """A whole line that is ``text`` with only spaces or tabs around it (no form feed, vertical tab, ...)."""
    return re.compile(rb"^[ \t]*+" + re.escape(text) + rb"[ \t]*+\r?+(?:\n|\Z)", re.MULTILINE)


_MARKER_SCAN_AFTER = 64  # lines containing the marker text without being marker lines, before a full scan


def _marker_lines(content: bytes, text: bytes) -> list[tuple[int, int]]:
    """(start, end) of every marker line ``text`` (see _marker_pattern); linear in the content size.

    A fast search for the text finds the few candidate lines of a normal file. Each line is looked at once:
    the search goes on from the next line, never from inside this one (a long line of repeated marker text
    would otherwise be rescanned once per repetition); and a file with many lines that merely contain the text
    is scanned by the regex engine instead of line by line in Python.
    """
    pattern = _marker_pattern(text)
    found: list[tuple[int, int]] = []
    misses = 0
    pos = content.find(text)
    while pos != -1:
        start = content.rfind(b"\n", 0, pos) + 1
        end = content.find(b"\n", pos) + 1 or len(content)
        match = pattern.match(content, start, end)
        if match and match.end() == end:
            found.append((start, end))
        else:
            misses += 1
            if misses > _MARKER_SCAN_AFTER:
                found.extend(m.span() for m in pattern.finditer(content, end))
                return found
        pos = content.find(text, end)
    return found


def _next_line(content: bytes, pos: int) -> int:
    end = content.find(b"\n", pos)
    return len(content) if end == -1 else end + 1


def managed_entry(line: bytes) -> Entry | None:
    """The entry when ``line`` is byte for byte what render_block writes for it (LF or CR LF), else None."""
    text = _line_text(line)
    address, _, rest = text.partition(b" ")
    hostname, _, owner = rest.partition(b"  # ")
    if not (0 < len(address) <= _MAX_ADDRESS and 0 < len(hostname) <= _MAX_HOSTNAME and owner):
        return None
    try:
        entry = Entry(hostname=hostname.decode(), address=address.decode(), owner=owner.decode())
    except (UnicodeDecodeError, InvalidEntryError):
        return None
    # The same text as render_block's, or a line that only reads as this entry (uppercase, another spelling).
    return entry if _entry_line(entry).encode() == text else None


def _repair_end(content: bytes, pos: int, limit: int, end_text: bytes) -> int:
    """End of the lines from ``pos`` (before ``limit``) that the engine wrote, for a block without END.

    Only exact managed lines go, and at the very end of the file a prefix of one or of the END line (a write
    cut short); the first other line, and everything after it, is the user's. The line right after BEGIN
    may also be the cluster record (or, at the very end of the file, the start of one).
    """
    if pos < limit and record_written(content[pos : _next_line(content, pos)]):
        pos = _next_line(content, pos)
    while pos < limit:
        end = _next_line(content, pos)
        line = content[pos:end]
        if line.endswith(b"\n"):
            if managed_entry(line) is None:
                break
        elif not _is_cut_short(line, end_text):
            break
        pos = end
    return pos


def _is_cut_short(line: bytes, end_text: bytes) -> bool:
    """A last line without newline that is the start of a managed line or of the END line."""
    return bool(_CUT_MANAGED.fullmatch(line)) or (end_text + b"\r").startswith(line)


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
            entry = managed_entry(raw)
            if entry is not None:
                found.append(entry)  # other lines inside our block are replaced on the next write
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


def block_record(content: bytes, marker: str) -> ClusterRecord | None:
    """The cluster record of the (first) block: the exact record line right after its BEGIN line."""
    spans = _spans(content, marker)
    start = _next_line(content, spans[0].start) if spans else 0
    return parse_record(content[start : _next_line(content, start)]) if start < spans[0].end else None


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


# A tab after the BEGIN marker (marker lines ignore spaces and tabs) records that splice ended the user's last
# line, which had no newline, to append the block: remove_block takes that line end away again.
_ENDED_BY_US = b"\t"


def splice(
    content: bytes, entries: Iterable[Entry], marker: str, record: ClusterRecord | None = None
) -> bytes:
    """New content with our block replaced where it is, or appended after one line end; with no entries
    the block is removed. The block always ends with a newline: a line appended later (``tee -a``) stays
    a line of its own."""
    entries = list(entries)
    if not entries:
        return remove_block(content, marker)
    nl = detect_newline(content)
    block = render_block(entries, marker, nl, record)
    spans = _spans(content, marker)
    if spans and not (spans[0].end == len(content) and not content.endswith(b"\n")):
        return _without_spans(content, spans, _flagged(block, _ended_by_us(content, spans[0])))
    # Appended after a blank line, or ending the user's last line. A block at the very end without a final
    # newline (an older version's, or cut short) is appended anew to the user's own bytes.
    user = remove_block(content, marker) if spans else content
    return user + nl + _flagged(block, not user.endswith(b"\n")) if user else block


def _flagged(block: bytes, ended_by_us: bool) -> bytes:
    return block.replace(b" ####", b" ####" + _ENDED_BY_US, 1) if ended_by_us else block  # on the BEGIN line


def _ended_by_us(content: bytes, span: _Span) -> bool:
    return _line_text(content[span.start : _next_line(content, span.start)]).endswith(_ENDED_BY_US)


def remove_block(content: bytes, marker: str) -> bytes:
    """Content without our block(s). The exact inverse of splice's append: the line end it puts before the
    block goes with it while the block ends the file; before a block in the middle it may be the user's, so
    it stays (and keeps a line appended after the block a line of its own)."""
    spans = _spans(content, marker)
    if not spans:
        return content
    first = spans[0]
    prefix = content[: first.start]
    rest = _without_spans(content, spans, b"")[first.start :]
    if rest:
        return prefix + rest
    if _ended_by_us(content, first):  # the line end splice gave the user's last line (the BEGIN line's)
        nl = b"\r\n" if content[first.start : _next_line(content, first.start)].endswith(b"\r\n") else b"\n"
        return prefix.removesuffix(nl)
    nl = detect_newline(content)
    if prefix.endswith(b"\n" + nl):
        prefix = prefix[: -len(nl)]  # the blank line splice added when appending
    if spans[-1].terminated and not content.endswith(b"\n") and prefix.endswith(nl):
        prefix = prefix[: -len(nl)]  # an older version's block ended without newline and ended that line
    return prefix


def only_block_from(content: bytes, offset: int, marker: str) -> bool:
    """True when everything from ``offset`` on is our block, past its BEGIN line (it ends the file)."""
    spans = _spans(content, marker)
    if not spans or spans[-1].end != len(content):
        return False
    return offset >= _next_line(content, spans[-1].start)
