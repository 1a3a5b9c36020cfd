"""One implementation started from its template, with what /proc tells about it (CPU time, memory)."""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import output
from bench.targets import Impl
from testkit.ports import free_port
from testkit.process import ControllerProcess

CLK_TCK = os.sysconf("SC_CLK_TCK")
_FLOOR = (
    "import controller.runner\n"
    "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS:')))"
)


@functools.cache
def import_floor_mb() -> float:
    """RSS of a bare `python -c "import controller.runner"` (kopf, the Kubernetes client, prometheus):
    what our controller costs before it does anything. Same interpreter, outside the checkout like ours."""
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-c", _FLOOR], capture_output=True, text=True, cwd=cwd)
    try:
        return int(out.stdout.strip()) / 1024
    except ValueError:
        return float("nan")


def new_results(**fields: object) -> dict:
    """A benchmark's results: its own fields, the import floor and the 1-minute load at its start, and the
    per-implementation figures to come."""

    return {**fields, "floor_mb": import_floor_mb(), "load": output.load(), "impls": {}}


def floor_line(results: dict) -> str:
    return (
        f'import floor (RSS of a bare python -c "import controller.runner"): {results["floor_mb"]:.1f} MB; '
        f"1-minute load average at the start: {results['load']}"
    )


def report(name: str, results: dict, headers: list[str], rows: list[list[object]]) -> None:
    """A benchmark's figures: the floor line and the table printed (kept for figures.md), the JSON saved."""
    output.emit(floor_line(results))
    output.emit(output.table(headers, rows))
    output.save_json(name, results)


class Controller(ControllerProcess):
    """The kit's controller process, built from an implementation's template; run outside the checkout."""

    def __init__(self, impl: Impl, *, kubeconfig: Path, hosts_file: Path, namespaces: str, log: Path) -> None:
        port = free_port()
        values = {
            "kubeconfig": str(kubeconfig),
            "hosts_file": str(hosts_file),
            "namespaces": namespaces,
            "metrics_port": str(port),
        }
        # $VARS expand from the environment: a template can name another checkout without a fixed path
        argv = [os.path.expandvars(part.format(**values)) for part in shlex.split(impl.template)]
        # cwd: not the checkout, where PYTHONPATH in a template could pick another tree
        super().__init__(argv, log, env=impl.env, cwd=log.parent, metrics_port=port)
        self.impl = impl
        self.peak_rss_kb = 0

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in kB; also remembers the peak."""
        rss = hwm = 0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        self.peak_rss_kb = max(self.peak_rss_kb, hwm)
        return rss, hwm

    def written(self) -> float | None:
        """Writes our controller counts; None for an implementation without that metric."""
        return self.metric("k8s_hosts_controller_writes_total", result="written")

    def stop(self, *args, **kwargs) -> int | None:
        if self.alive():
            self.rss_kb()
        return super().stop(*args, **kwargs)
