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
    """One object of one resource, as another object names it (a route's parent Gateway)."""

    resource: ResourceId
    namespace: str
    name: str


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
    parents: tuple[ObjectRef, ...] = ()  # Gateway API routes: the Gateways that accepted the route
    lends: bool = False  # names no hosts; lends its addresses to the objects that name it as a parent
    class_filtered: bool = True  # --ingress-class applies to it (ingress_class)
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
