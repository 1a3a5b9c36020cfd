"""What the benchmarks do to the cluster and the file: a control plane in a temporary directory, many
Ingresses created at once, a hosts file with user content, and the (address, hostname) pairs in a file."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from testkit.api import Api, ip_for
from testkit.controlplane import ControlPlane
from testkit.process import stop_all

USER_CONTENT = b"# Existing entries...\n127.0.0.1 localhost\n::1 localhost\n"
_PAIR = re.compile(rb"^[ \t]*([0-9A-Fa-f:.]+)[ \t]+([^#\r\n]*)", re.M)
# A managed block, whatever an implementation calls it: a comment line with BEGIN ... one with END.
_BLOCK = re.compile(rb"^[ \t]*#[^\r\n]*\bBEGIN\b[^\r\n]*\r?$(.*?)^[ \t]*#[^\r\n]*\bEND\b", re.M | re.S)


@contextlib.contextmanager
def control_plane(keep: bool = False) -> Iterator[tuple[ControlPlane, Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="k8s-hosts-bench-"))
    cp = ControlPlane(workdir / "controlplane")
    try:
        cp.start()
        yield cp, workdir
    finally:
        stop_all()
        cp.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def create_many(api: Api, ns: str, count: int, *, threads: int = 16, prefix: str = "ing") -> dict:
    """count Ingresses with an address each (create, then status): expected pairs, time of last write."""
    expected = {}

    def one(i: int) -> float:
        name, host, ip = f"{prefix}-{i}", f"{prefix}-{i}.{ns}.bench.test", ip_for(i)
        api.create_ingress(ns, name, host)
        api.set_ip(ns, name, ip)
        return time.monotonic()

    for i in range(count):
        expected[(ip_for(i), f"{prefix}-{i}.{ns}.bench.test")] = None
    with ThreadPoolExecutor(threads) as pool:
        last = max(pool.map(one, range(count)), default=time.monotonic())
    return {"expected": set(expected), "last_write": last}


def prepare_hosts(workdir: Path, label: str) -> Path:
    path = workdir / f"hosts-{label}"
    path.write_bytes(USER_CONTENT)
    path.chmod(0o644)
    return path


def pairs(content: bytes) -> set[tuple[str, str]]:
    """The (address, hostname) pairs of the managed block(s): every `ADDRESS<whitespace>HOST...` line
    between a `# ...BEGIN...` and a `# ...END...` comment line, whatever comment or blank lines sit
    between (`IP<TAB>HOST` lines under `# Ingress: ns/name` comments count as much as ours). A file with
    no such block: every line of it. Implementation-neutral."""
    blocks = [m[1] for m in _BLOCK.finditer(content)] or [content]
    return {pair for block in blocks for pair in _pairs(block)}


def _pairs(content: bytes) -> set[tuple[str, str]]:
    out = set()
    for m in _PAIR.finditer(content):
        ip = m[1].decode()
        for host in m[2].decode(errors="replace").split():
            out.add((ip, host.lower()))
    return out
