"""Readiness from the watch streams (controller/cluster/streams.py) and how a kopf request is recognised as
the list
or watch of a scope (controller/cluster/listing.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from controller.cluster import handlers, listing
from controller.cluster.listing import collection_request
from controller.cluster.sources import GATEWAY
from controller.cluster.streams import StreamHealth
from controller.model import ResourceId
from controller.serve.health import Health

INGRESSES = ResourceId("networking.k8s.io", "ingresses")
SERVICES = ResourceId("", "services")


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        (
            "get",
            "/apis/networking.k8s.io/v1/namespaces/t/ingresses?watch=true&x=1",
            (INGRESSES, "t", "watch"),
        ),
        ("GET", "https://h:6443/apis/networking.k8s.io/v1/ingresses", (INGRESSES, None, "list")),
        ("get", "/api/v1/namespaces/t/services?limit=500", (SERVICES, "t", "list")),
        (  # the same plural in another group is another resource
            "get",
            "/apis/networking.istio.io/v1/namespaces/t/gateways",
            (ResourceId("networking.istio.io", "gateways"), "t", "list"),
        ),
        ("get", "/api/v1/namespaces/t/services/web", None),  # one object
        ("get", "/apis/networking.k8s.io/v1/namespaces/t/ingresses/web/status", None),
        ("post", "/api/v1/namespaces/t/events", None),
        ("get", "/version", None),
    ],
)
def test_collection_requests_are_recognised(method, url, expected):
    assert collection_request(method, url) == expected


def test_not_ready_until_every_watch_is_up_and_while_one_fails(caplog):
    health = Health()
    health.ready = True  # the writer synced the first listing
    streams = StreamHealth(health, [(INGRESSES, "a"), (INGRESSES, "b")])
    assert not health.serving and "not established" in health.why_not_ready()
    streams.answered(INGRESSES, "a", "list")
    streams.answered(INGRESSES, "a", "watch")
    assert not health.serving  # b is not watched yet
    with caplog.at_level(logging.INFO, logger="controller"):
        for _ in range(5):  # kopf retries: one log line per episode
            streams.failed(INGRESSES, "b", "watch", 403, 'cannot watch resource "ingresses"\nforged')
        assert not health.serving and streams.failing
        assert "cannot watch ingresses in namespace b (forbidden)" in health.why_not_ready()
        streams.answered(INGRESSES, "b", "watch")
    assert health.serving and not streams.failing
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "'watch' verb" in errors[0] and "\n" not in errors[0]
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_a_failing_relist_blocks_until_it_is_answered():
    health = Health()
    health.ready = True
    streams = StreamHealth(health, [(INGRESSES, None)])
    streams.answered(INGRESSES, None, "list")
    streams.answered(INGRESSES, None, "watch")
    assert health.serving
    streams.failed(INGRESSES, None, "list", None, "Cannot connect to host")
    assert not health.serving and "fails" in health.why_not_ready()
    streams.answered(INGRESSES, None, "list")
    assert health.serving


def test_streams_of_one_plural_in_two_groups_are_two_streams():
    """The Gateway API's gateways and Istio's: one failing must not be taken for the other, nor its answer."""
    ours, istio = (
        ResourceId("gateway.networking.k8s.io", "gateways"),
        ResourceId("networking.istio.io", "gateways"),
    )
    health = Health()
    health.ready = True
    streams = StreamHealth(health, [(ours, "a"), (istio, "a")])
    streams.answered(ours, "a", "watch")
    assert not health.serving  # Istio's watch is not answered yet
    streams.answered(istio, "a", "watch")
    assert health.serving
    streams.failed(istio, "a", "watch", 403, "forbidden")
    streams.answered(ours, "a", "watch")  # ours works; Istio's still fails
    assert not health.serving and streams.failing
    streams.answered(istio, "a", "watch")
    assert health.serving


class Answered:
    async def read(self) -> bytes:
        return b"{}"


def test_an_answer_for_another_groups_gateways_does_not_clear_ours(monkeypatch):
    """The request hook names the resource with its group: an answered list of Istio's gateways
    (networking.istio.io) says nothing about the Gateway API's gateways, whose list keeps failing."""
    health = Health()
    health.ready = True
    streams = StreamHealth(health, [(GATEWAY.id, "a")])
    streams.failed(GATEWAY.id, "a", "list", 403, "forbidden")

    async def answer(method, url, *args, logger, **kwargs):
        return Answered()

    monkeypatch.setattr(listing, "_original_request", answer)
    unobserve = handlers.observe_requests(streams, [GATEWAY], "https://h:6443")
    try:
        istio = "https://h:6443/apis/networking.istio.io/v1/namespaces/a/gateways?limit=500"
        asyncio.run(listing._observed_request("get", istio, logger=logging.getLogger("x")))
        assert not health.serving and "cannot list gateways in namespace a" in health.why_not_ready()
        ours = "https://h:6443/apis/gateway.networking.k8s.io/v1/namespaces/a/gateways?limit=500"
        asyncio.run(listing._observed_request("get", ours, logger=logging.getLogger("x")))
        assert "cannot list gateways" not in health.why_not_ready()
    finally:
        unobserve()
