"""Raw calls to the test API server for writers that need speed: the benchmarks and the fault injection
create and change thousands of Ingresses through it (the official client is too slow for that)."""

from __future__ import annotations

import http.client
import json
import threading
import time

from testkit.controlplane import ControlPlane


class Api:
    """Raw HTTPS calls on keep-alive connections (one per thread): cheap enough for thousands of writes."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.ctx = cp.ssl_context()
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPSConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.cp.port, context=self.ctx, timeout=30)
            self.local.conn = conn
        return conn

    def call(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json"):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.cp.admin_token}"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(5):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status == 429 or resp.status >= 500:
                    time.sleep(0.1 * (attempt + 1))
                    continue
                return resp.status, payload
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                time.sleep(0.1 * (attempt + 1))
        raise RuntimeError(f"{method} {path} failed 5 times")

    def namespace(self, name: str) -> None:
        status, body = self.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status not in (201, 409):
            raise RuntimeError(f"namespace {name}: {status} {body[:200]!r}")

    def create_ingress(self, ns: str, name: str, host: str) -> None:
        status, body = self.call(
            "POST",
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            {"metadata": {"name": name}, "spec": {"rules": [{"host": host}]}},
        )
        if status != 201:
            raise RuntimeError(f"create {ns}/{name}: {status} {body[:200]!r}")

    def set_ip(self, ns: str, name: str, ip: str | None) -> None:
        status_body = {"loadBalancer": {"ingress": [{"ip": ip}]}} if ip else {"loadBalancer": {}}
        status, body = self.call(
            "PATCH",
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}/status",
            {"status": status_body},
            content_type="application/merge-patch+json",
        )
        if status != 200:
            raise RuntimeError(f"status {ns}/{name}: {status} {body[:200]!r}")

    def set_host(self, ns: str, name: str, host: str) -> None:
        status, body = self.call(
            "PATCH",
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}",
            {"spec": {"rules": [{"host": host}]}},
            content_type="application/merge-patch+json",
        )
        if status != 200:
            raise RuntimeError(f"patch {ns}/{name}: {status} {body[:200]!r}")

    def delete_ingress(self, ns: str, name: str) -> None:
        status, body = self.call("DELETE", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}")
        if status not in (200, 202, 404):
            raise RuntimeError(f"delete {ns}/{name}: {status} {body[:200]!r}")

    def list_ingresses(self, ns: str) -> dict:
        status, body = self.call("GET", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses")
        if status != 200:
            raise RuntimeError(f"list {ns}: {status} {body[:200]!r}")
        return json.loads(body)


def ip_for(i: int, salt: int = 0) -> str:
    n = i + salt * 65536
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"
