"""Sources: which Kubernetes resources give hostnames and addresses, and how one object becomes a Snapshot.

Selected like external-dns' --source: ingress (default), service, gateway-httproute, gateway-grpcroute,
gateway-tlsroute. Pure: no kopf, no I/O; the handlers feed plain object mappings in.

Annotations (on any source object):
  k8s-hosts-controller.io/ignore: "true"            leave the object out
  k8s-hosts-controller.io/target: "10.0.0.1[,fd00::1]"   use these addresses instead of the status'
  k8s-hosts-controller.io/hostnames: "a.local,b.local"   extra names (on a Service: the only names)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from controller.cluster import gatewayapi
from controller.engine.printable import printable
from controller.model import Snapshot

ANNOTATION_PREFIX = "k8s-hosts-controller.io/"
IGNORE = ANNOTATION_PREFIX + "ignore"
TARGET = ANNOTATION_PREFIX + "target"
HOSTNAMES = ANNOTATION_PREFIX + "hostnames"
GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


INGRESS = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
SERVICE = Resource("", "v1", "services", "Service")
GATEWAY = Resource(GATEWAY_GROUP, "v1", "gateways", "Gateway")
HTTPROUTE = Resource(GATEWAY_GROUP, "v1", "httproutes", "HTTPRoute")
GRPCROUTE = Resource(GATEWAY_GROUP, "v1", "grpcroutes", "GRPCRoute")
TLSROUTE = Resource(GATEWAY_GROUP, "v1", "tlsroutes", "TLSRoute")
# Lend routes listeners and labels (controller/sync/attach.py). ListenerSets are watched only where the
# cluster serves their CRD (controller/cluster/discovery.py); Namespaces, for allowedRoutes selectors.
LISTENERSET = Resource(GATEWAY_GROUP, "v1", "listenersets", "ListenerSet")
NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)

SOURCES: dict[str, tuple[Resource, ...]] = {
    "ingress": (INGRESS,),
    "service": (SERVICE,),
    "gateway-httproute": (HTTPROUTE, GATEWAY, NAMESPACE),
    "gateway-grpcroute": (GRPCROUTE, GATEWAY, NAMESPACE),
    "gateway-tlsroute": (TLSROUTE, GATEWAY, NAMESPACE),
}
ROUTE_KINDS = frozenset({HTTPROUTE.kind, GRPCROUTE.kind, TLSROUTE.kind})


def resources_for(sources: Iterable[str]) -> tuple[Resource, ...]:
    """The resources to watch for the selected sources, each once (routes need their Gateways)."""
    return tuple(dict.fromkeys(r for s in sources for r in SOURCES[s]))


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
        kind=resource.kind,
        api_version=resource.api_version,
        ignored=ignored,
        target=target or (),
        problems=problems,
    )


def ingress_snapshot(body: Mapping) -> Snapshot:
    spec = body.get("spec") or {}
    meta = body.get("metadata") or {}
    ips, names = _lb_status(((body.get("status") or {}).get("loadBalancer") or {}).get("ingress"))
    snap = _base(INGRESS, body, (r["host"] for r in spec.get("rules") or [] if r and r.get("host")))
    ingress_class = spec.get("ingressClassName") or (meta.get("annotations") or {}).get(
        "kubernetes.io/ingress.class"
    )
    return replace(snap, ips=ips, lb_hostnames=names, ingress_class=ingress_class)


def service_snapshot(body: Mapping) -> Snapshot:
    """Only LoadBalancer Services that name their hostnames in the annotation take part."""
    spec = body.get("spec") or {}
    snap = _base(SERVICE, body, ())
    if spec.get("type") != "LoadBalancer":
        return replace(snap, hosts=(), problems=())
    ips, names = _lb_status(((body.get("status") or {}).get("loadBalancer") or {}).get("ingress"))
    return replace(snap, ips=ips, lb_hostnames=names)


def gateway_snapshot(body: Mapping) -> Snapshot:
    """A Gateway gives addresses (status.addresses) to the routes attached to it, no names of its own."""
    snap = _base(GATEWAY, body, ())
    ips, names = [], []
    for address in (body.get("status") or {}).get("addresses") or []:
        kind, value = address.get("type") or "IPAddress", address.get("value") or ""
        if kind == "IPAddress" and value:
            ips.append(value)
        elif kind == "Hostname" and value:
            names.append(value)
    listeners = gatewayapi.listeners(body.get("spec") or {})
    return replace(snap, hosts=(), ips=tuple(ips), lb_hostnames=tuple(names), listeners=listeners)


def listenerset_snapshot(body: Mapping) -> Snapshot:
    """A ListenerSet lends its listeners to routes, at the addresses of the Gateway that accepted it."""
    snap = _base(LISTENERSET, body, ())
    listeners = gatewayapi.listeners(body.get("spec") or {})
    return replace(snap, hosts=(), listeners=listeners, gateway=gatewayapi.listener_set_gateway(body))


def namespace_snapshot(body: Mapping) -> Snapshot:
    """A Namespace lends its labels to allowedRoutes selectors."""
    meta = body.get("metadata") or {}
    return Snapshot(
        namespace="",
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        created=meta.get("creationTimestamp") or "",
        kind=NAMESPACE.kind,
        api_version=NAMESPACE.api_version,
        labels=gatewayapi.labels(body),
    )


def route_snapshot(resource: Resource, body: Mapping) -> Snapshot:
    """Names from spec.hostnames; parents are those that accepted the route and that spec.parentRefs still
    names (controller/cluster/gatewayapi.py); controller/sync/attach.py says which names each one serves."""
    hostnames = tuple((body.get("spec") or {}).get("hostnames") or ())
    snap = _base(resource, body, hostnames)
    return replace(snap, parents=gatewayapi.accepted_parents(body), route_hosts=hostnames)


def snapshot(resource: Resource, body: Mapping) -> Snapshot:
    if resource == INGRESS:
        return ingress_snapshot(body)
    if resource == SERVICE:
        return service_snapshot(body)
    if resource == GATEWAY:
        return gateway_snapshot(body)
    if resource == LISTENERSET:
        return listenerset_snapshot(body)
    if resource == NAMESPACE:
        return namespace_snapshot(body)
    return route_snapshot(resource, body)
