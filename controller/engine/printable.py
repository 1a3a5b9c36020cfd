"""Values that come from outside (the cluster, a lock file, a user's hosts file) made safe to print in a log
line, an Event or an error message: no control character can start a forged line."""

from __future__ import annotations

MAX_VALUE = 200  # characters of one untrusted value in a log line or an Event


def printable(value: object, limit: int | None = MAX_VALUE) -> str:
    """``value`` with control and other non-printable characters escaped the way repr() does (a newline
    becomes ``\\n``), cut to ``limit`` characters with a note of how many were left out.

    Annotation values and hostnames come from whoever may edit an object: printed raw, a newline in one
    would start a forged log line in the text format.
    """
    text = str(value)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text
