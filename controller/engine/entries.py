"""One line of the managed block: a validated hostname, address and owner (``namespace/name``).

The hosts-file syntax every entry must meet before it can be written (docs/architecture.md, decision 3); the
planner (controller/sync/plan.py) applies the same rules to refuse what could not be written. Stdlib only,
no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from controller.engine.errors import InvalidEntryError

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_LABEL_CHARS = re.compile(r"[a-z0-9-]*\Z")
_OWNER = re.compile(r"[^\s#/]+/[^\s#]+\Z")


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
