"""Readiness from the watch streams (controller/cluster/streams.py) and how a kopf request is recognised as
the list
or watch of a scope (controller/cluster/listing.py)."""

from __future__ import annotations

import logging

import pytest

from controller.cluster.listing import collection_request
from controller.cluster.streams import StreamHealth
from controller.serve.metrics import Health


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        (
            "get",
            "/apis/networking.k8s.io/v1/namespaces/t/ingresses?watch=true&x=1",
            ("ingresses", "t", "watch"),
        ),
        ("GET", "https://h:6443/apis/networking.k8s.io/v1/ingresses", ("ingresses", None, "list")),
        ("get", "/api/v1/namespaces/t/services?limit=500", ("services", "t", "list")),
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
    streams = StreamHealth(health, [("ingresses", "a"), ("ingresses", "b")])
    assert not health.serving and "not established" in health.why_not_ready()
    streams.answered("ingresses", "a", "list")
    streams.answered("ingresses", "a", "watch")
    assert not health.serving  # b is not watched yet
    with caplog.at_level(logging.INFO, logger="k8s-hosts-controller"):
        for _ in range(5):  # kopf retries: one log line per episode
            streams.failed("ingresses", "b", "watch", 403, 'cannot watch resource "ingresses"\nforged')
        assert not health.serving and streams.failing
        assert "cannot watch ingresses in namespace b (forbidden)" in health.why_not_ready()
        streams.answered("ingresses", "b", "watch")
    assert health.serving and not streams.failing
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "'watch' verb" in errors[0] and "\n" not in errors[0]
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_a_failing_relist_blocks_until_it_is_answered():
    health = Health()
    health.ready = True
    streams = StreamHealth(health, [("ingresses", None)])
    streams.answered("ingresses", None, "list")
    streams.answered("ingresses", None, "watch")
    assert health.serving
    streams.failed("ingresses", None, "list", None, "Cannot connect to host")
    assert not health.serving and "fails" in health.why_not_ready()
    streams.answered("ingresses", None, "list")
    assert health.serving
