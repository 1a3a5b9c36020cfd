"""An API server that refuses, never answers, speaks no TLS or an untrusted one, or denies the credentials
(401) or the rights (403): the real CLI's --once and --dry-run end with exit 1 within a bound and one line
naming that cause, and the long-running controller says it on /readyz and in its log instead of blaming the
listing hook (a kopf version)."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.ports import free_port
from testkit.process import ControllerProcess
from tests.helpers import eventually, has_block

pytestmark = pytest.mark.integration

HANG_GUARD = 120  # seconds: only to turn a hang (the bug) into a failure; never a speed assertion


def kubeconfig_for(path: Path, server: str, ca: bytes | None = None, token: str = "any") -> Path:
    cluster: dict = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    else:
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.fixture
def plain_http_server() -> Iterator[int]:
    """An HTTP server without TLS, where the kubeconfig says https."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def untrusted_ca(directory: Path) -> bytes:
    """A self-signed CA certificate that signed nothing the API server serves."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other-ca",
         "-keyout", "other.key", "-out", "other.crt"],
        cwd=directory, check=True, capture_output=True,
    )  # fmt: skip
    return (directory / "other.crt").read_bytes()


def test_once_and_dry_run_end_with_the_real_cause(
    control_plane, namespace, tmp_path, silent_server, plain_http_server
):
    """Seven broken servers at once (each run takes the bound, so they run side by side)."""
    bad_token = control_plane.write_kubeconfig(tmp_path / "bad-token", token="not-a-token", user="bad")
    no_rights = control_plane.role_kubeconfig(tmp_path / "no-rights", namespace, "none", [])
    cases = {
        "refused": (kubeconfig_for(tmp_path / "refused", f"https://127.0.0.1:{free_port()}"), "--once"),
        "refused, dry run": (
            kubeconfig_for(tmp_path / "dry", f"https://127.0.0.1:{free_port()}"),
            "--dry-run",
        ),
        "never answers": (
            kubeconfig_for(tmp_path / "silent", f"https://127.0.0.1:{silent_server}"),
            "--once",
        ),
        "plain HTTP": (
            kubeconfig_for(tmp_path / "plain", f"https://127.0.0.1:{plain_http_server}"),
            "--once",
        ),
        "untrusted": (
            kubeconfig_for(tmp_path / "untrusted", control_plane.url, ca=untrusted_ca(tmp_path)),
            "--once",
        ),
        "401": (bad_token, "--once"),
        "403": (no_rights, "--once"),
    }
    expected = {
        "refused": "connection refused",
        "refused, dry run": "connection refused",
        "never answers": "no answer from the API server",
        "plain HTTP": "TLS handshake",
        "untrusted": "is not trusted",
        "401": "401 Unauthorized",
        "403": "403 Forbidden",
    }
    started = time.monotonic()
    runs = {}
    for name, (kubeconfig, mode) in cases.items():
        hosts = tmp_path / f"hosts-{len(runs)}"
        hosts.write_text("127.0.0.1 localhost\n")
        argv = [
            sys.executable,
            "-m",
            "controller",
            mode,
            "--namespaces",
            namespace,
            "--hosts-file",
            str(hosts),
        ]
        argv += ["--kubeconfig", str(kubeconfig), "--metrics-bind-address", "0"]
        with open(tmp_path / f"log-{len(runs)}", "wb") as log:  # a file: a full pipe would block the run
            runs[name] = (subprocess.Popen(argv, stderr=log), hosts, Path(log.name))
    try:
        ended: dict[str, float] = {}
        while len(ended) < len(runs) and time.monotonic() - started < HANG_GUARD:
            for name, (proc, _, _) in runs.items():
                if name not in ended and proc.poll() is not None:
                    ended[name] = time.monotonic() - started
            time.sleep(0.1)
        hung = sorted(runs.keys() - ended.keys())
        assert not hung, f"still running after {HANG_GUARD}s (a hang): {hung}"
        for name, (proc, hosts, log_path) in runs.items():
            stderr = log_path.read_text()
            print(f"{name}: exit {proc.returncode} after {ended[name]:.1f}s")
            assert proc.returncode == 1, f"{name}: exit {proc.returncode}\n{stderr[-3000:]}"
            assert "Traceback" not in stderr, f"{name}:\n{stderr}"
            assert "no listing" not in stderr and "kopf version" not in stderr, f"{name}:\n{stderr}"
            [line] = [line for line in stderr.splitlines() if "giving up" in line]
            assert expected[name] in line, f"{name}: {line}"
            assert hosts.read_text() == "127.0.0.1 localhost\n"
    finally:
        for proc, _, _ in runs.values():
            proc.kill()
            proc.wait()


LISTING_BOUND_SHORT = (
    "import sys, controller.runner as runner\n"
    "runner.LISTING_BOUND = 1.0  # the listing hook would be blamed after a second\n"
    "from controller.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize("server", ["refused", "plain HTTP"])
def test_not_ready_names_the_failing_request_not_the_kopf_version(
    server, plain_http_server, tmp_path, hosts_file
):
    """The long-running controller: /readyz 503 and the log name the cause; the listing hook is not blamed
    even past its bound (shortened here to a second)."""
    port = free_port() if server == "refused" else plain_http_server
    kubeconfig = kubeconfig_for(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}")
    metrics = free_port()
    argv = [
        sys.executable,
        "-c",
        LISTING_BOUND_SHORT,
        "--namespaces",
        "default",
        "--hosts-file",
        str(hosts_file),
    ]
    argv += ["--kubeconfig", str(kubeconfig), "--metrics-bind-address", f"127.0.0.1:{metrics}"]
    ctl = ControllerProcess(argv, tmp_path / "controller.log").start()
    cause = "connection refused" if server == "refused" else "TLS handshake"
    try:
        eventually(lambda: cause in ctl.get("/readyz")[1], what=f"/readyz naming {cause!r}")
        status, body = ctl.get("/readyz")
        assert status == 503 and f"https://127.0.0.1:{port}" in body, body
        time.sleep(3)  # past the (shortened) listing bound
        log = ctl.log()
        assert log.count(cause) == 1, log  # once per episode, not per retry
        assert "no listing" not in log and "kopf version" not in log, log
        assert ctl.alive() and not has_block(hosts_file)
        assert cause in ctl.get("/readyz")[1]
    finally:
        ctl.kill()
