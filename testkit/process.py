"""The controller under test as a real process: its command line, a log file, /readyz and /metrics over HTTP.

One wrapper for the tests, the fault injection and the benchmarks. The benchmarks also run other
implementations, so nothing here assumes our flags except controller_command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from testkit.ports import die_with_parent, free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
_LIVE: set[subprocess.Popen] = set()


def controller_command(*args: str) -> list[str]:
    """`python -m controller ARGS`, serving metrics on a free loopback port unless ARGS choose one."""
    argv = [sys.executable, "-m", "controller", *args]
    if not any(a.startswith("--metrics-bind-address") for a in args):
        argv += ["--metrics-bind-address", f"127.0.0.1:{free_port()}"]
    return argv


def metrics_port_of(argv: Sequence[str]) -> int | None:
    """The port given to --metrics-bind-address in a command line, None without one."""
    for i, arg in enumerate(argv):
        if arg == "--metrics-bind-address" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--metrics-bind-address="):
            value = arg.split("=", 1)[1]
        else:
            continue
        port = value.rpartition(":")[2]
        return int(port) if port.isdigit() else None
    return None


def stop_all() -> None:
    """Kill every process started here that is still running (an interrupted benchmark, a failed test)."""
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(5)
        _LIVE.discard(proc)


class ControllerProcess:
    """One controller process: started from ``argv``, output to ``log_path``, killed when its parent dies."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env or {}
        self.cwd = cwd
        self.metrics_port = metrics_port if metrics_port is not None else metrics_port_of(self.argv)
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> ControllerProcess:
        with open(self.log_path, "ab") as log:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                preexec_fn=die_with_parent,
            )
        _LIVE.add(self.proc)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ---- HTTP ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of a GET on the metrics server; status 0 when nothing answers."""
        if self.metrics_port is None:
            return 0, ""
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except (urllib.error.URLError, OSError):
            return 0, ""

    def wait_ready(self, timeout: float = 30.0, *, http_optional: bool = False) -> None:
        """Until /readyz answers 200. With http_optional, an implementation that serves no HTTP at all
        (nothing answers for 10 s) counts as ready while alive: the caller checks the file instead."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                code = None if self.proc is None else self.proc.returncode
                raise AssertionError(f"controller exited with {code}:\n{self.tail(60)}")
            status = self.get("/readyz")[0]
            if status == 200:
                return
            if http_optional and status == 0 and time.monotonic() - self.started > 10:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for /readyz:\n{self.tail(60)}")
            time.sleep(0.05)

    def metrics(self) -> Samples | None:
        """Every sample of /metrics as {(name, sorted labels): value}; None when nothing serves it."""
        status, body = self.get("/metrics")
        if status != 200:
            return None
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample by name and labels; None when it or /metrics is missing."""
        samples = self.metrics()
        return None if samples is None else samples.get((name, tuple(sorted(labels.items()))))

    # ---- ending ----------------------------------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` and wait; SIGKILL after ``timeout``. The exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _LIVE.discard(self.proc)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None:
            self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
