"""Fault-injection helpers: the controller's command line, churn on the API, and an independent checker of
the hosts file (the expected block is computed here from the API state, not with the controller's code)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from testkit.api import Api, ip_for
from testkit.process import ControllerProcess, controller_command

FULL = os.environ.get("FAULTS_FULL", "").lower() in ("1", "true", "yes")
MARKER = "FAULTS"
# CRLF on one line, a non-UTF-8 comment, tabs, another tool's block: all must survive byte for byte.
USER = (
    b"# user's hosts file\r\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n"
    b"# caf\xe9 \xff\xfe not utf-8\n192.168.1.10 nas.home  # my NAS\n#### BEGIN SOMEONE-ELSE ####\n"
    b"10.9.9.9 other.tool\n#### END SOMEONE-ELSE ####\n"
)
BEGIN = f"#### BEGIN {MARKER} ####".encode()
END = f"#### END {MARKER} ####".encode()
_LINE = re.compile(rb"([0-9a-f.:]+) ([a-z0-9.-]+)  # ([a-z0-9-]+/[a-z0-9-]+)\Z")
# The cluster record the controller writes as the first line of its block (which cluster, which server).
_RECORD = re.compile(rb"# cluster: name=\S+ server=https://\S+( node=\S+)?\Z")


def say(text: str) -> None:
    print(f"[faults] {text}", flush=True)


# ------------------------------------------------------------------------------------------ the controller


def controller_argv(kubeconfig: Path, hosts: Path, ns: str, *extra: str) -> list[str]:
    return controller_command(
        "--namespaces",
        ns,
        "--hosts-file",
        str(hosts),
        "--kubeconfig",
        str(kubeconfig),
        "--marker",
        MARKER,
        *extra,
    )


# ------------------------------------------------------------------------------------------- the checker


@dataclass
class Split:
    block: bytes | None  # the block's bytes (BEGIN..END lines), None if absent
    record: bytes | None = None  # its cluster record line, checked for its form only (it names the server)

    @property
    def entries(self) -> bytes | None:
        """The block without its cluster record line: what the cluster's objects call for."""
        if self.block is None or self.record is None:
            return self.block
        return self.block.replace(self.record + b"\n", b"", 1)


def check_file(content: bytes) -> Split:
    """Raise AssertionError unless the file holds exactly one well-formed block or none."""
    lines = content.split(b"\n")
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if not begins and not ends:
        return Split(None)
    assert len(begins) == 1 and len(ends) == 1, f"{len(begins)} BEGIN and {len(ends)} END lines:\n{content!r}"
    b, e = begins[0], ends[0]
    assert b < e, f"END before BEGIN:\n{content!r}"
    body, record = lines[b + 1 : e], None
    if body and body[0].startswith(b"# cluster:"):
        record, body = body[0], body[1:]
        assert _RECORD.match(record), f"malformed cluster record in the block: {record!r}"
    for line in body:
        assert _LINE.match(line), f"malformed line in the block: {line!r}"
    return Split(b"\n".join(lines[b : e + 1]) + b"\n", record)


def after_cleanup(content: bytes) -> bytes:
    """What removing our block must leave: the file without the block, and without the blank line the engine
    put before it only while the block still ends the file. With lines after the block (another program
    appended them), that blank line cannot be told from a user's own and stays (docs/architecture.md,
    decision 3)."""
    split = check_file(content)
    if split.block is None:
        return content
    start = content.index(split.block)
    end = start + len(split.block)
    if end == len(content):
        return outside_of(content)
    return content[:start] + content[end:]


def outside_of(content: bytes) -> bytes:
    """The file without our block and the one blank line the engine puts before an appended block."""
    split = check_file(content)
    if split.block is None:
        return content
    start = content.index(split.block)
    prefix = content[:start]
    if prefix.endswith(b"\n\n"):
        prefix = prefix[:-1]
    return prefix + content[start + len(split.block) :]


def expected_block(api: Api, ns: str) -> bytes | None:
    """The block the cluster calls for, computed from a fresh LIST (unique hostnames, one IP each)."""
    lines = []
    for item in api.list_ingresses(ns)["items"]:
        name = item["metadata"]["name"]
        ips = [
            lb["ip"]
            for lb in ((item.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if lb.get("ip")
        ]
        hosts = [r["host"] for r in (item.get("spec") or {}).get("rules") or [] if r.get("host")]
        for host in hosts:
            for ip in ips:
                lines.append((host, ip, f"{ip} {host}  # {ns}/{name}"))
    if not lines:
        return None
    body = "".join(line + "\n" for _, _, line in sorted(lines))
    return (f"{BEGIN.decode()}\n{body}{END.decode()}\n").encode()


def wait_converged(api: Api, ns: str, hosts: Path, timeout: float = 30) -> tuple[bytes | None, bytes]:
    """Wait until the block equals the cluster; returns (expected, content). Asserts on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        expected = expected_block(api, ns)
        content = hosts.read_bytes()
        if check_file(content).entries == expected:
            return expected, content
        if time.monotonic() > deadline:
            got = check_file(content).entries
            exp_lines = set((expected or b"").splitlines())
            got_lines = set((got or b"").splitlines())
            raise AssertionError(
                f"block differs from the cluster after {timeout}s: "
                f"missing {sorted(exp_lines - got_lines)[:10]}, stale {sorted(got_lines - exp_lines)[:10]}"
            )
        time.sleep(0.2)


def locked_read(path: Path) -> bytes:
    """Read as a cooperating reader would: under a shared flock on the file (the writer holds LOCK_EX)."""
    for _ in range(50):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return os.read(fd, 1 << 24)
        finally:
            os.close(fd)
    raise AssertionError("file replaced too often to read it")


# ---------------------------------------------------------------------------------------------- churn


@dataclass
class Churn:
    """Random creates, LB address changes, host changes and deletes in one namespace, from a thread pool."""

    api: Api
    ns: str
    seed: int = 1
    threads: int = 3
    max_objects: int = 120
    pause: float = 0.0
    ops: dict[str, int] = field(default_factory=lambda: {"create": 0, "ip": 0, "host": 0, "delete": 0})
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._busy: set[str] = set()
        self._counter = 0
        self._threads: list[threading.Thread] = []

    def seed_objects(self, count: int) -> None:
        rng = random.Random(self.seed)
        for _ in range(count):
            self._op("create", rng)

    def start(self) -> Churn:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(self.seed * 100 + i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            with self._lock:
                n = len(self._names)
            kind = rng.choices(
                ["create", "ip", "host", "delete"],
                weights=[3 if n < self.max_objects else 0, 4, 1, 2 if n > 10 else 0],
            )[0]
            try:
                self._op(kind, rng)
            except Exception as err:  # the API may be down in some tests
                self.errors.append(str(err)[:200])
                time.sleep(0.2)
            if self.pause:
                time.sleep(self.pause)

    def _pick(self, rng: random.Random) -> str | None:
        with self._lock:
            free = sorted(self._names - self._busy)
            if not free:
                return None
            name = rng.choice(free)
            self._busy.add(name)
            return name

    def _op(self, kind: str, rng: random.Random) -> None:
        if kind == "create":
            with self._lock:
                self._counter += 1
                name = f"c{self.seed}-{self._counter}"
                self._busy.add(name)
            try:
                self.api.create_ingress(self.ns, name, f"{name}.{self.ns}.faults.test")
                self.api.set_ip(self.ns, name, ip_for(rng.randrange(1, 60000)))
                with self._lock:
                    self._names.add(name)
            finally:
                with self._lock:
                    self._busy.discard(name)
            self.ops["create"] += 1
            return
        name = self._pick(rng)
        if name is None:
            return
        try:
            if kind == "ip":
                self.api.set_ip(self.ns, name, ip_for(rng.randrange(1, 60000)))
            elif kind == "host":
                self.api.set_host(self.ns, name, f"{name}-h{rng.randrange(1000)}.{self.ns}.faults.test")
            else:
                self.api.delete_ingress(self.ns, name)
                with self._lock:
                    self._names.discard(name)
        finally:
            with self._lock:
                self._busy.discard(name)
        self.ops[kind] += 1


@contextlib.contextmanager
def running(*procs: ControllerProcess):
    try:
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
