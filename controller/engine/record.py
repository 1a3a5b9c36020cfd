"""Which cluster wrote the block: one comment line right after the BEGIN line, rendered and parsed here.

    #### BEGIN TYK-K8S-HOSTS ####
    # cluster: name=kind-dev server=https://127.0.0.1:40123
    172.18.0.200 chart-dash.local  # tyk/dashboard-ingress
    #### END TYK-K8S-HOSTS ####

The line is ``# cluster: `` and then the fields that are known, in the order name, server, node, each as
``key=value``, one space apart. A resolver ignores it (a comment). It is parsed strictly: a line counts as the
record only when rendering what it says gives back the same bytes, so a user's comment is never taken for
one, and the same record always renders the same line (an unchanged cluster does not rewrite the file).
Values are printable ASCII without spaces or '#' (at most MAX_VALUE characters), which any kubeconfig
context name, API server URL or node name is in practice; one that is not is left out of the record.
Pure library: stdlib only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "# cluster: "
FIELDS = ("name", "server", "node")
MAX_VALUE = 253
_VALUE = re.compile(rf"[!-\"$-~]{{1,{MAX_VALUE}}}")  # printable ASCII, no space, no '#'
_URL = re.compile(r"https?://[^/?#\s]++(?:/[!-\"$-~]*+)?")


@dataclass(frozen=True)
class ClusterRecord:
    """The cluster that wrote the block: its kubeconfig name, its API server URL as the host reaches it,
    and the node the writing pod ran on (in-cluster). Any of them may be unknown (None)."""

    name: str | None = None
    server: str | None = None
    node: str | None = None

    def __post_init__(self) -> None:
        for key in FIELDS:
            value = getattr(self, key)
            if value is not None and not valid_value(key, value):
                raise ValueError(f"invalid cluster record {key} {value!r}: {RULE}")

    def __bool__(self) -> bool:
        return any(getattr(self, key) for key in FIELDS)

    def line(self) -> str:
        """The comment line, without line ending."""
        return PREFIX + " ".join(f"{key}={getattr(self, key)}" for key in FIELDS if getattr(self, key))

    def describe(self) -> str:
        return " ".join(f"{key}={getattr(self, key)}" for key in FIELDS if getattr(self, key)) or "none"


RULE = "printable ASCII without spaces or '#', at most 253 characters (a server: an http(s):// URL)"


def valid_value(key: str, value: str) -> bool:
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        return False
    return key != "server" or bool(_URL.fullmatch(value))


def make_record(name: str | None, server: str | None, node: str | None) -> ClusterRecord | None:
    """A record of the values that can be recorded (an unusable one is left out); None when none is."""
    values = {
        key: value if value and valid_value(key, value) else None
        for key, value in zip(FIELDS, (name, server, node), strict=True)
    }
    record = ClusterRecord(**values)
    return record or None


def parse_line(line: bytes) -> ClusterRecord | None:
    """The record when ``line`` (LF, CR LF or no line ending) is byte for byte a rendered record."""
    text = line[:-1] if line.endswith(b"\n") else line
    text = text[:-1] if text.endswith(b"\r") else text
    if not text.startswith(PREFIX.encode()) or len(text) > 1024:
        return None
    try:
        words = text[len(PREFIX) :].decode("ascii").split(" ")
    except UnicodeDecodeError:
        return None
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in FIELDS or key in values:
            return None
        values[key] = value
    try:
        record = ClusterRecord(**values)
    except ValueError:
        return None
    return record if record and record.line().encode() == text else None


# Possessive throughout (linear): the prefix, then words of record characters one space apart.
_CUT_RECORD = re.compile(rb"# cluster: (?:[!-\"$-~]++ ?+)*+")


def record_written(line: bytes) -> bool:
    """``line`` (with its line ending) is a record line as written, or, without a line ending (the end of
    the file), the start of one: what a write cut short leaves. For the repair of a block without END."""
    if line.endswith(b"\n"):
        return parse_line(line) is not None
    return PREFIX.encode().startswith(line) or bool(_CUT_RECORD.fullmatch(line))
