"""Prometheus metrics and the HTTP endpoint that serves them with /healthz and /readyz.

/readyz is 200 only while the controller does its job: listing synced, watch streams working, the last
write of the hosts file succeeded (docs/architecture.md, decision 12). The HTTP server itself, bounded in
connections and time, is controller/httpserve.py.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app

from controller import __version__
from controller.httpserve import HttpServer
from controller.model import REASONS

PREFIX = "k8s_hosts_controller"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """All metrics of one controller process, in their own registry (tests may build several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.managed_entries = Gauge(f"{PREFIX}_managed_entries", "Lines in the managed block.", registry=r)
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


class Health:
    """Liveness: the event loop beats. Readiness: the first complete listing has been synced (``ready``, set
    by the writer) and nothing blocks it: ``blockers`` names what does (a watch stream that fails or is not
    up yet, controller/streams.py; a listing hook that does not fire, controller/runner.py)."""

    STALE_AFTER = 60.0

    def __init__(self) -> None:
        self.ready = False
        self.blockers: dict[str, str] = {}
        self._beat = time.monotonic()

    @property
    def serving(self) -> bool:
        """What /readyz answers."""
        return self.ready and not self.blockers

    def why_not_ready(self) -> str:
        if not self.ready and not self.blockers:
            return "not ready: the first complete listing is not synced yet"
        return "not ready: " + "; ".join(sorted(self.blockers.values()) or ["first listing not synced"])

    def beat(self) -> None:
        self._beat = time.monotonic()

    @property
    def alive(self) -> bool:
        return time.monotonic() - self._beat < self.STALE_AFTER


def parse_bind_address(value: str) -> tuple[str, int] | None:
    """ ":8080" -> ("0.0.0.0", 8080); "127.0.0.1:9000"; "[::1]:9000"; "0" -> None (disabled).

    Port 0 means any free port (the log says which, see serve()).
    """
    value = value.strip()
    if value in ("0", ""):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad bind address {value!r}; use HOST:PORT, :PORT or 0 to disable")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


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


def serve(address: tuple[str, int], metrics: Metrics, health: Health) -> Served:
    """Serve /metrics, /healthz and /readyz from a daemon thread; returns the server (call it to stop it)."""
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            ok = health.alive
        elif path == "/readyz":
            ok = health.serving
            if not ok:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
                return [health.why_not_ready().encode() + b"\n"]
        else:
            return metrics_app(environ, start_response)
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ok\n" if ok else b"not ready\n"]

    server = HttpServer(address, app).start()
    return Served(server.stop, server.address)
