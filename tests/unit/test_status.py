"""`status` and the liveness of a block's cluster, against real sockets: a server that answers (401 counts),
a closed port, a port that accepts and never answers; a node checked through a docker CLI."""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import liveness as live
from controller import status
from controller.engine.block import splice
from controller.engine.entries import Entry
from controller.engine.record import ClusterRecord

M = "TYK-K8S-HOSTS"
USER_FILE = b"127.0.0.1 localhost\n# #### BEGIN TYK-K8S-HOSTS #### is written below by the controller\n"
ENTRIES = [Entry("a.local", "10.0.0.1", "ns/a"), Entry("b.local", "10.0.0.2", "ns/b")]


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # an API server without credentials: 401, still an answer
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def live_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused, as after `kind delete cluster`
    return f"https://127.0.0.1:{port}"


@pytest.fixture
def silent_port() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)  # the kernel accepts, nobody ever answers
    yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_any_http_answer_is_live(live_server):
    result = live.probe_server(live_server)
    assert result.state == live.LIVE and "401" in result.reason


def test_a_closed_port_is_stale(closed_port):
    result = live.probe_server(closed_port)
    assert result.state == live.STALE and "does not answer" in result.reason


def test_a_proxy_from_the_environment_does_not_answer_for_a_gone_cluster(
    closed_port, live_server, monkeypatch
):
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, live_server)  # a proxy that answers everything
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert live.probe_server(closed_port.replace("127.0.0.1", "localhost")).state == live.STALE


def test_a_port_that_never_answers_is_stale(silent_port):
    assert live.probe_server(silent_port, seconds=0.3).state == live.STALE


def test_a_name_that_does_not_resolve_is_unknown():
    assert live.probe_server("https://no-such-host.invalid:6443").state == live.UNKNOWN


def test_no_record_or_only_a_name_is_unknown():
    assert live.liveness(None).state == live.UNKNOWN
    assert live.liveness(ClusterRecord(name="kind-dev")).state == live.UNKNOWN


def fake_docker(directory: Path, exit_code: int, stderr: str) -> None:
    script = directory / "docker"
    script.write_text(f"#!/bin/sh\necho '{stderr}' >&2\necho true\nexit {exit_code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(
    ("exit_code", "stderr", "state"),
    [
        (1, "Error response from daemon: No such container: dev-control-plane", live.STALE),
        (0, "", live.LIVE),
        (1, "permission denied while trying to connect to the Docker daemon socket", live.UNKNOWN),
    ],
)
def test_a_recorded_node_is_checked_with_docker(tmp_path, monkeypatch, exit_code, stderr, state):
    fake_docker(tmp_path, exit_code, stderr)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert live.liveness(ClusterRecord(node="dev-control-plane")).state == state


def test_a_recorded_node_without_docker_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert live.liveness(ClusterRecord(node="dev-control-plane")).state == live.UNKNOWN


# ------------------------------------------------------------------------------------------- the command


def hosts_with(tmp_path: Path, record: ClusterRecord | None) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(splice(USER_FILE, ENTRIES, M, record))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = status.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_block_exits_0(capsys, tmp_path):
    path = tmp_path / "hosts"
    path.write_bytes(USER_FILE)  # a comment naming the marker is no block
    code, out, _ = run(capsys, "--hosts-file", str(path))
    assert code == 0 and out.startswith("block: none")


def test_a_live_block_exits_0(capsys, tmp_path, live_server):
    path = hosts_with(tmp_path, ClusterRecord("kind-dev", live_server))
    code, out, _ = run(capsys, "--hosts-file", str(path))
    assert code == 0, out
    assert "entries: 2 (a.local, b.local)" in out and f"server={live_server}" in out
    assert "state: live" in out and "lock: free" in out


def test_a_stale_block_exits_3_and_says_how_to_remove_it(capsys, tmp_path, closed_port):
    path = hosts_with(tmp_path, ClusterRecord("kind-gone", closed_port))
    code, out, _ = run(capsys, "--hosts-file", str(path))
    assert code == status.EXIT_STALE == 3
    assert "state: STALE" in out and "--cleanup" in out


def test_json_output(capsys, tmp_path, closed_port):
    path = hosts_with(tmp_path, ClusterRecord("kind-gone", closed_port))
    code, out, _ = run(capsys, "--hosts-file", str(path), "--json")
    doc = json.loads(out)
    assert code == 3
    assert doc["block"] is True and doc["state"] == "stale" and doc["names"] == ["a.local", "b.local"]
    assert doc["cluster"] == {"name": "kind-gone", "server": closed_port, "node": None}
    assert doc["entries"] == 2 and doc["lock"] is None


def test_a_block_without_record_exits_4(capsys, tmp_path):
    code, out, _ = run(capsys, "--hosts-file", str(hosts_with(tmp_path, None)))
    assert code == 4 and "cluster: not recorded" in out and "state: unknown" in out


def test_no_check_does_not_probe(capsys, tmp_path, closed_port):
    path = hosts_with(tmp_path, ClusterRecord("kind-gone", closed_port))
    code, out, _ = run(capsys, "--hosts-file", str(path), "--no-check")
    assert code == 0 and out.startswith("block: present") and "state: unchecked" in out


def test_the_lock_holder_is_named(capsys, tmp_path, live_server):
    import fcntl

    path = hosts_with(tmp_path, ClusterRecord("kind-dev", live_server))
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, out, _ = run(capsys, "--hosts-file", str(path))
    finally:
        os.close(fd)
    assert code == 0
    assert f"lock: held by pid {os.getpid()}" in out


def test_an_unreadable_hosts_file_exits_1(capsys, tmp_path):
    code, _, err = run(capsys, "--hosts-file", str(tmp_path))  # a directory
    assert code == 1 and "error" in err


def test_a_bad_marker_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "--hosts-file", str(tmp_path / "hosts"), "--marker", "a#b")
    assert code == 2 and "marker" in err
