"""Sources: which Kubernetes resources give hostnames and addresses, and how one object becomes a Snapshot.

Selected like external-dns' --source. Each source is one declaration at the end of this module: the resources
it watches (API group, version, plural, kind), the reader that turns one of their objects into a Snapshot,
and so its RBAC rules (rules_for; cluster_rules_for for a cluster-scoped one, the Namespaces whose labels
allowedRoutes selectors read). A source may watch optional resources (ListenerSets) only where the cluster
serves them (controller/cluster/discovery.py); they are granted all the same. The rest of the controller knows
a resource by its ResourceId (group and plural), never by its kind; where the API names a kind (a route's
parentRef, a listener's allowedRoutes.kinds) it is translated here (PARENTS, ROUTE_KINDS, PROTOCOL_ROUTES).
The chart's RBAC rules and its values schema's list of sources are checked against these declarations
(tests/chart/test_chart_sources.py). Pure: no kopf, no I/O; the handlers feed plain object mappings in.

Annotations (on any source object):
  k8s-hosts-controller.io/ignore: "true"            leave the object out
  k8s-hosts-controller.io/target: "10.0.0.1[,fd00::1]"   use these addresses instead of the status'
  k8s-hosts-controller.io/hostnames: "a.local,b.local"   extra names (on a Service: the only names)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from controller.cluster import gatewayapi
from controller.engine.printable import printable
from controller.model import ResourceId, Snapshot

ANNOTATION_PREFIX = "k8s-hosts-controller.io/"
IGNORE = ANNOTATION_PREFIX + "ignore"
TARGET = ANNOTATION_PREFIX + "target"
HOSTNAMES = ANNOTATION_PREFIX + "hostnames"
GATEWAY_GROUP = "gateway.networking.k8s.io"
READ_VERBS = ("get", "list", "watch")  # all the controller does with a source's resources


@dataclass(frozen=True)
class Resource:
    """One watched API resource: where the API serves it, and how one of its objects is read."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    read: Callable[[Resource, Mapping], Snapshot] = field(compare=False, repr=False)
    namespaced: bool = True  # False: watched once, cluster-wide, and granted by a ClusterRole
    verbs: tuple[str, ...] = READ_VERBS  # what the controller does with its objects (its RBAC rule)

    @cached_property
    def id(self) -> ResourceId:  # one instance, shared by all the resource's Snapshots
        return ResourceId(self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class Source:
    """One --source value and the resources it watches: the first names hosts, the others lend addresses,
    listeners or labels. ``optional``: watched only where the cluster serves them (controller/cluster/
    discovery.py), granted all the same."""

    name: str
    resources: tuple[Resource, ...]
    optional: tuple[Resource, ...] = ()


def resources_for(sources: Iterable[str]) -> tuple[Resource, ...]:
    """The resources to watch for the selected sources, each once (routes need their Gateways)."""
    return tuple(dict.fromkeys(r for s in sources for r in SOURCES[s].resources))


def optional_for(sources: Iterable[str]) -> tuple[Resource, ...]:
    """The resources the selected sources watch where the cluster serves them, each once."""
    return tuple(dict.fromkeys(r for s in sources for r in SOURCES[s].optional))


def _rules(resources: Iterable[Resource]) -> list[dict[str, list[str]]]:
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for resource in resources:
        groups.setdefault((resource.group, resource.verbs), []).append(resource.plural)
    return [
        {"apiGroups": [g], "resources": plurals, "verbs": list(verbs)}
        for (g, verbs), plurals in groups.items()
    ]


def _granted(sources: Iterable[str]) -> tuple[Resource, ...]:
    sources = list(sources)
    return (*resources_for(sources), *optional_for(sources))


def rules_for(sources: Iterable[str]) -> list[dict[str, list[str]]]:
    """The RBAC rules the selected sources need in the watched namespaces: the verbs on their namespaced
    resources, optional ones included, a rule per API group (the chart's Role or ClusterRole renders the same
    rules, Events aside)."""
    return _rules(r for r in _granted(sources) if r.namespaced)


def cluster_rules_for(sources: Iterable[str]) -> list[dict[str, list[str]]]:
    """The RBAC rules on cluster-scoped resources the selected sources need (Namespaces' labels for
    allowedRoutes selectors): a ClusterRole even when the controller watches some namespaces only (the
    chart's clusterrole-namespaces.yaml)."""
    return _rules(r for r in _granted(sources) if not r.namespaced)


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in value.split(",") if p.strip())


def _absolute(host: str) -> str:
    """A name written absolute, with one trailing dot as DNS tools write it, without the dot; two dots or a
    lone dot stay as they are (and are refused as invalid)."""
    return host[:-1] if host.endswith(".") and not host.endswith("..") and host != "." else host


def _annotations(meta: Mapping) -> tuple[bool, tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]]:
    """(ignored, target addresses or None, extra hostnames, problems) from the object's annotations."""
    annotations = meta.get("annotations") or {}
    problems: list[str] = []
    ignore = str(annotations.get(IGNORE, "")).strip().lower()
    if ignore not in ("", "true", "false"):
        problems.append(f"{IGNORE}={printable(repr(ignore), 60)} is not true or false")
    target: tuple[str, ...] | None = None
    if TARGET in annotations:
        target = _split(str(annotations[TARGET]))
        bad = [t for t in target if not _is_ip(t)]
        if bad or not target:
            shown = printable(repr(str(annotations[TARGET])), 120)  # the value may be 256 kB
            problems.append(f"{TARGET}={shown} is not a comma list of IP addresses")
            target = None
    extra = tuple(_absolute(h) for h in _split(str(annotations.get(HOSTNAMES, ""))))
    return ignore == "true", target, extra, tuple(problems)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _lb_status(items: Iterable[Mapping] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(ips, hostnames) of a status.loadBalancer.ingress list; an entry's ip wins over its hostname."""
    ips, names = [], []
    for item in items or ():
        if not item:
            continue
        if item.get("ip"):
            ips.append(item["ip"])
        elif item.get("hostname"):
            names.append(item["hostname"])
    return tuple(ips), tuple(names)


def _base(resource: Resource, body: Mapping, hosts: Iterable[str]) -> Snapshot:
    meta = body.get("metadata") or {}
    ignored, target, extra, problems = _annotations(meta)
    return Snapshot(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        created=meta.get("creationTimestamp") or "",
        hosts=tuple(dict.fromkeys((*hosts, *extra))),
        resource=resource.id,
        kind=resource.kind,
        api_version=resource.api_version,
        class_filtered=False,
        ignored=ignored,
        target=target or (),
        problems=problems,
    )


def ingress_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """Names from spec.rules[].host, addresses from status.loadBalancer; --ingress-class applies."""
    spec = body.get("spec") or {}
    meta = body.get("metadata") or {}
    ips, names = _lb_status(((body.get("status") or {}).get("loadBalancer") or {}).get("ingress"))
    snap = _base(resource, body, (r["host"] for r in spec.get("rules") or [] if r and r.get("host")))
    ingress_class = spec.get("ingressClassName") or (meta.get("annotations") or {}).get(
        "kubernetes.io/ingress.class"
    )
    return replace(snap, ips=ips, lb_hostnames=names, ingress_class=ingress_class, class_filtered=True)


def service_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """Only LoadBalancer Services that name their hostnames in the annotation take part."""
    spec = body.get("spec") or {}
    snap = _base(resource, body, ())
    if spec.get("type") != "LoadBalancer":
        return replace(snap, hosts=(), problems=())
    ips, names = _lb_status(((body.get("status") or {}).get("loadBalancer") or {}).get("ingress"))
    return replace(snap, ips=ips, lb_hostnames=names)


def gateway_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """A Gateway gives addresses (status.addresses) to the routes attached to it, no names of its own."""
    snap = _base(resource, body, ())
    ips, names = [], []
    for address in (body.get("status") or {}).get("addresses") or []:
        kind, value = address.get("type") or "IPAddress", address.get("value") or ""
        if kind == "IPAddress" and value:
            ips.append(value)
        elif kind == "Hostname" and value:
            names.append(value)
    listeners = gatewayapi.listeners(body.get("spec") or {}, ROUTE_KINDS, PROTOCOL_ROUTES)
    return replace(
        snap,
        hosts=(),
        ips=tuple(ips),
        lb_hostnames=tuple(names),
        listeners=listeners,
        gateway=snap.ref,  # its listeners serve at its own addresses
        lends=True,
    )


def listenerset_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """A ListenerSet lends its listeners to routes, at the addresses of the Gateway that accepted it (none
    until then)."""
    snap = _base(resource, body, ())
    gateway = gatewayapi.listener_set_gateway(body, PARENTS, GATEWAY.id)
    listeners = gatewayapi.listeners(body.get("spec") or {}, ROUTE_KINDS, PROTOCOL_ROUTES)
    return replace(snap, hosts=(), listeners=listeners, gateway=gateway, lends=True)


def namespace_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """A Namespace lends its labels to allowedRoutes selectors."""
    meta = body.get("metadata") or {}
    return Snapshot(
        namespace="",
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        created=meta.get("creationTimestamp") or "",
        resource=resource.id,
        kind=resource.kind,
        api_version=resource.api_version,
        class_filtered=False,
        lends=True,
        labels=gatewayapi.labels(body),
    )


def route_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """Names from spec.hostnames; parents are those that accepted the route and that spec.parentRefs still
    names (controller/cluster/gatewayapi.py); controller/sync/attach.py says which names each one serves."""
    hostnames = tuple((body.get("spec") or {}).get("hostnames") or ())
    snap = _base(resource, body, hostnames)
    return replace(snap, parents=gatewayapi.accepted_parents(body, PARENTS), route_hosts=hostnames)


def snapshot(resource: Resource, body: Mapping) -> Snapshot:
    return resource.read(resource, body)


# ---- the declarations: a new source is a Resource (if its resource is new) and a Source here -------------

INGRESS = Resource("networking.k8s.io", "v1", "ingresses", "Ingress", ingress_snapshot)
SERVICE = Resource("", "v1", "services", "Service", service_snapshot)
GATEWAY = Resource(GATEWAY_GROUP, "v1", "gateways", "Gateway", gateway_snapshot)
HTTPROUTE = Resource(GATEWAY_GROUP, "v1", "httproutes", "HTTPRoute", route_snapshot)
GRPCROUTE = Resource(GATEWAY_GROUP, "v1", "grpcroutes", "GRPCRoute", route_snapshot)
TLSROUTE = Resource(GATEWAY_GROUP, "v1", "tlsroutes", "TLSRoute", route_snapshot)
# Lend routes listeners and labels (controller/sync/attach.py). ListenerSets are watched only where the
# cluster serves their CRD; Namespaces (list and watch, cluster-wide) for allowedRoutes selectors.
LISTENERSET = Resource(GATEWAY_GROUP, "v1", "listenersets", "ListenerSet", listenerset_snapshot)
NAMESPACE = Resource(
    "", "v1", "namespaces", "Namespace", namespace_snapshot, namespaced=False, verbs=("list", "watch")
)

SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source("ingress", (INGRESS,)),
        Source("service", (SERVICE,)),
        Source("gateway-httproute", (HTTPROUTE, GATEWAY, NAMESPACE), (LISTENERSET,)),
        Source("gateway-grpcroute", (GRPCROUTE, GATEWAY, NAMESPACE), (LISTENERSET,)),
        Source("gateway-tlsroute", (TLSROUTE, GATEWAY, NAMESPACE), (LISTENERSET,)),
    )
}

# What a route's parentRef (group, kind) may name, and a listener's allowedRoutes.kinds: translated to the
# resources' identities where the API names a kind (controller/cluster/gatewayapi.py).
PARENTS = {(r.group, r.kind): r.id for r in (GATEWAY, LISTENERSET)}
ROUTE_KINDS = {(r.group, r.kind): r.id for r in (HTTPROUTE, GRPCROUTE, TLSROUTE)}
# The routes a listener takes by its protocol when allowedRoutes.kinds is empty (the Gateway API's core
# protocols: TCPRoute and UDPRoute are no source here, so such a listener takes none of ours); another
# protocol is implementation-specific: left to the Gateway's own status.
PROTOCOL_ROUTES: dict[str, tuple[ResourceId, ...]] = {
    "HTTP": (HTTPROUTE.id, GRPCROUTE.id),
    "HTTPS": (HTTPROUTE.id, GRPCROUTE.id),
    "TLS": (TLSROUTE.id,),
    "TCP": (),
    "UDP": (),
}
