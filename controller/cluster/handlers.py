"""kopf at the edge: login, one event handler per watched resource, and the listing hook, all read-only.

Only @kopf.on.event (and login) are used: they write nothing to the watched objects, no finalizers,
annotations or status (docs/architecture.md, decision 1).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import kopf
from kubernetes import client

from controller.cluster import kube, listing, sources
from controller.cluster.apihealth import ApiHealth, explain
from controller.cluster.sources import Resource
from controller.cluster.streams import StreamHealth
from controller.model import ResourceId
from controller.sync.state import ClusterState


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert or None,
        insecure=not configuration.verify_ssl,
        token=kube.bearer_token(configuration),
        scheme="Bearer",
        certificate_path=configuration.cert_file or None,
        private_key_path=configuration.key_file or None,
        username=configuration.username or None,
        password=configuration.password or None,
    )


def build_registry(
    state: ClusterState,
    resources: Iterable[Resource],
    load_configuration: Callable[[], client.Configuration],
) -> kopf.OperatorRegistry:
    """Handlers bound to one state; ``load_configuration()`` re-reads credentials (tokens rotate)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_) -> kopf.ConnectionInfo:
        return connection_info(load_configuration())

    for resource in resources:
        register_source(registry, state, resource)
    return registry


def register_source(registry: kopf.OperatorRegistry, state: ClusterState, resource: Resource) -> None:
    async def on_event(*, type: str | None, body: kopf.Body, **_) -> None:
        state.apply(type, sources.snapshot(resource, body))

    kopf.on.event(
        resource.group, resource.version, resource.plural, registry=registry, id=f"{resource.plural}-to-hosts"
    )(on_event)


def observe_listings(state: ClusterState, resources: Iterable[Resource]) -> Callable[[], None]:
    """Feed the state with the listing progress of the watch streams; returns an unregister function."""
    watched = {r.id for r in resources}

    def observer(resource: ResourceId, namespace: str | None, what: str, uid: str | None) -> None:
        if resource not in watched:
            return
        scope = (resource, namespace)
        if what == "start":
            state.listing_started(scope)
        elif what == "object" and uid:
            state.listed_object(scope, uid)
        elif what == "complete":
            state.listing_complete(scope)

    return listing.observe(observer)


def observe_requests(streams: StreamHealth, resources: Iterable[Resource], server: str) -> Callable[[], None]:
    """Feed the stream health with how the list and watch requests of the sources end."""
    watched = {r.id for r in resources}

    def observer(resource: ResourceId, namespace: str | None, verb: str, error: BaseException | None) -> None:
        if resource not in watched:
            return
        if error is None:
            streams.answered(resource, namespace, verb)
        else:
            streams.failed(resource, namespace, verb, getattr(error, "status", None), explain(error, server))

    return listing.observe_requests(observer)


def observe_api(api_health: ApiHealth) -> Callable[[], None]:
    """Feed the API health with how every request kopf makes ends, discovery included."""

    def observer(
        request: int, event: str, method: str, url: str, collection: bool, error: BaseException | None
    ) -> None:
        if event == "start":
            api_health.started(request, method, url, collection)
        elif event == "attempt failed" and error is not None:
            api_health.attempt_failed(request, error)
        elif event == "headers":
            api_health.headers(request)
        elif event == "end":
            api_health.ended(request, error)
        elif event == "stream failed" and error is not None:
            api_health.stream_failed(method, url, error)

    return listing.observe_api(observer)


class RetryForever:
    """API retry delays without an end: a kind cluster may be restarted for minutes; the controller should
    wait for it (keeping the last known entries) instead of giving up and exiting (docs/architecture.md,
    decision 7)."""

    def __iter__(self) -> Iterator[float]:
        yield from (1.0, 1.0, 2.0, 3.0, 5.0)
        yield from itertools.repeat(10.0)


def operator_settings(verbose: bool) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # our own Events only, for refused hosts (controller/cluster/kube.py)
    # No cluster-wide watches of CRDs and namespaces: exact namespace names need none, and the
    # least-privilege RBAC (the sources' resources + events in the watched namespaces) does not allow them.
    settings.scanning.disabled = True
    # Memory at start-up (docs/benchmarks.md): kopf keeps a worker task (and the last event it saw) per
    # object until it idles this long (5 s by default), so after a big listing every object's full body
    # lives at once; ours have nothing to wait for once the event is handled.
    settings.queueing.idle_timeout = 0.05
    # The listing in pages: one page of parsed JSON at a time instead of the whole list.
    settings.watching.chunk_size = 500
    settings.watching.server_timeout = 300  # API-side watch timeout; reconnects are cheap
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    settings.networking.error_backoffs = RetryForever()
    if not verbose:
        settings.posting.level = 100  # nothing below CRITICAL would be posted even if posting were on
    return settings
