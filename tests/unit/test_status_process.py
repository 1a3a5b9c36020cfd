"""The real CLI on a real file: `status` calls a dead cluster's block stale, `wait` never reports its names
ready, `--cleanup` removes it and gives back the user's bytes."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.engine.block import splice
from controller.engine.entries import Entry
from controller.engine.record import ClusterRecord
from tests.helpers import run_cli

M = "TYK-K8S-HOSTS"
USER_FILE = b"# Existing entries...\n127.0.0.1 localhost\n::1 localhost\n192.168.1.10 nas.home  # my NAS\n"
ENTRIES = [Entry("a.local", "10.0.0.1", "ns/a"), Entry("b.local", "10.0.0.2", "ns/b")]


class _Forbidden(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def live_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def dead_server() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"https://127.0.0.1:{port}"


def write(tmp_path: Path, record: ClusterRecord) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(splice(USER_FILE, ENTRIES, M, record))
    return path


def test_a_dead_clusters_block_is_stale_never_ready_and_cleaned_byte_identical(tmp_path):
    path = write(tmp_path, ClusterRecord("kind-gone", dead_server()))
    st = run_cli("status", "--hosts-file", str(path))
    assert st.returncode == 3, st.stdout + st.stderr
    assert "STALE" in st.stdout and "a.local, b.local" in st.stdout

    wait = run_cli("wait", "--hosts-file", str(path), "--host", "a.local", "--timeout", "500ms")
    assert wait.returncode == 1, wait.stdout
    assert "stale" in wait.stderr and "ready" not in wait.stdout

    clean = run_cli("--cleanup", "--hosts-file", str(path))
    assert clean.returncode == 0, clean.stderr
    assert path.read_bytes() == USER_FILE
    after = run_cli("status", "--hosts-file", str(path))
    assert after.returncode == 0 and after.stdout.startswith("block: none")


def test_a_live_clusters_names_are_ready(tmp_path, live_server):
    path = write(tmp_path, ClusterRecord("kind-dev", live_server))
    st = run_cli("status", "--hosts-file", str(path), "--json")
    assert st.returncode == 0 and '"state": "live"' in st.stdout
    wait = run_cli("wait", "--hosts-file", str(path), "--host", "a.local,b.local", "--timeout", "5s")
    assert wait.returncode == 0, wait.stderr
    assert "ready" in wait.stdout


def test_wait_refuses_the_names_of_a_deleted_kind_node(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\necho 'Error: No such container: gone-control-plane' >&2\nexit 1\n")
    docker.chmod(0o755)
    path = write(tmp_path, ClusterRecord(node="gone-control-plane"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    st = run_cli("status", "--hosts-file", str(path), env=env)
    assert st.returncode == 3 and "no longer exists" in st.stdout
    wait = run_cli("wait", "--hosts-file", str(path), "--host", "a.local", "--timeout", "300ms", env=env)
    assert wait.returncode == 1 and "stale" in wait.stderr
    # --absent waits for the names to go, whoever wrote them: a stale block's names are still present
    absent = run_cli("wait", "--hosts-file", str(path), "--host", "a.local", "--absent", "--timeout", "300ms")
    assert absent.returncode == 1 and "a.local still present" in absent.stderr
