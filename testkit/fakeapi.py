"""A fake Kubernetes API server for answers a real one never sends on demand: a watch ERROR event, a body
that is not JSON, a 429 with an HTTP-date Retry-After, a list that sends its headers and then nothing.

Plain HTTP on loopback, one thread per connection. It serves discovery and the Ingresses of one namespace
(list and watch); a test changes them (pushed to the open watches) and queues one fault at a time. After
a fault, the next list or watch request can be held at a gate until the test opens it, so that the test
sees the controller's state while the failure lasts, without racing its retry.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import queue
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

GROUP = "networking.k8s.io"
PREFIX = f"/apis/{GROUP}/v1"
CRD_GROUP = "apiextensions.k8s.io"

# What a fault sends instead of the normal answer, once.
ETCD_TIMEOUT = "watch error 500"  # a well-formed watch ERROR event, code 500
GONE_THEN_BAD_LIST = "410 then a list that is not JSON"
BAD_WATCH_LINE = "a watch line that is not JSON"
TOO_MANY_HTTP_DATE = "429 with an HTTP-date Retry-After"
UNAUTHORIZED = "401 on every request until the gate opens"  # a revoked token, then a valid one again
FAULTS = (ETCD_TIMEOUT, GONE_THEN_BAD_LIST, BAD_WATCH_LINE, TOO_MANY_HTTP_DATE, UNAUTHORIZED)


def ingress(namespace: str, name: str, host: str, ip: str, version: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "resourceVersion": str(version),
        },
        "spec": {"rules": [{"host": host}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


@dataclass
class FakeApi:
    namespace: str = "default"
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 100
    stall_list_body: bool = False  # every list: headers, then nothing
    requests: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watches: list[queue.Queue] = field(default_factory=list)
    _fault: str | None = None
    _gate: threading.Event | None = None
    _unauthorized_until: threading.Event | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    # ---- driven by the test ---------------------------------------------------------------------------

    def put(self, name: str, host: str, ip: str) -> None:
        """Add or change an Ingress; open watches get the event."""
        with self._lock:
            self.version += 1
            kind = "MODIFIED" if name in self.objects else "ADDED"
            obj = ingress(self.namespace, name, host, ip, self.version)
            self.objects[name] = obj
            watches = list(self._watches)
        for watch in watches:
            watch.put({"type": kind, "object": obj})

    def fault(self, what: str) -> threading.Event:
        """Send ``what`` once (see FAULTS), then hold the next list or watch request until the returned
        gate is set."""
        assert what in FAULTS, what
        gate = threading.Event()
        if what == UNAUTHORIZED:
            with self._lock:
                self._unauthorized_until = gate
                watches = list(self._watches)
            for watch in watches:  # end the watch: the controller's next requests get 401
                watch.put(None)
            return gate
        with self._lock:
            self._fault, self._gate = what, gate
            watches = list(self._watches)
        if what in (ETCD_TIMEOUT, GONE_THEN_BAD_LIST, BAD_WATCH_LINE):
            for watch in watches:  # into the open watch; a 429 waits for the next request
                watch.put(what)
        elif what == TOO_MANY_HTTP_DATE:
            for watch in watches:  # end the watch: the controller watches again and gets the 429
                watch.put(None)
        return gate

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            watches = list(self._watches)
        for watch in watches:
            watch.put(None)

    # ---- served ---------------------------------------------------------------------------------------

    def unauthorized(self) -> bool:
        gate = self._unauthorized_until
        return gate is not None and not gate.is_set()

    def _take(self, what: str) -> bool:
        with self._lock:
            if self._fault == what:
                self._fault = None
                return True
            return False

    def _wait_at_gate(self) -> None:
        """The first collection request after a fault was sent waits for the test."""
        with self._lock:
            gate = self._gate if self._fault is None else None
            if gate is not None:
                self._gate = None
        if gate is not None:
            while not gate.wait(0.1) and not self._stop.is_set():
                pass

    def discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/api/v1":
            return _resources("v1", "namespaces", "Namespace", namespaced=False)
        if path == "/apis":
            groups = []
            for group in (GROUP, CRD_GROUP):
                version = {"groupVersion": f"{group}/v1", "version": "v1"}
                groups.append({"name": group, "versions": [version], "preferredVersion": version})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if path == f"/apis/{CRD_GROUP}/v1":  # kopf waits for this resource to be known
            return _resources(f"{CRD_GROUP}/v1", "customresourcedefinitions", "CustomResourceDefinition",
                              namespaced=False)  # fmt: skip
        if path == PREFIX:
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/v1",
                "resources": [
                    {
                        "name": "ingresses",
                        "singularName": "ingress",
                        "namespaced": True,
                        "kind": "Ingress",
                        "verbs": ["get", "list", "watch", "patch"],
                    },
                    {"name": "ingresses/status", "singularName": "", "namespaced": True, "kind": "Ingress",
                     "verbs": ["get"]},
                ],
            }  # fmt: skip
        return None

    def listing(self) -> dict[str, Any]:
        with self._lock:
            return {
                "kind": "IngressList",
                "apiVersion": f"{GROUP}/v1",
                "metadata": {"resourceVersion": str(self.version)},
                "items": list(self.objects.values()),
            }

    @contextlib.contextmanager
    def watch_queue(self, since: int | None = None) -> Iterator[queue.Queue]:
        """A queue of this watch's events. Like the API server, a watch from resourceVersion SINCE first gets
        the objects changed after it: a change made between the client's list and its watch is not lost."""
        events: queue.Queue = queue.Queue()
        with self._lock:
            self._watches.append(events)
            for obj in self.objects.values():
                if since is not None and int(obj["metadata"]["resourceVersion"]) > since:
                    events.put({"type": "ADDED", "object": obj})
        try:
            yield events
        finally:
            with self._lock:
                self._watches.remove(events)


def _handler(api: FakeApi) -> type[http.server.BaseHTTPRequestHandler]:
    collection = f"{PREFIX}/namespaces/{api.namespace}/ingresses"

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            watch = query.get("watch", [""])[0] == "true"
            api.requests.append(f"GET {parts.path}{' watch' if watch else ''}")
            found = api.discovery(parts.path)
            if api.unauthorized():
                self.answer(401, json.dumps(_status(401, "Unauthorized")).encode())
            elif found is not None:
                self.answer(200, json.dumps(found).encode())
            elif parts.path != collection:
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                          "reason": "NotFound", "message": "not served by this fake"}  # fmt: skip
                self.answer(404, json.dumps(status).encode())
            elif watch:
                self.watch(query)
            else:
                self.list()

        def do_POST(self) -> None:  # Events: accepted and dropped
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b"{}"
            self.answer(201, body)

        def list(self) -> None:
            if api.stall_list_body:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b'{"kind": "IngressList", ')
                self.wfile.flush()
                api._stop.wait()
                return
            if api._take(GONE_THEN_BAD_LIST + " (list)"):
                # An HTML error page from a proxy in front of the API server, labelled as JSON.
                self.answer(200, b"<html><body>502 Bad Gateway</body></html>")
                return
            api._wait_at_gate()
            self.answer(200, json.dumps(api.listing()).encode())

        def watch(self, query: dict[str, list[str]]) -> None:
            if api._take(TOO_MANY_HTTP_DATE):
                retry_at = formatdate(usegmt=True)  # "Mon, 07 Dec 2026 06:12:51 GMT"
                status = _status(429, "too many requests, retry later")
                self.answer(429, json.dumps(status).encode(), {"Retry-After": retry_at})
                return
            api._wait_at_gate()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            since = query.get("resourceVersion", [""])[0]
            with api.watch_queue(int(since) if since.isdigit() else None) as events:
                while not api._stop.is_set():
                    try:
                        item = events.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    if item is None:
                        return
                    if isinstance(item, dict):
                        line = json.dumps(item).encode()
                    elif item == ETCD_TIMEOUT and api._take(item):
                        line = _error_event(500, "etcdserver: request timed out")
                    elif item == GONE_THEN_BAD_LIST and api._take(item):
                        with api._lock:
                            api._fault = GONE_THEN_BAD_LIST + " (list)"
                        line = _error_event(410, "too old resource version: 1 (100)")
                    elif item == BAD_WATCH_LINE and api._take(item):
                        line = b"<html><body>502 Bad Gateway</body></html>"
                    else:
                        continue
                    try:
                        self.wfile.write(line + b"\n")
                        self.wfile.flush()
                    except OSError:
                        return

    return Handler


def _resources(group_version: str, plural: str, kind: str, namespaced: bool) -> dict[str, Any]:
    resource = {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                "verbs": ["get", "list", "watch"]}  # fmt: skip
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [resource],
    }


def _error_event(code: int, message: str) -> bytes:
    return json.dumps({"type": "ERROR", "object": _status(code, message)}).encode()


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


@contextlib.contextmanager
def serve(api: FakeApi) -> Iterator[str]:
    """Serve ``api`` on a loopback port; yields its URL (http://127.0.0.1:PORT)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        api.stop()
        server.shutdown()
        server.server_close()


def kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "any"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
        "current-context": "fake",
    }
    path.write_text(json.dumps(config))
    return path
