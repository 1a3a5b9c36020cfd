"""The planner: cluster snapshots in, hosts entries and refusals out. Pure: no I/O, no kopf.

Rules (docs/architecture.md, decisions 5 and 6):
- only objects with a load-balancer address produce entries; the rest are pending, not refused;
- refused: wildcard or invalid hostnames, invalid addresses, unresolvable LB hostnames, the loopback names
  every system defines (localhost, its aliases, *.localhost: reserved-name, whether this file names them or
  not), names outside the domain filter, names already defined outside the managed block (never shadow the
  user's lines);
- an object names at most MAX_HOSTS_PER_OBJECT hosts: the names after that are refused (too-many-hosts), so
  one object with a huge hostnames annotation cannot make every sync slow;
- an object has at most MAX_ADDRESSES_PER_OBJECT addresses and writes at most MAX_LINES_PER_OBJECT lines
  (names x addresses): more addresses refuse all its names, more lines the names after the cap
  (too-many-addresses); both are checked before any line is built (docs/architecture.md, decision 11);
- one hostname claimed with different addresses: the oldest object wins (then namespace/name), the others
  are refused as conflicts; the same addresses from several objects give one line each address;
- the whole block has at most ``Bounds.lines`` lines and ``Bounds.bytes`` bytes, shared fairly
  (controller/sync/share.py): an object over its share writes its first names (sorted) that fit and the others
  are refused (block-full), so a greedy object cannot push anyone else's names out;
- an object whose load-balancer hostname has no answer yet (the lookup is still pending) and no last
  known address waits, like one without an address: it is not refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from controller.engine.entries import Entry, validate_address, validate_hostname
from controller.engine.errors import InvalidEntryError
from controller.engine.printable import printable
from controller.model import (
    CONFLICT,
    DOMAIN_FILTER,
    INVALID_ADDRESS,
    INVALID_ANNOTATION,
    INVALID_HOSTNAME,
    RESERVED_NAME,
    SHADOWED,
    TOO_MANY_ADDRESSES,
    TOO_MANY_HOSTS,
    UNRESOLVABLE,
    WILDCARD,
    Rejection,
    ResourceId,
    Snapshot,
)
from controller.sync.attach import expand
from controller.sync.share import Bounds, within_bounds

MAX_HOSTS_PER_OBJECT = 256  # far above real Ingresses (a Gateway API route allows 16 hostnames)
# One line per (address, name): 5,000 target addresses x 256 names made a million lines and held every other
# object back for 51 s. A load balancer has a few addresses (a Gateway's status allows 16).
MAX_ADDRESSES_PER_OBJECT = 16
MAX_LINES_PER_OBJECT = 1024

# Names every system resolves to itself: a line of ours would shadow them even when this file does not define
# them (RFC 6761 reserves localhost and every *.localhost name; the rest are the usual hosts-file aliases of
# Linux distributions and macOS).
RESERVED_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "localhost4",
        "localhost4.localdomain4",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "broadcasthost",
    }
)


def is_reserved(host: str) -> bool:
    """A loopback name that must never be shadowed (``host`` lowercased, as the planner has it)."""
    return host in RESERVED_NAMES or host.endswith(".localhost")


@dataclass(frozen=True)
class Plan:
    entries: tuple[Entry, ...]
    rejections: tuple[Rejection, ...]
    pending: tuple[str, ...]  # owners with hosts but no load-balancer address yet
    considered: int  # objects that passed the class filter
    size: int = 0  # bytes of the entry lines (LF line ends)
    notes: tuple[str, ...] = ()  # worth a log line: names that several Gateways serve


@dataclass(frozen=True)
class Filters:
    domains: tuple[str, ...] = ()  # suffixes, without a leading dot
    ingress_classes: tuple[str, ...] = ()

    @classmethod
    def create(cls, domains: Iterable[str] = (), ingress_classes: Iterable[str] = ()) -> Filters:
        return cls(
            domains=tuple(d.strip().strip(".").lower() for d in domains if d.strip().strip(".")),
            ingress_classes=tuple(c.strip() for c in ingress_classes if c.strip()),
        )

    def allows_class(self, ingress_class: str | None) -> bool:
        return not self.ingress_classes or ingress_class in self.ingress_classes

    def allows_domain(self, host: str) -> bool:
        return not self.domains or any(host == d or host.endswith("." + d) for d in self.domains)


def _too_many_addresses(snap: Snapshot, count: int | str) -> str:
    return (
        f"{TOO_MANY_ADDRESSES}:{snap.owner} has {count} addresses; at most {MAX_ADDRESSES_PER_OBJECT} per "
        "object are written (a line per address and name): choose them with the target annotation"
    )


def _status_entries(snap: Snapshot) -> int:
    return len(set(snap.ips)) + len(set(snap.lb_hostnames))


def lookups(snapshots: Iterable[Snapshot]) -> dict[str, str]:
    """The load-balancer hostnames the plan may need resolved, each with the object that wants it (the
    oldest, when several do: lookups are shared fairly between objects, controller/sync/resolve.py): none of
    an ignored object, of one whose target annotation replaces its status, or of one with more status entries
    than an object may have addresses (it is refused without resolving them)."""
    wanted: dict[str, str] = {}
    for s in sorted(snapshots, key=_age):
        if s.ignored or s.target or _status_entries(s) > MAX_ADDRESSES_PER_OBJECT:
            continue
        for name in s.lb_hostnames:
            wanted.setdefault(name, f"{s.kind} {s.owner}")
    return wanted


def _age(snap: Snapshot) -> tuple[str, str, str, str, ResourceId]:
    return snap.created, snap.namespace, snap.name, snap.kind, snap.resource


def _addresses(
    snap: Snapshot, resolved: Mapping[str, tuple[str, ...]], pending: frozenset[str]
) -> tuple[tuple[str, ...], str | None]:
    """The object's addresses (normalised, sorted), or a refusal reason with its message (LOOKUP_PENDING:
    not a refusal, the object waits for its lookups)."""
    count = _status_entries(snap)
    if count > MAX_ADDRESSES_PER_OBJECT:  # refused before any is parsed or resolved
        return (), _too_many_addresses(snap, f"{count:,}")
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for raw in snap.ips:
        try:  # the engine's rule, so that every address we accept can be written
            found.add(ipaddress.ip_address(validate_address(raw)))
        except InvalidEntryError:
            shown = printable(raw, 60)
            return (), f"{INVALID_ADDRESS}:load-balancer IP {shown!r} is not a plain IPv4 or IPv6 address"
    for name in snap.lb_hostnames:
        addrs = resolved.get(name, ())
        if not addrs and name in pending:
            return (), LOOKUP_PENDING
        if not addrs:
            return (), f"{UNRESOLVABLE}:load-balancer hostname {printable(name, 80)!r} did not resolve"
        found.update(ipaddress.ip_address(a) for a in addrs)
        if len(found) > MAX_ADDRESSES_PER_OBJECT:  # a name may resolve to many
            return (), _too_many_addresses(snap, f"more than {MAX_ADDRESSES_PER_OBJECT} resolved")
    ordered = sorted(found, key=lambda a: (a.version, a))
    return tuple(str(a) for a in ordered), None


LOOKUP_PENDING = "lookup-pending"


def _with_effective_addresses(snap: Snapshot) -> Snapshot:
    """The target annotation wins (a route's Gateway addresses are set by controller/sync/attach.py)."""
    if snap.target:
        return replace(snap, ips=snap.target, lb_hostnames=())
    return snap


def _host_refusal(host: str, filters: Filters, defined_outside: frozenset[str]) -> tuple[str, str] | None:
    if "*" in host:
        return WILDCARD, f"wildcard host {host!r} cannot be written to a hosts file"
    try:
        validate_hostname(host)
    except InvalidEntryError as err:
        return INVALID_HOSTNAME, str(err)
    if is_reserved(host):
        return RESERVED_NAME, f"host {host!r} is a loopback name every system defines; never shadowing it"
    if not filters.allows_domain(host):
        return DOMAIN_FILTER, f"host {host!r} is outside --domain-filter {','.join(filters.domains)}"
    if host in defined_outside:
        return SHADOWED, f"host {host!r} is already defined outside the managed block; not shadowing it"
    return None


def plan(
    snapshots: Iterable[Snapshot],
    *,
    defined_outside: frozenset[str] = frozenset(),
    resolved: Mapping[str, tuple[str, ...]] | None = None,
    pending: frozenset[str] = frozenset(),
    filters: Filters | None = None,
    bounds: Bounds | None = None,
) -> Plan:
    """``resolved``: load-balancer hostnames' addresses; ``pending``: those whose lookup has not answered
    yet (controller/sync/resolve.py's Answers)."""
    filters = filters or Filters()
    resolved = resolved or {}
    # Gateway API routes: each name at the Gateways that serve it (controller/sync/attach.py).
    snapshots, rejections, notes = expand(snapshots)
    pending_owners: list[str] = []
    claims: dict[str, tuple[tuple[str, ...], Snapshot]] = {}
    sharers: dict[str, list[Snapshot]] = {}  # younger objects claiming a name with the same addresses
    considered: set[tuple[ResourceId, str, str, str]] = set()  # a route split by Gateways is one object

    # Oldest first, so the first claim of a hostname is the winning one.
    for snap in sorted(snapshots, key=_age):
        if snap.lends or snap.ignored:
            continue  # Gateways, ListenerSets, Namespaces lend to routes; they name no hosts themselves
        if snap.class_filtered and not filters.allows_class(snap.ingress_class):
            continue
        considered.add((snap.resource, snap.namespace, snap.name, snap.uid))
        named = list(dict.fromkeys(h.strip().lower() for h in snap.hosts if h and h.strip()))
        hosts = sorted(named[:MAX_HOSTS_PER_OBJECT])
        if len(named) > MAX_HOSTS_PER_OBJECT:
            message = (
                f"{snap.owner} names {len(named)} hosts; only the first {MAX_HOSTS_PER_OBJECT} are used "
                "(split them over several objects)"
            )
            rejections.extend(
                Rejection(snap.owner, h, TOO_MANY_HOSTS, message, snap.uid)
                for h in named[MAX_HOSTS_PER_OBJECT:]
            )
        if snap.problems:
            message = "; ".join(snap.problems)
            rejections.extend(
                Rejection(snap.owner, h, INVALID_ANNOTATION, message, snap.uid)
                for h in hosts or ["(annotations)"]
            )
            continue
        if not hosts:
            continue
        snap = _with_effective_addresses(snap)
        if not snap.has_address:
            pending_owners.append(snap.owner)
            continue
        addresses, problem = _addresses(snap, resolved, pending)
        if problem == LOOKUP_PENDING:
            pending_owners.append(snap.owner)
            continue
        if problem:
            reason, message = problem.split(":", 1)
            rejections.extend(Rejection(snap.owner, h, reason, message, snap.uid) for h in hosts)
            continue
        names_allowed = MAX_LINES_PER_OBJECT // len(addresses)
        lines_message = (
            f"{snap.owner} would write {len(addresses)} addresses x its names, more than "
            f"{MAX_LINES_PER_OBJECT} lines: only the first {names_allowed} names (sorted) are written "
            "(split the names over several objects, or give them fewer addresses)"
        )
        for host in hosts:
            refusal = _host_refusal(host, filters, defined_outside)
            if refusal is None:
                if names_allowed == 0:
                    refusal = TOO_MANY_ADDRESSES, lines_message
                else:
                    names_allowed -= 1
            if refusal:
                rejections.append(Rejection(snap.owner, host, *refusal, uid=snap.uid))
                continue
            claim = claims.get(host)
            if claim is None:
                claims[host] = (addresses, snap)
            elif claim[0] != addresses:
                winner = claim[1]
                rejections.append(
                    Rejection(
                        snap.owner,
                        host,
                        CONFLICT,
                        f"host {host!r} is already claimed by {winner.owner} (older) "
                        f"with {', '.join(claim[0])}",
                        snap.uid,
                    )
                )
            else:  # same addresses from a younger object: covered by the winner's lines
                sharers.setdefault(host, []).append(snap)

    kept, size = within_bounds(claims, sharers, bounds or Bounds(), rejections)
    entries = tuple(
        Entry(hostname=host, address=addr, owner=snap.owner)
        for host, (addresses, snap) in sorted(kept.items())
        for addr in addresses
    )
    return Plan(
        entries=entries,
        rejections=tuple(sorted(rejections)),
        pending=tuple(pending_owners),
        considered=len(considered),
        size=size,
        notes=tuple(notes),
    )
