"""Prometheus metrics and the HTTP endpoint that serves them with /healthz and /readyz.

/readyz is 200 only while the controller does its job: listing synced, watch streams working, the last
write of the hosts file succeeded (docs/architecture.md, decision 12; controller/serve/health.py). The HTTP
server itself, bounded in connections and time, is controller/serve/httpserve.py.
"""

from __future__ import annotations

import ipaddress
import platform
import re
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app

from controller import __version__
from controller.engine.entries import validate_hostname
from controller.engine.errors import InvalidEntryError
from controller.model import REASONS
from controller.serve.health import Health
from controller.serve.httpserve import HttpServer

PREFIX = "k8s_hosts_controller"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """All metrics of one controller process, in their own registry (tests may build several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.managed_entries = Gauge(f"{PREFIX}_managed_entries", "Lines in the managed block.", registry=r)
        self.block_bytes = Gauge(
            f"{PREFIX}_block_bytes", "Bytes of the managed block's entry lines (LF line ends).", registry=r
        )
        self.block_max_lines = Gauge(
            f"{PREFIX}_block_max_lines", "The bound on the block's lines (--max-block-lines).", registry=r
        )
        self.block_max_bytes = Gauge(
            f"{PREFIX}_block_max_bytes", "The bound on the block's bytes (--max-block-bytes).", registry=r
        )
        self.lookups_pending = Gauge(
            f"{PREFIX}_lookups_pending",
            "Load-balancer hostnames whose lookup gave no answer in time (their last known address is kept).",
            registry=r,
        )
        self.watched_objects = Gauge(
            f"{PREFIX}_watched_objects",
            "Source objects currently seen in the watched scopes.",
            ["kind"],
            registry=r,
        )
        self.writes = Counter(
            f"{PREFIX}_writes",
            "Hosts file syncs by result: written, unchanged (skipped, equal) or error.",
            ["result"],
            registry=r,
        )
        self.sync_duration = Histogram(
            f"{PREFIX}_sync_duration_seconds",
            "Time to plan, render and write (or skip) one sync.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_file = Histogram(
            f"{PREFIX}_event_to_file_seconds",
            "From the first unsynced change seen by the controller to the file holding it.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejected_hosts = Gauge(
            f"{PREFIX}_rejected_hosts", "Hostnames currently refused, by reason.", ["reason"], registry=r
        )
        self.rejections = Counter(
            f"{PREFIX}_rejections", "Refusals reported (once per change), by reason.", ["reason"], registry=r
        )
        self.last_sync = Gauge(
            f"{PREFIX}_last_sync_timestamp_seconds", "Unix time of the last successful sync.", registry=r
        )
        self.ready = Gauge(
            f"{PREFIX}_ready",
            "1 while /readyz answers ok: listing synced, watch streams working, last write succeeded.",
            registry=r,
        )
        self.stale_file = Counter(
            f"{PREFIX}_hosts_file_stale",
            "Writes that went to a file no longer linked in its directory (bind mount replaced on the host).",
            registry=r,
        )
        self.write_failing = Gauge(
            f"{PREFIX}_write_failing",
            "1 while the last attempt to write the hosts file failed (/readyz says why), else 0.",
            registry=r,
        )
        self.lock_timeouts = Counter(
            f"{PREFIX}_lock_timeouts",
            "Syncs that gave up waiting for the hosts file's lock (held by another process).",
            registry=r,
        )
        self.block_repairs = Counter(
            f"{PREFIX}_block_repairs",
            "Syncs asked for because another program removed or changed the block in the hosts file.",
            registry=r,
        )
        self.build_info = Info(f"{PREFIX}_build", "Build information.", registry=r)
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        for result in ("written", "unchanged", "error"):
            self.writes.labels(result)
        for reason in REASONS:
            self.rejected_hosts.labels(reason).set(0)
            self.rejections.labels(reason)
        self.watched_objects.labels("Ingress").set(0)

    def set_rejected(self, reasons: Iterable[str]) -> None:
        counts = dict.fromkeys(REASONS, 0)
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
        for reason, count in counts.items():
            self.rejected_hosts.labels(reason).set(count)


def parse_bind_address(value: str) -> tuple[str, int] | None:
    """ ":8080" -> ("0.0.0.0", 8080); "127.0.0.1:9000"; "localhost:9000"; "[::1]:9000"; "0" -> None (off).

    Port 0 means any free port (the log says which, see serve()). Only the syntax is checked here (a name
    that does not resolve is refused by controller/config.py): an IPv6 address must be in brackets, because
    "::8080" could be the port 8080 of "::" or the address "::8080" itself.
    """
    value = value.strip()
    if value in ("0", ""):
        return None
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError(f"bad bind address {value!r}; use HOST:PORT, :PORT or 0 to disable")
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise ValueError(
            f"bad bind address {value!r}: the port must be a number 0-65535 (ASCII digits); "
            "use HOST:PORT, :PORT or 0 to disable"
        )
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1])), int(port)
        except ValueError:
            raise ValueError(f"bad bind address {value!r}: {host} is not an IPv6 address") from None
    if ":" in host:
        raise ValueError(
            f"bad bind address {value!r}: put an IPv6 address in brackets, e.g. [::]:{port} for every "
            f"interface or [::1]:{port} for loopback"
        )
    if not host:
        return "0.0.0.0", int(port)
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host)), int(port)
        except ValueError:
            raise ValueError(f"bad bind address {value!r}: {host} is not an IPv4 address") from None
    try:
        return validate_hostname(host), int(port)
    except InvalidEntryError:
        raise ValueError(
            f"bad bind address {value!r}: {host!r} is not an IP address or a host name"
        ) from None


class Served:
    """A running metrics server: call it to stop it; ``address`` is where it listens (port 0 resolved)."""

    def __init__(self, stop: Callable[[], None], address: tuple[str, int]) -> None:
        self._stop = stop
        self.address = address

    @property
    def url(self) -> str:
        host = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        return f"http://{host}:{self.address[1]}"

    def __call__(self) -> None:
        self._stop()


# The only paths served: exactly these (no trailing slash, no other case; a query string is allowed). Anything
# else is 404: a probe or a scrape pointed at a wrong path must fail, not get a 200 from the metrics page.
PATHS = ("/metrics", "/healthz", "/readyz")
METHODS = ("GET", "HEAD")  # HEAD: the same status and headers as GET, no body (httpserve.py)
_TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def serve(address: tuple[str, int], metrics: Metrics, health: Health) -> Served:
    """Serve /metrics, /healthz and /readyz from a daemon thread; returns the server (call it to stop it)."""
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path not in PATHS:
            start_response("404 Not Found", _TEXT)
            return [f"not found: this server serves {', '.join(PATHS)}\n".encode()]
        if environ["REQUEST_METHOD"] not in METHODS:
            start_response("405 Method Not Allowed", [*_TEXT, ("Allow", ", ".join(METHODS))])
            return [f"use {' or '.join(METHODS)}\n".encode()]
        if path == "/metrics":
            # prometheus_client answers HEAD with 405: it is asked for the GET, the server drops the body.
            return metrics_app({**environ, "REQUEST_METHOD": "GET"}, start_response)
        if path == "/healthz":
            ok, why = health.alive, f"not alive: the event loop has not run for {health.STALE_AFTER:g}s"
        else:
            ok, why = health.serving, health.why_not_ready()
        start_response("200 OK" if ok else "503 Service Unavailable", _TEXT)
        return [b"ok\n" if ok else why.encode() + b"\n"]

    server = HttpServer(address, app).start()
    return Served(server.stop, server.address)
