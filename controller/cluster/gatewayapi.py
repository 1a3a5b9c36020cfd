"""Reading the Gateway API objects route attachment needs: listeners (of a Gateway or a ListenerSet), a
route's accepted parents, a ListenerSet's Gateway, a Namespace's labels. Pure: no kopf, no I/O; the rules
that use them are controller/sync/attach.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.model import Listener, ParentRef, Selector

GATEWAY_GROUP = "gateway.networking.k8s.io"
PARENT_KINDS = ("Gateway", "ListenerSet")


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


def listeners(spec: Mapping) -> tuple[Listener, ...]:
    """spec.listeners of a Gateway or ListenerSet (the API server fills allowedRoutes' defaults; a missing
    one means the spec's default, Same)."""
    found = []
    for raw in spec.get("listeners") or ():
        if not isinstance(raw, Mapping):
            continue
        allowed = raw.get("allowedRoutes") or {}
        namespaces = allowed.get("namespaces") or {}
        found.append(
            Listener(
                name=str(raw.get("name", "")),
                hostname=raw.get("hostname") or None,
                port=_port(raw.get("port")),
                protocol=str(raw.get("protocol", "")),
                namespaces=str(namespaces.get("from") or "Same"),
                selector=_selector(namespaces.get("selector")),
                kinds=tuple(
                    (str(k.get("group", GATEWAY_GROUP)), str(k.get("kind", "")))
                    for k in allowed.get("kinds") or ()
                    if isinstance(k, Mapping)
                ),
            )
        )
    return tuple(found)


def parent_ref(ref: Mapping, namespace: str) -> ParentRef | None:
    """A route's parentRef to a Gateway or ListenerSet; None for any other kind of parent."""
    kind = ref.get("kind") or "Gateway"
    if (ref.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP or kind not in PARENT_KINDS:
        return None
    return ParentRef(
        kind=kind,
        namespace=ref.get("namespace") or namespace,
        name=ref.get("name", ""),
        section=ref.get("sectionName") or None,
        port=_port(ref.get("port")),
    )


def _accepted(conditions: Iterable[Mapping] | None) -> bool:
    return any(c.get("type") == "Accepted" and c.get("status") == "True" for c in conditions or ())


def accepted_parents(body: Mapping) -> tuple[ParentRef, ...]:
    """The parents that accepted the route (its status) and that spec.parentRefs still names. A Gateway
    controller may leave a parent's status behind when the route's parentRefs move away from its Gateways
    (Traefik v3.6 updates only routes that still name one of them), so a status entry without its
    spec.parentRef is stale, not an attachment. The spec's entry is kept: it carries sectionName and port."""
    namespace = (body.get("metadata") or {}).get("namespace", "")
    named = [parent_ref(r or {}, namespace) for r in (body.get("spec") or {}).get("parentRefs") or ()]
    found: list[ParentRef] = []
    for status in (body.get("status") or {}).get("parents") or ():
        said = parent_ref(status.get("parentRef") or {}, namespace)
        if said is None or not _accepted(status.get("conditions")):
            continue
        found.extend(ref for ref in named if ref is not None and _same(ref, said))
    return tuple(dict.fromkeys(found))


def _same(spec_ref: ParentRef, status_ref: ParentRef) -> bool:
    """A status parentRef speaks of this spec parentRef (a status written without sectionName or port
    still speaks of the same parent)."""
    return (
        (spec_ref.kind, spec_ref.namespace, spec_ref.name)
        == (status_ref.kind, status_ref.namespace, status_ref.name)
        and (status_ref.section is None or status_ref.section == spec_ref.section)
        and (status_ref.port is None or status_ref.port == spec_ref.port)
    )


def listener_set_gateway(body: Mapping) -> tuple[str, str] | None:
    """The Gateway (namespace, name) a ListenerSet belongs to, once that Gateway accepted it (its status)."""
    ref = (body.get("spec") or {}).get("parentRef") or {}
    if (ref.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP or (ref.get("kind") or "Gateway") != "Gateway":
        return None
    if not _accepted((body.get("status") or {}).get("conditions")):
        return None
    namespace = (body.get("metadata") or {}).get("namespace", "")
    return (ref.get("namespace") or namespace, ref.get("name", ""))


def labels(body: Mapping) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((str(k), str(v)) for k, v in ((body.get("metadata") or {}).get("labels") or {}).items())
    )
