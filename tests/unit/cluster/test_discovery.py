"""Is an optional resource served (controller/cluster/discovery.py), asked of a small real HTTP server."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client

from controller.cluster import discovery, sources

ANSWERS: dict[str, tuple[int, dict]] = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS.get(self.path, (404, {"kind": "Status", "code": 404}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def configuration() -> Iterator[client.Configuration]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield configuration
    finally:
        server.shutdown()
        server.server_close()
        ANSWERS.clear()


GATEWAY_PATH = "/apis/gateway.networking.k8s.io/v1"


def test_listener_sets_are_watched_where_discovery_lists_them(configuration, caplog):
    ANSWERS[GATEWAY_PATH] = (200, {"resources": [{"name": "gateways"}, {"name": "listenersets"}]})
    resources, optional = (
        sources.resources_for(["gateway-httproute"]),
        sources.optional_for(["gateway-httproute"]),
    )
    assert discovery.with_optional(configuration, resources, optional) == (*resources, sources.LISTENERSET)


@pytest.mark.parametrize(
    "answer", [(200, {"resources": [{"name": "gateways"}, {"name": "listenersets/status"}]}), None]
)
def test_no_listener_set_crd_is_no_error(configuration, caplog, answer):
    if answer:
        ANSWERS[GATEWAY_PATH] = answer
    resources, optional = (
        sources.resources_for(["gateway-httproute"]),
        sources.optional_for(["gateway-httproute"]),
    )
    with caplog.at_level(logging.INFO):
        assert discovery.with_optional(configuration, resources, optional) == resources
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_an_unanswered_discovery_is_a_warning_not_a_stall(caplog):
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: refused
    with caplog.at_level(logging.INFO):
        assert not discovery.served(configuration, sources.LISTENERSET, timeout=2)
    assert any(r.levelno == logging.WARNING and "ListenerSet" in r.getMessage() for r in caplog.records)


def test_without_a_gateway_source_nothing_is_asked(caplog):
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    resources, optional = sources.resources_for(["ingress"]), sources.optional_for(["ingress"])
    with caplog.at_level(logging.INFO):
        assert discovery.with_optional(configuration, resources, optional) == resources
    assert caplog.records == []
