"""One implementation started from its template, with what /proc tells about it (CPU time, memory)."""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path

from bench.targets import Impl
from testkit.ports import free_port
from testkit.process import ControllerProcess

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
        argv = [part.format(**values) for part in shlex.split(impl.template)]
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
