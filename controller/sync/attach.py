"""Gateway API attachment: which listeners a route attaches to, which names each of them serves, and so
which Gateway's addresses each name of a route gets. Pure: no kopf, no I/O.

The rules are the Gateway API spec's (HTTPRoute/GRPCRoute/TLSRoute ``hostnames``, Listener ``hostname``,
ParentRef ``sectionName``/``port``, Listener ``allowedRoutes``, ListenerSet):
- a parentRef (an ObjectRef: the parent's resource, namespace, name, sectionName, port) counts only when the
  route's status says that parent accepted it (controller/cluster/gatewayapi.py keeps those); parents are told
  apart by resource, never by kind; a ListenerSet counts only once its Gateway accepted it, and lends that
  Gateway's addresses;
- ``sectionName`` picks the listener of that name, ``port`` the listeners on that port (both: both match);
- a listener takes the route only if its ``allowedRoutes`` allow the route's namespace (Same: the listener's
  owner's namespace; All; Selector: the labels of the route's Namespace) and resource (``kinds``, or by
  protocol, read into route resources);
- a route name is served by a listener where the two hostnames intersect (``intersect``); the name written is
  the more specific of the two, so a route without hostnames, or with a wildcard, inherits a concrete listener
  hostname; a wildcard result (wildcard with wildcard, or no hostname on either side) is refused, naming the
  listener;
- each name gets the addresses of exactly the Gateways with a listener that serves it.
Names from the hostnames annotation are the user's own: they go to every Gateway the route attached to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from controller.model import WILDCARD, Listener, ObjectRef, Rejection, Selector, Snapshot

EVERY_NAME = "*"  # what a route without hostnames on a listener without hostname serves


def normalise(host: str) -> str:
    """Lowercase, one trailing dot dropped, and an internationalised name in its ASCII (punycode) form, so
    that ``Bücher.Example`` and ``xn--bcher-kva.example`` compare equal."""
    host = host.strip().lower()
    if host.endswith(".") and host != ".":
        host = host[:-1]
    if host.isascii():
        return host
    try:
        return ".".join(
            label if label == "*" or label.isascii() else label.encode("idna").decode("ascii")
            for label in host.split(".")
        )
    except UnicodeError:
        return host  # not a valid name: the planner refuses it as written


def intersect(route: str | None, listener: str | None) -> str | None:
    """The name a listener serves for one route hostname (None: the route names none; the listener's None:
    it has no hostname): the more specific of the two, EVERY_NAME when neither names one, None when they do
    not meet. A wildcard ``*.example.com`` matches names with one or more labels before ``example.com``,
    never ``example.com`` itself."""
    if route is None and listener is None:
        return EVERY_NAME
    if route is None or listener is None:
        return normalise(route if route is not None else listener)  # type: ignore[arg-type]
    r, l = normalise(route), normalise(listener)  # noqa: E741
    if r == l:
        return r
    if r.startswith("*.") and l.endswith(r[1:]):
        return l  # the listener's name (concrete, or a narrower wildcard) is within the route's wildcard
    if l.startswith("*.") and r.endswith(l[1:]):
        return r
    return None


def selects(selector: Selector, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector against a label set (an empty selector selects everything)."""
    if any(labels.get(k) != v for k, v in selector.labels):
        return False
    for key, operator, values in selector.expressions:
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # an unknown operator selects nothing, as the API server would refuse it
    return True


def allows(
    listener: Listener, route: Snapshot, home: str, namespaces: Mapping[str, Mapping[str, str]]
) -> bool:
    """The listener's allowedRoutes take the route: its namespace (``home``: the namespace of the Gateway or
    ListenerSet that has the listener) and its kind."""
    if listener.namespaces == "Same" and route.namespace != home:
        return False
    if listener.namespaces == "Selector":
        labels = namespaces.get(route.namespace)
        if labels is None or listener.selector is None or not selects(listener.selector, labels):
            return False
    if listener.namespaces not in ("Same", "All", "Selector"):
        return False
    return listener.kinds is None or route.resource in listener.kinds


def _listeners(ref: ObjectRef, listeners: Iterable[Listener]) -> list[Listener]:
    return [
        listener
        for listener in listeners
        if (not ref.section or listener.name == ref.section)
        and (ref.port is None or listener.port == ref.port)
    ]


def _addressed(route: Snapshot, hosts: Iterable[str], gateways: list[Snapshot]) -> Snapshot:
    """The route as the planner sees it: these names at these Gateways' addresses (a Gateway's own target
    annotation stands for its status addresses)."""
    return replace(
        route,
        hosts=tuple(sorted(hosts)),
        parents=(),
        route_hosts=None,
        ips=tuple(dict.fromkeys(ip for g in gateways for ip in (g.target or g.ips))),
        lb_hostnames=tuple(dict.fromkeys(n for g in gateways if not g.target for n in g.lb_hostnames)),
    )


def attach(
    route: Snapshot,
    lenders: Mapping[ObjectRef, Snapshot],
    namespaces: Mapping[str, Mapping[str, str]],
) -> tuple[list[Snapshot], list[Rejection], list[str]]:
    """One route: a snapshot per set of Gateways serving some of its names, refusals of the wildcard results,
    and notes on names served by several Gateways (for the log). ``lenders``: the Gateways and ListenerSets
    by their ObjectRef (the resource tells one from the other)."""
    served: dict[str, set[ObjectRef]] = {}  # name -> Gateways with a listener that serves it
    attached: set[ObjectRef] = set()
    refused: dict[str, str] = {}
    for ref in route.parents:
        owner = lenders.get(ref.whole)  # the Gateway or ListenerSet that has the listeners
        gateway_key = owner.gateway if owner else None  # the Gateway whose addresses they serve at
        if owner is None or gateway_key is None or gateway_key not in lenders:
            continue
        for listener in _listeners(ref, owner.listeners):
            if not allows(listener, route, owner.namespace, namespaces):
                continue
            attached.add(gateway_key)
            where = f"{owner.kind} {ref.namespace}/{ref.name} listener {listener.name!r}"
            for host in route.route_hosts or (None,):
                name = intersect(host, listener.hostname)
                if name is None:
                    continue
                if "*" in name:
                    refused.setdefault(name, _wildcard_message(name, host, listener, where))
                    continue
                served.setdefault(name, set()).add(gateway_key)
    rejections = [
        Rejection(route.owner, name, WILDCARD, message, route.uid) for name, message in refused.items()
    ]
    route_hosts = {normalise(h) for h in route.route_hosts or ()}
    for extra in route.hosts:
        if normalise(extra) not in route_hosts:
            served.setdefault(extra, set()).update(attached)
    if route.target:  # the target annotation replaces every Gateway's addresses: one snapshot
        return [replace(route, hosts=tuple(sorted(served)), parents=(), route_hosts=None)], rejections, []
    groups: dict[frozenset[ObjectRef], list[str]] = {}
    for name, keys in served.items():
        groups.setdefault(frozenset(keys), []).append(name)
    notes = [
        f"{route.kind} {route.owner}: {', '.join(sorted(names))} served by {len(keys)} Gateways "
        f"({', '.join(sorted(f'{k.namespace}/{k.name}' for k in keys))}): written at all their addresses"
        for keys, names in groups.items()
        if len(keys) > 1
    ]
    snaps = [_addressed(route, names, [lenders[k] for k in sorted(keys)]) for keys, names in groups.items()]
    if not snaps:  # attached nowhere yet: its names wait, like those of an object without an address
        waiting = [h for h in route.hosts if normalise(h) not in refused and "*" not in h]
        snaps = [_addressed(route, waiting, [])]
    return snaps, rejections, notes


def _wildcard_message(name: str, host: str | None, listener: Listener, where: str) -> str:
    if name == EVERY_NAME:
        return (
            f"the route names no hostname and {where} has none either: it serves every name, which a hosts "
            "file cannot list (name the hosts in spec.hostnames or on the listener)"
        )
    return (
        f"wildcard host {name!r} (route {host or 'without hostnames'!s} on {where}, hostname "
        f"{listener.hostname or 'none'}) cannot be written to a hosts file"
    )


def expand(snapshots: Iterable[Snapshot]) -> tuple[list[Snapshot], list[Rejection], list[str]]:
    """Every snapshot the planner turns into lines: routes split by the Gateways serving their names; the
    lenders (Gateways, ListenerSets, Namespaces) kept, for the planner skips them; anything else as it is."""
    snapshots = list(snapshots)
    lenders = {s.ref: s for s in snapshots if s.lends and not s.ignored}
    namespaces = {s.name: dict(s.labels) for s in snapshots if s.labels is not None}
    out: list[Snapshot] = []
    rejections: list[Rejection] = []
    notes: list[str] = []
    for snap in snapshots:
        if snap.route_hosts is None or snap.ignored or snap.problems:
            out.append(snap)
            continue
        routed, refused, said = attach(snap, lenders, namespaces)
        out.extend(routed)
        rejections.extend(refused)
        notes.extend(said)
    return out, rejections, notes
