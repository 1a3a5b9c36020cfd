"""Sources: which Kubernetes resources give hostnames and addresses, and how one object becomes a Snapshot.

Selected like external-dns' --source. Each source is one declaration at the end of this module: the resources
it watches (API group, version, plural, kind), the reader that turns one of their objects into a Snapshot,
and so its RBAC rules (rules_for). The rest of the controller knows a resource by its ResourceId (group and
plural), never by its kind. The chart's RBAC rules and its values schema's list of sources are checked
against these declarations (tests/chart/test_chart_sources.py). Pure: no kopf, no I/O; the handlers feed
plain object mappings in.

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

from controller.engine.printable import printable
from controller.model import ObjectRef, ResourceId, Snapshot

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

    @cached_property
    def id(self) -> ResourceId:  # one instance, shared by all the resource's Snapshots
        return ResourceId(self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class Source:
    """One --source value and the resources it watches: the first names hosts, the others lend addresses."""

    name: str
    resources: tuple[Resource, ...]


def resources_for(sources: Iterable[str]) -> tuple[Resource, ...]:
    """The resources to watch for the selected sources, each once (routes need their Gateways)."""
    return tuple(dict.fromkeys(r for s in sources for r in SOURCES[s].resources))


def rules_for(sources: Iterable[str]) -> list[dict[str, list[str]]]:
    """The RBAC rules the selected sources need: the read verbs on their resources, a rule per API group
    (the chart renders the same rules, Events aside)."""
    groups: dict[str, list[str]] = {}
    for resource in resources_for(sources):
        groups.setdefault(resource.group, []).append(resource.plural)
    return [
        {"apiGroups": [g], "resources": plurals, "verbs": list(READ_VERBS)} for g, plurals in groups.items()
    ]


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in value.split(",") if p.strip())


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
    extra = _split(str(annotations.get(HOSTNAMES, "")))
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
    return replace(snap, hosts=(), ips=tuple(ips), lb_hostnames=tuple(names), lends=True)


def _gateway_ref(ref: Mapping, namespace: str) -> ObjectRef | None:
    """The Gateway a parentRef names (its group and kind default to the Gateway API's Gateway); None for any
    other kind of parent."""
    if (ref.get("group") or GATEWAY.group, ref.get("kind") or GATEWAY.kind) != (GATEWAY.group, GATEWAY.kind):
        return None
    return ObjectRef(GATEWAY.id, ref.get("namespace") or namespace, ref.get("name", ""))


def route_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """Names from spec.hostnames; parents are the Gateways that accepted the route (route status) and that
    spec.parentRefs still names. A Gateway controller may leave a parent's status behind when the route's
    parentRefs move away from its Gateways (Traefik v3.6 updates only routes that still name one of them), so
    a status entry without its spec.parentRef is stale, not an attachment."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace", "")
    spec = body.get("spec") or {}
    snap = _base(resource, body, spec.get("hostnames") or ())
    named = {_gateway_ref(ref or {}, namespace) for ref in spec.get("parentRefs") or []}
    parents = []
    for parent in (body.get("status") or {}).get("parents") or []:
        gateway = _gateway_ref(parent.get("parentRef") or {}, namespace)
        if gateway is None or gateway not in named:
            continue
        accepted = any(
            c.get("type") == "Accepted" and c.get("status") == "True" for c in parent.get("conditions") or []
        )
        if accepted:
            parents.append(gateway)
    return replace(snap, parents=tuple(dict.fromkeys(parents)))


def snapshot(resource: Resource, body: Mapping) -> Snapshot:
    return resource.read(resource, body)


# ---- the declarations: a new source is a Resource (if its resource is new) and a Source here -------------

INGRESS = Resource("networking.k8s.io", "v1", "ingresses", "Ingress", ingress_snapshot)
SERVICE = Resource("", "v1", "services", "Service", service_snapshot)
GATEWAY = Resource(GATEWAY_GROUP, "v1", "gateways", "Gateway", gateway_snapshot)
HTTPROUTE = Resource(GATEWAY_GROUP, "v1", "httproutes", "HTTPRoute", route_snapshot)
GRPCROUTE = Resource(GATEWAY_GROUP, "v1", "grpcroutes", "GRPCRoute", route_snapshot)
TLSROUTE = Resource(GATEWAY_GROUP, "v1", "tlsroutes", "TLSRoute", route_snapshot)

SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source("ingress", (INGRESS,)),
        Source("service", (SERVICE,)),
        Source("gateway-httproute", (HTTPROUTE, GATEWAY)),
        Source("gateway-grpcroute", (GRPCROUTE, GATEWAY)),
        Source("gateway-tlsroute", (TLSROUTE, GATEWAY)),
    )
}
