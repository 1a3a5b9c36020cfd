"""Reading the Gateway API objects route attachment needs: listeners (of a Gateway or a ListenerSet), a
route's accepted parents, a ListenerSet's Gateway, a Namespace's labels. Pure: no kopf, no I/O; the rules
that use them are controller/sync/attach.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.model import Listener, ObjectRef, ResourceId, Selector

GATEWAY_GROUP = "gateway.networking.k8s.io"
Kinds = Mapping[tuple[str, str], ResourceId]  # (API group, kind) -> the resource, where the API names a kind


def _port(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _selector(raw: Mapping | None) -> Selector | None:
    if not isinstance(raw, Mapping):
        return None
    labels = tuple(sorted((str(k), str(v)) for k, v in (raw.get("matchLabels") or {}).items()))
    expressions = tuple(
        (str(e.get("key", "")), str(e.get("operator", "")), tuple(str(v) for v in e.get("values") or ()))
        for e in raw.get("matchExpressions") or ()
        if isinstance(e, Mapping)
    )
    return Selector(labels, expressions)


def _kinds(
    allowed: Mapping, protocol: str, routes: Kinds, protocols: Mapping[str, tuple[ResourceId, ...]]
) -> tuple[ResourceId, ...] | None:
    """The route resources a listener takes: those of allowedRoutes.kinds that are ours (a kind of no source
    here matches none of our routes), else those of its protocol; None for a protocol the spec does not
    define (left to the Gateway's own status)."""
    named = [k for k in allowed.get("kinds") or () if isinstance(k, Mapping)]
    if named:
        found = (routes.get((str(k.get("group", GATEWAY_GROUP)), str(k.get("kind", "")))) for k in named)
        return tuple(dict.fromkeys(r for r in found if r is not None))
    return protocols.get(protocol.upper())


def listeners(
    spec: Mapping, routes: Kinds, protocols: Mapping[str, tuple[ResourceId, ...]]
) -> tuple[Listener, ...]:
    """spec.listeners of a Gateway or ListenerSet (the API server fills allowedRoutes' defaults; a missing
    one means the spec's default, Same). ``routes``: the route resources by (group, kind); ``protocols``:
    those a listener of each core protocol takes."""
    found = []
    for raw in spec.get("listeners") or ():
        if not isinstance(raw, Mapping):
            continue
        allowed = raw.get("allowedRoutes") or {}
        namespaces = allowed.get("namespaces") or {}
        protocol = str(raw.get("protocol", ""))
        found.append(
            Listener(
                name=str(raw.get("name", "")),
                hostname=raw.get("hostname") or None,
                port=_port(raw.get("port")),
                protocol=protocol,
                namespaces=str(namespaces.get("from") or "Same"),
                selector=_selector(namespaces.get("selector")),
                kinds=_kinds(allowed, protocol, routes, protocols),
            )
        )
    return tuple(found)


def parent_ref(ref: Mapping, namespace: str, parents: Kinds) -> ObjectRef | None:
    """A route's parentRef to one of ``parents`` (a Gateway or ListenerSet; group and kind default to the
    Gateway API's Gateway); None for any other kind of parent."""
    resource = parents.get((ref.get("group") or GATEWAY_GROUP, ref.get("kind") or "Gateway"))
    if resource is None:
        return None
    return ObjectRef(
        resource,
        namespace=ref.get("namespace") or namespace,
        name=ref.get("name", ""),
        section=ref.get("sectionName") or None,
        port=_port(ref.get("port")),
    )


def _accepted(conditions: Iterable[Mapping] | None) -> bool:
    return any(c.get("type") == "Accepted" and c.get("status") == "True" for c in conditions or ())


def accepted_parents(body: Mapping, parents: Kinds) -> tuple[ObjectRef, ...]:
    """The parents that accepted the route (its status) and that spec.parentRefs still names. A Gateway
    controller may leave a parent's status behind when the route's parentRefs move away from its Gateways
    (Traefik v3.6 updates only routes that still name one of them), so a status entry without its
    spec.parentRef is stale, not an attachment. The spec's entry is kept: it carries sectionName and port."""
    namespace = (body.get("metadata") or {}).get("namespace", "")
    spec_refs = (body.get("spec") or {}).get("parentRefs") or ()
    named = [parent_ref(r or {}, namespace, parents) for r in spec_refs]
    found: list[ObjectRef] = []
    for status in (body.get("status") or {}).get("parents") or ():
        said = parent_ref(status.get("parentRef") or {}, namespace, parents)
        if said is None or not _accepted(status.get("conditions")):
            continue
        found.extend(ref for ref in named if ref is not None and _same(ref, said))
    return tuple(dict.fromkeys(found))


def _same(spec_ref: ObjectRef, status_ref: ObjectRef) -> bool:
    """A status parentRef speaks of this spec parentRef (a status written without sectionName or port
    still speaks of the same parent)."""
    return (
        spec_ref.whole == status_ref.whole
        and (status_ref.section is None or status_ref.section == spec_ref.section)
        and (status_ref.port is None or status_ref.port == spec_ref.port)
    )


def listener_set_gateway(body: Mapping, parents: Kinds, gateway: ResourceId) -> ObjectRef | None:
    """The Gateway (of resource ``gateway``) a ListenerSet belongs to, once that Gateway accepted it (its
    status); its spec.parentRef names a Gateway by group and kind, which default to the Gateway API's."""
    ref = (body.get("spec") or {}).get("parentRef") or {}
    if parents.get((ref.get("group") or GATEWAY_GROUP, ref.get("kind") or "Gateway")) != gateway:
        return None
    if not _accepted((body.get("status") or {}).get("conditions")):
        return None
    namespace = (body.get("metadata") or {}).get("namespace", "")
    return ObjectRef(gateway, ref.get("namespace") or namespace, ref.get("name", ""))


def labels(body: Mapping) -> tuple[tuple[str, str], ...]:
    """An object's labels, sorted (a Namespace's, for allowedRoutes selectors)."""
    return tuple(
        sorted((str(k), str(v)) for k, v in ((body.get("metadata") or {}).get("labels") or {}).items())
    )
