"""Answers a real API server sends only on a bad day, from a fake one (testkit/fakeapi.py), to the real CLI:
a watch ERROR event (500, etcd timed out), a relisting after 410 Gone whose body is not JSON, a watch line
that is not JSON, a 429 whose Retry-After is an HTTP date, a token refused (401) for a while; and a list
that sends its headers and then never its body. The controller keeps running and keeps the block byte for
byte, says not ready with the cause while it lasts, recovers by itself, and names a stalled body as such
(never the kopf version)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import fakeapi
from testkit.ports import free_port
from testkit.process import ControllerProcess, controller_command
from tests.helpers import block_lines, eventually

pytestmark = pytest.mark.integration

HANG_GUARD = 60.0  # seconds: only to turn a hang or a missed state into a failure; never a speed assertion
NAMESPACE = "demo"

CAUSES = {  # what /readyz says while the failure lasts
    fakeapi.ETCD_TIMEOUT: "ERROR event (500 etcdserver: request timed out)",
    fakeapi.GONE_THEN_BAD_LIST: "not JSON",
    fakeapi.BAD_WATCH_LINE: "not JSON",
    fakeapi.TOO_MANY_HTTP_DATE: "answered 429 (too many requests, retry later)",
    fakeapi.UNAUTHORIZED: "refused the credentials (401 Unauthorized)",
}


@pytest.fixture
def api() -> Iterator[tuple[fakeapi.FakeApi, str]]:
    fake = fakeapi.FakeApi(namespace=NAMESPACE)
    fake.put("web", "web.example", "10.0.0.1")
    with fakeapi.serve(fake) as url:
        yield fake, url


def alive_and(ctl: ControllerProcess, status: int) -> str | None:
    """The /readyz body when it answers ``status``; fails at once if the controller has exited."""
    assert ctl.alive(), f"the controller exited with {ctl.proc and ctl.proc.returncode}:\n{ctl.tail(30)}"
    code, body = ctl.get("/readyz")
    return body or "(empty)" if code == status else None


@pytest.mark.parametrize("fault", fakeapi.FAULTS)
def test_one_bad_answer_keeps_the_block_and_the_controller_recovers(fault, api, tmp_path, hosts_file):
    fake, url = api
    kubeconfig = fakeapi.kubeconfig(tmp_path / "kubeconfig", url)
    argv = controller_command(
        "--namespaces", NAMESPACE, "--hosts-file", str(hosts_file), "--kubeconfig", str(kubeconfig)
    )  # fmt: skip
    ctl = ControllerProcess(argv, tmp_path / "controller.log").start()
    try:
        ctl.wait_ready(HANG_GUARD)
        assert block_lines(hosts_file) == ["10.0.0.1 web.example  # demo/web"]
        before = hosts_file.read_bytes()

        gate = fake.fault(fault)  # sent once; the controller's next list or watch waits at the gate
        body = eventually(lambda: alive_and(ctl, 503), timeout=HANG_GUARD, what="/readyz 503")
        assert CAUSES[fault] in body, body
        assert hosts_file.read_bytes() == before  # the block and every other byte

        gate.set()
        eventually(lambda: alive_and(ctl, 200), timeout=HANG_GUARD, what="/readyz 200 again")
        assert hosts_file.read_bytes() == before

        fake.put("api", "api.example", "10.0.0.2")  # a later change still reaches the file
        eventually(
            lambda: "10.0.0.2 api.example  # demo/api" in block_lines(hosts_file),
            timeout=HANG_GUARD,
            what="the change after the recovery",
        )
        assert "10.0.0.1 web.example  # demo/web" in block_lines(hosts_file)
        log = ctl.log()
        assert "giving up" not in log and "Traceback" not in log, log
        # logged once for the episode, not per retry (a 401 also once as the reason kopf is started again)
        assert log.count(CAUSES[fault]) == (2 if fault == fakeapi.UNAUTHORIZED else 1), log
    finally:
        ctl.kill()


# Short bounds, so that the old behaviour (blaming the listing hook, a kopf version) would show quickly.
SHORT_BOUNDS = (
    "import sys, controller.runner as runner, controller.cluster.apihealth as apihealth\n"
    "runner.LISTING_BOUND = 2.0\n"
    "runner.ONE_SHOT_BOUND = 4.0\n"
    "apihealth.UNANSWERED_AFTER = 1.0\n"
    "from controller.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
LIST = f"GET {fakeapi.PREFIX}/namespaces/{NAMESPACE}/ingresses"
STALLED = f"stopped sending the body of {LIST} after the headers"


def stalled_argv(url: str, tmp_path: Path, hosts: Path, *extra: str) -> list[str]:
    kubeconfig = fakeapi.kubeconfig(tmp_path / "kubeconfig", url)
    return [
        sys.executable, "-c", SHORT_BOUNDS, "--namespaces", NAMESPACE, "--hosts-file", str(hosts),
        "--kubeconfig", str(kubeconfig), *extra,
    ]  # fmt: skip


def test_a_list_body_that_never_comes_is_named_not_the_kopf_version(api, tmp_path, hosts_file):
    fake, url = api
    fake.stall_list_body = True
    argv = stalled_argv(url, tmp_path, hosts_file, "--metrics-bind-address", f"127.0.0.1:{free_port()}")
    ctl = ControllerProcess(argv, tmp_path / "controller.log").start()
    try:
        body = eventually(
            lambda: (b := alive_and(ctl, 503)) and STALLED in b and b,
            timeout=HANG_GUARD,
            what="/readyz naming the stalled body",
        )
        assert "kopf" not in body, body
        time.sleep(3)  # past the (shortened) listing bound
        status, body = ctl.get("/readyz")
        assert status == 503 and STALLED in body and "kopf" not in body, body
        log = ctl.log()
        assert STALLED in log, log
        assert "no listing" not in log and "kopf version" not in log and "kopf 1." not in log, log
        assert ctl.alive()
    finally:
        ctl.kill()


def test_once_ends_naming_the_stalled_list_body(api, tmp_path, hosts_file):
    fake, url = api
    fake.stall_list_body = True
    before = hosts_file.read_bytes()
    argv = stalled_argv(url, tmp_path, hosts_file, "--once", "--metrics-bind-address", "0")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 1, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "giving up" in line]
    assert STALLED in line, line
    assert "kopf" not in line, line
    assert hosts_file.read_bytes() == before
