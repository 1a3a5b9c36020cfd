"""The data model shared by the sources, the state, the planner and the reporting: which API resource an
object is of (ResourceId), what is known about one source object (Snapshot), why a hostname was refused
(Rejection, and the reasons as constants).

Plain frozen dataclasses, no behaviour beyond a couple of derived properties: controller/cluster/sources.py
declares the sources and builds Snapshots from API objects, controller/sync/state.py keeps them,
controller/sync/plan.py turns them into entries and Rejections, controller/serve/metrics.py labels by reason,
controller/cluster/kube.py posts Events about Rejections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

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


@dataclass(frozen=True, order=True)
class ResourceId:
    """Which API resource an object is of: its API group ("" for the core group) and its plural. The state,
    the stream health and the planner tell objects apart by it, never by kind: the Gateway API's Gateway and
    Istio's Gateway (networking.istio.io) share the kind and the plural, not the group."""

    group: str
    plural: str

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


class ObjectRef(NamedTuple):
    """One object of one resource, as another object names it: a route's parent (a Gateway or a ListenerSet,
    maybe narrowed to some of its listeners by sectionName and port), a ListenerSet's Gateway."""

    resource: ResourceId
    namespace: str
    name: str
    section: str | None = None  # a route's parentRef sectionName: one listener by name
    port: int | None = None  # a route's parentRef port: the listeners on this port

    @property
    def whole(self) -> ObjectRef:
        """The object itself, without the sectionName and port that narrow it to some listeners."""
        return ObjectRef(self.resource, self.namespace, self.name)


@dataclass(frozen=True)
class Listener:
    """One listener of a Gateway or ListenerSet, as far as route attachment needs it (Gateway API spec)."""

    name: str
    hostname: str | None = None  # None: every name
    port: int | None = None
    protocol: str = ""
    namespaces: str = "Same"  # allowedRoutes.namespaces.from: Same, All or Selector
    selector: Selector | None = None  # allowedRoutes.namespaces.selector, when from is Selector
    # The route resources it takes: allowedRoutes.kinds, or those of its protocol (read by
    # controller/cluster/gatewayapi.py); None: any (an implementation-specific protocol is left to the
    # Gateway's own status).
    kinds: tuple[ResourceId, ...] | None = None


@dataclass(frozen=True)
class Selector:
    """A Kubernetes label selector: matchLabels and matchExpressions (key, operator, values)."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """What the planner needs to know about one source object (built by controller/cluster/sources.py, whose
    declarations set the resource and the role fields; the defaults describe an Ingress)."""

    namespace: str
    name: str
    uid: str
    created: str  # RFC 3339 creationTimestamp: "2024-01-15T10:30:00Z" sorts as text
    hosts: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip
    lb_hostnames: tuple[str, ...] = ()  # status.loadBalancer.ingress[].hostname, resolved by the caller
    ingress_class: str | None = None
    resource: ResourceId = ResourceId("networking.k8s.io", "ingresses")  # the identity; kind is for people
    kind: str = "Ingress"  # shown: the Events' involvedObject, the watched_objects metric
    api_version: str = "networking.k8s.io/v1"
    target: tuple[str, ...] = ()  # addresses from the target annotation: they replace the status'
    parents: tuple[ObjectRef, ...] = ()  # Gateway API routes: the parents that accepted the route
    lends: bool = False  # names no hosts; lends addresses, listeners or labels to the routes that attach
    class_filtered: bool = True  # --ingress-class applies to it (ingress_class)
    route_hosts: tuple[str, ...] | None = None  # a route's spec.hostnames (hosts adds the annotation's)
    listeners: tuple[Listener, ...] = ()  # a Gateway's or ListenerSet's listeners
    # The Gateway whose addresses its listeners serve: a Gateway's own; a ListenerSet's, once that Gateway
    # accepted it; None: they serve nothing.
    gateway: ObjectRef | None = None
    labels: tuple[tuple[str, str], ...] | None = None  # a Namespace's labels (None: not a Namespace)
    ignored: bool = False  # the ignore annotation
    problems: tuple[str, ...] = ()  # invalid annotations: the object is refused with these messages

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.resource, self.namespace, self.name)

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
