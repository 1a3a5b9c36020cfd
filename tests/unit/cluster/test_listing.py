"""The watch-stream hook drops what no handler reads before kopf queues the event."""

from __future__ import annotations

import asyncio

from kopf._cogs.clients import watching

from controller.cluster import listing
from controller.cluster.sources import INGRESS, snapshot


def ingress() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "uid-web",
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"big": "json"}',
                "k8s-hosts-controller/ignore": "false",
            },
        },
        "spec": {"rules": [{"host": "web.local"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
    }


def test_events_reach_kopf_without_managed_fields_and_last_applied(monkeypatch):
    raw = [
        {"type": None, "object": ingress()},
        watching.Bookmark.LISTED,
        {"type": "MODIFIED", "object": ingress()},
    ]
    expected_snapshot = snapshot(INGRESS, ingress())

    async def fake_watch(**_):
        for event in raw:
            yield event

    monkeypatch.setattr(listing, "_original_infinite_watch", fake_watch)

    async def collect() -> list:
        return [e async for e in listing._observed_infinite_watch(resource=None, namespace="ns")]

    seen = asyncio.run(collect())
    assert seen[1] is watching.Bookmark.LISTED
    for event in (seen[0], seen[2]):
        meta = event["object"]["metadata"]
        assert "managedFields" not in meta
        assert meta["annotations"] == {"k8s-hosts-controller/ignore": "false"}
        assert snapshot(INGRESS, event["object"]) == expected_snapshot  # nothing we read is gone


def test_a_listing_of_another_groups_resource_does_not_list_ours(monkeypatch):
    """kopf's stream names its resource with its group: a listing of Istio's gateways (networking.istio.io)
    is not a listing of the Gateway API's, though both are kind Gateway, plural gateways."""
    from types import SimpleNamespace

    from controller.cluster import handlers
    from controller.cluster.sources import GATEWAY
    from controller.sync.state import ClusterState

    async def fake_watch(**_):
        yield {"type": None, "object": {"metadata": {"uid": "uid-1"}}}
        yield watching.Bookmark.LISTED

    async def stream(group: str) -> None:
        resource = SimpleNamespace(group=group, plural="gateways")
        async for _ in listing._observed_infinite_watch(resource=resource, namespace="ns"):
            pass

    monkeypatch.setattr(listing, "_original_infinite_watch", fake_watch)
    state = ClusterState([(GATEWAY.id, "ns")])
    unobserve = handlers.observe_listings(state, [GATEWAY])
    try:
        asyncio.run(stream("networking.istio.io"))
        assert not state.listed and state.unheard_scopes() == [(GATEWAY.id, "ns")]
        asyncio.run(stream(GATEWAY.group))
        assert not state.listed  # listed; its object is not processed yet
        assert state.unheard_scopes() == []
    finally:
        unobserve()
