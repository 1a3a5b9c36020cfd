"""One setting's value checked on its own, as the command line or the environment gives it
(docs/architecture.md, decision 9).

controller/config.py calls :func:`check_value` for every value given, the environment's too when a flag
overrides it, and then checks what needs several values together. Each check raises :class:`UsageError`: one
line naming where the value came from (``label``: the flag, or the variable with its flag), what is wrong and
how to fix it.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.cluster.sources import SOURCES
from controller.engine.block import validate_marker
from controller.engine.entries import validate_hostname
from controller.engine.errors import HostsFileError
from controller.engine.record import RULE, valid_value
from controller.engine.sizes import parse_size, size_flag

# A namespace name is a DNS label (RFC 1123), as the API server requires.
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

# A DaemonSet's name is a DNS subdomain (RFC 1123), at most 253 characters.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

# What to give instead of an empty list value.
_EMPTY_LIST_HINT = {
    "cluster.sources": f"choose from {', '.join(SOURCES)}",
    "sync.ingress_classes": "give a class name, or leave the flag out for every class",
    "sync.domain_filters": "give a suffix such as local or example.test, or leave the flag out for every "
    "name",
}
# The settings recorded in the block's cluster line (controller/engine/record.py), by field of the record.
_RECORDED = {"cluster.name": "name", "cluster.server": "server", "cluster.node_name": "node"}


class UsageError(Exception):
    """str(e) is the whole message: what is wrong and how to fix it."""


@dataclass(frozen=True)
class Span:
    """The seconds a duration setting may be: ``low`` to ``high``, and 0 too when ``off`` (0 turns it off).

    Every duration has one: a value far outside what the setting is for is a typo or a test of the
    controller, and is refused rather than obeyed (a write delayed forever, a resync loop that burns a core).
    """

    low: float
    high: float
    off: bool = False

    def __str__(self) -> str:
        span = f"{self.low:g} to {self.high:g}"
        return f"0 (off) or {span}" if self.off else span

    def __contains__(self, value: float) -> bool:
        return (self.off and value == 0) or self.low <= value <= self.high


def split_list(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeatable flags that also take comma lists: --x a,b --x c -> (a, b, c)."""
    out: list[str] = []
    for value in values or ():
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(dict.fromkeys(out))


def check_value(
    name: str, kind: str, raw: Any, label: str, default: Any = None, span: Span | None = None
) -> None:
    """The value of setting `name` (its path in Config, e.g. ``file.marker``; of this `kind`; seconds within
    `span`), as given; raises UsageError."""
    if kind == "list":
        items = split_list(raw)
        if not items:
            raise UsageError(f"{label} is empty ({_EMPTY_LIST_HINT[name]})")
        if name == "cluster.sources":
            unknown = [s for s in items if s not in SOURCES]
            if unknown:
                known = ", ".join(SOURCES)
                raise UsageError(f"{label} {','.join(unknown)} is not known (choose from {known})")
        elif name == "sync.domain_filters":
            for suffix in items:
                check_suffix(suffix, label)
    elif kind == "path":
        if not str(raw).strip():
            raise UsageError(f"{label} is empty (give the path of a hosts file, e.g. {default})")
    elif kind == "seconds":
        if not math.isfinite(raw):
            allowed = f": {span}" if span is not None else ""
            raise UsageError(f"{label} must be a finite number of seconds{allowed}, got {raw}")
        if span is not None and raw not in span:
            raise UsageError(f"{label} must be {span} seconds, got {raw:g}")
    elif kind == "size":
        check_size(raw, label)
    elif name == "file.marker":
        try:
            validate_marker(raw)
        except HostsFileError as err:
            raise UsageError(f"{label}: {err}") from None
    elif name == "cluster.owner_daemonset" and raw:  # empty: not given (a template's unset value)
        check_owner(raw, label)
    elif name in _RECORDED:
        if raw and not valid_value(_RECORDED[name], raw):
            raise UsageError(f"{label} {raw!r} cannot be recorded in the block: {RULE}")
    elif name == "serve.bind_address":
        # Here, not at the top: `wait` imports this module and needs no prometheus_client.
        from controller.serve.metrics import parse_bind_address

        try:
            parse_bind_address(raw)
        except ValueError as err:
            raise UsageError(f"{label}: {err}") from None


MIN_SIZE, MAX_SIZE = 1 << 10, 4 << 30  # below 1 KiB a real file and a block hardly fit; over 4 GiB: a typo


def check_size(raw: str, label: str) -> int:
    """A size such as 64Mi, within MIN_SIZE..MAX_SIZE."""
    try:
        size = parse_size(raw)
    except ValueError as err:
        raise UsageError(f"{label}: {err}") from None
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(
            f"{label} {raw.strip()!r} is out of range: give {size_flag(MIN_SIZE)} to {size_flag(MAX_SIZE)} "
            "(e.g. 64Mi)"
        )
    return size


def check_suffix(suffix: str, label: str) -> None:
    """A --domain-filter value must be a domain a written name can end in: else it refuses every name."""
    bare = suffix.strip().strip(".")
    if not bare:
        raise UsageError(f"{label} {suffix!r} names no domain (give a suffix such as local or example.test)")
    if "*" in bare:
        example = bare.replace("*", "").strip(".") or "example.test"
        raise UsageError(
            f"{label} {suffix!r}: a suffix takes no wildcard, it already matches every name under it "
            f"(give {example})"
        )
    try:
        validate_hostname(bare)
    except HostsFileError as err:
        problem = str(err).partition(": ")[2] or str(err)
        raise UsageError(
            f"{label} {suffix!r} is not a domain suffix ({problem}); give one such as local or example.test"
        ) from None


def check_owner(raw: str, label: str) -> None:
    """--owner-daemonset is NAMESPACE/NAME of one DaemonSet."""
    namespace, slash, name = raw.partition("/")
    valid_name = DNS_SUBDOMAIN.fullmatch(name) and len(name) <= 253
    if not slash or not NAMESPACE.fullmatch(namespace) or not valid_name:
        raise UsageError(
            f"{label} {raw!r} is not NAMESPACE/NAME of a DaemonSet (e.g. hosts-sync/hosts-sync-k8s-hosts-"
            "controller: lower-case letters, digits, '-' and, in the name, '.')"
        )


def check_namespaces(raw: str | None, label: str) -> None:
    bad = [n for n in split_list([raw] if raw is not None else None) if not NAMESPACE.fullmatch(n)]
    if bad:
        raise UsageError(
            f"{label}: {bad[0]!r} is not a valid namespace name (lower-case letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit)"
        )


def check_resolves(bind_address: str, label: str) -> None:
    """A metrics host that does not resolve is refused at start, not after the start-up banner."""
    from controller.serve.httpserve import address_family
    from controller.serve.metrics import parse_bind_address

    address = parse_bind_address(bind_address)
    if address is None:
        return
    host, port = address
    family = address_family(host)  # the family it is served on
    try:
        socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        version = "IPv6" if family == socket.AF_INET6 else "IPv4"
        raise UsageError(
            f"{label}: host {host!r} does not resolve to an {version} address ({err}); give an address "
            "such as 127.0.0.1 or a name this machine resolves"
        ) from None
