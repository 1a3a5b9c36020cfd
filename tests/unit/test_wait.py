"""`k8s-hosts-controller wait`: durations, exit codes, --absent and --ready-url against a real HTTP server."""

from __future__ import annotations

import argparse
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import cli
from controller.engine.entries import Entry
from controller.engine.hostsfile import HostsFile
from controller.wait import main, parse_duration

USER = b"127.0.0.1 localhost\n10.9.9.9 outside.local\n"


pytestmark = pytest.mark.usefixtures("no_controller_env")


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_bytes(USER)
    HostsFile(path).sync([Entry("a.local", "10.0.0.1", "ns/a"), Entry("b.local", "fd00::1", "ns/b")])
    return path


# ---------------------------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("120", 120.0),
        ("120s", 120.0),
        ("2m", 120.0),
        ("1m30s", 90.0),
        ("1m30", 90.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("0.25", 0.25),
        ("0", 0.0),
        (" 10s ", 10.0),
        ("2m500ms", 120.5),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("90s", 90.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", " ", "s", "ms", "m", "1h30", "-1", "nan", "1d", "abc", "1.2.3s", "2 m", "1sm", "m5"]
)
def test_parse_duration_errors(text):
    with pytest.raises(argparse.ArgumentTypeError, match="bad duration"):
        parse_duration(text)


# ----------------------------------------------------------------------------------------- exit codes


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_returns_0_when_hosts_are_in_the_block(capsys, hosts):
    code, out, err = run(capsys, "--hosts-file", str(hosts), "--host", "a.local,B.Local", "--timeout", "5s")
    assert code == 0, err
    assert "ready" in out and "a.local" in out and "b.local" in out


def test_times_out_with_1_naming_only_the_missing_host(capsys, hosts):
    started = time.monotonic()
    code, out, err = run(
        capsys, "--hosts-file", str(hosts), "--host", "a.local", "--host", "c.local", "--timeout", "300ms"
    )
    elapsed = time.monotonic() - started
    assert code == 1
    assert 0.3 <= elapsed < 5
    lines = err.splitlines()
    assert len(lines) == 1
    assert "c.local missing" in lines[0]
    assert "a.local" not in lines[0]
    assert str(hosts) in lines[0] and "timed out" in lines[0]
    assert out == ""


def test_names_outside_the_block_do_not_count(capsys, hosts):
    code, _, err = run(capsys, "--hosts-file", str(hosts), "--host", "outside.local", "--timeout", "0.2")
    assert code == 1
    assert "outside.local missing" in err


def test_other_markers_block_does_not_count(capsys, hosts):
    code, _, err = run(
        capsys, "--hosts-file", str(hosts), "--marker", "OTHER", "--host", "a.local", "--timeout", "0.2"
    )
    assert code == 1
    assert "a.local missing" in err


def test_marker_from_env(capsys, monkeypatch, tmp_path):
    path = tmp_path / "hosts"
    HostsFile(path, "CUSTOM").sync([Entry("c.local", "10.0.0.3", "ns/c")])
    monkeypatch.setenv("K8S_HOSTS_CONTROLLER_HOSTS_FILE", str(path))
    monkeypatch.setenv("K8S_HOSTS_CONTROLLER_MARKER", "CUSTOM")
    code, _, err = run(capsys, "--host", "c.local", "--timeout", "1s")
    assert code == 0, err


def test_missing_hosts_file_times_out(capsys, tmp_path):
    code, _, err = run(
        capsys, "--hosts-file", str(tmp_path / "nope"), "--host", "a.local", "--timeout", "0.1"
    )
    assert code == 1
    assert "a.local missing" in err


def test_waits_until_the_host_appears(capsys, hosts):
    def add_later():
        time.sleep(0.3)
        HostsFile(hosts).sync(
            [
                Entry("a.local", "10.0.0.1", "ns/a"),
                Entry("b.local", "fd00::1", "ns/b"),
                Entry("late.local", "10.0.0.5", "ns/l"),
            ]
        )

    thread = threading.Thread(target=add_later)
    started = time.monotonic()
    thread.start()
    code, _, err = run(capsys, "--hosts-file", str(hosts), "--host", "late.local", "--timeout", "10s")
    thread.join()
    assert code == 0, err
    assert 0.25 <= time.monotonic() - started < 5


def test_absent_returns_0_when_hosts_are_not_in_the_block(capsys, hosts):
    code, out, err = run(capsys, "--hosts-file", str(hosts), "--host", "gone.local,outside.local", "--absent")
    assert code == 0, err
    assert "gone" in out


def test_absent_times_out_naming_the_present_host(capsys, hosts):
    code, _, err = run(
        capsys, "--hosts-file", str(hosts), "--host", "a.local,zzz.local", "--absent", "--timeout", "0.2s"
    )
    assert code == 1
    assert "a.local still present" in err
    assert "zzz.local" not in err


def test_absent_waits_for_cleanup(capsys, hosts):
    def cleanup_later():
        time.sleep(0.3)
        HostsFile(hosts).cleanup()

    thread = threading.Thread(target=cleanup_later)
    thread.start()
    code, _, err = run(
        capsys, "--hosts-file", str(hosts), "--host", "a.local", "--absent", "--timeout", "10s"
    )
    thread.join()
    assert code == 0, err
    assert hosts.read_bytes() == USER


def test_nothing_to_wait_for_is_a_usage_error(capsys, hosts):
    code, _, err = run(capsys, "--hosts-file", str(hosts))
    assert code == 2
    assert len(err.splitlines()) == 1 and "--host" in err and "--ready-url" in err
    code, _, err = run(capsys, "--hosts-file", str(hosts), "--host", " , ")
    assert code == 2


def test_bad_marker_is_a_usage_error(capsys, hosts):
    code, _, err = run(capsys, "--hosts-file", str(hosts), "--marker", "A#B", "--host", "a.local")
    assert code == 2
    assert len(err.splitlines()) == 1 and "error" in err


@pytest.mark.parametrize("argv", [["--timeout", "soon", "--host", "a"], ["--host", "a", "--bogus"]])
def test_argparse_errors_exit_2_with_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("k8s-hosts-controller wait: error:")
    assert "Traceback" not in err


def test_wait_subcommand_through_the_main_cli(capsys, hosts):
    assert cli.main(["wait", "--hosts-file", str(hosts), "--host", "a.local", "--timeout", "1s"]) == 0
    assert cli.main(["wait", "--hosts-file", str(hosts), "--host", "nope.local", "--timeout", "0.1"]) == 1


# ------------------------------------------------------------------------------------------- ready-url


class _Flaky(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []
    calls: list[str] = []

    def do_GET(self):
        type(self).calls.append(self.path)
        status = type(self).statuses.pop(0) if len(type(self).statuses) > 1 else type(self).statuses[0]
        self.send_response(status)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"statuses": [503, 503, 200], "calls": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/readyz", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_ready_url_503_then_200(capsys, server, hosts):
    url, handler = server
    code, out, err = run(capsys, "--ready-url", url, "--timeout", "10s", "--hosts-file", str(hosts))
    assert code == 0, err
    assert len(handler.calls) == 3  # kept polling through the 503s
    assert handler.calls == ["/readyz"] * 3
    assert url in out


def test_ready_url_and_hosts_both_required(capsys, server, hosts):
    url, handler = server
    handler.statuses[:] = [503]
    code, _, err = run(
        capsys, "--ready-url", url, "--host", "a.local", "--timeout", "0.3", "--hosts-file", str(hosts)
    )
    assert code == 1
    assert f"{url} not ready" in err
    assert "a.local" not in err  # the host is there; only readiness is missing
    assert len(handler.calls) >= 2


def test_ready_url_that_refuses_connections_times_out(capsys, hosts):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/readyz"
    code, _, err = run(capsys, "--ready-url", url, "--timeout", "0.2", "--hosts-file", str(hosts))
    assert code == 1
    assert f"{url} not ready" in err


GO_TOOL_BLOCK = (
    b"#### BEGIN TYK-K8S-HOSTS ####\n"
    b"# Ingress: tyk/dashboard-ingress\n"
    b"172.18.0.200\tchart-dash.local\n"
    b"# Ingress: tyk/gateway-ingress\n"
    b"172.18.0.200\tchart-gw.local chart-gw-alias.local\n"
    b"#### END TYK-K8S-HOSTS ####\n"
)


def test_sees_names_in_a_block_written_by_another_tool(capsys, tmp_path):
    """Another implementation writes `IP<TAB>HOST` lines with `# Ingress: ns/name` comments between them: the
    names resolve through the file, so `wait` must see them too."""
    path = tmp_path / "hosts"
    path.write_bytes(USER + GO_TOOL_BLOCK)
    code, _, err = run(
        capsys,
        "--hosts-file",
        str(path),
        "--host",
        "chart-dash.local,chart-gw.local,chart-gw-alias.local",
        "--timeout",
        "2s",
    )
    assert code == 0, err
    code, _, err = run(capsys, "--hosts-file", str(path), "--host", "outside.local", "--timeout", "0.1")
    assert code == 1 and "outside.local missing" in err  # still only the block counts
    code, _, err = run(
        capsys,
        "--hosts-file",
        str(path),
        "--host",
        "tyk",
        "--host",
        "ingress:",
        "--absent",
        "--timeout",
        "1s",
    )
    assert code == 0, err  # comment words are not names


# -------------------------------------------------------------------------------------- the whole deadline


class Dribbler:
    """A loopback HTTP server that answers every request one byte at a time, one byte every 0.2 s, a status
    line and then headers that never end: each byte comes well within any per-read socket timeout."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/readyz"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.requests += 1
            threading.Thread(target=self._dribble, args=(conn,), daemon=True).start()

    def _dribble(self, conn: socket.socket) -> None:
        payload = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 100_000
        with conn:
            for byte in payload:
                if self.stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def dribbler() -> Iterator[Dribbler]:
    server = Dribbler()
    try:
        yield server
    finally:
        server.close()


HANG_GUARD = 60  # seconds: turns a wait that ignores its deadline (the bug) into a failure


def test_a_server_that_dribbles_bytes_cannot_hold_wait_past_its_timeout(dribbler, hosts):
    """The real CLI: `wait --timeout 2s` ends by its deadline (one generous bound, set by the issue), exit 1,
    naming the URL; before, each byte reset the per-read socket timeout and the wait ran as long as the
    server kept sending."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "controller", "wait", "--ready-url", dribbler.url, "--timeout", "2s",
             "--hosts-file", str(hosts)],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            env={k: v for k, v in os.environ.items() if not k.startswith("K8S_HOSTS_CONTROLLER_")},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AssertionError(f"wait --timeout 2s still running after {HANG_GUARD}s") from None
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 10, f"took {elapsed:.1f}s for --timeout 2s"
    [line] = proc.stderr.splitlines()
    assert "timed out after 2s" in line and f"{dribbler.url} not ready" in line and "deadline" in line
    assert dribbler.requests >= 1
    assert "Traceback" not in proc.stderr


def test_the_deadline_also_bounds_the_hosts_check_together_with_a_slow_url(capsys, dribbler, hosts):
    argv = ["--ready-url", dribbler.url, "--host", "a.local,late.local", "--timeout", "1s"]
    result: list[int] = []
    started = time.monotonic()
    waiter = threading.Thread(target=lambda: result.append(main([*argv, "--hosts-file", str(hosts)])))
    waiter.start()
    waiter.join(HANG_GUARD)
    if waiter.is_alive():
        dribbler.stop.set()  # lets the old wait end, so that the failure is reported
        waiter.join()
        raise AssertionError(f"wait --timeout 1s still running after {HANG_GUARD}s")
    assert result == [1]
    assert time.monotonic() - started < 10
    _, err = capsys.readouterr()
    assert "late.local missing" in err and "a.local missing" not in err and dribbler.url in err


def test_a_zero_timeout_still_checks_once(capsys, hosts):
    code, out, err = run(capsys, "--hosts-file", str(hosts), "--host", "a.local", "--timeout", "0")
    assert code == 0, err
    assert "ready: a.local" in out


@pytest.mark.parametrize(
    "text",
    [
        "86401",
        "1441m",
        "86400001ms",
        pytest.param("9" * 400, id="400 nines"),
        pytest.param("9" * 400 + ".9s", id="400 nines and a fraction"),
    ],
)
def test_a_timeout_longer_than_a_day_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="longer than a day"):
        parse_duration(text)


def test_a_day_is_the_longest_timeout():
    assert parse_duration("1440m") == parse_duration("86400s") == 86400.0


def test_a_hosts_file_that_cannot_be_read_is_a_usage_error_not_a_timeout(capsys, tmp_path):
    code, _, err = run(capsys, "--hosts-file", str(tmp_path), "--host", "a.local", "--timeout", "5s")
    assert code == 2
    assert len(err.splitlines()) == 1 and str(tmp_path) in err and "directory" in err


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.wfile.write(b"NOT-HTTP garbage\r\n\r\n")

    def log_message(self, format, *args):
        pass


def test_a_server_that_answers_garbage_is_not_ready_not_a_traceback(capsys, hosts):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/readyz"
        code, _, err = run(capsys, "--ready-url", url, "--timeout", "0.5", "--hosts-file", str(hosts))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 1
    assert f"{url} not ready" in err and len(err.splitlines()) == 1
