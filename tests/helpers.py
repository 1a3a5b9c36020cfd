"""Test helpers: the CLI run once, Ingress objects, and polling the real file (the controller as a process is
testkit/process.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kubernetes import client

from controller.engine.block import DEFAULT_MARKER, parse
from controller.engine.errors import HostsFileError


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


_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)  # read-only is enough to flock: the file is world-readable
if len(sys.argv) > 2:  # then become another user (the file was opened first: test directories are 0700)
    os.setgroups([])
    os.setgid(int(sys.argv[2]))
    os.setuid(int(sys.argv[2]))
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold it until the test closes our stdin
"""
NOBODY = 65534


class LockHolder:
    """Another process (of the user nobody when the tests run as root) holding flock(LOCK_EX) on a file,
    the way any local user can hold the world-readable hosts file. A context manager; release() lets go."""

    def __init__(self, path: Path) -> None:
        argv = [sys.executable, "-c", _HOLD_LOCK, str(path)]
        if os.geteuid() == 0:
            argv.append(str(NOBODY))
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "locked":
            self.proc.kill()
            raise AssertionError(f"the lock holder did not take the lock: {line!r}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate(timeout=30)

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


NOBODY = 65534


def as_nobody(calls: Iterable[Callable[[], object]]) -> list[str]:
    """Run each call in a forked child that dropped to uid/gid 65534 (no capabilities); the outcome of each
    as one line: "no error" or the HostsFileError's message."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            lines = []
            for call in calls:
                try:
                    call()
                    lines.append("no error")
                except HostsFileError as err:
                    lines.append(str(err))
            os.write(write_end, json.dumps(lines).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def create_gateway(
    custom: client.CustomObjectsApi, namespace: str, name: str, listeners: list[dict], addresses: list[dict]
) -> None:
    """A Gateway of GatewayClass "test" with LISTENERS, and ADDRESSES in its status as its controller would
    write them."""
    group, version = "gateway.networking.k8s.io", "v1"
    body = {
        "apiVersion": f"{group}/{version}",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": "test", "listeners": listeners},
    }
    custom.create_namespaced_custom_object(group, version, namespace, "gateways", body)
    status = {"status": {"addresses": addresses}}
    custom.patch_namespaced_custom_object_status(group, version, namespace, "gateways", name, status)
