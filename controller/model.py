"""The data model shared by the sources, the state, the planner and the reporting: what is known about one
source object (Snapshot), why a hostname was refused (Rejection, and the reasons as constants).

Plain frozen dataclasses, no behaviour beyond a couple of derived properties: controller/cluster/sources.py
builds Snapshots from API objects, controller/sync/state.py keeps them, controller/sync/plan.py turns them
into entries and Rejections, controller/serve/metrics.py labels by reason, controller/cluster/kube.py posts
Events about Rejections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Why a hostname was refused: the `reason` label of the metrics, the [reason] of log lines and Events.
WILDCARD = "wildcard"
INVALID_HOSTNAME = "invalid-hostname"
INVALID_ADDRESS = "invalid-address"
INVALID_ANNOTATION = "invalid-annotation"
UNRESOLVABLE = "unresolvable"
DOMAIN_FILTER = "domain-filter"
SHADOWED = "shadowed"
CONFLICT = "conflict"
TOO_MANY_HOSTS = "too-many-hosts"
TOO_MANY_ADDRESSES = "too-many-addresses"
RESERVED_NAME = "reserved-name"
BLOCK_FULL = "block-full"  # over the object's fair share of the block's total bound
REASONS = (
    WILDCARD,
    INVALID_HOSTNAME,
    INVALID_ADDRESS,
    INVALID_ANNOTATION,
    UNRESOLVABLE,
    DOMAIN_FILTER,
    SHADOWED,
    CONFLICT,
    TOO_MANY_HOSTS,
    TOO_MANY_ADDRESSES,
    RESERVED_NAME,
    BLOCK_FULL,
)


@dataclass(frozen=True)
class Listener:
    """One listener of a Gateway or ListenerSet, as far as route attachment needs it (Gateway API spec)."""

    name: str
    hostname: str | None = None  # None: every name
    port: int | None = None
    protocol: str = ""
    namespaces: str = "Same"  # allowedRoutes.namespaces.from: Same, All or Selector
    selector: Selector | None = None  # allowedRoutes.namespaces.selector, when from is Selector
    kinds: tuple[tuple[str, str], ...] = ()  # allowedRoutes.kinds as (group, kind); empty: by protocol


@dataclass(frozen=True)
class Selector:
    """A Kubernetes label selector: matchLabels and matchExpressions (key, operator, values)."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class ParentRef:
    """An accepted parent of a route that spec.parentRefs still names: a Gateway or a ListenerSet."""

    kind: str  # "Gateway" or "ListenerSet"
    namespace: str
    name: str
    section: str | None = None  # sectionName: one listener by name
    port: int | None = None  # the listeners on this port


@dataclass(frozen=True)
class Snapshot:
    """What the planner needs to know about one source object (built by controller/cluster/sources.py)."""

    namespace: str
    name: str
    uid: str
    created: str  # RFC 3339 creationTimestamp: "2024-01-15T10:30:00Z" sorts as text
    hosts: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip
    lb_hostnames: tuple[str, ...] = ()  # status.loadBalancer.ingress[].hostname, resolved by the caller
    ingress_class: str | None = None
    kind: str = "Ingress"
    api_version: str = "networking.k8s.io/v1"
    target: tuple[str, ...] = ()  # addresses from the target annotation: they replace the status'
    parents: tuple[ParentRef, ...] = ()  # Gateway API routes: the parents that accepted them
    route_hosts: tuple[str, ...] | None = None  # a route's spec.hostnames (hosts adds the annotation's)
    listeners: tuple[Listener, ...] = ()  # a Gateway's or ListenerSet's listeners
    gateway: tuple[str, str] | None = None  # a ListenerSet's Gateway (namespace, name), once it accepted it
    labels: tuple[tuple[str, str], ...] = ()  # a Namespace's labels
    ignored: bool = False  # the ignore annotation
    problems: tuple[str, ...] = ()  # invalid annotations: the object is refused with these messages

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def has_address(self) -> bool:
        return bool(self.ips or self.lb_hostnames)


@dataclass(frozen=True, order=True)
class Rejection:
    owner: str
    host: str
    reason: str
    message: str = field(compare=False)
    uid: str = field(default="", compare=False)
