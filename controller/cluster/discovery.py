"""Which optional resources the cluster serves: a ListenerSet is watched only where its CRD is installed, so
that a cluster without it neither blocks the first write (its listing would never come) nor logs errors."""

from __future__ import annotations

import logging

from kubernetes import client

from controller.cluster import kube
from controller.cluster.sources import Resource

log = logging.getLogger(__name__)
TIMEOUT = 10.0


def served(configuration: client.Configuration, resource: Resource, timeout: float = TIMEOUT) -> bool:
    """The API server lists ``resource`` in its group's discovery document (readable by every client)."""
    path = f"/apis/{resource.api_version}" if resource.group else f"/api/{resource.version}"
    try:
        status, body = kube.get_once(configuration, path, timeout)
    except Exception as err:  # any failure means: not known to be served
        log.warning(
            "cannot tell whether %s is served (%s); not watching it until a restart", resource.kind, err
        )
        return False
    if status == 404:
        return False  # no such group/version: the CRD is not installed, nothing to say
    if status != 200:
        log.warning(
            "cannot tell whether %s is served (HTTP %s); not watching it until a restart",
            resource.kind,
            status,
        )
        return False
    return any(r.get("name") == resource.plural for r in body.get("resources") or () if isinstance(r, dict))


def with_optional(
    configuration: client.Configuration, resources: tuple[Resource, ...], optional: tuple[Resource, ...]
) -> tuple[Resource, ...]:
    """``resources`` and those of ``optional`` (ListenerSets, with a Gateway API source) that the cluster
    serves."""
    found = [r for r in optional if r not in resources and served(configuration, r)]
    for resource in optional:
        if resource not in found and resource not in resources:
            log.info(
                "no %s resource in this cluster: not watched (routes attach to Gateways only)", resource.kind
            )
    return (*resources, *found)
