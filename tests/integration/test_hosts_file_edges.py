"""The real controller against the real API server on hosts files at their edges: a last line without
newline that the user appends to while the controller runs (`tee -a`), and a file that becomes huge."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from controller.engine.block import DEFAULT_MARKER, parse
from tests.helpers import eventually, managed

pytestmark = pytest.mark.integration

END = b"#### END TYK-K8S-HOSTS ####"
USER = b"127.0.0.1\tlocalhost\n::1 localhost\n# corp\n10.1.1.1 gw.corp.example"  # no final newline
APPENDED = b"10.0.0.9 nexus.corp.example\n"
TIB = 1 << 40
LB = "172.18.0.200"


def tee_a(path: Path, data: bytes) -> None:
    """`echo ... | sudo tee -a /etc/hosts`: one O_APPEND write."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        assert os.write(fd, data) == len(data)
    finally:
        os.close(fd)


def tyk_chart(ingresses, namespace: str) -> None:
    """The Ingresses a Tyk chart makes, with their load balancer's address."""
    ingresses.create(namespace, "dashboard-ingress", ["chart-dash.local"], ips=[LB])
    ingresses.create(namespace, "gateway-ingress", ["chart-gw.local"], ips=[LB])


@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_a_line_appended_while_running_stays_its_own_and_survives_the_cleanup(
    namespace, ingresses, tmp_path, start_controller, mode
):
    hosts_file = tmp_path / "hosts-no-final-newline"
    hosts_file.write_bytes(USER)
    tyk_chart(ingresses, namespace)
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file), "--write-mode", mode)
    eventually(
        lambda: managed(hosts_file) == {("chart-dash.local", LB), ("chart-gw.local", LB)}, what="block"
    )
    assert hosts_file.read_bytes().endswith(END + b"\n")

    tee_a(hosts_file, APPENDED)
    assert hosts_file.read_bytes().endswith(END + b"\n" + APPENDED)  # a line of its own
    assert "nexus.corp.example" in parse(hosts_file.read_bytes(), DEFAULT_MARKER).outside_names

    # The next sync: the block in the middle now, with the user's line after it.
    ingresses.create(namespace, "portal-ingress", ["chart-portal.local"], ips=[LB])
    eventually(lambda: ("chart-portal.local", LB) in managed(hosts_file), what="the next write")
    content = hosts_file.read_bytes()
    assert content.count(END) == 1 and content.endswith(END + b"\n" + APPENDED), content[-200:]

    assert ctl.stop(signal.SIGTERM) == 0, ctl.tail()
    # The user's bytes, then their appended line, as a line of its own.
    assert hosts_file.read_bytes() == USER + b"\n" + APPENDED


def peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_a_file_that_becomes_huge_is_refused_with_not_ready_and_the_reason(
    namespace, ingresses, hosts_file, start_controller
):
    original = hosts_file.read_bytes()
    tyk_chart(ingresses, namespace)
    ctl = start_controller("--namespaces", namespace, "--hosts-file", str(hosts_file))
    eventually(lambda: ("chart-dash.local", LB) in managed(hosts_file), what="the block")
    written = hosts_file.read_bytes()

    os.truncate(hosts_file, TIB)  # sparse: takes no disk
    ingresses.create(namespace, "portal-ingress", ["chart-portal.local"], ips=[LB])
    eventually(lambda: ctl.get("/readyz")[0] == 503, what="not ready")
    status, body = ctl.get("/readyz")
    assert status == 503
    assert f"is {TIB} bytes (1 TiB), above the bound of 64 MiB" in body and "--max-hosts-file-size" in body
    assert ctl.metric("k8s_hosts_controller_write_failing") == 1
    assert ctl.alive() and "MemoryError" not in ctl.log() and "Traceback" not in ctl.log()
    assert os.stat(hosts_file).st_size == TIB  # not written
    assert peak_memory_kib(ctl.pid) < 512 * 1024, "the file was loaded"

    os.truncate(hosts_file, len(written))  # back to what it was: the writer's retry writes again
    ctl.wait_ready(timeout=60)
    eventually(lambda: ("chart-portal.local", LB) in managed(hosts_file), what="the write after the repair")
    assert ctl.metric("k8s_hosts_controller_write_failing") == 0
    assert ctl.stop(signal.SIGTERM) == 0
    assert hosts_file.read_bytes() == original
