"""Test helpers: the controller as a real process, Ingress objects, and polling the real file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from controller.hostsfile import DEFAULT_MARKER, parse
from tests.controlplane.cluster import free_port


def eventually(check: Callable[[], object], timeout: float = 30.0, interval: float = 0.05, what: str = ""):
    """Poll until check() is truthy; returns its value or fails naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def block_lines(path: Path, marker: str = DEFAULT_MARKER) -> list[str]:
    """The entry lines of the managed block, as text ("ADDR HOST  # ns/name")."""
    managed = parse(path.read_bytes(), marker).managed
    return sorted(f"{e.address} {e.hostname}  # {e.owner}" for e in managed)


def managed(path: Path, marker: str = DEFAULT_MARKER) -> set[tuple[str, str]]:
    return {(e.hostname, e.address) for e in parse(path.read_bytes(), marker).managed}


def has_block(path: Path, marker: str = DEFAULT_MARKER) -> bool:
    return parse(path.read_bytes(), marker).has_block


@dataclass
class ControllerProcess:
    """`python -m controller` with the given flags, logging to a file; always killed at teardown."""

    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> ControllerProcess:
        argv = [sys.executable, "-m", "controller", *self.args]
        if not any(a.startswith("--metrics-bind-address") for a in self.args):
            argv += ["--metrics-bind-address", f"127.0.0.1:{self.metrics_port}"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
            )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except (urllib.error.URLError, OSError):
            return 0, ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"controller exited with {self.proc.returncode}:\n{self.log()}")
            return self.get("/readyz")[0] == 200

        eventually(ready, timeout, what="the controller's /readyz")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), float("nan"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def run_cli(
    *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class Ingresses:
    """Create and change Ingresses through the real API (status via the status subresource)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.net = client.NetworkingV1Api(api)

    def create(
        self,
        namespace: str,
        name: str,
        hosts: Iterable[str],
        ips: Iterable[str] = (),
        lb_hostnames: Iterable[str] = (),
        ingress_class: str | None = None,
    ) -> client.V1Ingress:
        spec: dict = {"rules": [{"host": h} for h in hosts]}
        if ingress_class:
            spec["ingressClassName"] = ingress_class
        obj = self.net.create_namespaced_ingress(namespace, {"metadata": {"name": name}, "spec": spec})
        if ips or lb_hostnames:
            return self.set_status(namespace, name, ips, lb_hostnames)
        return obj

    def set_status(
        self, namespace: str, name: str, ips: Iterable[str] = (), lb_hostnames: Iterable[str] = ()
    ) -> client.V1Ingress:
        ingress = [{"ip": ip} for ip in ips] + [{"hostname": h} for h in lb_hostnames]
        return self.net.patch_namespaced_ingress_status(
            name, namespace, {"status": {"loadBalancer": {"ingress": ingress}}}
        )

    def set_hosts(self, namespace: str, name: str, hosts: Iterable[str]) -> client.V1Ingress:
        return self.net.patch_namespaced_ingress(
            name, namespace, {"spec": {"rules": [{"host": h} for h in hosts]}}
        )

    def delete(self, namespace: str, name: str) -> None:
        self.net.delete_namespaced_ingress(name, namespace)

    def read(self, namespace: str, name: str) -> client.V1Ingress:
        return self.net.read_namespaced_ingress(name, namespace)
