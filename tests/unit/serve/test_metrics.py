"""parse_bind_address and the /metrics, /healthz, /readyz server on a real loopback port."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller import __version__
from controller.model import CONFLICT, REASONS, WILDCARD
from controller.serve.health import Health
from controller.serve.metrics import Metrics, parse_bind_address, serve

PREFIX = "k8s_hosts_controller_"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (":8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::]:8080", ("::", 8080)),
        ("localhost:1", ("localhost", 1)),
        (":65535", ("0.0.0.0", 65535)),
        (":0", ("0.0.0.0", 0)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        (" :8080 ", ("0.0.0.0", 8080)),
        ("0", None),
        ("", None),
        ("  ", None),
        ("[fd00::1]:80", ("fd00::1", 80)),
        ("LocalHost:80", ("localhost", 80)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_parse_bind_address(value, expected):
    assert parse_bind_address(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        *["8080", ":65536", ":-1", "host:", "host:http", "127.0.0.1", ":80a", "[::1]"],
        # found by trying to break it: each passed and failed after the start-up banner
        *["127.0.0.1:²", ":٨٠", "::8080", "::1:9000", "[nope]:1", "999.1.1.1:0", "1.2.3:0", "no such host:0"],
        *["host_name:1", "*:8080", ":+80", ": 80", ":000080"],
    ],
)
def test_parse_bind_address_errors(value):
    with pytest.raises(ValueError, match="bind address"):
        parse_bind_address(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def running() -> Iterator[tuple[str, Metrics, Health]]:
    metrics, health = Metrics(), Health()
    port = free_port()
    stop = serve(("127.0.0.1", port), metrics, health)
    try:
        yield f"http://127.0.0.1:{port}", metrics, health
    finally:
        stop()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams: dict, family: str, name: str, **labels) -> float:
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((family, name, labels))


def test_metrics_endpoint_exposes_the_documented_metrics(running):
    base, _, _ = running
    status, text = get(base + "/metrics")
    assert status == 200
    fams = families(text)
    for name in [
        "managed_entries",
        "watched_objects",
        "writes",
        "sync_duration_seconds",
        "event_to_file_seconds",
        "rejected_hosts",
        "rejections",
        "last_sync_timestamp_seconds",
        "ready",
        "hosts_file_stale",
        "write_failing",
        "lock_timeouts",
        "build_info",
    ]:
        assert PREFIX + name in fams, name
    assert fams[PREFIX + "writes"].type == "counter"
    assert fams[PREFIX + "sync_duration_seconds"].type == "histogram"
    assert fams[PREFIX + "managed_entries"].type == "gauge"
    # every label value is present from the start, at zero
    for result in ("written", "unchanged", "error"):
        assert sample(fams, PREFIX + "writes", PREFIX + "writes_total", result=result) == 0
    for reason in REASONS:
        assert sample(fams, PREFIX + "rejected_hosts", PREFIX + "rejected_hosts", reason=reason) == 0
        assert sample(fams, PREFIX + "rejections", PREFIX + "rejections_total", reason=reason) == 0
    assert sample(fams, PREFIX + "watched_objects", PREFIX + "watched_objects", kind="Ingress") == 0
    assert sample(fams, PREFIX + "build_info", PREFIX + "build_info", version=__version__) == 1


def test_metrics_follow_changes(running):
    base, metrics, _ = running
    metrics.managed_entries.set(7)
    metrics.writes.labels("written").inc()
    metrics.writes.labels("unchanged").inc(2)
    metrics.set_rejected([WILDCARD, WILDCARD, CONFLICT])
    metrics.sync_duration.observe(0.03)
    fams = families(get(base + "/metrics")[1])
    assert sample(fams, PREFIX + "managed_entries", PREFIX + "managed_entries") == 7
    assert sample(fams, PREFIX + "writes", PREFIX + "writes_total", result="written") == 1
    assert sample(fams, PREFIX + "writes", PREFIX + "writes_total", result="unchanged") == 2
    assert sample(fams, PREFIX + "rejected_hosts", PREFIX + "rejected_hosts", reason=WILDCARD) == 2
    assert sample(fams, PREFIX + "rejected_hosts", PREFIX + "rejected_hosts", reason=CONFLICT) == 1
    name = PREFIX + "sync_duration_seconds"
    assert sample(fams, name, name + "_count") == 1
    assert sample(fams, name, name + "_bucket", le="0.025") == 0
    assert sample(fams, name, name + "_bucket", le="0.05") == 1
    # set_rejected replaces, it does not add up
    metrics.set_rejected([])
    fams = families(get(base + "/metrics")[1])
    assert sample(fams, PREFIX + "rejected_hosts", PREFIX + "rejected_hosts", reason=WILDCARD) == 0


def test_readyz_503_until_ready_then_200(running):
    base, _, health = running
    status, body = get(base + "/readyz")
    assert status == 503 and "not ready" in body
    health.ready = True
    assert get(base + "/readyz") == (200, "ok\n")


def test_healthz_200_while_alive_503_when_stale(running, monkeypatch):
    base, _, health = running
    assert get(base + "/healthz") == (200, "ok\n")
    monkeypatch.setattr(Health, "STALE_AFTER", -1.0)
    assert get(base + "/healthz")[0] == 503
    monkeypatch.setattr(Health, "STALE_AFTER", 60.0)
    health.beat()
    assert get(base + "/healthz")[0] == 200


def test_two_metrics_instances_are_independent():
    a, b = Metrics(), Metrics()
    a.managed_entries.set(3)
    assert b.managed_entries._value.get() == 0  # own registries: no duplicate-registration error either


def test_stop_frees_the_port():
    port = free_port()
    stop = serve(("127.0.0.1", port), Metrics(), Health())
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    stop2 = serve(("127.0.0.1", port), Metrics(), Health())  # the same port can be bound again
    stop2()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serves_on_ipv6_loopback():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    address = parse_bind_address(f"[::1]:{port}")
    stop = serve(address, Metrics(), Health())
    try:
        status, text = get(f"http://[::1]:{port}/metrics")
        assert status == 200 and PREFIX + "managed_entries" in text
    finally:
        stop()


def test_port_zero_binds_any_free_port_and_says_which():
    served = serve(("127.0.0.1", 0), Metrics(), Health())
    try:
        port = served.address[1]
        assert port != 0 and served.url == f"http://127.0.0.1:{port}"
        assert get(f"{served.url}/healthz")[0] == 200
    finally:
        served()


HALF_REQUEST = (
    b"GET /metrics HTTP/1.1\r\nHost: scraper\r\n"  # the blank line that ends the headers never comes
)


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset), False while it is still open."""
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def _wait_closed(socks: list[socket.socket], bound: float) -> list[socket.socket]:
    """The sockets still open after ``bound`` seconds (polled; the bound is the issue's idle timeout)."""
    deadline = time.monotonic() + bound
    open_ = list(socks)
    while open_ and time.monotonic() < deadline:
        open_ = [s for s in open_ if not _closed_by_server(s)]
        time.sleep(0.05)
    return open_


@pytest.mark.timeout(120)
def test_hundreds_of_unfinished_requests_take_no_thread_each_and_are_closed_after_the_timeout(monkeypatch):
    # Before the fix: one thread per connection, each waiting forever for the end of the headers.
    monkeypatch.setattr("controller.serve.httpserve.REQUEST_TIMEOUT", 2.0)
    threads_before = threading.active_count()
    served = serve(("127.0.0.1", 0), Metrics(), Health())
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.create_connection(served.address, timeout=10)
            sock.sendall(HALF_REQUEST)
            idle.append(sock)
        # A scraper still gets its answer (it queued behind the 300: they have all been accepted by now).
        status, text = get(served.url + "/metrics")
        assert status == 200 and PREFIX + "managed_entries" in text
        assert threading.active_count() <= threads_before + 2, threading.active_count() - threads_before
        # Every idle connection is closed by the server, at the latest after the request timeout.
        assert _wait_closed(idle, bound=2.0 + 10.0) == []
        assert get(served.url + "/readyz")[0] == 503  # and the server still works afterwards
    finally:
        for sock in idle:
            sock.close()
        served()


@pytest.mark.timeout(120)
def test_a_request_sent_one_byte_at_a_time_is_cut_off_at_the_timeout(monkeypatch):
    # A per-read socket timeout would let a client that sends a byte now and then hold the connection forever.
    monkeypatch.setattr("controller.serve.httpserve.REQUEST_TIMEOUT", 1.0)
    served = serve(("127.0.0.1", 0), Metrics(), Health())
    try:
        with socket.create_connection(served.address, timeout=10) as sock:
            deadline = time.monotonic() + 30.0
            closed = False
            for byte in HALF_REQUEST * 100:
                try:
                    sock.sendall(bytes([byte]))
                except ConnectionError:
                    closed = True
                    break
                if _closed_by_server(sock):
                    closed = True
                    break
                sock.setblocking(True)
                assert time.monotonic() < deadline, "the slow request was never cut off"
                time.sleep(0.1)
            assert closed
    finally:
        served()


def test_bad_request_lines_get_400_and_odd_methods_what_prometheus_client_says():
    served = serve(("127.0.0.1", 0), Metrics(), Health())
    try:
        for raw, expected in [
            (b"NONSENSE\r\n\r\n", b"HTTP/1.1 400 "),
            (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", b"HTTP/1.1 400 "),
            (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"HTTP/1.1 400 "),
            (b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 405 "),
            (b"GET /healthz HTTP/1.0\n\n", b"HTTP/1.1 200 "),
        ]:
            with socket.create_connection(served.address, timeout=10) as sock:
                sock.sendall(raw)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            assert answer.startswith(expected), (raw[:40], answer[:200])
    finally:
        served()


def raw_request(
    address: tuple[str, int], method: str, target: str, headers: str = ""
) -> tuple[int, dict, bytes]:
    """(status, headers in lower case, body) of one request sent as bytes: what a client really gets."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, body


LOOKALIKES = [
    "/readyz/",
    "//readyz",
    "/READYZ",
    "/ready",
    "/healthz/",
    "/Healthz",
    "/metrics/",
    "/",
    "/x/readyz",
]


@pytest.mark.parametrize("path", LOOKALIKES)
def test_only_the_three_paths_are_served_a_lookalike_is_404(path):
    served = serve(("127.0.0.1", 0), Metrics(), Health())  # not ready: /readyz is 503
    try:
        assert raw_request(served.address, "GET", "/readyz")[0] == 503
        status, _, body = raw_request(served.address, "GET", path)
        assert status == 404, (path, status, body)
        assert b"/metrics, /healthz, /readyz" in body
    finally:
        served()


def test_a_query_string_is_allowed_on_each_path():
    health = Health()
    served = serve(("127.0.0.1", 0), Metrics(), health)
    try:
        address = served.address
        assert raw_request(address, "GET", "/readyz?verbose=1")[0] == 503
        assert raw_request(address, "GET", "http://127.0.0.1/readyz?x")[0] == 503  # absolute form
        assert raw_request(address, "GET", "/healthz?x")[0] == 200
        status, _, body = raw_request(address, "GET", f"/metrics?name[]={PREFIX}ready")
        assert status == 200 and PREFIX + "ready" in body.decode()
        health.ready = True
        assert raw_request(address, "GET", "/readyz?verbose=1")[:3:2] == (200, b"ok\n")
        assert raw_request(address, "GET", "http://127.0.0.1/readyz")[0] == 200
    finally:
        served()


@pytest.mark.parametrize("ready", [False, True])
@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/nope"])
def test_head_gets_the_status_and_headers_of_get_without_a_body(path, ready):
    health = Health()
    health.ready = ready
    served = serve(("127.0.0.1", 0), Metrics(), health)
    try:
        get_status, get_headers, get_body = raw_request(served.address, "GET", path)
        head_status, head_headers, head_body = raw_request(served.address, "HEAD", path)
        assert head_status == get_status and head_body == b""
        assert head_headers == get_headers and int(get_headers["content-length"]) == len(get_body) > 0
    finally:
        served()


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_other_methods_are_405_naming_get_and_head(path):
    health = Health()
    health.ready = True
    served = serve(("127.0.0.1", 0), Metrics(), health)
    try:
        for method in ("POST", "PUT", "DELETE"):
            status, headers, _ = raw_request(served.address, method, path)
            assert status == 405 and headers["allow"] == "GET, HEAD", (method, path, status)
    finally:
        served()
