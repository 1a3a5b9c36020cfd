"""kopf at the edge: login, the Ingress event handler and the listing hook, all read-only.

Only @kopf.on.event (and login) are used: they write nothing to the watched objects, no finalizers,
annotations or status (DESIGN.md, decision 1).
"""

from __future__ import annotations

import kopf
from kubernetes import client

from controller import kube, listing
from controller.plan import snapshot_from_ingress
from controller.state import ClusterState

INGRESSES = ("networking.k8s.io", "v1", "ingresses")


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


def build_registry(state: ClusterState, load_configuration) -> kopf.OperatorRegistry:
    """Handlers bound to one state; ``load_configuration()`` re-reads credentials (tokens rotate)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_) -> kopf.ConnectionInfo:
        return connection_info(load_configuration())

    @kopf.on.event(*INGRESSES, registry=registry)
    async def ingress_event(*, type: str | None, body: kopf.Body, **_) -> None:
        state.apply(type, snapshot_from_ingress(body))

    return registry


def observe_listings(state: ClusterState, plural: str = INGRESSES[2]):
    """Feed the state with listing progress of the watch streams; returns an unregister function."""

    def observer(resource_plural: str, scope: str | None, what: str, uid: str | None) -> None:
        if resource_plural != plural:
            return
        if what == "start":
            state.listing_started(scope)
        elif what == "object" and uid:
            state.listed_object(scope, uid)
        elif what == "complete":
            state.listing_complete(scope)

    return listing.observe(observer)


def operator_settings(verbose: bool) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # our own Events only, for refused hosts (controller/kube.py)
    settings.batching.batch_window = 0.01  # a single change should not wait 100 ms in kopf's batcher
    settings.watching.server_timeout = 300  # API-side watch timeout; reconnects are cheap
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    if not verbose:
        settings.posting.level = 100  # nothing below CRITICAL would be posted even if posting were on
    return settings
